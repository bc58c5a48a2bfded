//! Group commit: the recorded commits of one store that are waiting at the
//! same moment go to the server in one transaction.
//!
//! # Why
//!
//! A gated signature over PostgreSQL is one read and one recorded commit.
//! The commit is what the server spends most on (the write, the audit
//! record's insert, and the transaction's commit record and WAL flush), and
//! each is a round trip the signer's runtime hands off. Concurrent signers
//! of one process (one per wallet) queue their commits here instead; a
//! committer takes what is queued (at most [`crate::PgOptions`]'s batch
//! bound) and sends it as `BEGIN`, one statement per commit and, once every
//! statement has answered, `COMMIT`: two round trips and one durable commit
//! for the whole batch.
//!
//! # What each caller is told
//!
//! Each commit keeps its own outcome: its statement is the same
//! all-or-nothing statement a lone commit runs (`SPEC.md`), so a conflict
//! writes nothing *of that commit* and raises no error; the others go on.
//! A caller is answered only after `COMMIT` has returned (durable as the
//! server's commits are); a conflict is answered after it too. If a
//! statement fails (a stale chain head, another writer's key created
//! meanwhile, a deadlock or serialization failure), the transaction is
//! rolled back and the whole batch runs again (bounded), since nothing of
//! it was committed. If the connection fails, the commit fails, or the
//! retries run out, every caller of the batch gets the error (kind
//! `unavailable` for a lost connection or timeout: retryable), and none is
//! acknowledged: as for a lone commit, such a commit may or may not have
//! been applied (read again before retrying).
//!
//! # Order and the audit chains
//!
//! A batch holds at most one commit per audit chain, and a chain is in at
//! most one batch in flight: a wallet's records are sealed one after
//! another, each over the head the last commit left, as without batching.
//! Later commits of a chain wait in the queue, in order, for the next
//! batch. A batch's commits run in chain order, so two replicas' batches
//! take their row locks in one order.
//!
//! # No added wait
//!
//! A committer starts as soon as a commit is queued and no committer is
//! free; it does not wait for more. A lone commit goes at once (one batch
//! of one: `BEGIN`, the statement, `COMMIT`, in two round trips). Batches
//! form only from the commits that arrive while a committer is busy.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use custody_core::{AuditEvent, Error, RecordedSwaps};
use tokio::sync::oneshot;
use tokio_postgres::types::ToSql;

use crate::audit::{APPEND_ATTEMPTS, Heads, Sealed};
use crate::error::{Fault, PgError};
use crate::pool::{Pool, Sql};
use crate::store::{OwnedSwap, compare_and_swap_all_recorded, read_many, recorded_sql, swaps_keys};

const OP: &str = "compare-and-swap";

/// One recorded commit waiting for a batch.
pub(crate) struct Item {
    pub(crate) swaps: Vec<OwnedSwap>,
    /// The expected versions as the `bigint` column holds them.
    pub(crate) expected: Vec<Option<i64>>,
    pub(crate) event: AuditEvent,
    pub(crate) chain: String,
    pub(crate) clock: fn() -> u64,
    pub(crate) reply: oneshot::Sender<Result<RecordedSwaps, Error>>,
}

impl Item {
    fn sql(&self) -> Sql {
        recorded_sql(&self.swaps, &self.expected)
    }

    /// The versions the records have after a commit of this item.
    fn versions(&self) -> Vec<u64> {
        self.swaps
            .iter()
            .zip(&self.expected)
            .map(|(s, e)| s.version_after(*e))
            .collect()
    }

    /// What the statement answers when every swap happened.
    fn swapped_answer(&self) -> Option<i64> {
        match self.sql() {
            Sql::SwapAllRecorded => i64::try_from(self.swaps.len()).ok(),
            _ => self.expected[0].map_or(Some(1), |v| v.checked_add(1)),
        }
    }
}

/// The queue and its committers.
pub(crate) struct Batcher {
    queue: Mutex<Queue>,
    max_batch: usize,
    committers: usize,
    /// Batches taken, and the commits in them.
    batches: AtomicU64,
    batched: AtomicU64,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Item>,
    /// Committers running.
    running: usize,
    /// The chains of the batches in flight.
    busy: HashSet<String>,
}

impl Batcher {
    pub(crate) fn new(max_batch: usize, committers: usize) -> Self {
        Self {
            queue: Mutex::default(),
            max_batch: max_batch.max(1),
            committers: committers.max(1),
            batches: AtomicU64::new(0),
            batched: AtomicU64::new(0),
        }
    }

    /// How many batches committers have taken, and how many commits they
    /// held.
    pub(crate) fn stats(&self) -> (u64, u64) {
        (
            self.batches.load(Ordering::Relaxed),
            self.batched.load(Ordering::Relaxed),
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // A poisoned lock is safe to reuse: every change is a push, a pop
        // or a counter step, complete before anything can panic.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `item`, and starts a committer if none is free.
    pub(crate) fn submit(self: &Arc<Self>, pool: &Arc<Pool>, heads: &Arc<Heads>, item: Item) {
        let start = {
            let mut queue = self.lock();
            queue.waiting.push_back(item);
            let start = queue.running < self.committers;
            if start {
                queue.running += 1;
            }
            start
        };
        if start {
            let (batcher, pool, heads) = (Arc::clone(self), Arc::clone(pool), Arc::clone(heads));
            pool.handle().clone().spawn(async move {
                let mut committer = Committer {
                    batcher: &batcher,
                    chains: Vec::new(),
                    ended: false,
                };
                loop {
                    let Some(batch) = batcher.take() else {
                        committer.ended = true;
                        break;
                    };
                    committer.chains = batch.iter().map(|i| i.chain.clone()).collect();
                    commit(&pool, &heads, batch).await;
                    let mut queue = batcher.lock();
                    for chain in committer.chains.drain(..) {
                        queue.busy.remove(&chain);
                    }
                }
            });
        }
    }

    /// The next batch: queued commits in order, one per chain, none of a
    /// chain in flight; `None` when there is none (the committer ends).
    fn take(&self) -> Option<Vec<Item>> {
        let mut queue = self.lock();
        let mut batch: Vec<Item> = Vec::new();
        let mut i = 0;
        while i < queue.waiting.len() && batch.len() < self.max_batch {
            let chain = &queue.waiting[i].chain;
            if queue.busy.contains(chain) || batch.iter().any(|b| &b.chain == chain) {
                i += 1;
                continue;
            }
            if let Some(item) = queue.waiting.remove(i) {
                batch.push(item);
            }
        }
        if batch.is_empty() {
            queue.running -= 1;
            return None;
        }
        for item in &batch {
            queue.busy.insert(item.chain.clone());
        }
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.batched.fetch_add(
            u64::try_from(batch.len()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        Some(batch)
    }
}

/// A running committer. If its task ends abnormally (a panic, or the
/// runtime shutting down mid-batch), it is counted out and its chains
/// freed, so that later commits start another; its batch's callers see
/// their replies dropped ([`abandoned`]).
struct Committer<'a> {
    batcher: &'a Batcher,
    chains: Vec<String>,
    ended: bool,
}

impl Drop for Committer<'_> {
    fn drop(&mut self) {
        if !self.ended {
            let mut queue = self.batcher.lock();
            queue.running -= 1;
            for chain in &self.chains {
                queue.busy.remove(chain);
            }
        }
    }
}

/// The reply a caller gets if its commit's batch was dropped unanswered.
pub(crate) fn abandoned() -> Error {
    Error::backend(PgError::unavailable(
        OP,
        "the batch holding this commit was abandoned (the store's runtime shut down)",
    ))
}

/// Polls every future at once (so that their statements are pipelined on
/// one connection) and returns their outputs in order.
async fn join_all<F: Future + Unpin>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<(F, Option<F::Output>)> = futures.into_iter().map(|f| (f, None)).collect();
    std::future::poll_fn(|cx: &mut Context<'_>| {
        let mut pending = false;
        for (future, output) in &mut futures {
            if output.is_none() {
                match Pin::new(future).poll(cx) {
                    Poll::Ready(v) => *output = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    futures.into_iter().filter_map(|(_, o)| o).collect()
}

/// What one statement of a batch answered.
enum Answer {
    Swapped,
    Conflict,
    /// The transaction was rolled back: run the batch again.
    Again {
        stale: bool,
        contention: bool,
    },
    /// Fatal for the batch.
    Failed(Fault),
}

/// Commits `batch` and answers every caller. A batch of one is a lone
/// commit: its one statement, in its own implicit transaction.
async fn commit(pool: &Pool, heads: &Heads, mut batch: Vec<Item>) {
    if batch.len() == 1 {
        if let Some(item) = batch.pop() {
            let answer =
                compare_and_swap_all_recorded(pool, &item.swaps, &item.event, heads, item.clock)
                    .await;
            let _gone = item.reply.send(answer);
        }
        return;
    }
    batch.sort_by(|a, b| a.chain.cmp(&b.chain));
    match commit_batch(pool, heads, &batch).await {
        Ok(answers) => {
            for (item, answer) in batch.into_iter().zip(answers) {
                let _gone = item.reply.send(answer);
            }
        }
        // Nothing acknowledged: every caller gets the error.
        Err(e) => {
            for item in batch {
                let _gone = item.reply.send(Err(Error::backend(e.clone())));
            }
        }
    }
}

type Reply<'a> = Pin<
    Box<
        dyn Future<Output = Result<Option<tokio_postgres::Row>, tokio_postgres::Error>> + Send + 'a,
    >,
>;

/// The answers for `batch` (at least two commits, in chain order), in
/// order; `Err` fails them all.
async fn commit_batch(
    pool: &Pool,
    heads: &Heads,
    batch: &[Item],
) -> Result<Vec<Result<RecordedSwaps, Error>>, PgError> {
    let fail = |f: Fault| f.classify(OP);
    let (_permit, mut conn) = pool.lease(OP).await?;
    let mut statements = Vec::with_capacity(batch.len());
    for item in batch {
        statements.push(conn.prepared(pool, item.sql()).await.map_err(fail)?);
    }
    let head_sql = conn.prepared(pool, Sql::AuditHead).await.map_err(fail)?;
    let keys: Vec<Vec<&[u8]>> = batch
        .iter()
        .map(|i| i.swaps.iter().map(|s| &*s.key).collect())
        .collect();
    let values: Vec<Vec<Option<&[u8]>>> = batch
        .iter()
        .map(|i| i.swaps.iter().map(|s| s.value.as_deref()).collect())
        .collect();
    let mut contention: u32 = 0;
    for _ in 0..APPEND_ATTEMPTS {
        let mut sealed = Vec::with_capacity(batch.len());
        for item in batch {
            let head = heads
                .head(pool, &conn.client, &head_sql, &item.chain)
                .await
                .map_err(fail)?;
            sealed.push(
                Sealed::new(&item.chain, &head, (item.clock)(), &item.event)
                    .map_err(|_| PgError::backend(OP, "an audit record could not be sealed"))?,
            );
        }
        let hashes: Vec<(&[u8], &[u8])> = sealed.iter().map(|s| (s.hash(), s.prev())).collect();
        let params: Vec<Vec<&(dyn ToSql + Sync)>> = batch
            .iter()
            .enumerate()
            .map(|(n, item)| {
                let s = &sealed[n];
                // The record's columns first, as in every audit write.
                let mut p: Vec<&(dyn ToSql + Sync)> =
                    vec![&s.chain, &s.seq, &hashes[n].0, &s.line, &hashes[n].1];
                match item.sql() {
                    Sql::CreateRecorded => {
                        p.extend([&keys[n][0] as &(dyn ToSql + Sync), &values[n][0]])
                    }
                    Sql::SwapRecorded | Sql::SwapCheckedRecorded => p.extend([
                        &keys[n][0] as &(dyn ToSql + Sync),
                        &values[n][0],
                        &item.expected[0],
                    ]),
                    _ => p.extend([&keys[n] as &(dyn ToSql + Sync), &item.expected, &values[n]]),
                }
                // The record's time: after the writes' parameters (the
                // check's, if any, come last).
                p.push(&s.time_ms);
                if item.sql() == Sql::SwapCheckedRecorded {
                    p.extend([&keys[n][1] as &(dyn ToSql + Sync), &item.expected[1]]);
                }
                p
            })
            .collect();
        // BEGIN, every statement and COMMIT, pipelined in that order (each
        // request is sent when its future is first polled, and `join_all`
        // polls them in order): one round trip. If any statement fails,
        // PostgreSQL has aborted the transaction and runs the COMMIT as a
        // ROLLBACK: nothing of the batch is committed. So the batch is
        // committed exactly when every statement and the COMMIT succeeded.
        let client = &conn.client;
        let mut pipeline: Vec<Reply<'_>> = Vec::with_capacity(batch.len() + 2);
        pipeline.push(Box::pin(async move {
            client.batch_execute("BEGIN").await.map(|()| None)
        }));
        for (statement, p) in statements.iter().zip(&params) {
            pipeline.push(Box::pin(client.query_opt(statement, p)));
        }
        pipeline.push(Box::pin(async move {
            client.batch_execute("COMMIT").await.map(|()| None)
        }));
        let mut replies = pool
            .bounded(async { Ok(join_all(pipeline).await) })
            .await
            .map_err(fail)?;
        let committed = replies
            .pop()
            .ok_or(PgError::backend(OP, "no reply to COMMIT"))?;
        let mut replies = replies.into_iter();
        let begun = replies
            .next()
            .ok_or(PgError::backend(OP, "no reply to BEGIN"))?;
        begun.map_err(|e| fail(Fault::Pg(e)))?;
        let mut answers = Vec::with_capacity(batch.len());
        for (item, row) in batch.iter().zip(replies) {
            answers.push(match row {
                Ok(Some(row)) => match row.try_get::<_, Option<i64>>(0) {
                    Ok(None) => Answer::Conflict,
                    Ok(answer) if answer == item.swapped_answer() => Answer::Swapped,
                    Ok(Some(_)) => Answer::Failed(Fault::Row(
                        "a recorded swap's answer is not the versions or count expected",
                    )),
                    Err(_) => Answer::Failed(Fault::Row("the answer is not a bigint")),
                },
                Ok(None) => Answer::Failed(Fault::Row("the recorded swap returned no row")),
                Err(e) => {
                    let fault = Fault::Pg(e);
                    match fault.sqlstate() {
                        // A stale head, a sequence number taken, a key
                        // created meanwhile: re-read the head.
                        Some("22012") => Answer::Again {
                            stale: true,
                            contention: false,
                        },
                        // A statement after the one that failed.
                        Some("25P02") => Answer::Again {
                            stale: false,
                            contention: false,
                        },
                        _ if fault.is_serialization_failure() => Answer::Again {
                            stale: false,
                            contention: true,
                        },
                        _ => Answer::Failed(fault),
                    }
                }
            });
        }
        // `conn` is dropped on every error return, hence closed.
        if let Some(fault) = answers.iter().find_map(|a| match a {
            Answer::Failed(f) => Some(f),
            _ => None,
        }) {
            return Err(fault.classify(OP));
        }
        // The COMMIT's own failure: its outcome is unknown, nothing is
        // acknowledged.
        committed.map_err(|e| fail(Fault::Pg(e)))?;
        if answers.iter().any(|a| matches!(a, Answer::Again { .. })) {
            // Rolled back (the COMMIT of an aborted transaction).
            let mut contended_now = false;
            for (item, answer) in batch.iter().zip(&answers) {
                if let Answer::Again { stale, contention } = answer {
                    if *stale {
                        heads.stale(&item.chain);
                    }
                    contended_now |= *contention;
                }
            }
            if contended_now {
                contention += 1;
                tokio::time::sleep(std::time::Duration::from_millis(5 * u64::from(contention)))
                    .await;
            }
            continue;
        }
        // Committed: the answers.
        let mut out = Vec::with_capacity(batch.len());
        for ((item, answer), sealed) in batch.iter().zip(answers).zip(&sealed) {
            out.push(match answer {
                Answer::Swapped => {
                    heads.set(&item.chain, sealed.tip());
                    Ok(RecordedSwaps::Swapped {
                        versions: item.versions(),
                        head: sealed.head(),
                    })
                }
                _ => {
                    let current = read_many(pool, &mut conn, &swaps_keys(&item.swaps))
                        .await
                        .map_err(fail)?;
                    let conflict = current
                        .into_iter()
                        .zip(&item.swaps)
                        .enumerate()
                        .find(|(_, (c, s))| c.as_ref().map(|c| c.version) != s.expected);
                    match conflict {
                        Some((index, (current, _))) => {
                            Ok(RecordedSwaps::Conflict { index, current })
                        }
                        // The records reached the expected versions after
                        // the statement saw them: nothing of this commit
                        // was written; the caller reads again.
                        None => Err(Error::backend(PgError::unavailable(
                            OP,
                            "the records moved during the commit; nothing was written",
                        ))),
                    }
                }
            });
        }
        pool.give_back(conn);
        return Ok(out);
    }
    Err(PgError::unavailable(
        OP,
        "concurrent appends kept taking the chains' next sequence numbers",
    ))
}
