//! Database calls run as tasks on the store's runtime; the caller awaits
//! (or waits on) the task's join handle.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::error::PgError;

/// Spawns `call` onto `handle` and returns a future of its answer that any
/// executor, or [`custody_core::Pending::wait`] on a plain thread, can
/// poll: a join handle wakes whatever waker polled it.
pub(crate) fn spawn<T: Send + 'static>(
    handle: &Handle,
    operation: &'static str,
    call: impl Future<Output = Result<T, custody_core::Error>> + Send + 'static,
) -> impl Future<Output = Result<T, custody_core::Error>> + Send + 'static {
    let joined = Joined(handle.spawn(call));
    async move {
        match joined.await {
            Ok(answer) => answer,
            Err(e) => Err(custody_core::Error::backend(PgError::unavailable(
                operation,
                if e.is_cancelled() {
                    "the tokio runtime running the store's calls shut down"
                } else {
                    "the call panicked"
                },
            ))),
        }
    }
}

/// A spawned call; aborts the task if dropped before it finishes (a caller
/// that gave up ends the call, and its connection is closed, not reused).
struct Joined<T>(JoinHandle<T>);

impl<T> Future for Joined<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for Joined<T> {
    fn drop(&mut self) {
        // No effect on a finished task.
        self.0.abort();
    }
}
