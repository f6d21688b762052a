//! `run(n)`: n HMAC-SHA256s over a 7.3 KB message (the size of the benchmark's call), in wasm.
use hmac::{Hmac, Mac};

#[no_mangle]
pub extern "C" fn run(n: u32) -> u32 {
    let message = [b'x'; 7300];
    let mut acc = 0u32;
    for i in 0..n {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"bench-signing-key").expect("any key length");
        mac.update(&i.to_le_bytes());
        mac.update(&message);
        acc = acc.wrapping_add(u32::from(mac.finalize().into_bytes()[0]));
    }
    acc
}
