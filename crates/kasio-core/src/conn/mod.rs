//! Connections to brokers: framing, correlation ids, version negotiation and the requests
//! in flight. The shell owns the sockets; a [`Connection`] owns everything else.

mod pool;

pub(crate) use pool::{Node, Pool, Purpose};

use bytes::{Bytes, BytesMut};
use kasio_proto::{
    AnyRequest, ApiKey, Decode, ErrorCode, Request,
    frame::{self, FrameDecoder},
    messages::{ApiVersionsRequest, ApiVersionsResponse, RequestHeader},
};
use std::{collections::VecDeque, time::Instant};

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
    /// Requests may be sent.
    Ready,
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
}

impl Connection {
    pub(crate) fn new(
        id: ConnId,
        node: Node,
        purpose: Purpose,
        client_id: &str,
        max_frame: usize,
        now: Instant,
    ) -> Self {
        Self {
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
        out.push_back(Transmit {
            conn: self.id,
            data: buf.freeze(),
        });
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
        let mut buf = BytesMut::with_capacity(std::mem::replace(&mut self.capacity, 256));
        frame::encode_request(&header, body, &mut buf)?;
        self.in_flight.push_back(InFlight {
            correlation_id: header.correlation_id,
            api,
            version,
            deadline,
            tag,
        });
        out.push_back(Transmit {
            conn: self.id,
            data: buf.freeze(),
        });
        Ok(())
    }

    /// Appends received bytes.
    pub(crate) fn feed(&mut self, data: &[u8], now: Instant) {
        self.inbox.extend_from_slice(data);
        self.last_used = now;
    }

    /// The next complete response and the request it answers. ApiVersions responses are
    /// consumed here.
    pub(crate) fn next_response(
        &mut self,
        out: &mut VecDeque<Transmit>,
    ) -> Result<Option<(InFlight, Bytes)>, ConnError> {
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
            if front.tag == Tag::ApiVersions {
                self.negotiated(front, frame, out)?;
                continue;
            }
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
        self.state = ConnState::Ready;
        Ok(())
    }

    /// The earliest deadline of a request in flight.
    pub(crate) fn deadline(&self) -> Option<Instant> {
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
        c.feed(&buf, now);
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
