//! Connections to brokers: framing, correlation ids, version negotiation and the requests
//! in flight. The shell owns the sockets; a [`Connection`] owns everything else.

mod pool;

pub(crate) use pool::{Node, Pool, Purpose};

use crate::security::{
    Security, SecurityError, SecurityErrorKind,
    sasl::{Credentials, Session},
    tls::TlsSession,
};
use bytes::{Bytes, BytesMut};
use kasio_proto::{
    AnyRequest, ApiKey, Decode, ErrorCode, Request,
    frame::{self, FrameDecoder},
    messages::{
        ApiVersionsRequest, ApiVersionsResponse, RequestHeader, SaslAuthenticateRequest,
        SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
    },
};
use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

/// A connection the core asked the shell to open, named by the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Bytes for the shell to write to a connection, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Transmit {
    /// The connection to write to.
    pub conn: ConnId,
    /// One or more complete request frames.
    pub data: Bytes,
}

/// What the shell must do with a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum ConnectAction {
    /// Open a TCP connection to `host:port` and call `handle_connected(conn, now)` once it
    /// is up, or `handle_closed` if it fails.
    Open {
        /// The name the core gave the connection.
        conn: ConnId,
        /// Host to dial.
        host: String,
        /// Port to dial.
        port: u16,
    },
    /// Close the connection; the core has forgotten it.
    Close {
        /// The connection to close.
        conn: ConnId,
    },
}

/// Why a connection closed, as the shell reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The dial failed (refused, unreachable, DNS).
    ConnectFailed(String),
    /// The peer closed the connection.
    PeerClosed,
    /// A read or write failed.
    Io(String),
}

/// What a request in flight was for; the owner of the connection interprets the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tag {
    ApiVersions,
    Metadata,
    InitProducerId,
    Produce(u64),
    Fetch(u64),
    ListOffsets(u64),
    FindCoordinator,
    OffsetFetch(u64),
    OffsetCommit(u64),
    Heartbeat,
    /// An admin call, by its id.
    Admin(u64),
    SaslHandshake,
    SaslAuthenticate,
    /// A classic group request (JoinGroup, SyncGroup, Heartbeat, LeaveGroup).
    Classic,
    /// A transactional producer's coordinator request; what the number means is the
    /// producer's.
    Txn(u8),
    /// A share consumer's ShareFetch, by its request id.
    ShareFetch(u64),
    /// A share consumer's ShareAcknowledge, by its request id.
    ShareAck(u64),
    /// A ShareGroupHeartbeat.
    ShareHeartbeat,
    /// A share consumer's reading of its group's configs.
    GroupConfigs,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct InFlight {
    pub(crate) correlation_id: i32,
    pub(crate) api: ApiKey,
    pub(crate) version: i16,
    pub(crate) deadline: Instant,
    pub(crate) tag: Tag,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnState {
    /// The shell is dialling.
    Connecting,
    /// ApiVersions is in flight.
    Negotiating,
    /// The SASL exchange is in flight (first, or again to renew the session).
    Authenticating,
    /// Requests may be sent.
    Ready,
    /// The SASL session is due for renewal (KIP-368): no new requests until those in
    /// flight are answered, then the exchange runs again on this connection.
    Draining,
}

/// Why the core gave up on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConnError {
    /// Bytes that do not frame or decode.
    Malformed(String),
    /// A response with a correlation id not in flight.
    UnexpectedResponse(i32),
    /// The broker rejected every ApiVersions version.
    Negotiation(String),
    /// TLS or SASL failed: fatal for the client, not only the connection.
    Security(SecurityError),
}

/// The highest version the client's logic speaks, where that is below the codec's: the
/// topic-id versions of the offset APIs are not used yet.
fn client_cap(api: ApiKey) -> i16 {
    match api {
        ApiKey::OffsetCommit | ApiKey::OffsetFetch => 9,
        _ => i16::MAX,
    }
}

/// One connection's protocol state.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) id: ConnId,
    pub(crate) node: Node,
    pub(crate) purpose: Purpose,
    pub(crate) state: ConnState,
    inbox: BytesMut,
    decoder: FrameDecoder,
    next_correlation: i32,
    pub(crate) in_flight: VecDeque<InFlight>,
    /// The broker's version range per API key, intersected with the codec's.
    versions: Vec<Option<(i16, i16)>>,
    pub(crate) last_used: Instant,
    client_id: kasio_proto::ByteStr,
    /// Room to reserve for the next request frame.
    capacity: usize,
    /// Request frames are split off this buffer. The shell drops a frame once written, so
    /// by the next request its allocation is usually free again and `reserve` takes it
    /// back: a megabyte Produce request otherwise lands on fresh pages, whose faults cost
    /// about as much as copying the records into it.
    frames: BytesMut,
    tls: Option<TlsSession>,
    /// The credentials to authenticate with once versions are negotiated.
    credentials: Option<Credentials>,
    sasl: Option<Session>,
    nonce: [u64; 2],
    /// A TLS failure seen while reading, reported by the next `next_response`.
    pub(crate) failed: Option<SecurityError>,
    /// When the broker ends the SASL session; a connection still not re-authenticated
    /// then is closed (and dialled again, which authenticates again).
    pub(crate) expires_at: Option<Instant>,
    /// When to start re-authenticating in band: 85-95% into the session, as the Java
    /// client does, so that renewals of many connections spread out.
    reauth_at: Option<Instant>,
    /// When the current SASL exchange began: the session's lifetime counts from there.
    auth_started: Instant,
    /// Responses handed to the owner (not counting negotiation and authentication).
    pub(crate) responses: u64,
    /// The cluster's finalized `transaction.version` feature (0 when not reported).
    pub(crate) transaction_version: i16,
    /// The cluster's finalized `share.version` feature (0 when not reported).
    pub(crate) share_version: i16,
}

impl Connection {
    #[cfg(test)]
    pub(crate) fn new(
        id: ConnId,
        node: Node,
        purpose: Purpose,
        client_id: &str,
        max_frame: usize,
        now: Instant,
    ) -> Self {
        Self::secured(id, node, purpose, client_id, max_frame, now, None)
    }

    /// A connection with TLS and SASL as `security` says; `host` is the name the TLS
    /// certificate must carry, `nonce` seeds SCRAM.
    pub(crate) fn secured(
        id: ConnId,
        node: Node,
        purpose: Purpose,
        client_id: &str,
        max_frame: usize,
        now: Instant,
        security: Option<(&Security, &str, [u64; 2])>,
    ) -> Self {
        let mut failed = None;
        let mut tls = None;
        let mut credentials = None;
        let mut nonce = [0; 2];
        if let Some((sec, host, n)) = security {
            nonce = n;
            credentials.clone_from(&sec.sasl);
            if let Some(config) = &sec.tls {
                match TlsSession::new(config.clone(), host) {
                    Ok(t) => tls = Some(t),
                    Err(e) => failed = Some(e),
                }
            }
        }
        Self {
            tls,
            credentials,
            sasl: None,
            nonce,
            failed,
            expires_at: None,
            reauth_at: None,
            auth_started: now,
            responses: 0,
            transaction_version: 0,
            share_version: 0,
            id,
            node,
            purpose,
            state: ConnState::Connecting,
            inbox: BytesMut::new(),
            decoder: FrameDecoder::new(max_frame),
            next_correlation: 0,
            in_flight: VecDeque::new(),
            versions: Vec::new(),
            last_used: now,
            client_id: client_id.into(),
            capacity: 256,
            frames: BytesMut::new(),
        }
    }

    /// The dial succeeded: negotiate versions first.
    pub(crate) fn connected(&mut self, out: &mut VecDeque<Transmit>, deadline: Instant) {
        self.state = ConnState::Negotiating;
        let req = ApiVersionsRequest {
            client_software_name: "kasio".into(),
            client_software_version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        };
        // Encoding a fixed, valid ApiVersions request cannot fail.
        let _ = self.send_at(&req, 3, Tag::ApiVersions, deadline, out);
    }

    /// Whether the connection closing now cut short the first request after
    /// negotiation, without SASL: what a SASL listener does to a client that skips it.
    pub(crate) fn refused_unauthenticated(&self) -> bool {
        self.state == ConnState::Ready
            && self.credentials.is_none()
            && self.responses == 0
            && !self.in_flight.is_empty()
    }

    /// Whether the connection closing now would have cut a TLS handshake short.
    pub(crate) fn in_tls_handshake(&self) -> bool {
        // A dial that failed never started the handshake.
        self.state != ConnState::Connecting
            && self.tls.as_ref().is_some_and(TlsSession::handshaking)
    }

    /// Writes a frame: as it is, or through TLS.
    fn emit(&mut self, data: Bytes, out: &mut VecDeque<Transmit>) {
        match &mut self.tls {
            None => out.push_back(Transmit {
                conn: self.id,
                data,
            }),
            Some(tls) => {
                tls.write(&data);
                self.flush_tls(out);
            }
        }
    }

    fn flush_tls(&mut self, out: &mut VecDeque<Transmit>) {
        if let Some(bytes) = self.tls.as_mut().and_then(TlsSession::take_output) {
            out.push_back(Transmit {
                conn: self.id,
                data: Bytes::from(bytes),
            });
        }
    }

    /// The version to use for `api`: the highest both sides support.
    pub(crate) fn version(&self, api: ApiKey) -> Option<i16> {
        self.versions
            .get(usize::try_from(api as i16).ok()?)
            .copied()
            .flatten()
            .map(|(_, max)| max)
    }

    /// The broker refused `version` of `api` although it advertised it (some brokers and
    /// proxies do): lower the maximum below it. Whether a usable version remains.
    pub(crate) fn refuse_version(&mut self, api: ApiKey, version: i16) -> bool {
        let Some(slot) = usize::try_from(api as i16)
            .ok()
            .and_then(|i| self.versions.get_mut(i))
        else {
            return false;
        };
        match *slot {
            Some((lo, hi)) if version > lo && version <= hi => {
                *slot = Some((lo, version - 1));
                true
            }
            Some((lo, hi)) if version > hi => hi >= lo,
            _ => {
                *slot = None;
                false
            }
        }
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.state == ConnState::Ready
    }

    /// Frames `req` at the negotiated version and queues it; `None` if the broker does not
    /// support the API.
    pub(crate) fn send<R: Request>(
        &mut self,
        req: &R,
        tag: Tag,
        deadline: Instant,
        out: &mut VecDeque<Transmit>,
    ) -> Option<i16> {
        self.send_sized(req, tag, deadline, out, 256)
    }

    /// As [`send`](Self::send) with room for `capacity` bytes reserved up front, so a large
    /// Produce frame is not grown (and copied) step by step.
    pub(crate) fn send_sized<R: Request>(
        &mut self,
        req: &R,
        tag: Tag,
        deadline: Instant,
        out: &mut VecDeque<Transmit>,
        capacity: usize,
    ) -> Option<i16> {
        let version = self.version(R::API_KEY)?;
        self.capacity = capacity;
        self.send_at(req, version, tag, deadline, out).ok()?;
        Some(version)
    }

    /// As [`send_sized`](Self::send_sized) at no version above `max`: for a flow that a
    /// newer version would change (the first transaction protocol).
    pub(crate) fn send_capped<R: Request>(
        &mut self,
        req: &R,
        max: i16,
        tag: Tag,
        deadline: Instant,
        out: &mut VecDeque<Transmit>,
        capacity: usize,
    ) -> Option<i16> {
        let (lo, _) = self
            .versions
            .get(usize::try_from(R::API_KEY as i16).ok()?)
            .copied()
            .flatten()?;
        let version = self.version(R::API_KEY)?.min(max);
        if version < lo {
            return None;
        }
        self.capacity = capacity;
        self.send_at(req, version, tag, deadline, out).ok()?;
        Some(version)
    }

    /// As [`send`](Self::send) for a request that gets no response (Produce with acks=0).
    pub(crate) fn send_oneway<R: Request>(
        &mut self,
        req: &R,
        out: &mut VecDeque<Transmit>,
    ) -> Option<i16> {
        let version = self.version(R::API_KEY)?;
        let header = self.header(R::API_KEY, version);
        let mut buf = BytesMut::new();
        frame::encode_request(&header, req, &mut buf).ok()?;
        self.emit(buf.freeze(), out);
        Some(version)
    }

    fn header(&mut self, api: ApiKey, version: i16) -> RequestHeader {
        let correlation_id = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1) & i32::MAX;
        RequestHeader {
            request_api_key: api as i16,
            request_api_version: version,
            correlation_id,
            client_id: Some(self.client_id.clone()),
            ..Default::default()
        }
    }

    fn send_at<R: Request>(
        &mut self,
        req: &R,
        version: i16,
        tag: Tag,
        deadline: Instant,
        out: &mut VecDeque<Transmit>,
    ) -> Result<(), kasio_proto::EncodeError> {
        self.queue(R::API_KEY, req, version, tag, deadline, out)
    }

    /// As [`send`](Self::send) for a request whose type is known only at run time; the
    /// caller picked `version` from [`version`](Self::version).
    pub(crate) fn send_any(
        &mut self,
        req: &AnyRequest,
        version: i16,
        tag: Tag,
        deadline: Instant,
        out: &mut VecDeque<Transmit>,
    ) -> Result<(), kasio_proto::EncodeError> {
        self.queue(req.api_key(), req, version, tag, deadline, out)
    }

    fn queue(
        &mut self,
        api: ApiKey,
        body: &impl kasio_proto::Encode,
        version: i16,
        tag: Tag,
        deadline: Instant,
        out: &mut VecDeque<Transmit>,
    ) -> Result<(), kasio_proto::EncodeError> {
        let header = self.header(api, version);
        self.frames
            .reserve(std::mem::replace(&mut self.capacity, 256));
        if let Err(e) = frame::encode_request(&header, body, &mut self.frames) {
            self.frames.clear();
            return Err(e);
        }
        let buf = self.frames.split();
        self.in_flight.push_back(InFlight {
            correlation_id: header.correlation_id,
            api,
            version,
            deadline,
            tag,
        });
        self.emit(buf.freeze(), out);
        Ok(())
    }

    /// Appends received bytes (deciphered first under TLS, which may have answers of its
    /// own to send).
    pub(crate) fn feed(&mut self, data: &[u8], now: Instant, out: &mut VecDeque<Transmit>) {
        self.last_used = now;
        match &mut self.tls {
            None => self.inbox.extend_from_slice(data),
            Some(tls) => {
                if let Err(e) = tls.receive(data, &mut self.inbox) {
                    self.failed.get_or_insert(e);
                }
                self.flush_tls(out);
            }
        }
    }

    /// The next complete response and the request it answers. ApiVersions responses are
    /// consumed here.
    pub(crate) fn next_response(
        &mut self,
        out: &mut VecDeque<Transmit>,
    ) -> Result<Option<(InFlight, Bytes)>, ConnError> {
        if let Some(e) = &self.failed {
            return Err(ConnError::Security(e.clone()));
        }
        loop {
            let Some(frame) = self
                .decoder
                .decode(&mut self.inbox)
                .map_err(|e| ConnError::Malformed(e.to_string()))?
            else {
                return Ok(None);
            };
            let correlation = frame::response_correlation_id(&frame)
                .map_err(|e| ConnError::Malformed(e.to_string()))?;
            let Some(front) = self.in_flight.front().copied() else {
                return Err(ConnError::UnexpectedResponse(correlation));
            };
            if front.correlation_id != correlation {
                return Err(ConnError::UnexpectedResponse(correlation));
            }
            self.in_flight.pop_front();
            match front.tag {
                Tag::ApiVersions => {
                    self.negotiated(front, frame, out)?;
                    continue;
                }
                Tag::SaslHandshake => {
                    self.handshaken(front, frame, out)?;
                    continue;
                }
                Tag::SaslAuthenticate => {
                    self.authenticated(front, frame, out)?;
                    continue;
                }
                _ => {}
            }
            self.responses += 1;
            return Ok(Some((front, frame)));
        }
    }

    fn negotiated(
        &mut self,
        req: InFlight,
        frame: Bytes,
        out: &mut VecDeque<Transmit>,
    ) -> Result<(), ConnError> {
        // A broker that does not know our ApiVersions version answers in v0 with
        // UNSUPPORTED_VERSION and its own range, so fall back to reading v0.
        let resp =
            match frame::decode_response_as::<ApiVersionsResponse>(req.version, frame.clone()) {
                Ok((_, r)) => r,
                Err(e) => {
                    let mut body = frame.slice(4..);
                    ApiVersionsResponse::decode(0, &mut body)
                        .map_err(|_| ConnError::Malformed(e.to_string()))?
                }
            };
        let code = ErrorCode::from_code(resp.error_code);
        if code == ErrorCode::UnsupportedVersion && req.version > 0 {
            let theirs = resp
                .api_keys
                .iter()
                .find(|k| k.api_key == ApiKey::ApiVersions as i16)
                .map_or(0, |k| k.max_version);
            let version = theirs.clamp(0, req.version - 1);
            let deadline = req.deadline;
            return self
                .send_at(
                    &ApiVersionsRequest::default(),
                    version,
                    Tag::ApiVersions,
                    deadline,
                    out,
                )
                .map_err(|e| ConnError::Negotiation(e.to_string()));
        }
        if !code.is_ok() {
            return Err(ConnError::Negotiation(format!(
                "ApiVersions failed: {}",
                code.name()
            )));
        }
        let feature = |name: &str| {
            resp.finalized_features
                .iter()
                .find(|f| &*f.name == name)
                .map_or(0, |f| f.max_version_level)
        };
        self.transaction_version = feature("transaction.version");
        self.share_version = feature("share.version");
        self.versions = vec![None; ApiKey::ALL.len().max(100)];
        for k in &resp.api_keys {
            let Some(api) = ApiKey::from_i16(k.api_key) else {
                continue;
            };
            let ours = api.versions();
            let lo = k.min_version.max(ours.min);
            let hi = k.max_version.min(ours.max).min(client_cap(api));
            if lo <= hi
                && let Some(slot) = usize::try_from(k.api_key)
                    .ok()
                    .and_then(|i| self.versions.get_mut(i))
            {
                *slot = Some((lo, hi));
            }
        }
        if self.credentials.is_some() {
            return self.start_sasl(req.deadline, out);
        }
        self.state = ConnState::Ready;
        Ok(())
    }

    fn security(kind: SecurityErrorKind, message: impl Into<String>) -> ConnError {
        ConnError::Security(SecurityError {
            kind,
            message: message.into(),
        })
    }

    fn start_sasl(
        &mut self,
        deadline: Instant,
        out: &mut VecDeque<Transmit>,
    ) -> Result<(), ConnError> {
        let Some(creds) = &self.credentials else {
            return Ok(());
        };
        let mechanism = creds.mechanism.name();
        match self.version(ApiKey::SaslHandshake) {
            Some(v) if v >= 1 => {
                self.state = ConnState::Authenticating;
                self.auth_started = self.last_used;
                let req = SaslHandshakeRequest {
                    mechanism: mechanism.into(),
                };
                self.send_at(&req, v, Tag::SaslHandshake, deadline, out)
                    .map_err(|e| ConnError::Negotiation(e.to_string()))
            }
            _ => Err(Self::security(
                SecurityErrorKind::Mechanism,
                "the broker speaks no SASL (SaslHandshake v1) on this listener",
            )),
        }
    }

    fn handshaken(
        &mut self,
        req: InFlight,
        frame: Bytes,
        out: &mut VecDeque<Transmit>,
    ) -> Result<(), ConnError> {
        let (_, resp) = frame::decode_response_as::<SaslHandshakeResponse>(req.version, frame)
            .map_err(|e| ConnError::Malformed(e.to_string()))?;
        let Some(creds) = &self.credentials else {
            return Ok(());
        };
        if resp.error_code != 0 {
            let enabled: Vec<String> = resp.mechanisms.iter().map(ToString::to_string).collect();
            let message = if enabled.is_empty() {
                "the listener speaks no SASL: is security.protocol right?".to_string()
            } else {
                format!(
                    "the broker does not enable {} (it enables: {})",
                    creds.mechanism.name(),
                    enabled.join(", ")
                )
            };
            return Err(Self::security(SecurityErrorKind::Mechanism, message));
        }
        let (session, first) = Session::start(creds, self.nonce)
            .map_err(|e| Self::security(SecurityErrorKind::Authentication, e))?;
        self.sasl = Some(session);
        self.send_auth(first, req.deadline, out)
    }

    fn send_auth(
        &mut self,
        bytes: Vec<u8>,
        deadline: Instant,
        out: &mut VecDeque<Transmit>,
    ) -> Result<(), ConnError> {
        let v = self.version(ApiKey::SaslAuthenticate).ok_or_else(|| {
            Self::security(
                SecurityErrorKind::Mechanism,
                "the broker does not support SaslAuthenticate",
            )
        })?;
        let req = SaslAuthenticateRequest {
            auth_bytes: Bytes::from(bytes),
            ..Default::default()
        };
        self.send_at(&req, v, Tag::SaslAuthenticate, deadline, out)
            .map_err(|e| ConnError::Negotiation(e.to_string()))
    }

    fn authenticated(
        &mut self,
        req: InFlight,
        frame: Bytes,
        out: &mut VecDeque<Transmit>,
    ) -> Result<(), ConnError> {
        let (_, resp) = frame::decode_response_as::<SaslAuthenticateResponse>(req.version, frame)
            .map_err(|e| ConnError::Malformed(e.to_string()))?;
        if resp.error_code != 0 {
            let code = ErrorCode::from_code(resp.error_code);
            let message = resp
                .error_message
                .as_ref()
                .map_or_else(|| code.message().to_string(), ToString::to_string);
            return Err(Self::security(SecurityErrorKind::Authentication, message));
        }
        let Some(session) = &mut self.sasl else {
            return Ok(());
        };
        match session
            .next(&resp.auth_bytes)
            .map_err(|e| Self::security(SecurityErrorKind::Authentication, e))?
        {
            Some(next) => self.send_auth(next, req.deadline, out),
            None => {
                self.sasl = None;
                self.state = ConnState::Ready;
                self.expires_at = None;
                self.reauth_at = None;
                if resp.session_lifetime_ms > 0 {
                    let lifetime =
                        Duration::from_millis(u64::try_from(resp.session_lifetime_ms).unwrap_or(0));
                    let permille = 850 + u32::try_from(self.nonce[1] % 100).unwrap_or(0);
                    self.expires_at = Some(self.auth_started + lifetime);
                    self.reauth_at = Some(self.auth_started + lifetime * permille / 1000);
                }
                Ok(())
            }
        }
    }

    /// Renews the SASL session in band (KIP-368) once it is due: stops taking requests,
    /// and when those in flight are answered runs the exchange again. A fresh nonce each
    /// time, so no SCRAM exchange repeats another.
    pub(crate) fn reauthenticate_if_due(
        &mut self,
        now: Instant,
        out: &mut VecDeque<Transmit>,
    ) -> Result<(), ConnError> {
        if self.state == ConnState::Ready && self.reauth_at.is_some_and(|t| t <= now) {
            self.state = ConnState::Draining;
        }
        if self.state != ConnState::Draining || !self.in_flight.is_empty() {
            return Ok(());
        }
        self.reauth_at = None;
        self.nonce = [
            self.nonce[0].rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15,
            self.nonce[1]
                .wrapping_mul(0x5851_f42d_4c95_7f2d)
                .wrapping_add(1),
        ];
        self.last_used = now;
        // The exchange must finish while the old session lasts; give it a few seconds
        // at least when the renewal started late.
        let deadline = self
            .expires_at
            .map_or(now + Duration::from_secs(30), |end| {
                end.max(now + Duration::from_secs(5))
            });
        self.start_sasl(deadline, out)
    }

    /// The earliest deadline of a request in flight, or the next step of the SASL
    /// session (its renewal, or its end).
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.request_deadline()
            .into_iter()
            .chain(self.reauth_at)
            .chain(self.expires_at)
            .min()
    }

    /// The earliest deadline of a request in flight.
    pub(crate) fn request_deadline(&self) -> Option<Instant> {
        self.in_flight.iter().map(|r| r.deadline).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kasio_proto::messages::api_versions_response::ApiVersion;

    fn negotiated(broker: &[(ApiKey, i16, i16)]) -> Connection {
        let now = Instant::now();
        let mut c = Connection::new(
            ConnId(1),
            Node::Broker(1),
            Purpose::Produce,
            "t",
            1 << 20,
            now,
        );
        let mut out = VecDeque::new();
        c.connected(&mut out, now);
        let resp = ApiVersionsResponse {
            api_keys: broker
                .iter()
                .map(|&(k, min, max)| ApiVersion {
                    api_key: k as i16,
                    min_version: min,
                    max_version: max,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let mut buf = BytesMut::new();
        frame::encode_response(ApiKey::ApiVersions, 3, 0, &resp, &mut buf).unwrap();
        c.feed(&buf, now, &mut out);
        assert!(c.next_response(&mut out).unwrap().is_none());
        assert!(c.is_ready());
        c
    }

    #[test]
    fn versions_are_the_intersection_of_both_ranges() {
        let c = negotiated(&[(ApiKey::Produce, 0, 99), (ApiKey::Metadata, 0, 5)]);
        assert_eq!(
            c.version(ApiKey::Produce),
            Some(ApiKey::Produce.versions().max)
        );
        assert_eq!(c.version(ApiKey::Metadata), Some(5));
        assert_eq!(c.version(ApiKey::Fetch), None, "not advertised");
    }

    #[test]
    fn a_refused_version_steps_down_and_stops_at_the_floor() {
        let mut c = negotiated(&[(ApiKey::Metadata, 4, 6)]);
        assert!(c.refuse_version(ApiKey::Metadata, 6));
        assert_eq!(c.version(ApiKey::Metadata), Some(5));
        assert!(c.refuse_version(ApiKey::Metadata, 5));
        assert!(!c.refuse_version(ApiKey::Metadata, 4));
        assert_eq!(c.version(ApiKey::Metadata), None);
    }
}
