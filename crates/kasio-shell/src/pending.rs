//! A result on its way from the driver: awaited by async callers, waited for by threads.

use crate::driver::{AsyncRuntime, BlockingRuntime};
use std::{
    future::Future,
    marker::PhantomData,
    pin::Pin,
    task::{Context, Poll},
    time::{Duration, Instant},
};

/// A result the driver completes later. On an async runtime `R` it is a future to
/// `.await`; on a blocking one ([`BlockingRuntime`]) it is waited for with
/// [`wait`](Self::wait). Neither can be done on the other kind, so no async handle can
/// block its executor's thread.
///
/// ```no_run
/// # fn demo<R: kasio_shell::BlockingRuntime>(delivery: kasio_shell::Delivery<R>) {
/// match delivery.wait() {
///     Ok(meta) => println!("written at {}:{}", meta.partition, meta.offset),
///     Err(e) => eprintln!("not written: {e}"),
/// }
/// # }
/// ```
#[must_use = "a pending result reports how the operation ended"]
pub struct Pending<T, R> {
    state: State<T>,
    runtime: PhantomData<fn() -> R>,
}

enum State<T> {
    Waiting {
        rx: oneshot::Receiver<T>,
        /// What the result is when the driver went away without sending one.
        gone: fn() -> T,
    },
    Ready(Option<T>),
}

impl<T, R> std::fmt::Debug for Pending<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            State::Waiting { .. } => "waiting",
            State::Ready(Some(_)) => "ready",
            State::Ready(None) => "taken",
        };
        f.debug_struct("Pending").field("state", &state).finish()
    }
}

/// The sending half, held by the core's wrapper until the result is known.
pub(crate) type Complete<T> = oneshot::Sender<T>;

impl<T, R> Pending<T, R> {
    /// A result still to come, and its sender; `gone` stands in if the sender is dropped.
    pub(crate) fn channel(gone: fn() -> T) -> (Complete<T>, Self) {
        let (tx, rx) = oneshot::channel();
        (
            tx,
            Self {
                state: State::Waiting { rx, gone },
                runtime: PhantomData,
            },
        )
    }

    /// A result known at once.
    pub(crate) fn ready(value: T) -> Self {
        Self {
            state: State::Ready(Some(value)),
            runtime: PhantomData,
        }
    }

    /// The result if it is known, without waiting.
    pub fn try_take(&mut self) -> Option<T> {
        match &mut self.state {
            State::Waiting { rx, gone } => match rx.try_recv() {
                Ok(v) => Some(v),
                Err(oneshot::TryRecvError::Empty) => None,
                Err(oneshot::TryRecvError::Disconnected) => Some(gone()),
            },
            State::Ready(v) => v.take(),
        }
    }

    /// The result as a future on any runtime, for the shell's own compound operations
    /// (which the blocking handles run with [`block_on`]).
    pub(crate) fn settled(mut self) -> impl Future<Output = T> {
        std::future::poll_fn(move |cx| self.poll_settled(cx))
    }

    pub(crate) fn poll_settled(&mut self, cx: &mut Context<'_>) -> Poll<T> {
        match &mut self.state {
            State::Waiting { rx, gone } => match Pin::new(rx).poll(cx) {
                Poll::Ready(r) => Poll::Ready(r.unwrap_or_else(|_| gone())),
                Poll::Pending => Poll::Pending,
            },
            State::Ready(v) => Poll::Ready(v.take().expect("Pending polled after it completed")),
        }
    }
}

impl<T, R: BlockingRuntime> Pending<T, R> {
    /// Blocks the thread until the result is known.
    ///
    /// # Panics
    /// If the result was already taken by polling.
    pub fn wait(self) -> T {
        match self.state {
            State::Waiting { rx, gone } => rx.recv().unwrap_or_else(|_| gone()),
            State::Ready(v) => v.expect("Pending waited for after it completed"),
        }
    }

    /// Blocks until the result is known or `timeout` passes; `None` on timeout, and the
    /// result can still be waited for.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<T> {
        self.wait_deadline(R::now() + timeout)
    }

    /// Blocks until the result is known or `deadline`; `None` at the deadline.
    pub fn wait_deadline(&mut self, deadline: Instant) -> Option<T> {
        match &mut self.state {
            State::Waiting { rx, gone } => match rx.recv_deadline(deadline) {
                Ok(v) => Some(v),
                Err(oneshot::RecvTimeoutError::Timeout) => None,
                Err(oneshot::RecvTimeoutError::Disconnected) => Some(gone()),
            },
            State::Ready(v) => v.take(),
        }
    }
}

impl<T, R: AsyncRuntime> Future for Pending<T, R> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        // Neither state is structurally pinned: the receiver is `Unpin` and the value moves out.
        self.get_mut().poll_settled(cx)
    }
}

impl<T, R> Unpin for Pending<T, R> {}

/// Runs a future to its end on this thread, parking it between wake-ups: the blocking
/// form of an async operation built from [`Pending`]s, with no executor.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::sync::Arc::new(Unpark(std::thread::current())).into();
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}
