//! Any bytes as a request frame, as a broker (or kasio-mock) would read it: the header names
//! the API and version. Decoding never panics; what decodes re-encodes stably.
#![no_main]

use bytes::{Bytes, BytesMut};
use kasio_proto::{ApiKey, frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((header, body)) = frame::decode_request(Bytes::copy_from_slice(data)) else { return };
    let key = ApiKey::from_i16(header.request_api_key).expect("decoded key is known");
    assert_eq!(key, body.api_key());
    let mut first = BytesMut::new();
    frame::encode_request(&header, &body, &mut first).expect("a decoded request re-encodes");
    let (h2, b2) = frame::decode_request(first.clone().freeze().split_off(4)).expect("re-encoded frame decodes");
    let mut second = BytesMut::new();
    frame::encode_request(&h2, &b2, &mut second).expect("re-encodes");
    assert_eq!(first, second);
});
