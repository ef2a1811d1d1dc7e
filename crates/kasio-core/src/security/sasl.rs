//! SASL exchanges, one per connection: PLAIN, SCRAM-SHA-256/512 and OAUTHBEARER.

use super::{SaslMechanism, Secret, SecurityConfig, base64, scram::ScramClient};
use crate::config::ConfigError;
use std::{fmt, sync::Arc};

/// Where OAUTHBEARER tokens come from: called for every new connection, so it can hand
/// out a fresh token before the old one expires (its own caching is up to it).
pub type TokenProvider = Arc<dyn Fn() -> Result<Secret, String> + Send + Sync>;

/// The credentials every connection authenticates with.
#[derive(Clone)]
pub(crate) struct Credentials {
    pub(crate) mechanism: SaslMechanism,
    username: String,
    password: Secret,
    token: Option<TokenProvider>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// An unsecured JWS (`alg: none`), as Kafka's default OAUTHBEARER validator accepts on
/// test clusters. It expires in 2100, so making it reads no clock.
fn unsecured_token(principal: &str) -> Secret {
    let header = base64::encode_url(br#"{"alg":"none"}"#);
    let claims = serde_like_claims(principal);
    Secret::new(format!(
        "{header}.{}.",
        base64::encode_url(claims.as_bytes())
    ))
}

fn serde_like_claims(principal: &str) -> String {
    let escaped: String = principal
        .chars()
        .flat_map(|c| match c {
            '"' => vec!['\\', '"'],
            '\\' => vec!['\\', '\\'],
            c => vec![c],
        })
        .collect();
    format!(r#"{{"sub":"{escaped}","iat":0,"exp":4102444800}}"#)
}

impl Credentials {
    pub(crate) fn from_config(c: &SecurityConfig) -> Result<Self, ConfigError> {
        let token: Option<TokenProvider> = match (&c.oauth_provider, c.sasl_mechanism) {
            (Some(p), _) => Some(p.clone()),
            (None, SaslMechanism::OAuthBearer) => {
                let token = if c.sasl_oauthbearer_token.is_empty() {
                    let principal = if c.sasl_oauthbearer_principal.is_empty() {
                        &c.sasl_username
                    } else {
                        &c.sasl_oauthbearer_principal
                    };
                    if principal.is_empty() {
                        return Err(ConfigError::Conflict(
                            "OAUTHBEARER needs sasl.oauthbearer.token, a token provider, or a principal".into(),
                        ));
                    }
                    unsecured_token(principal)
                } else {
                    c.sasl_oauthbearer_token.clone()
                };
                Some(Arc::new(move || Ok(token.clone())))
            }
            (None, _) => None,
        };
        Ok(Self {
            mechanism: c.sasl_mechanism,
            username: c.sasl_username.clone(),
            password: c.sasl_password.clone(),
            token,
        })
    }
}

#[derive(Debug)]
enum Stage {
    /// The one message is sent; an empty answer means success.
    Sent,
    /// SCRAM: client-first sent, waiting for server-first.
    ScramFirst(ScramClient),
    /// SCRAM: client-final sent, waiting for server-final.
    ScramFinal(ScramClient),
    Done,
}

/// One connection's exchange.
#[derive(Debug)]
pub(crate) struct Session {
    creds: Credentials,
    stage: Stage,
}

impl Session {
    /// Starts an exchange; `nonce` seeds SCRAM's client nonce. Returns the first message.
    pub(crate) fn start(creds: &Credentials, nonce: [u64; 2]) -> Result<(Self, Vec<u8>), String> {
        let (stage, first) = match creds.mechanism {
            SaslMechanism::Plain => {
                let mut m = Vec::new();
                m.push(0);
                m.extend_from_slice(creds.username.as_bytes());
                m.push(0);
                m.extend_from_slice(creds.password.expose().as_bytes());
                (Stage::Sent, m)
            }
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
                let mut raw = [0u8; 16];
                raw[..8].copy_from_slice(&nonce[0].to_le_bytes());
                raw[8..].copy_from_slice(&nonce[1].to_le_bytes());
                let (client, first) =
                    ScramClient::new(creds.mechanism, &creds.username, base64::encode_url(&raw));
                (Stage::ScramFirst(client), first)
            }
            SaslMechanism::OAuthBearer => {
                let provider = creds
                    .token
                    .as_ref()
                    .ok_or("no OAUTHBEARER token provider")?;
                let token = provider()?;
                let m = format!("n,,\u{1}auth=Bearer {}\u{1}\u{1}", token.expose()).into_bytes();
                (Stage::Sent, m)
            }
        };
        Ok((
            Self {
                creds: creds.clone(),
                stage,
            },
            first,
        ))
    }

    /// The server's answer to the last message: the next message to send, or `None` once
    /// authenticated.
    pub(crate) fn next(&mut self, server: &[u8]) -> Result<Option<Vec<u8>>, String> {
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Sent => Ok(None),
            Stage::ScramFirst(mut c) => {
                let fin = c.respond(server, self.creds.password.expose())?;
                self.stage = Stage::ScramFinal(c);
                Ok(Some(fin))
            }
            Stage::ScramFinal(c) => c.verify(server).map(|()| None),
            Stage::Done => Err("the broker sent more after the exchange ended".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(mechanism: &str) -> Credentials {
        let mut c = SecurityConfig::default();
        c.set("security.protocol", "SASL_SSL").unwrap();
        c.set("sasl.mechanism", mechanism).unwrap();
        c.set("sasl.jaas.config", r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="hunter2";"#).unwrap();
        Credentials::from_config(&c).unwrap()
    }

    #[test]
    fn plain_is_one_message() {
        let (mut s, first) = Session::start(&creds("PLAIN"), [1, 2]).unwrap();
        assert_eq!(first, b"\0alice\0hunter2");
        assert_eq!(s.next(b"").unwrap(), None);
        assert!(s.next(b"").is_err());
    }

    #[test]
    fn oauthbearer_sends_an_unsecured_token_for_the_principal() {
        let (_, first) = Session::start(&creds("OAUTHBEARER"), [1, 2]).unwrap();
        let text = String::from_utf8(first).unwrap();
        let token = text
            .strip_prefix("n,,\u{1}auth=Bearer ")
            .unwrap()
            .strip_suffix("\u{1}\u{1}")
            .unwrap();
        let claims = token.split('.').nth(1).unwrap();
        let padded = format!("{claims}{}", "=".repeat((4 - claims.len() % 4) % 4));
        let decoded = base64::decode(&padded.replace('-', "+").replace('_', "/")).unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            r#"{"sub":"alice","iat":0,"exp":4102444800}"#
        );
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let c = creds("SCRAM-SHA-512");
        let (s, _) = Session::start(&c, [1, 2]).unwrap();
        let mut cfg = SecurityConfig::default();
        cfg.set("sasl.password", "hunter2").unwrap();
        cfg.set("ssl.key.pem", "-----BEGIN PRIVATE KEY-----hunter2")
            .unwrap();
        cfg.set("sasl.oauthbearer.token", "hunter2").unwrap();
        for shown in [format!("{c:?}"), format!("{s:?}"), format!("{cfg:?}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }
}
