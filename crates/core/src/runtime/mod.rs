//! What the core builds on the ports ([`crate::port`]) for its upstream calls: deadlines, single
//! flight and waiting out a 429.

pub mod backoff;
pub mod deadline;
pub mod single_flight;
