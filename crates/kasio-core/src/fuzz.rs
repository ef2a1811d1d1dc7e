//! Entry points for the fuzz targets (feature `_fuzz`): the SASL and TLS input paths of a
//! connection, driven with bytes from the fuzzer. Not part of the API.

use crate::{
    conn::{ConnId, Connection, Node, Purpose},
    security::{SecurityConfig, scram::ScramClient},
};
use bytes::BytesMut;
use kasio_proto::{
    ApiKey, frame,
    messages::{
        ApiVersionsResponse, SaslAuthenticateResponse, SaslHandshakeResponse,
        api_versions_response::ApiVersion,
    },
};
use std::{collections::VecDeque, time::Instant};

fn connection(props: &[(&str, &str)]) -> Option<Connection> {
    let mut config = SecurityConfig::default();
    for (k, v) in props {
        config.set(k, v).ok()?;
    }
    let security = config.build().ok()??;
    let now = Instant::now();
    Some(Connection::secured(
        ConnId(1),
        Node::Broker(1),
        Purpose::Control,
        "fuzz",
        1 << 20,
        now,
        Some((&security, "localhost", [7, 9])),
    ))
}

fn drain(c: &mut Connection, out: &mut VecDeque<crate::Transmit>) {
    // Stops at the first error, or when no whole frame is left.
    for _ in 0..64 {
        match c.next_response(out) {
            Ok(Some(_)) => {}
            _ => break,
        }
    }
}

fn frame_of<R: kasio_proto::Message>(
    api: ApiKey,
    version: i16,
    correlation: i32,
    body: &R,
) -> BytesMut {
    let mut buf = BytesMut::new();
    let _ = frame::encode_response(api, version, correlation, body, &mut buf);
    buf
}

/// A SCRAM exchange over a connection: negotiation and the handshake answered properly,
/// then the fuzzer's bytes as the broker's SCRAM messages (split at 0xff) and, after
/// them, as raw frames.
pub fn sasl(data: &[u8]) {
    let Some(mut c) = connection(&[
        ("security.protocol", "SASL_PLAINTEXT"),
        (
            "sasl.mechanism",
            if data.first().is_some_and(|b| b & 1 == 1) {
                "SCRAM-SHA-512"
            } else {
                "SCRAM-SHA-256"
            },
        ),
        ("sasl.username", "user"),
        ("sasl.password", "pencil"),
    ]) else {
        return;
    };
    let now = Instant::now();
    let mut out = VecDeque::new();
    c.connected(&mut out, now);
    let versions = ApiVersionsResponse {
        api_keys: [
            (ApiKey::SaslHandshake, 1),
            (ApiKey::SaslAuthenticate, 2),
            (ApiKey::Metadata, 12),
        ]
        .iter()
        .map(|&(k, max)| ApiVersion {
            api_key: k as i16,
            min_version: 0,
            max_version: max,
            ..Default::default()
        })
        .collect(),
        ..Default::default()
    };
    c.feed(
        &frame_of(ApiKey::ApiVersions, 3, 0, &versions),
        now,
        &mut out,
    );
    drain(&mut c, &mut out);
    c.feed(
        &frame_of(
            ApiKey::SaslHandshake,
            1,
            1,
            &SaslHandshakeResponse::default(),
        ),
        now,
        &mut out,
    );
    drain(&mut c, &mut out);
    let mut parts = data.get(1..).unwrap_or_default().split(|&b| b == 0xff);
    for correlation in 2..4 {
        let Some(part) = parts.next() else {
            return;
        };
        let resp = SaslAuthenticateResponse {
            auth_bytes: bytes::Bytes::copy_from_slice(part),
            session_lifetime_ms: i64::from(part.len() as u32),
            ..Default::default()
        };
        c.feed(
            &frame_of(ApiKey::SaslAuthenticate, 2, correlation, &resp),
            now,
            &mut out,
        );
        drain(&mut c, &mut out);
    }
    for raw in parts {
        c.feed(raw, now, &mut out);
        drain(&mut c, &mut out);
    }
}

/// A TLS connection fed the fuzzer's bytes as the broker's ciphertext.
pub fn tls(data: &[u8]) {
    let Some(mut c) = connection(&[("security.protocol", "SSL")]) else {
        return;
    };
    let now = Instant::now();
    let mut out = VecDeque::new();
    c.connected(&mut out, now);
    for chunk in data.chunks(512) {
        c.feed(chunk, now, &mut out);
        drain(&mut c, &mut out);
    }
}

/// The SCRAM client's parsers, directly.
pub fn scram(data: &[u8]) {
    let (mut client, _) =
        ScramClient::new(crate::SaslMechanism::ScramSha256, "user", "nonce".into());
    let (first, last) = data.split_at(data.len() / 2);
    let _ = client.respond(first, "pencil");
    let _ = client.verify(last);
}
