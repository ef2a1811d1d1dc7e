//! The client side of SCRAM (RFC 5802, RFC 7677): client-first, client-final with its
//! proof, and the server's signature checked.

use super::{SaslMechanism, base64};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

fn hmac(mechanism: SaslMechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    match mechanism {
        SaslMechanism::ScramSha512 => {
            let Ok(mut m) = Hmac::<Sha512>::new_from_slice(key) else {
                return Vec::new();
            };
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        _ => {
            let Ok(mut m) = Hmac::<Sha256>::new_from_slice(key) else {
                return Vec::new();
            };
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
    }
}

fn hash(mechanism: SaslMechanism, data: &[u8]) -> Vec<u8> {
    match mechanism {
        SaslMechanism::ScramSha512 => Sha512::digest(data).to_vec(),
        _ => Sha256::digest(data).to_vec(),
    }
}

/// `Hi(password, salt, i)`: PBKDF2 with the mechanism's HMAC.
pub(crate) fn salted_password(
    mechanism: SaslMechanism,
    password: &[u8],
    salt: &[u8],
    rounds: u32,
) -> Vec<u8> {
    match mechanism {
        SaslMechanism::ScramSha512 => {
            let mut out = [0u8; 64];
            pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, rounds, &mut out);
            out.to_vec()
        }
        _ => {
            let mut out = [0u8; 32];
            pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, rounds, &mut out);
            out.to_vec()
        }
    }
}

/// A user name as SCRAM carries it: `=` and `,` escaped.
fn saslname(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// Kafka refuses fewer iterations; a server asking for fewer is not Kafka.
const MIN_ITERATIONS: u32 = 4096;
/// More than this is a hostile server making the client burn CPU.
const MAX_ITERATIONS: u32 = 1 << 20;

/// One SCRAM exchange.
#[derive(Debug)]
pub(crate) struct ScramClient {
    mechanism: SaslMechanism,
    nonce: String,
    first_bare: String,
    /// The signature the server must send back, once the client-final is sent.
    expected: Option<Vec<u8>>,
}

impl ScramClient {
    /// A client with its nonce (printable, no commas).
    pub(crate) fn new(mechanism: SaslMechanism, user: &str, nonce: String) -> (Self, Vec<u8>) {
        let first_bare = format!("n={},r={nonce}", saslname(user));
        let first = format!("n,,{first_bare}").into_bytes();
        (
            Self {
                mechanism,
                nonce,
                first_bare,
                expected: None,
            },
            first,
        )
    }

    /// The client-final message for the server-first message.
    pub(crate) fn respond(
        &mut self,
        server_first: &[u8],
        password: &str,
    ) -> Result<Vec<u8>, String> {
        let text = std::str::from_utf8(server_first)
            .map_err(|_| "server-first is not UTF-8".to_string())?;
        let mut nonce = None;
        let mut salt = None;
        let mut rounds = None;
        for part in text.split(',') {
            match part.split_at_checked(2) {
                Some(("r=", v)) => nonce = Some(v),
                Some(("s=", v)) => salt = base64::decode(v),
                Some(("i=", v)) => rounds = v.parse::<u32>().ok(),
                Some(("e=", v)) => return Err(format!("the server refused: {v}")),
                _ => {}
            }
        }
        let nonce = nonce.ok_or("server-first has no nonce")?;
        if !nonce.starts_with(&self.nonce) || nonce.len() <= self.nonce.len() {
            return Err("the server's nonce does not extend the client's".into());
        }
        let salt = salt.ok_or("server-first has no valid salt")?;
        let rounds = rounds.ok_or("server-first has no iteration count")?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&rounds) {
            return Err(format!("the server asks for {rounds} iterations"));
        }
        let salted = salted_password(self.mechanism, password.as_bytes(), &salt, rounds);
        let client_key = hmac(self.mechanism, &salted, b"Client Key");
        let stored = hash(self.mechanism, &client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth = format!("{},{text},{without_proof}", self.first_bare);
        let signature = hmac(self.mechanism, &stored, auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = hmac(self.mechanism, &salted, b"Server Key");
        self.expected = Some(hmac(self.mechanism, &server_key, auth.as_bytes()));
        Ok(format!("{without_proof},p={}", base64::encode(&proof)).into_bytes())
    }

    /// Checks the server-final message: the server proves it knows the credential too.
    pub(crate) fn verify(&self, server_final: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(server_final)
            .map_err(|_| "server-final is not UTF-8".to_string())?;
        if let Some(e) = text.strip_prefix("e=") {
            return Err(format!("the server refused: {e}"));
        }
        let sig = text
            .split(',')
            .find_map(|p| p.strip_prefix("v="))
            .and_then(base64::decode)
            .ok_or("server-final has no signature")?;
        match &self.expected {
            Some(expected) if *expected == sig => Ok(()),
            _ => Err("the server's signature is wrong: it does not know the credential".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677, section 3: the whole SCRAM-SHA-256 exchange for user "user", password
    /// "pencil", client nonce "rOprNGfwEbeRWgbNEkqO".
    #[test]
    fn rfc_7677_exchange() {
        let (mut c, first) = ScramClient::new(
            SaslMechanism::ScramSha256,
            "user",
            "rOprNGfwEbeRWgbNEkqO".into(),
        );
        assert_eq!(first, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let fin = c.respond(server_first, "pencil").unwrap();
        assert_eq!(
            std::str::from_utf8(&fin).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        c.verify(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert!(
            c.verify(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
                .is_err()
        );
        assert!(c.verify(b"e=invalid-proof").is_err());
    }

    #[test]
    fn a_hostile_server_first_is_refused() {
        let (mut c, _) = ScramClient::new(SaslMechanism::ScramSha512, "u", "abc".into());
        assert!(
            c.respond(b"r=xyz123,s=AAAA,i=4096", "p").is_err(),
            "foreign nonce"
        );
        assert!(
            c.respond(b"r=abcdef,s=AAAA,i=1", "p").is_err(),
            "too few iterations"
        );
        assert!(
            c.respond(b"r=abcdef,s=AAAA,i=999999999", "p").is_err(),
            "too many"
        );
        assert!(c.respond(b"r=abcdef,i=4096", "p").is_err(), "no salt");
        assert!(c.respond(&[0xff, 0xfe], "p").is_err(), "not UTF-8");
        assert!(
            c.verify(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
                .is_err(),
            "no exchange yet"
        );
    }

    #[test]
    fn user_names_are_escaped() {
        assert_eq!(saslname("a=b,c"), "a=3Db=2Cc");
    }
}
