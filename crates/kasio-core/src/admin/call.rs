//! The requests an operation asks for, and the context it answers them in.

use super::{AdminError, AdminOutput};
use kasio_proto::{AnyRequest, AnyResponse, ApiKey};
use std::{fmt, sync::Arc, time::Instant};

/// Where a call must go.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Target {
    /// Any broker (KRaft brokers forward controller requests themselves).
    Any,
    /// One broker.
    Broker(i32),
    /// The coordinator of a group (`key_type` 0) or transactional id (1).
    Coordinator(String, i8),
}

/// Builds the request at the version the connection negotiated.
pub(crate) type Build = Box<dyn Fn(i16) -> AnyRequest + Send>;

/// One request an operation wants sent.
pub(crate) struct Call {
    /// The operation's own name for the call, handed back with the response.
    pub(crate) key: u32,
    pub(crate) target: Target,
    pub(crate) api: ApiKey,
    /// The lowest version that can carry the call.
    pub(crate) min_version: i16,
    pub(crate) build: Build,
    pub(crate) not_before: Option<Instant>,
}

impl fmt::Debug for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("key", &self.key)
            .field("target", &self.target)
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

/// What an operation may do while it handles a response.
#[derive(Debug)]
pub(crate) struct Cx {
    pub(crate) now: Instant,
    pub(crate) retry_backoff: std::time::Duration,
    pub(crate) calls: Vec<Call>,
    pub(crate) done: Option<Result<AdminOutput, AdminError>>,
    /// Coordinators found stale, to look up again.
    pub(crate) stale: Vec<(String, i8)>,
    /// Broker ids of the cluster, as last known.
    pub(crate) brokers: Vec<i32>,
}

impl Cx {
    /// Sends a request now.
    pub(crate) fn call<R>(&mut self, key: u32, target: Target, build: R)
    where
        R: Fn(i16) -> AnyRequest + Send + 'static,
    {
        self.push(key, target, 0, build, None);
    }

    /// Sends a request that needs at least `min_version`.
    pub(crate) fn call_from<R>(&mut self, key: u32, target: Target, min_version: i16, build: R)
    where
        R: Fn(i16) -> AnyRequest + Send + 'static,
    {
        self.push(key, target, min_version, build, None);
    }

    /// Sends a request again after the retry backoff.
    pub(crate) fn retry<R>(&mut self, key: u32, target: Target, build: R)
    where
        R: Fn(i16) -> AnyRequest + Send + 'static,
    {
        let at = self.now + self.retry_backoff;
        self.push(key, target, 0, build, Some(at));
    }

    fn push<R>(
        &mut self,
        key: u32,
        target: Target,
        min_version: i16,
        build: R,
        not_before: Option<Instant>,
    ) where
        R: Fn(i16) -> AnyRequest + Send + 'static,
    {
        let api = build(i16::MAX).api_key();
        self.calls.push(Call {
            key,
            target,
            api,
            min_version,
            build: Box::new(build),
            not_before,
        });
    }

    /// The operation finished.
    pub(crate) fn finish(&mut self, out: AdminOutput) {
        self.done = Some(Ok(out));
    }

    /// The operation failed as a whole.
    pub(crate) fn fail(&mut self, e: AdminError) {
        self.done = Some(Err(e));
    }

    /// The coordinator of `key` moved: find it again before the next call to it.
    pub(crate) fn coordinator_moved(&mut self, key: &str, key_type: i8) {
        self.stale.push((key.to_string(), key_type));
    }
}

/// An admin operation: a small state machine that asks for calls and reads their answers.
pub(crate) trait Operation: fmt::Debug + Send {
    /// Asks for the first calls.
    fn start(&mut self, cx: &mut Cx);
    /// Reads the answer to call `key` (or why it could not be made) and asks for more
    /// calls or finishes.
    fn on_response(&mut self, key: u32, resp: Result<AnyResponse, AdminError>, cx: &mut Cx);
}

/// A request builder that can be sent again.
pub(crate) type SharedBuild = Arc<dyn Fn(i16) -> AnyRequest + Send + Sync>;

/// What [`Single`] makes of an answer.
pub(crate) enum Read {
    Done(AdminOutput),
    Fail(AdminError),
    /// A retriable error: send the same request again after the backoff.
    Retry,
}

type Reader = Box<dyn FnMut(AnyResponse) -> Read + Send>;

/// An operation of one request, sent again while the answer says to retry.
pub(crate) struct Single {
    target: Target,
    build: SharedBuild,
    read: Reader,
}

impl fmt::Debug for Single {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Single")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Single {
    pub(crate) fn new<B, R>(target: Target, build: B, read: R) -> Box<Self>
    where
        B: Fn(i16) -> AnyRequest + Send + Sync + 'static,
        R: FnMut(AnyResponse) -> Read + Send + 'static,
    {
        Box::new(Self {
            target,
            build: Arc::new(build),
            read: Box::new(read),
        })
    }

    fn send(&self, cx: &mut Cx, later: bool) {
        let b = self.build.clone();
        let build = move |v| b(v);
        if later {
            cx.retry(0, self.target.clone(), build);
        } else {
            cx.call(0, self.target.clone(), build);
        }
    }
}

impl Operation for Single {
    fn start(&mut self, cx: &mut Cx) {
        self.send(cx, false);
    }

    fn on_response(&mut self, _key: u32, resp: Result<AnyResponse, AdminError>, cx: &mut Cx) {
        let resp = match resp {
            Ok(r) => r,
            Err(e) => return cx.fail(e),
        };
        match (self.read)(resp) {
            Read::Done(out) => cx.finish(out),
            Read::Fail(e) => cx.fail(e),
            Read::Retry => {
                if let Target::Coordinator(k, t) = &self.target {
                    cx.coordinator_moved(k, *t);
                }
                self.send(cx, true);
            }
        }
    }
}

/// Errors after which the same request may succeed: the coordinator or controller moved,
/// or is still loading. Other errors, even those Kafka calls retriable (an unknown topic),
/// are the answer, as in the Java admin client.
pub(crate) fn retriable(code: kasio_proto::ErrorCode) -> bool {
    use kasio_proto::ErrorCode as E;
    matches!(
        code,
        E::NotCoordinator
            | E::CoordinatorNotAvailable
            | E::CoordinatorLoadInProgress
            | E::NotController
    )
}

/// The answer was not the response the request asked for.
pub(crate) fn unexpected(resp: &AnyResponse) -> Read {
    Read::Fail(AdminError::Malformed(format!(
        "unexpected {} response",
        resp.api_key().name()
    )))
}

/// Runs a step of `sub`, an operation inside another: its calls go out with the outer
/// operation's, and its result comes back here instead of ending the outer one.
pub(crate) fn drive(
    sub: &mut dyn Operation,
    cx: &mut Cx,
    step: impl FnOnce(&mut dyn Operation, &mut Cx),
) -> Option<Result<AdminOutput, AdminError>> {
    let mut inner = Cx {
        now: cx.now,
        retry_backoff: cx.retry_backoff,
        calls: Vec::new(),
        done: None,
        stale: Vec::new(),
        brokers: cx.brokers.clone(),
    };
    step(sub, &mut inner);
    cx.calls.append(&mut inner.calls);
    cx.stale.append(&mut inner.stale);
    inner.done
}

/// Bits of a call key left to a sub-operation of [`Many`].
const SUB_BITS: u32 = 20;

type Combine = Box<dyn Fn(Vec<Result<AdminOutput, AdminError>>) -> AdminOutput + Send>;

/// Independent operations run side by side (say, one per group, each at its own
/// coordinator), their outputs combined into one.
pub(crate) struct Many {
    subs: Vec<Box<dyn Operation>>,
    outs: Vec<Option<Result<AdminOutput, AdminError>>>,
    combine: Combine,
}

impl fmt::Debug for Many {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Many")
            .field("subs", &self.subs)
            .finish_non_exhaustive()
    }
}

impl Many {
    pub(crate) fn new<C>(subs: Vec<Box<dyn Operation>>, combine: C) -> Box<Self>
    where
        C: Fn(Vec<Result<AdminOutput, AdminError>>) -> AdminOutput + Send + 'static,
    {
        let outs = subs.iter().map(|_| None).collect();
        Box::new(Self {
            subs,
            outs,
            combine: Box::new(combine),
        })
    }

    fn step(&mut self, i: usize, cx: &mut Cx, step: impl FnOnce(&mut dyn Operation, &mut Cx)) {
        let Some(sub) = self.subs.get_mut(i) else {
            return;
        };
        let before = cx.calls.len();
        let done = drive(sub.as_mut(), cx, step);
        let prefix = u32::try_from(i).unwrap_or(0) << SUB_BITS;
        for c in &mut cx.calls[before..] {
            c.key = prefix | (c.key & ((1 << SUB_BITS) - 1));
        }
        if let Some(done) = done {
            self.outs[i] = Some(done);
        }
    }

    fn maybe_finish(&mut self, cx: &mut Cx) {
        if self.outs.iter().all(Option::is_some) {
            let outs = self.outs.iter_mut().filter_map(Option::take).collect();
            cx.finish((self.combine)(outs));
        }
    }
}

impl Operation for Many {
    fn start(&mut self, cx: &mut Cx) {
        for i in 0..self.subs.len() {
            self.step(i, cx, |op, cx| op.start(cx));
        }
        self.maybe_finish(cx);
    }

    fn on_response(&mut self, key: u32, resp: Result<AnyResponse, AdminError>, cx: &mut Cx) {
        let i = usize::try_from(key >> SUB_BITS).unwrap_or(usize::MAX);
        let sub_key = key & ((1 << SUB_BITS) - 1);
        if self.outs.get(i).is_some_and(Option::is_some) {
            return;
        }
        self.step(i, cx, |op, cx| op.on_response(sub_key, resp, cx));
        self.maybe_finish(cx);
    }
}

/// An operation's failure as the error of one of its parts.
pub(crate) fn as_api_error(e: AdminError) -> super::ApiError {
    match e {
        AdminError::Api(e) => e,
        other => super::ApiError {
            code: kasio_proto::ErrorCode::UnknownServerError,
            message: Some(other.to_string()),
        },
    }
}
