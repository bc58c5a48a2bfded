//! [`Pending`]: the result of a backend call that may or may not need to wait.
//!
//! A software backend answers at once; a KMS or HSM backend does network I/O.
//! `Pending` serves both with one signature: it is a [`Future`] (so async
//! services `.await` it and a KMS call never blocks an executor thread), but a
//! ready answer is stored inline, with no allocation and no executor, and sync
//! callers take it with [`Pending::wait`] at the cost of a `match`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// A boxed future as returned by backends that do I/O.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The answer of a backend call: ready now, or a future to await.
#[must_use = "a Pending does nothing until it is awaited or waited on"]
pub enum Pending<'a, T> {
    /// The answer is here (the software path: no allocation, no executor).
    Ready(Option<T>),
    /// The answer needs I/O.
    Later(BoxFuture<'a, T>),
}

impl<T> std::fmt::Debug for Pending<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ready(_) => f.write_str("Pending::Ready"),
            Self::Later(_) => f.write_str("Pending::Later"),
        }
    }
}

impl<'a, T: Send + 'a> Pending<'a, T> {
    /// A ready answer.
    pub fn ready(value: T) -> Self {
        Self::Ready(Some(value))
    }

    /// An answer that needs to wait on `fut`.
    pub fn later(fut: impl Future<Output = T> + Send + 'a) -> Self {
        Self::Later(Box::pin(fut))
    }

    /// Runs `fut` as far as it goes without waiting: boxed, then polled
    /// once with a waker that does nothing. If it finished, the answer comes
    /// back ready; if not, the boxed future does, to be awaited or waited
    /// on (whoever polls it next registers their own waker). For logic
    /// written once as `async` code over [`Pending`] answers (the TOTP
    /// registry over a [`crate::StateStore`]): over stores and backends that
    /// answer at once, the caller gets a ready answer for one allocation.
    pub fn drive(fut: impl Future<Output = T> + Send + 'a) -> Self {
        let mut fut: BoxFuture<'a, T> = Box::pin(fut);
        let mut cx = Context::from_waker(Waker::noop());
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(v) => Self::Ready(Some(v)),
            Poll::Pending => Self::Later(fut),
        }
    }

    /// Whether the answer is available without waiting.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        matches!(self, Self::Ready(Some(_)))
    }

    /// Applies `f` to the answer; stays ready (and allocation-free) when the
    /// answer is ready.
    pub fn map<U: Send + 'a>(self, f: impl FnOnce(T) -> U + Send + 'a) -> Pending<'a, U> {
        match self {
            Self::Ready(Some(v)) => Pending::Ready(Some(f(v))),
            Self::Ready(None) => Pending::Ready(None),
            Self::Later(fut) => Pending::later(async move { f(fut.await) }),
        }
    }

    /// Continues with `f`, which makes another `Pending` from the answer;
    /// stays ready (and allocation-free) when both answers are ready. For
    /// a step that may itself do I/O after this one, such as the audit
    /// layer appending the record of a signature.
    pub fn then<U: Send + 'a>(
        self,
        f: impl FnOnce(T) -> Pending<'a, U> + Send + 'a,
    ) -> Pending<'a, U> {
        match self {
            Self::Ready(Some(v)) => f(v),
            Self::Ready(None) => Pending::Ready(None),
            Self::Later(fut) => Pending::later(async move { f(fut.await).await }),
        }
    }

    /// Blocks the current thread until the answer is available.
    ///
    /// A ready answer is returned at once. A future is polled on this thread,
    /// parked between wake-ups; a backend that does I/O must therefore drive
    /// its I/O on its own runtime (as the KMS adapter does), never on the
    /// caller's. Do not call this from inside an async task: `.await` instead.
    ///
    /// # Panics
    /// If the `Pending` was already consumed by polling it to completion.
    #[expect(
        clippy::panic,
        reason = "polling a finished future is a caller bug, as with std futures"
    )]
    pub fn wait(self) -> T {
        match self {
            Self::Ready(Some(v)) => v,
            Self::Ready(None) => panic!("Pending polled after completion"),
            Self::Later(mut fut) => {
                let thread = Arc::new(ThreadWaker(std::thread::current()));
                let waker = Waker::from(thread);
                let mut cx = Context::from_waker(&waker);
                loop {
                    if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                        return v;
                    }
                    std::thread::park();
                }
            }
        }
    }
}

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

impl<T> Future for Pending<'_, T> {
    type Output = T;

    #[expect(
        clippy::panic,
        reason = "polling a finished future is a caller bug, as with std futures"
    )]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        // `Pending` is `Unpin`: both variants are (`Option<T>` is only moved
        // out of, never pinned; the boxed future is pinned on the heap).
        let this = self.get_mut();
        match this {
            Self::Ready(v) => match v.take() {
                Some(v) => Poll::Ready(v),
                None => panic!("Pending polled after completion"),
            },
            Self::Later(fut) => fut.as_mut().poll(cx),
        }
    }
}

impl<T> Unpin for Pending<'_, T> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_is_returned_without_an_executor() {
        let p: Pending<'_, u32> = Pending::ready(7);
        assert!(p.is_ready());
        assert_eq!(p.map(|v| v * 2).wait(), 14);
    }

    #[test]
    fn then_stays_ready_when_both_steps_are_ready() {
        let p: Pending<'_, u32> = Pending::ready(20).then(|v| Pending::ready(v + 1));
        assert!(p.is_ready());
        assert_eq!(p.wait(), 21);
        let later: Pending<'_, u32> = Pending::later(async { 5 }).then(|v| Pending::ready(v * 3));
        assert!(!later.is_ready());
        assert_eq!(later.wait(), 15);
        let second_later: Pending<'_, u32> =
            Pending::ready(2).then(|v| Pending::later(async move { v + 40 }));
        assert!(!second_later.is_ready());
        assert_eq!(second_later.wait(), 42);
    }

    #[test]
    fn drive_answers_ready_when_every_await_is_ready() {
        let inner = || Pending::ready(20u32);
        let p = Pending::drive(async move { inner().await + inner().await + 2 });
        assert!(p.is_ready(), "no await had to wait");
        assert_eq!(p.wait(), 42);
    }

    #[test]
    fn drive_hands_back_a_future_that_still_completes() {
        // Pending once (waking its waker at once), then ready: the first
        // poll, with drive's no-op waker, cannot finish it.
        struct Once(bool);
        impl Future for Once {
            type Output = u32;
            fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
                if self.0 {
                    Poll::Ready(5)
                } else {
                    self.0 = true;
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            }
        }
        let p = Pending::drive(async { Once(false).await * 2 });
        assert!(!p.is_ready());
        assert_eq!(p.wait(), 10);
    }

    #[test]
    fn later_is_driven_to_completion_across_threads() {
        // A future completed by another thread, which wakes us through the
        // waker: proves `wait` parks and is unparked rather than spinning on
        // a ready flag it cannot see.
        let (tx, rx) = std::sync::mpsc::channel::<u32>();
        struct FromThread {
            rx: std::sync::mpsc::Receiver<u32>,
            started: bool,
            tx: Option<std::sync::mpsc::Sender<u32>>,
        }
        impl Future for FromThread {
            type Output = u32;
            fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
                if let Ok(v) = self.rx.try_recv() {
                    return Poll::Ready(v);
                }
                if !self.started {
                    self.started = true;
                    let waker = cx.waker().clone();
                    let tx = self.tx.take().unwrap();
                    std::thread::spawn(move || {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        tx.send(41).unwrap();
                        waker.wake();
                    });
                }
                Poll::Pending
            }
        }
        let fut = FromThread {
            rx,
            started: false,
            tx: Some(tx),
        };
        let p = Pending::later(fut).map(|v| v + 1);
        assert!(!p.is_ready());
        assert_eq!(p.wait(), 42);
    }
}
