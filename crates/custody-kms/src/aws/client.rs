//! [`KmsClient`]: one AWS SDK client and the tokio runtime its calls run on,
//! shared by every KMS backend.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use aws_sdk_kms::config::http::HttpResponse;
use aws_sdk_kms::config::retry::RetryConfig;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;

use super::error::{Failure, KmsError, classify};
use super::retry::RetryPolicy;

/// The AWS KMS client every KMS backend calls through, and the tokio runtime
/// the calls run on.
///
/// # One client, built once
///
/// The SDK client is built once, here, and cloned (an `Arc`) into every
/// call: its connection pool, credentials cache and endpoint resolution are
/// reused by every signature (building a client per signature was a peer
/// bug). It is a copy of the caller's client with one change: the SDK's own
/// retries are switched off ([`RetryConfig::disabled`]), so that
/// [`RetryPolicy`] is the only retry loop and its bound is exact.
///
/// # Why calls are spawned onto a runtime handle
///
/// The SDK needs a tokio runtime (its HTTP client, timers and sleeps), but
/// a [`custody_core::Pending`] may be driven two ways: `.await`ed in an
/// async service, or [`custody_core::Pending::wait`]ed by a sync caller (the
/// CLI, FFI bindings) on a plain thread with no reactor. So every KMS call
/// is *spawned* onto the runtime this client holds, and the `Pending` the
/// backends return only awaits the task's [`JoinHandle`]. A join handle is
/// runtime-agnostic: it wakes whatever waker polled it, so the same future
/// works under `.await` in a tokio task (of this runtime or another) and
/// under `Pending::wait` in a plain thread, and the I/O always runs on the
/// runtime's workers. Dropping the `Pending` early aborts the call's task.
///
/// The runtime is either the caller's ([`KmsClient::new`] with a
/// [`Handle`]; it must be a multi-thread runtime with I/O and time enabled,
/// as `#[tokio::main]` builds, or a current-thread runtime that some thread
/// keeps driving) or a small one this client owns
/// ([`KmsClient::with_own_runtime`]: two worker threads, shut down when the
/// last clone of the client is dropped, never blocking the dropping thread).
/// Do not `Pending::wait` on a thread that drives the runtime itself (a
/// current-thread runtime's only thread): it would wait for itself.
#[derive(Clone)]
pub struct KmsClient {
    inner: Arc<Inner>,
    policy: RetryPolicy,
}

struct Inner {
    client: aws_sdk_kms::Client,
    handle: Handle,
    /// The runtime this client built, if it built one.
    owned: Option<Runtime>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // `Runtime`'s own drop blocks until its tasks end and panics inside
        // an async context; this never blocks.
        if let Some(rt) = self.owned.take() {
            rt.shutdown_background();
        }
    }
}

impl KmsClient {
    /// Uses the SDK client `client` (its endpoint, region, credentials and
    /// HTTP client) with retries left to [`RetryPolicy`], spawning every
    /// call onto the runtime of `runtime`.
    #[must_use]
    pub fn new(client: &aws_sdk_kms::Client, runtime: Handle) -> Self {
        Self::build(client, runtime, None)
    }

    /// As [`KmsClient::new`], on a runtime of two worker threads that this
    /// client owns (for sync callers that have no runtime).
    ///
    /// # Errors
    /// [`custody_core::Error::Io`] if the runtime's threads cannot be
    /// started.
    pub fn with_own_runtime(client: &aws_sdk_kms::Client) -> Result<Self, custody_core::Error> {
        let rt = own_runtime()?;
        let handle = rt.handle().clone();
        Ok(Self::build(client, handle, Some(rt)))
    }

    /// Builds the SDK client from configuration the caller loaded (e.g.
    /// with `aws-config`), as [`KmsClient::new`] does with a client.
    ///
    /// # Panics
    /// As [`aws_sdk_kms::Client::new`]: if `config` has no HTTP client,
    /// sleep implementation or behavior version (`aws-config` always sets
    /// them).
    #[must_use]
    pub fn from_sdk_config(config: &aws_types::SdkConfig, runtime: Handle) -> Self {
        Self::new(&aws_sdk_kms::Client::new(config), runtime)
    }

    /// Loads the standard AWS configuration (`AWS_REGION`, credentials,
    /// `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_KMS`, profiles) with
    /// `aws-config` on the runtime of `runtime`, and builds a client from
    /// it. The loading runs on that runtime, so the answer may be awaited
    /// or waited on like any backend call.
    ///
    /// # Errors
    /// [`custody_core::Error::Backend`] with a [`KmsError`] of kind
    /// `unavailable` if the runtime shut down while loading.
    #[cfg(feature = "aws-config")]
    pub fn from_env(
        runtime: Handle,
    ) -> custody_core::Pending<'static, Result<Self, custody_core::Error>> {
        let loading = load_env(&runtime);
        custody_core::Pending::later(async move {
            let config = loading.await?;
            Ok(Self::from_sdk_config(&config, runtime))
        })
    }

    /// As [`KmsClient::from_env`], on a runtime this client owns, waiting
    /// on the calling thread. Not for async contexts (`.await`
    /// [`KmsClient::from_env`] there).
    ///
    /// # Errors
    /// [`custody_core::Error::Io`] if the runtime cannot be started; as
    /// [`KmsClient::from_env`].
    #[cfg(feature = "aws-config")]
    pub fn from_env_with_own_runtime() -> Result<Self, custody_core::Error> {
        let rt = own_runtime()?;
        let handle = rt.handle().clone();
        let config = custody_core::Pending::later(load_env(&handle)).wait()?;
        let client = aws_sdk_kms::Client::new(&config);
        Ok(Self::build(&client, handle, Some(rt)))
    }

    fn build(client: &aws_sdk_kms::Client, handle: Handle, owned: Option<Runtime>) -> Self {
        let config = client
            .config()
            .to_builder()
            .retry_config(RetryConfig::disabled())
            .build();
        Self {
            inner: Arc::new(Inner {
                client: aws_sdk_kms::Client::from_conf(config),
                handle,
                owned,
            }),
            policy: RetryPolicy::default(),
        }
    }

    /// The same client with another retry and timeout policy.
    #[must_use]
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The retry and timeout policy.
    #[must_use]
    pub fn retry_policy(&self) -> RetryPolicy {
        self.policy
    }

    /// The SDK client the calls go through (SDK retries off).
    #[must_use]
    pub fn sdk_client(&self) -> &aws_sdk_kms::Client {
        &self.inner.client
    }

    /// The runtime the calls run on.
    #[must_use]
    pub fn runtime(&self) -> &Handle {
        &self.inner.handle
    }

    /// Runs `call` on the runtime under the retry policy: at most
    /// `max_attempts` tries, each bounded by the attempt timeout, retrying
    /// only throttling and transient failures with full-jitter back-off.
    /// `call` is invoked once per try with the shared SDK client.
    pub(crate) fn call<T, E, F, Fut>(
        &self,
        operation: &'static str,
        key: String,
        call: F,
    ) -> impl Future<Output = Result<T, KmsError>> + Send + 'static
    where
        T: Send + 'static,
        E: ProvideErrorMetadata + Send + 'static,
        F: Fn(&aws_sdk_kms::Client) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>> + Send + 'static,
    {
        let client = self.inner.client.clone();
        let policy = self.policy;
        let label = key.clone();
        let task = self.inner.handle.spawn(async move {
            let mut tries = 0u32;
            loop {
                tries = tries.saturating_add(1);
                let failure =
                    match tokio::time::timeout(policy.attempt_timeout(), call(&client)).await {
                        Ok(Ok(value)) => return Ok(value),
                        Ok(Err(err)) => classify(&err),
                        Err(_elapsed) => Failure::timed_out(),
                    };
                if !failure.fault.is_retryable() || tries >= policy.max_attempts() {
                    return Err(failure.into_error(operation, &key, tries));
                }
                tokio::time::sleep(policy.backoff(tries)).await;
            }
        });
        let joined = Joined(task);
        async move {
            match joined.await {
                Ok(result) => result,
                Err(e) => Err(runtime_gone(&e, operation, &label)),
            }
        }
    }
}

/// A spawned call, awaited from any executor or thread; aborts the task if
/// dropped before it finishes (a caller that gave up stops the retries).
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

/// The task never finished: the runtime shut down (or the call panicked).
fn runtime_gone(e: &tokio::task::JoinError, operation: &'static str, key: &str) -> KmsError {
    KmsError::Unavailable {
        operation,
        key: key.to_owned(),
        tries: 0,
        reason: if e.is_cancelled() {
            "the tokio runtime running KMS calls shut down"
        } else {
            "the KMS call panicked"
        },
    }
}

/// `aws-config`'s standard chain, run on `runtime`.
#[cfg(feature = "aws-config")]
fn load_env(
    runtime: &Handle,
) -> impl Future<Output = Result<aws_types::SdkConfig, custody_core::Error>> + Send + 'static {
    let joined = Joined(runtime.spawn(aws_config::load_defaults(
        aws_config::BehaviorVersion::latest(),
    )));
    async move {
        joined
            .await
            .map_err(|e| runtime_gone(&e, "LoadConfig", "(none)").into())
    }
}

fn own_runtime() -> Result<Runtime, custody_core::Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("custody-kms")
        .enable_all()
        .build()
        .map_err(custody_core::Error::Io)
}

impl fmt::Debug for KmsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsClient")
            .field("retry_policy", &self.policy)
            .field("owns_runtime", &self.inner.owned.is_some())
            .finish_non_exhaustive()
    }
}
