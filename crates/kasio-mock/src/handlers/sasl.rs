//! SASL on the mock's connections (as a SASL_PLAINTEXT listener): SaslHandshake, then
//! SaslAuthenticate with PLAIN or SCRAM-SHA-256/512 (RFC 5802: the client's proof checked,
//! the server's signature sent), for the users the cluster was configured with.

use super::Outcome;
use crate::cluster::{Cluster, ConnId};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use kasio_proto::{
    AnyResponse, ErrorCode, base64,
    messages::{
        SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
        SaslHandshakeResponse,
    },
};
use sha2::{Digest, Sha256, Sha512};

const MECHANISMS: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];
const ITERATIONS: u32 = 4096;

/// Where a connection's authentication stands.
#[derive(Debug, Clone, Default)]
pub(crate) enum Auth {
    /// Nothing yet (or SASL is off, see [`Cluster::authenticated`]).
    #[default]
    None,
    /// The handshake chose a mechanism.
    Chosen(String),
    /// SCRAM: server-first sent.
    Scram {
        sha512: bool,
        user: String,
        auth_message_start: String,
        nonce: String,
    },
    /// Authenticated, until the session ends (when it has a lifetime).
    Done { until: Option<std::time::Instant> },
}

fn mac(sha512: bool, key: &[u8], data: &[u8]) -> Vec<u8> {
    if sha512 {
        let Ok(mut m) = Hmac::<Sha512>::new_from_slice(key) else {
            return Vec::new();
        };
        m.update(data);
        m.finalize().into_bytes().to_vec()
    } else {
        let Ok(mut m) = Hmac::<Sha256>::new_from_slice(key) else {
            return Vec::new();
        };
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }
}

fn salted(sha512: bool, password: &str, salt: &[u8]) -> Vec<u8> {
    if sha512 {
        let mut out = [0u8; 64];
        pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), salt, ITERATIONS, &mut out);
        out.to_vec()
    } else {
        let mut out = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, ITERATIONS, &mut out);
        out.to_vec()
    }
}

/// A fixed salt per user: the mock keeps no credential store.
fn salt(user: &str) -> Vec<u8> {
    let mut s = b"kasio-mock:".to_vec();
    s.extend_from_slice(user.as_bytes());
    s
}

pub(crate) fn handshake(
    cluster: &mut Cluster,
    conn: ConnId,
    req: &SaslHandshakeRequest,
) -> SaslHandshakeResponse {
    let known = MECHANISMS.contains(&req.mechanism.as_str());
    if known && let Some(a) = cluster.auth_mut(conn) {
        *a = Auth::Chosen(req.mechanism.to_string());
    }
    SaslHandshakeResponse {
        error_code: if known {
            0
        } else {
            ErrorCode::UnsupportedSaslMechanism.code()
        },
        mechanisms: MECHANISMS.iter().map(|m| (*m).into()).collect(),
    }
}

fn failed(message: &str) -> Outcome {
    Outcome::Respond(Box::new(AnyResponse::SaslAuthenticate(
        SaslAuthenticateResponse {
            error_code: ErrorCode::SaslAuthenticationFailed.code(),
            error_message: Some(message.into()),
            ..Default::default()
        },
    )))
}

fn ok(bytes: Vec<u8>) -> Outcome {
    done(bytes, None)
}

/// The last step of a successful exchange, telling the session's lifetime.
fn done(bytes: Vec<u8>, lifetime: Option<std::time::Duration>) -> Outcome {
    Outcome::Respond(Box::new(AnyResponse::SaslAuthenticate(
        SaslAuthenticateResponse {
            auth_bytes: Bytes::from(bytes),
            session_lifetime_ms: lifetime
                .map_or(0, |l| i64::try_from(l.as_millis()).unwrap_or(i64::MAX)),
            ..Default::default()
        },
    )))
}

pub(crate) fn authenticate(
    cluster: &mut Cluster,
    conn: ConnId,
    req: &SaslAuthenticateRequest,
    now: std::time::Instant,
) -> Outcome {
    let lifetime = cluster.config.sasl_session_lifetime;
    let finished = Auth::Done {
        until: lifetime.map(|l| now + l),
    };
    let state = cluster
        .auth_mut(conn)
        .map(std::mem::take)
        .unwrap_or_default();
    let password = |user: &str| {
        cluster
            .config
            .sasl_users
            .iter()
            .find(|(u, _)| u == user)
            .map(|(_, p)| p.clone())
    };
    let (next, outcome) = match state {
        Auth::Chosen(m) if m == "PLAIN" => {
            let parts: Vec<&[u8]> = req.auth_bytes.split(|&b| b == 0).collect();
            let good = parts.len() == 3
                && std::str::from_utf8(parts[1])
                    .ok()
                    .and_then(password)
                    .is_some_and(|p| p.as_bytes() == parts[2]);
            if good {
                (finished, done(Vec::new(), lifetime))
            } else {
                (Auth::None, failed("Invalid username or password"))
            }
        }
        Auth::Chosen(m) => {
            let sha512 = m == "SCRAM-SHA-512";
            let text = String::from_utf8_lossy(&req.auth_bytes).to_string();
            let bare = text.strip_prefix("n,,").unwrap_or("");
            let mut user = None;
            let mut nonce = None;
            for part in bare.split(',') {
                if let Some(u) = part.strip_prefix("n=") {
                    user = Some(u.replace("=2C", ",").replace("=3D", "="));
                } else if let Some(r) = part.strip_prefix("r=") {
                    nonce = Some(r.to_string());
                }
            }
            match (user, nonce) {
                (Some(user), Some(nonce)) if password(&user).is_some() => {
                    let full = format!("{nonce}{:016x}", cluster.next_producer_id ^ 0x5eed);
                    let first =
                        format!("r={full},s={},i={ITERATIONS}", base64::encode(&salt(&user)));
                    let next = Auth::Scram {
                        sha512,
                        user,
                        auth_message_start: format!("{bare},{first}"),
                        nonce: full,
                    };
                    (next, ok(first.into_bytes()))
                }
                _ => (
                    Auth::None,
                    failed(
                        "Authentication failed during authentication due to invalid credentials",
                    ),
                ),
            }
        }
        Auth::Scram {
            sha512,
            user,
            auth_message_start,
            nonce,
        } => {
            let text = String::from_utf8_lossy(&req.auth_bytes).to_string();
            let (without_proof, proof) = match text.rsplit_once(",p=") {
                Some((w, p)) => (w.to_string(), base64::decode(p).unwrap_or_default()),
                None => (String::new(), Vec::new()),
            };
            let pw = password(&user).unwrap_or_default();
            let s = salted(sha512, &pw, &salt(&user));
            let client_key = mac(sha512, &s, b"Client Key");
            let stored: Vec<u8> = if sha512 {
                Sha512::digest(&client_key).to_vec()
            } else {
                Sha256::digest(&client_key).to_vec()
            };
            let auth = format!("{auth_message_start},{without_proof}");
            let signature = mac(sha512, &stored, auth.as_bytes());
            let recovered: Vec<u8> = proof.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
            let nonce_ok = without_proof.contains(&format!("r={nonce}"));
            let proof_ok = proof.len() == signature.len()
                && (if sha512 {
                    Sha512::digest(&recovered).to_vec()
                } else {
                    Sha256::digest(&recovered).to_vec()
                }) == stored;
            if nonce_ok && proof_ok {
                let server_key = mac(sha512, &s, b"Server Key");
                let v = mac(sha512, &server_key, auth.as_bytes());
                (
                    finished,
                    done(format!("v={}", base64::encode(&v)).into_bytes(), lifetime),
                )
            } else {
                (
                    Auth::None,
                    failed(
                        "Authentication failed during authentication due to invalid credentials",
                    ),
                )
            }
        }
        other => (other, failed("SaslAuthenticate before SaslHandshake")),
    };
    if let Some(a) = cluster.auth_mut(conn) {
        *a = next;
    }
    outcome
}
