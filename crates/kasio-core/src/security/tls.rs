//! TLS with rustls, driven in memory: ciphertext in and out as bytes, so the shell moves
//! bytes exactly as it does for plaintext and every runtime gets the same TLS.

use super::{SecurityConfig, SecurityError, SecurityErrorKind};
use crate::config::ConfigError;
use bytes::BytesMut;
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, Error, RootCertStore,
    SignatureScheme,
    client::{
        WebPkiServerVerifier,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject},
};
use std::{
    io::{Read, Write},
    sync::Arc,
};

fn conflict(what: &str, e: impl std::fmt::Display) -> ConfigError {
    ConfigError::Conflict(format!("{what}: {e}"))
}

/// The rustls configuration for a [`SecurityConfig`].
pub(crate) fn client_config(c: &SecurityConfig) -> Result<Arc<ClientConfig>, ConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    match &c.ssl_ca_pem {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| conflict("ssl.ca.location", e))?;
                roots
                    .add(cert)
                    .map_err(|e| conflict("ssl.ca.location", e))?;
            }
            if roots.is_empty() {
                return Err(ConfigError::Conflict(
                    "ssl.ca.location holds no PEM certificate".into(),
                ));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| conflict("TLS", e))?;
    let builder = if c.verify_hostname {
        builder.with_root_certificates(roots)
    } else {
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| conflict("ssl.ca.location", e))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyName(inner)))
    };
    let config = match (&c.ssl_certificate_pem, &c.ssl_key_pem) {
        (Some(cert), Some(key)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<_, _>>()
                .map_err(|e| conflict("ssl.certificate.location", e))?;
            let key = PrivateKeyDer::from_pem_slice(key.expose().as_bytes()).map_err(|_| {
                ConfigError::Conflict("ssl.key.location holds no usable PEM private key".into())
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| conflict("ssl.certificate.location", e))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(ConfigError::Conflict(
                "a client certificate needs both ssl.certificate.location and ssl.key.location"
                    .into(),
            ));
        }
    };
    Ok(Arc::new(config))
}

/// Certificate checks without the host name (`ssl.endpoint.identification.algorithm=`):
/// the chain must still lead to a trusted root.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

fn classify(e: &Error) -> SecurityError {
    let kind = match e {
        Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => SecurityErrorKind::Hostname,
        Error::InvalidCertificate(_) => SecurityErrorKind::Certificate,
        _ => SecurityErrorKind::Tls,
    };
    SecurityError {
        kind,
        message: e.to_string(),
    }
}

/// The TLS settings of a [`SecurityConfig`] (`ssl.ca.location`, the client certificate and
/// key, `ssl.endpoint.identification.algorithm`), ready to open sessions: for layers
/// beside Kafka's (the Schema Registry client) that reuse kasio's TLS.
///
/// ```
/// use kasio_core::{SecurityConfig, TlsConnector};
/// let tls = TlsConnector::new(&SecurityConfig::default())?;
/// let mut session = tls.session("registry.example.com")?;
/// assert!(session.handshaking());
/// assert!(session.take_output().is_some(), "a ClientHello to send");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct TlsConnector(Arc<ClientConfig>);

impl std::fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConnector").finish_non_exhaustive()
    }
}

impl TlsConnector {
    /// The connector for `config`'s TLS settings (its protocol setting is not consulted).
    ///
    /// # Errors
    /// [`ConfigError::Conflict`] if a certificate or key does not load.
    pub fn new(config: &SecurityConfig) -> Result<Self, ConfigError> {
        client_config(config).map(Self)
    }

    /// A session with `host`, whose certificate must name it (unless hostname checks
    /// are off).
    ///
    /// # Errors
    /// [`SecurityError`] if `host` is not a valid server name.
    pub fn session(&self, host: &str) -> Result<TlsSession, SecurityError> {
        TlsSession::new(self.0.clone(), host)
    }
}

/// One connection's TLS session, driven in memory: ciphertext in with
/// [`receive`](Self::receive), ciphertext out with [`take_output`](Self::take_output).
pub struct TlsSession {
    conn: ClientConnection,
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("handshaking", &self.conn.is_handshaking())
            .finish()
    }
}

impl TlsSession {
    pub(crate) fn new(config: Arc<ClientConfig>, host: &str) -> Result<Self, SecurityError> {
        let name = ServerName::try_from(host.to_string()).map_err(|e| SecurityError {
            kind: SecurityErrorKind::Hostname,
            message: format!("{host:?} is not a valid TLS server name: {e}"),
        })?;
        let mut conn = ClientConnection::new(config, name).map_err(|e| classify(&e))?;
        // Our own in-flight limits bound what waits here.
        conn.set_buffer_limit(None);
        Ok(Self { conn })
    }

    /// Whether the handshake is still going on.
    pub fn handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Queues plaintext (sent once the handshake is done).
    pub fn write(&mut self, plain: &[u8]) {
        // Without a buffer limit, writing to memory cannot fail.
        let _ = self.conn.writer().write_all(plain);
    }

    /// Takes ciphertext in and appends the plaintext it carried to `plain`.
    ///
    /// # Errors
    /// [`SecurityError`] if the peer's bytes break TLS or its certificate is refused.
    pub fn receive(
        &mut self,
        mut cipher: &[u8],
        plain: &mut BytesMut,
    ) -> Result<(), SecurityError> {
        while !cipher.is_empty() {
            self.conn.read_tls(&mut cipher).map_err(|e| SecurityError {
                kind: SecurityErrorKind::Tls,
                message: e.to_string(),
            })?;
            let state = self.conn.process_new_packets().map_err(|e| classify(&e))?;
            let mut n = state.plaintext_bytes_to_read();
            while n > 0 {
                let start = plain.len();
                plain.resize(start + n, 0);
                let got = self.conn.reader().read(&mut plain[start..]).unwrap_or(0);
                plain.truncate(start + got);
                if got == 0 {
                    break;
                }
                n -= got;
            }
        }
        Ok(())
    }

    /// Ciphertext waiting to be sent, if any.
    pub fn take_output(&mut self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut out).is_err() {
                break;
            }
        }
        (!out.is_empty()).then_some(out)
    }
}
