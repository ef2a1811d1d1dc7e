//! Any bytes as the body of any response at any version: decoding never panics, and whatever
//! decodes re-encodes to bytes that decode to the same encoding again.
#![no_main]

use bytes::{Bytes, BytesMut};
use kasio_proto::{AnyResponse, ApiKey, Encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [k, v, rest @ ..] = data else { return };
    let key = ApiKey::ALL[*k as usize % ApiKey::ALL.len()];
    let range = key.versions();
    let version = range.min + (*v as i16) % (range.max - range.min + 1);
    let Ok(value) = AnyResponse::decode(key, version, &mut Bytes::copy_from_slice(rest)) else { return };
    let mut first = BytesMut::new();
    value.encode(version, &mut first).expect("a decoded value re-encodes");
    let again = AnyResponse::decode(key, version, &mut first.clone().freeze()).expect("re-encoded bytes decode");
    let mut second = BytesMut::new();
    again.encode(version, &mut second).expect("re-encodes");
    assert_eq!(first, second);
});
