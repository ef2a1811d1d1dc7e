//! The mock cluster's request path: raw bytes, frames with random bodies, and random valid
//! requests of every API, on connections to three brokers, with virtual time advancing.
//! Whatever arrives, the cluster answers, closes the connection or waits: it never panics.
#![no_main]

use bytes::{BufMut, BytesMut};
use kasio_mock::{Cluster, ClusterConfig, ConnId, Fault};
use kasio_proto::{AnyRequest, ApiKey, Encode, ErrorCode, frame, messages::RequestHeader, random::Rng};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut cluster = Cluster::new(ClusterConfig { brokers: 3, ..Default::default() });
    let _ = cluster.create_topic("t", 3);
    let conns: Vec<ConnId> = (1..=3).map(|b| cluster.connect(b)).collect();
    if data.first().is_some_and(|b| b & 0x80 != 0) {
        cluster.inject(Fault::Delay { api: ApiKey::Produce, count: 1, by: Duration::from_millis(5) });
        cluster.inject(Fault::FailNext { api: ApiKey::Fetch, count: 1, error: ErrorCode::NotLeaderOrFollower });
    }
    let mut now = t0;
    for (step, chunk) in data.chunks(64).enumerate() {
        let [mode, a, b, c, rest @ ..] = chunk else { break };
        let conn = conns[*a as usize % conns.len()];
        let mut buf = BytesMut::new();
        match mode % 3 {
            // Raw bytes.
            0 => buf.put_slice(&chunk[1..]),
            // A valid header for any API and version, and a random body.
            1 => {
                let key = ApiKey::ALL[*b as usize % ApiKey::ALL.len()];
                let range = key.versions();
                let version = range.min + (*c as i16) % (range.max - range.min + 1);
                let header = RequestHeader {
                    request_api_key: key.as_i16(),
                    request_api_version: version,
                    correlation_id: step as i32,
                    client_id: Some("fuzz".into()),
                    ..Default::default()
                };
                let mut frame = BytesMut::new();
                if header.encode(key.request_header_version(version), &mut frame).is_err() {
                    continue;
                }
                frame.put_slice(rest);
                buf.put_i32(frame.len() as i32);
                buf.put_slice(&frame);
            }
            // A random, valid request of any API.
            _ => {
                let key = ApiKey::ALL[*b as usize % ApiKey::ALL.len()];
                let range = key.versions();
                let version = range.min + (*c as i16) % (range.max - range.min + 1);
                let seed = rest.iter().fold(0u64, |h, x| h.wrapping_mul(31).wrapping_add(u64::from(*x)));
                let body = AnyRequest::random(key, &mut Rng::new(seed), version);
                let header = RequestHeader {
                    request_api_key: key.as_i16(),
                    request_api_version: version,
                    correlation_id: step as i32,
                    client_id: None,
                    ..Default::default()
                };
                if frame::encode_request(&header, &body, &mut buf).is_err() {
                    continue;
                }
            }
        }
        cluster.handle_input(conn, &buf, now);
        now += Duration::from_millis(u64::from(*a % 8));
        cluster.handle_timeout(now);
        while cluster.poll_transmit().is_some() {}
        while cluster.poll_close().is_some() {}
    }
    cluster.handle_timeout(now + Duration::from_secs(3600));
});
