//! Framing: the size prefix, request and response headers, and splitting a byte stream.
//!
//! Every Kafka frame is a big-endian `i32` size followed by that many bytes: a header, then
//! the body. The header version follows from the API and its version
//! ([`ApiKey::request_header_version`], [`ApiKey::response_header_version`]).

use crate::{
    AnyRequest, AnyResponse, ApiKey, Decode, Encode, Response,
    error::{DecodeError, DecodeErrorKind, EncodeError},
    messages::{RequestHeader, ResponseHeader},
};
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The default largest frame [`FrameDecoder`] accepts: 100 MiB, as the broker's
/// `socket.request.max.bytes` defaults to.
pub const DEFAULT_MAX_FRAME: usize = 100 * 1024 * 1024;

/// Appends a request frame: size, header, body. The header's API key and version say how
/// both are encoded.
///
/// ```
/// use bytes::BytesMut;
/// use kasio_proto::{ApiKey, frame, messages::{MetadataRequest, RequestHeader}};
/// let header = RequestHeader {
///     request_api_key: ApiKey::Metadata.as_i16(),
///     request_api_version: 12,
///     correlation_id: 7,
///     client_id: Some("kasio".into()),
///     ..Default::default()
/// };
/// let mut buf = BytesMut::new();
/// frame::encode_request(&header, &MetadataRequest::default(), &mut buf)?;
/// let (h, body) = frame::decode_request(buf.split_off(4).freeze())?;
/// assert_eq!(h.correlation_id, 7);
/// assert_eq!(body.api_key(), ApiKey::Metadata);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`EncodeError`] for an unknown API key, or if the body cannot be encoded at that version.
pub fn encode_request(
    header: &RequestHeader,
    body: &impl Encode,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    let key = ApiKey::from_i16(header.request_api_key)
        .ok_or(EncodeError::InvalidValue("unknown API key"))?;
    let version = header.request_api_version;
    framed(buf, |buf| {
        header.encode(key.request_header_version(version), buf)?;
        body.encode(version, buf)
    })
}

/// Appends a response frame: size, header, body.
///
/// # Errors
/// [`EncodeError`] if the body cannot be encoded at that version.
pub fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &impl Encode,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    framed(buf, |buf| {
        let header = ResponseHeader {
            correlation_id,
            ..Default::default()
        };
        header.encode(api_key.response_header_version(version), buf)?;
        body.encode(version, buf)
    })
}

fn framed(
    buf: &mut BytesMut,
    f: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let start = buf.len();
    buf.put_i32(0);
    if let Err(e) = f(buf) {
        buf.truncate(start);
        return Err(e);
    }
    let size = buf.len() - start - 4;
    let Ok(size) = i32::try_from(size) else {
        buf.truncate(start);
        return Err(EncodeError::TooLong {
            length: size,
            max: i32::MAX as usize,
        });
    };
    buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

/// Decodes a request frame (without its size prefix): the header, then the body it names.
///
/// Bytes after the body are ignored, as Kafka brokers ignore them: some clients send them
/// (librdkafka 2.16 sends three after some Metadata v13 requests).
///
/// # Errors
/// [`DecodeError`] for an unknown API key or version, or malformed bytes.
pub fn decode_request(mut frame: Bytes) -> Result<(RequestHeader, AnyRequest), DecodeError> {
    if frame.len() < 4 {
        return Err(DecodeError::truncated(4, frame.len()).at("RequestHeader"));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let key = ApiKey::from_i16(raw_key)
        .ok_or_else(|| DecodeError::new(DecodeErrorKind::UnknownApiKey(raw_key)))?;
    if !key.versions().contains(version) {
        return Err(DecodeErrorKind::UnsupportedVersion { version }.into());
    }
    let header = RequestHeader::decode(key.request_header_version(version), &mut frame)
        .map_err(|e| e.at("RequestHeader"))?;
    let body = AnyRequest::decode(key, version, &mut frame).map_err(|e| e.at(key.name()))?;
    Ok((header, body))
}

/// The correlation id at the front of a response frame, to match it to its request.
///
/// # Errors
/// [`DecodeErrorKind::Truncated`] for a frame shorter than four bytes.
pub fn response_correlation_id(frame: &[u8]) -> Result<i32, DecodeError> {
    match frame.first_chunk::<4>() {
        Some(b) => Ok(i32::from_be_bytes(*b)),
        None => Err(DecodeError::truncated(4, frame.len())),
    }
}

/// Decodes a response frame (without its size prefix) for the request it answers.
///
/// # Errors
/// [`DecodeError`] for malformed bytes or trailing bytes.
pub fn decode_response(
    api_key: ApiKey,
    version: i16,
    mut frame: Bytes,
) -> Result<(ResponseHeader, AnyResponse), DecodeError> {
    let header = ResponseHeader::decode(api_key.response_header_version(version), &mut frame)
        .map_err(|e| e.at("ResponseHeader"))?;
    let body =
        AnyResponse::decode(api_key, version, &mut frame).map_err(|e| e.at(api_key.name()))?;
    finish(frame)?;
    Ok((header, body))
}

/// Decodes a response frame whose type is known at compile time.
///
/// # Errors
/// As [`decode_response`].
pub fn decode_response_as<R: Response>(
    version: i16,
    mut frame: Bytes,
) -> Result<(ResponseHeader, R), DecodeError> {
    let header = ResponseHeader::decode(R::API_KEY.response_header_version(version), &mut frame)
        .map_err(|e| e.at("ResponseHeader"))?;
    let body = R::decode(version, &mut frame).map_err(|e| e.at(R::NAME))?;
    finish(frame)?;
    Ok((header, body))
}

fn finish(frame: Bytes) -> Result<(), DecodeError> {
    if frame.is_empty() {
        Ok(())
    } else {
        Err(DecodeErrorKind::TrailingBytes(frame.len()).into())
    }
}

/// Splits a byte stream into frames, refusing any larger than a set maximum.
///
/// ```
/// use bytes::{BufMut, BytesMut};
/// use kasio_proto::frame::FrameDecoder;
/// let mut stream = BytesMut::new();
/// stream.put_i32(3);
/// stream.put_slice(b"abcde");
/// let mut d = FrameDecoder::new(1024);
/// assert_eq!(d.decode(&mut stream).unwrap().as_deref(), Some(&b"abc"[..]));
/// assert_eq!(d.decode(&mut stream).unwrap(), None); // "de" waits for more bytes
/// ```
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_frame: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME)
    }
}

impl FrameDecoder {
    /// A decoder refusing frames larger than `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        Self { max_frame }
    }

    /// Takes the next complete frame (without its size) off the front of `stream`, or
    /// `None` if it has not all arrived. Room for the whole frame is reserved only once its
    /// size has passed the check.
    ///
    /// # Errors
    /// [`DecodeErrorKind::InvalidLength`] for a negative size,
    /// [`DecodeErrorKind::LengthExceedsLimit`] for one over the maximum. The stream is then
    /// unusable: its framing is lost.
    pub fn decode(&mut self, stream: &mut BytesMut) -> Result<Option<Bytes>, DecodeError> {
        let Some(size) = stream.first_chunk::<4>().map(|b| i32::from_be_bytes(*b)) else {
            return Ok(None);
        };
        let size = usize::try_from(size)
            .map_err(|_| DecodeError::new(DecodeErrorKind::InvalidLength(size.into())))?;
        if size > self.max_frame {
            return Err(DecodeErrorKind::LengthExceedsLimit {
                length: size,
                limit: self.max_frame,
            }
            .into());
        }
        if stream.len() < 4 + size {
            stream.reserve(4 + size - stream.len());
            return Ok(None);
        }
        stream.advance(4);
        Ok(Some(stream.split_to(size).freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::ControlledShutdownRequest;

    #[test]
    fn request_header_v0_has_no_client_id() {
        // ControlledShutdown v0 is the one request that uses header v0.
        let header = RequestHeader {
            request_api_key: ApiKey::ControlledShutdown.as_i16(),
            request_api_version: 0,
            correlation_id: 9,
            // v0 has no client id: the field stays at its default.
            ..Default::default()
        };
        let body = ControlledShutdownRequest {
            broker_id: 3,
            ..Default::default()
        };
        let mut buf = BytesMut::new();
        encode_request(&header, &body, &mut buf).unwrap();
        // size, key, version, correlation id, broker id: no client id.
        assert_eq!(&buf[..], &[0, 0, 0, 12, 0, 7, 0, 0, 0, 0, 0, 9, 0, 0, 0, 3]);
        let (h, b) = decode_request(buf.freeze().slice(4..)).unwrap();
        assert_eq!(h, header);
        assert_eq!(b, AnyRequest::ControlledShutdown(body));
    }

    #[test]
    fn bytes_after_a_request_body_are_ignored_as_brokers_ignore_them() {
        // Metadata v13 for all topics, then three stray bytes, as librdkafka 2.16 sent it.
        let frame = Bytes::from_static(&[
            0, 3, 0, 13, 0, 0, 0, 4, 0, 7, b'r', b'd', b'k', b'a', b'f', b'k', b'a', 0, 0, 0, 0, 0,
            1, 0, 0,
        ]);
        let (h, body) = decode_request(frame).unwrap();
        assert_eq!(h.correlation_id, 4);
        let AnyRequest::Metadata(m) = body else {
            panic!("not Metadata")
        };
        assert_eq!(m.topics, None);
    }
}
