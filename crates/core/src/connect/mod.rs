//! The pure pieces of the "connect Microsoft" browser flow (`GET /connect/microsoft`, ZITADEL's
//! login, then Microsoft's, then the callbacks): one concern per file, each taking strings, bytes
//! and the time and returning values, so the host tests cover them without a runtime.
//! `return_to.rs` the allow-list of return URLs and adding the outcome to one, `pkce.rs` RFC 7636,
//! `account.rs` whether the Microsoft account that signed in is the one linked in ZITADEL,
//! `id_token.rs` the claim checks of ZITADEL's ID token and reading Microsoft's, `page.rs` the page
//! shown when there is nowhere to redirect to, and the flow's outcome codes.

pub mod account;
pub mod id_token;
pub mod page;
pub mod pkce;
pub mod return_to;
