//! Just enough HTTP/1.1 for a REST client: requests written out whole, and responses read
//! incrementally with every length checked against caps (the head, the body, each chunk).

/// The largest response head (status line and headers) read.
pub const MAX_HEAD: usize = 64 * 1024;

/// A response's status, its body, and whether the connection may carry another request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    pub(crate) keep_alive: bool,
}

/// What was wrong with a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HttpError {
    /// Not HTTP/1.x, or a header or chunk that does not parse.
    Malformed(String),
    /// The head or the body is larger than allowed.
    TooLarge(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading a chunk-size line.
    Size,
    /// Reading `left` bytes of chunk data.
    Data { left: usize },
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Trailer lines after the last chunk, up to an empty one.
    Trailer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Body(Framing),
    Chunked(Chunk),
    Done,
}

/// Reads one response from bytes that arrive cut anywhere.
#[derive(Debug)]
pub(crate) struct ResponseReader {
    state: State,
    /// Bytes not yet consumed (a partial head or line).
    buf: Vec<u8>,
    status: u16,
    keep_alive: bool,
    body: Vec<u8>,
    max_body: usize,
    /// Whether any byte of the response arrived (a reused connection closed before its
    /// answer began is safe to retry).
    started: bool,
}

impl ResponseReader {
    pub(crate) fn new(max_body: usize) -> Self {
        Self {
            state: State::Head,
            buf: Vec::new(),
            status: 0,
            keep_alive: true,
            body: Vec::new(),
            max_body,
            started: false,
        }
    }

    pub(crate) fn started(&self) -> bool {
        self.started
    }

    /// Feeds bytes; the response once it is whole. Bytes after it are an error (nothing
    /// was asked for them: requests are not pipelined).
    pub(crate) fn feed(&mut self, mut data: &[u8]) -> Result<Option<Response>, HttpError> {
        if !data.is_empty() {
            self.started = true;
        }
        loop {
            match self.state {
                State::Done => {
                    if data.is_empty() && self.buf.is_empty() {
                        return Ok(Some(self.take()));
                    }
                    return Err(HttpError::Malformed(
                        "bytes after the response, which nothing asked for".into(),
                    ));
                }
                State::Head => {
                    let Some(end) = self.line_block(&mut data, MAX_HEAD, b"\r\n\r\n")? else {
                        return Ok(None);
                    };
                    let head = std::mem::take(&mut self.buf);
                    self.head(&head[..end])?;
                }
                State::Body(Framing::Length(left)) => {
                    let n = left.min(data.len());
                    self.body.extend_from_slice(&data[..n]);
                    data = &data[n..];
                    self.state = if n == left {
                        State::Done
                    } else {
                        State::Body(Framing::Length(left - n))
                    };
                    if self.state != State::Done {
                        return Ok(None);
                    }
                }
                State::Body(Framing::UntilClose) => {
                    self.grow(data.len())?;
                    self.body.extend_from_slice(data);
                    return Ok(None);
                }
                State::Body(Framing::Chunked) => self.state = State::Chunked(Chunk::Size),
                State::Chunked(chunk) => {
                    if !self.chunked(chunk, &mut data)? {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// The connection closed: the response, if closing is how its body ends.
    pub(crate) fn closed(&mut self) -> Option<Response> {
        match self.state {
            State::Body(Framing::UntilClose) => {
                self.keep_alive = false;
                Some(self.take())
            }
            State::Done => Some(self.take()),
            _ => None,
        }
    }

    fn take(&mut self) -> Response {
        Response {
            status: self.status,
            body: std::mem::take(&mut self.body),
            keep_alive: self.keep_alive,
        }
    }

    fn grow(&self, more: usize) -> Result<(), HttpError> {
        if self.body.len().saturating_add(more) > self.max_body {
            return Err(HttpError::TooLarge(self.max_body));
        }
        Ok(())
    }

    /// Moves bytes from `data` into the buffer up to and including `end`; the length of
    /// what precedes `end` once it is there. More than `cap` bytes before it is an error.
    fn line_block(
        &mut self,
        data: &mut &[u8],
        cap: usize,
        end: &[u8],
    ) -> Result<Option<usize>, HttpError> {
        // Search from where the terminator could start given what was buffered before.
        let from = self.buf.len().saturating_sub(end.len() - 1);
        let room = (cap + end.len()).saturating_sub(self.buf.len());
        let take = data.len().min(room);
        self.buf.extend_from_slice(&data[..take]);
        match self.buf[from..].windows(end.len()).position(|w| w == end) {
            Some(at) => {
                let at = from + at;
                // Give back what followed the terminator.
                let extra = self.buf.len() - (at + end.len());
                *data = &data[take - extra..];
                self.buf.truncate(at + end.len());
                Ok(Some(at))
            }
            None if self.buf.len() >= cap + end.len() => Err(HttpError::TooLarge(cap)),
            None => {
                *data = &data[take..];
                Ok(None)
            }
        }
    }

    fn head(&mut self, head: &[u8]) -> Result<(), HttpError> {
        let bad = |what: &str| HttpError::Malformed(what.to_string());
        let text = std::str::from_utf8(head).map_err(|_| bad("the response head is not text"))?;
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        let http10 = match version {
            "HTTP/1.1" => false,
            "HTTP/1.0" => true,
            _ => {
                return Err(bad(&format!(
                    "not an HTTP/1.x status line: {status_line:.80}"
                )));
            }
        };
        self.status = parts
            .next()
            .and_then(|s| s.parse().ok())
            .filter(|s| (100..600).contains(s))
            .ok_or_else(|| bad(&format!("no status code in {status_line:.80}")))?;
        let mut length = None;
        let mut chunked = false;
        self.keep_alive = !http10;
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| bad(&format!("header line without a colon: {line:.80}")))?;
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                let n: usize = value
                    .parse()
                    .map_err(|_| bad(&format!("Content-Length {value:.40}")))?;
                if length.is_some_and(|l| l != n) {
                    return Err(bad("two different Content-Length headers"));
                }
                length = Some(n);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value
                    .rsplit(',')
                    .next()
                    .is_some_and(|v| v.trim().eq_ignore_ascii_case("chunked"));
            } else if name.eq_ignore_ascii_case("connection") {
                for token in value.split(',').map(str::trim) {
                    if token.eq_ignore_ascii_case("close") {
                        self.keep_alive = false;
                    } else if token.eq_ignore_ascii_case("keep-alive") {
                        self.keep_alive = true;
                    }
                }
            }
        }
        if (100..200).contains(&self.status) {
            // An interim answer (we send no Expect, but a server may): the real one follows.
            self.state = State::Head;
            return Ok(());
        }
        self.state = if self.status == 204 || self.status == 304 {
            State::Done
        } else if chunked {
            State::Body(Framing::Chunked)
        } else if let Some(n) = length {
            if n > self.max_body {
                return Err(HttpError::TooLarge(self.max_body));
            }
            self.body.reserve(n);
            if n == 0 {
                State::Done
            } else {
                State::Body(Framing::Length(n))
            }
        } else {
            self.keep_alive = false;
            State::Body(Framing::UntilClose)
        };
        Ok(())
    }

    /// Steps the chunked body; whether it can go on with what is left of `data`.
    fn chunked(&mut self, chunk: Chunk, data: &mut &[u8]) -> Result<bool, HttpError> {
        let bad = |what: &str| HttpError::Malformed(what.to_string());
        match chunk {
            Chunk::Size => {
                let Some(end) = self.line_block(data, 1024, b"\r\n")? else {
                    return Ok(false);
                };
                let line = std::mem::take(&mut self.buf);
                let line = std::str::from_utf8(&line[..end]).map_err(|_| bad("chunk size"))?;
                let hex = line.split(';').next().unwrap_or_default().trim();
                let size = usize::from_str_radix(hex, 16)
                    .ok()
                    .filter(|_| !hex.is_empty() && hex.len() <= 16)
                    .ok_or_else(|| bad(&format!("chunk size {hex:.40}")))?;
                self.grow(size)?;
                self.state = State::Chunked(if size == 0 {
                    Chunk::Trailer
                } else {
                    Chunk::Data { left: size }
                });
            }
            Chunk::Data { left } => {
                let n = left.min(data.len());
                self.body.extend_from_slice(&data[..n]);
                *data = &data[n..];
                if n < left {
                    self.state = State::Chunked(Chunk::Data { left: left - n });
                    return Ok(false);
                }
                self.state = State::Chunked(Chunk::DataEnd);
            }
            Chunk::DataEnd => {
                let end = match self.line_block(data, 0, b"\r\n") {
                    Ok(Some(end)) => end,
                    Ok(None) => return Ok(false),
                    Err(_) => return Err(bad("a chunk's data is not followed by CRLF")),
                };
                debug_assert_eq!(end, 0);
                self.buf.clear();
                self.state = State::Chunked(Chunk::Size);
            }
            Chunk::Trailer => {
                let Some(end) = self.line_block(data, MAX_HEAD, b"\r\n")? else {
                    return Ok(false);
                };
                self.buf.clear();
                if end == 0 {
                    self.state = State::Done;
                }
            }
        }
        Ok(true)
    }
}

/// Appends a request.
pub(crate) fn write_request(
    out: &mut Vec<u8>,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) {
    out.extend_from_slice(format!("{method} {target} HTTP/1.1\r\n").as_bytes());
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    if let Some(body) = body {
        out.extend_from_slice(b"Content-Type: application/vnd.schemaregistry.v1+json\r\n");
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    if let Some(body) = body {
        out.extend_from_slice(body);
    }
}

/// `segment` percent-encoded for a URL path (everything but RFC 3986's unreserved
/// characters).
pub(crate) fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Standard base64 with padding, for basic auth.
pub(crate) fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn read_all(data: &[u8], max: usize) -> Result<Option<Response>, HttpError> {
        ResponseReader::new(max).feed(data)
    }

    #[test]
    fn a_sized_body_arrives_in_any_cuts() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{\"id\":1}";
        for cut in 0..raw.len() {
            let mut r = ResponseReader::new(100);
            assert_eq!(r.feed(&raw[..cut]).unwrap(), None, "cut {cut}");
            let resp = r.feed(&raw[cut..]).unwrap().unwrap();
            assert_eq!(
                (resp.status, &resp.body[..], resp.keep_alive),
                (200, &b"{\"id\":1}"[..], true)
            );
        }
    }

    #[test]
    fn a_chunked_body_arrives_byte_by_byte() {
        let raw = b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\nConnection: close\r\n\r\n4;x=y\r\n{\"a\"\r\nA\r\n:12345678}\r\n0\r\nX-Trailer: 1\r\n\r\n";
        let mut r = ResponseReader::new(100);
        let mut got = None;
        for b in raw {
            if let Some(resp) = r.feed(std::slice::from_ref(b)).unwrap() {
                got = Some(resp);
            }
        }
        let resp = got.unwrap();
        assert_eq!(resp.status, 404);
        assert_eq!(resp.body, b"{\"a\":12345678}");
        assert!(!resp.keep_alive);
    }

    #[test]
    fn a_body_until_close_ends_with_the_connection() {
        let mut r = ResponseReader::new(100);
        assert_eq!(r.feed(b"HTTP/1.0 200 OK\r\n\r\n[1,2]").unwrap(), None);
        let resp = r.closed().unwrap();
        assert_eq!(
            (resp.body.as_slice(), resp.keep_alive),
            (&b"[1,2]"[..], false)
        );
    }

    #[test]
    fn interim_answers_are_skipped() {
        let resp = read_all(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            10,
        )
        .unwrap()
        .unwrap();
        assert_eq!(resp.status, 204);
    }

    #[test]
    fn caps_hold() {
        assert_eq!(
            read_all(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", 10),
            Err(HttpError::TooLarge(10))
        );
        assert_eq!(
            read_all(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n",
                10
            ),
            Err(HttpError::TooLarge(10))
        );
        assert_eq!(
            read_all(b"HTTP/1.0 200 OK\r\n\r\n01234567890", 10),
            Err(HttpError::TooLarge(10))
        );
        let mut r = ResponseReader::new(10);
        let endless = vec![b'a'; 4096];
        let mut result = Ok(None);
        for _ in 0..100 {
            result = r.feed(&endless);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(HttpError::TooLarge(MAX_HEAD)));
        assert!(r.buf.len() <= MAX_HEAD + 4);
    }

    #[test]
    fn bad_heads_are_errors() {
        for raw in [
            &b"SMTP ready\r\n\r\n"[..],
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab",
        ] {
            assert!(
                matches!(read_all(raw, 100), Err(HttpError::Malformed(_))),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn requests_and_helpers() {
        let mut out = Vec::new();
        write_request(
            &mut out,
            "POST",
            "/subjects/a/versions",
            &[("Host", "h:1")],
            Some(b"{}"),
        );
        assert_eq!(
            out,
            b"POST /subjects/a/versions HTTP/1.1\r\nHost: h:1\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: 2\r\n\r\n{}"
        );
        assert_eq!(encode_segment("a b/c.d-é"), "a%20b%2Fc.d-%C3%A9");
        assert_eq!(
            base64(b"Aladdin:open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b""), "");
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_in_any_cuts_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600), cut in 0usize..600) {
            let mut prefixed = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            prefixed.extend_from_slice(&data);
            for raw in [&data[..], &prefixed[..]] {
                let mut r = ResponseReader::new(256);
                let cut = cut.min(raw.len());
                if r.feed(&raw[..cut]).is_ok() {
                    let _ = r.feed(&raw[cut..]);
                }
                let _ = r.closed();
            }
        }
    }
}
