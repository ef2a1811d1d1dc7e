//! The SASL and TLS input paths: a SCRAM exchange answered with arbitrary broker messages,
//! a TLS connection fed arbitrary ciphertext, and the SCRAM parsers directly. Nothing may
//! panic, hang or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match data.first().map(|b| b % 3) {
        Some(0) => kasio_core::fuzz::sasl(&data[1..]),
        Some(1) => kasio_core::fuzz::tls(&data[1..]),
        Some(_) => kasio_core::fuzz::scram(&data[1..]),
        None => {}
    }
});
