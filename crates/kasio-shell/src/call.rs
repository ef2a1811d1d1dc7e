//! A request-and-answer operation under way in a core (an admin operation, a Schema
//! Registry call), and the typed result it settles to.

use crate::{
    driver::{AsyncRuntime, BlockingRuntime},
    pending::{Pending, block_on},
};
use kasio_core::{AdminError, AdminOutput};
use std::{
    future::Future,
    marker::PhantomData,
    pin::Pin,
    task::{Context, Poll},
};

/// An operation under way: `.await` it on an async runtime, or [`wait`](Self::wait) for
/// it on threads. The core answers with an `O` or fails with an `E`; the call picks the
/// `T` its method promised out of the `O` (admin calls by default; Schema Registry calls
/// are [`RegistryCall`](crate::RegistryCall)s).
#[must_use = "a call reports how the operation ended"]
pub struct Call<T, R, O = AdminOutput, E = AdminError> {
    pending: Pending<Result<O, E>, ()>,
    unwrap: fn(O) -> Result<T, E>,
    runtime: PhantomData<fn() -> R>,
}

impl<T, R, O, E> Call<T, R, O, E> {
    /// The call that settles when `pending` does, keeping what `unwrap` picks out.
    pub(crate) fn new(pending: Pending<Result<O, E>, ()>, unwrap: fn(O) -> Result<T, E>) -> Self {
        Self {
            pending,
            unwrap,
            runtime: PhantomData,
        }
    }
}

impl<T, R, O, E> std::fmt::Debug for Call<T, R, O, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

impl<T, R: BlockingRuntime, O, E> Call<T, R, O, E> {
    /// Blocks the thread until the operation ends.
    ///
    /// # Errors
    /// The operation's error: an [`AdminError`] if an admin operation failed as a whole,
    /// a `RegistryError` for a registry call.
    pub fn wait(self) -> Result<T, E> {
        block_on(self.pending.settled()).and_then(self.unwrap)
    }
}

impl<T, R: AsyncRuntime, O, E> Future for Call<T, R, O, E> {
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.pending
            .poll_settled(cx)
            .map(|r| r.and_then(this.unwrap))
    }
}

impl<T, R, O, E> Unpin for Call<T, R, O, E> {}
