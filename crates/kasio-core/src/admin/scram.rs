//! SCRAM credentials: describe, and set or delete (the salted password is computed here,
//! so the password itself never leaves the client).

use super::{
    Admin, AdminError, AdminOutput, ApiError, Named, OpId,
    call::{Read, Single, Target, unexpected},
};
use bytes::Bytes;
use kasio_proto::{
    AnyResponse,
    messages::{
        AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest,
        alter_user_scram_credentials_request::{ScramCredentialDeletion, ScramCredentialUpsertion},
        describe_user_scram_credentials_request::UserName,
    },
};
use std::{fmt, time::Instant};

/// A SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScramMechanism {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
    /// A mechanism this client does not know.
    Unknown,
}

impl ScramMechanism {
    fn wire(self) -> i8 {
        match self {
            Self::Sha256 => 1,
            Self::Sha512 => 2,
            Self::Unknown => 0,
        }
    }

    fn from_wire(v: i8) -> Self {
        match v {
            1 => Self::Sha256,
            2 => Self::Sha512,
            _ => Self::Unknown,
        }
    }

    /// `Hi(password, salt, iterations)` of RFC 5802: PBKDF2 with this mechanism's HMAC.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Self::Sha512 => {
                let mut out = [0u8; 64];
                pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            _ => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }
}

/// A credential a user has (the broker never says more than this).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScramCredential {
    /// The mechanism.
    pub mechanism: ScramMechanism,
    /// The PBKDF2 iteration count.
    pub iterations: i32,
}

/// A change to a user's SCRAM credentials.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScramChange {
    /// Sets (or replaces) a credential.
    Upsert {
        /// The user.
        user: String,
        /// The mechanism.
        mechanism: ScramMechanism,
        /// The PBKDF2 iteration count (Kafka accepts 4096 to 16384).
        iterations: i32,
        /// The password; never printed.
        password: Vec<u8>,
    },
    /// Deletes a credential.
    Delete {
        /// The user.
        user: String,
        /// The mechanism.
        mechanism: ScramMechanism,
    },
}

impl fmt::Debug for ScramChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Upsert {
                user,
                mechanism,
                iterations,
                ..
            } => f
                .debug_struct("Upsert")
                .field("user", user)
                .field("mechanism", mechanism)
                .field("iterations", iterations)
                .field("password", &"<redacted>")
                .finish(),
            Self::Delete { user, mechanism } => f
                .debug_struct("Delete")
                .field("user", user)
                .field("mechanism", mechanism)
                .finish(),
        }
    }
}

impl Admin {
    /// The SCRAM credentials of `users` (every user with one, when empty).
    pub fn describe_scram_credentials(&mut self, users: &[&str], now: Instant) -> OpId {
        let users: Vec<String> = users.iter().map(|u| (*u).to_string()).collect();
        let op = Single::new(
            Target::Any,
            move |_| {
                DescribeUserScramCredentialsRequest {
                    users: (!users.is_empty()).then(|| {
                        users
                            .iter()
                            .map(|u| UserName {
                                name: u.as_str().into(),
                                ..Default::default()
                            })
                            .collect()
                    }),
                    ..Default::default()
                }
                .into()
            },
            |resp| {
                let AnyResponse::DescribeUserScramCredentials(r) = &resp else {
                    return unexpected(&resp);
                };
                if let Err(e) = ApiError::check(r.error_code, r.error_message.as_ref()) {
                    return Read::Fail(AdminError::Api(e));
                }
                Read::Done(AdminOutput::Scram(
                    r.results
                        .iter()
                        .map(|u| Named {
                            name: u.user.to_string(),
                            result: ApiError::check(u.error_code, u.error_message.as_ref()).map(
                                |()| {
                                    u.credential_infos
                                        .iter()
                                        .map(|c| ScramCredential {
                                            mechanism: ScramMechanism::from_wire(c.mechanism),
                                            iterations: c.iterations,
                                        })
                                        .collect()
                                },
                            ),
                        })
                        .collect(),
                ))
            },
        );
        self.start(op, now)
    }

    /// Sets or deletes SCRAM credentials; one result per user. Salts come from the seeded
    /// generator the admin client was created with.
    pub fn alter_scram_credentials(&mut self, changes: &[ScramChange], now: Instant) -> OpId {
        let mut deletions = Vec::new();
        let mut upsertions = Vec::new();
        for c in changes {
            match c {
                ScramChange::Upsert {
                    user,
                    mechanism,
                    iterations,
                    password,
                } => {
                    let salt: Vec<u8> = (0..4)
                        .flat_map(|_| self.rng.next_u64().to_le_bytes())
                        .collect();
                    let rounds = u32::try_from(*iterations).unwrap_or(0);
                    let salted = mechanism.salted_password(password, &salt, rounds);
                    upsertions.push(ScramCredentialUpsertion {
                        name: user.as_str().into(),
                        mechanism: mechanism.wire(),
                        iterations: *iterations,
                        salt: Bytes::from(salt),
                        salted_password: Bytes::from(salted),
                        ..Default::default()
                    });
                }
                ScramChange::Delete { user, mechanism } => {
                    deletions.push(ScramCredentialDeletion {
                        name: user.as_str().into(),
                        mechanism: mechanism.wire(),
                        ..Default::default()
                    });
                }
            }
        }
        let op = Single::new(
            Target::Any,
            move |_| {
                AlterUserScramCredentialsRequest {
                    deletions: deletions.clone(),
                    upsertions: upsertions.clone(),
                    ..Default::default()
                }
                .into()
            },
            |resp| {
                let AnyResponse::AlterUserScramCredentials(r) = &resp else {
                    return unexpected(&resp);
                };
                Read::Done(AdminOutput::NamedResults(
                    r.results
                        .iter()
                        .map(|u| Named {
                            name: u.user.to_string(),
                            result: ApiError::check(u.error_code, u.error_message.as_ref()),
                        })
                        .collect(),
                ))
            },
        );
        self.start(op, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salted_password_gives_rfc_7677_signatures() {
        use hmac::{Hmac, Mac};
        use sha2::{Digest, Sha256};
        type H = Hmac<Sha256>;
        let mac = |key: &[u8], data: &[u8]| {
            let mut m = H::new_from_slice(key).unwrap();
            m.update(data);
            m.finalize().into_bytes().to_vec()
        };
        // RFC 7677, section 3: user "user", password "pencil".
        let salt = kasio_proto::base64::decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = ScramMechanism::Sha256.salted_password(b"pencil", &salt, 4096);
        let nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let auth = format!(
            "n=user,r=rOprNGfwEbeRWgbNEkqO,r={nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r={nonce}"
        );
        let client_key = mac(&salted, b"Client Key");
        let stored = Sha256::digest(&client_key);
        let signature = mac(&stored, auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        assert_eq!(
            kasio_proto::base64::encode(&proof),
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        let server_key = mac(&salted, b"Server Key");
        let server_signature = mac(&server_key, auth.as_bytes());
        assert_eq!(
            kasio_proto::base64::encode(&server_signature),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn passwords_are_redacted() {
        let c = ScramChange::Upsert {
            user: "alice".into(),
            mechanism: ScramMechanism::Sha512,
            iterations: 8192,
            password: b"hunter2".to_vec(),
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("alice"));
    }
}
