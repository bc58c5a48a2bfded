//! Batched reads: the reads of one store that wait at the same moment go to
//! the server as one statement.
//!
//! # Why
//!
//! A gated signature over PostgreSQL is one read (the enrolment and the
//! guard, [`custody_core::StateStore::get_many`]) and one recorded commit.
//! With the commits batched ([`crate::batch`]), the read is most of the
//! database's transactions per signature, each a round trip and a task
//! hand-off of its own. Concurrent readers of one process (one per wallet)
//! queue their reads here instead; a reader takes what is queued (at most
//! [`crate::PgOptions`]'s read bound) and answers all of it with one
//! `SELECT key, version, value FROM custody_state WHERE key = ANY($1)` over
//! the union of their keys: one round trip, one read-only transaction.
//!
//! # No older than a read issued then
//!
//! Every statement at READ COMMITTED takes its snapshot when the server
//! starts running it, and that snapshot holds every transaction committed
//! before. A reader takes items off the queue and only then sends the
//! statement that answers them, on a connection with nothing else in
//! flight; a read is never joined to a statement already sent. So the
//! statement that answers a caller starts after the caller queued its read,
//! and the caller's acknowledged writes were committed before that (a
//! commit, lone or batched, is acknowledged only once the server has
//! answered its `COMMIT`): a batched read sees them, and everything any
//! replica committed before the read was issued, exactly as a lone read
//! issued at that moment would. What it may see besides is newer, never
//! older.
//!
//! # What each caller is told
//!
//! Each caller gets the records of its own keys, in its order (keys shared
//! by several callers are asked once and answered to each). If the
//! statement fails (the connection lost or terminated, a timeout, a row
//! that breaks the schema), every caller of the batch gets the same error
//! (kind `unavailable` for a lost connection or a timeout: retryable); the
//! failed connection is closed, and the next batch leases or opens another.
//! A serialization failure (CockroachDB, YugabyteDB) runs the statement
//! again, bounded, as a lone read does.
//!
//! # No added wait
//!
//! A reader starts as soon as a read is queued and no reader is free; it
//! does not wait for more. A lone read goes at once, as its own statement.
//! Batches form only from the reads that arrive while a reader is busy.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use custody_core::{Error, Versioned};
use tokio::sync::oneshot;

use crate::error::PgError;
use crate::pool::Pool;
use crate::store::get_many;

const OP: &str = "get";

/// One read waiting for a batch: its keys (each 1-512 bytes, at most
/// [`custody_core::MAX_STATE_KEYS_PER_READ`]) and where its answer goes.
pub(crate) struct ReadItem {
    pub(crate) keys: Vec<Box<[u8]>>,
    pub(crate) reply: oneshot::Sender<Result<Vec<Option<Versioned>>, Error>>,
}

/// The queue of reads and its readers.
pub(crate) struct Reads {
    queue: Mutex<Queue>,
    max_batch: usize,
    readers: usize,
    /// Batches taken, and the reads in them.
    batches: AtomicU64,
    batched: AtomicU64,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<ReadItem>,
    /// Readers running.
    running: usize,
}

impl Reads {
    pub(crate) fn new(max_batch: usize, readers: usize) -> Self {
        Self {
            queue: Mutex::default(),
            max_batch: max_batch.max(1),
            readers: readers.max(1),
            batches: AtomicU64::new(0),
            batched: AtomicU64::new(0),
        }
    }

    /// How many batches readers have taken, and how many reads they held.
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

    /// Queues `item`, and starts a reader if none is free.
    pub(crate) fn submit(self: &Arc<Self>, pool: &Arc<Pool>, item: ReadItem) {
        let start = {
            let mut queue = self.lock();
            queue.waiting.push_back(item);
            let start = queue.running < self.readers;
            if start {
                queue.running += 1;
            }
            start
        };
        if start {
            let (reads, pool) = (Arc::clone(self), Arc::clone(pool));
            pool.handle().clone().spawn(async move {
                let mut reader = Reader {
                    reads: &reads,
                    ended: false,
                };
                loop {
                    let Some(batch) = reads.take() else {
                        reader.ended = true;
                        break;
                    };
                    answer(&pool, batch).await;
                }
            });
        }
    }

    /// The next batch: the oldest queued reads, at most the bound; `None`
    /// when there is none (the reader ends).
    fn take(&self) -> Option<Vec<ReadItem>> {
        let mut queue = self.lock();
        let n = queue.waiting.len().min(self.max_batch);
        if n == 0 {
            queue.running -= 1;
            return None;
        }
        let batch: Vec<ReadItem> = queue.waiting.drain(..n).collect();
        drop(queue);
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.batched
            .fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
        Some(batch)
    }
}

/// A running reader. If its task ends abnormally (a panic, or the runtime
/// shutting down mid-batch), it is counted out, so that later reads start
/// another; its batch's callers see their replies dropped ([`abandoned`]).
struct Reader<'a> {
    reads: &'a Reads,
    ended: bool,
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.reads.lock().running -= 1;
        }
    }
}

/// The reply a caller gets if its read's batch was dropped unanswered.
pub(crate) fn abandoned() -> Error {
    Error::backend(PgError::unavailable(
        OP,
        "the batch holding this read was abandoned (the store's runtime shut down)",
    ))
}

/// Reads the keys of every item of `batch` in one statement and answers
/// each caller with its own records; a failure answers each with it.
async fn answer(pool: &Pool, mut batch: Vec<ReadItem>) {
    if batch.len() == 1 {
        if let Some(item) = batch.pop() {
            let found = get_many(pool, &item.keys).await.map_err(Error::backend);
            let _gone = item.reply.send(found);
        }
        return;
    }
    // The union of the keys, each once, and where each item's keys are in it.
    let mut unique: Vec<Box<[u8]>> = Vec::new();
    let slots: Vec<Vec<usize>> = {
        let mut index: HashMap<&[u8], usize> = HashMap::new();
        let mut slots = Vec::with_capacity(batch.len());
        for item in &batch {
            let mut mine = Vec::with_capacity(item.keys.len());
            for key in &item.keys {
                let at = *index.entry(&**key).or_insert_with(|| {
                    unique.push(key.clone());
                    unique.len() - 1
                });
                mine.push(at);
            }
            slots.push(mine);
        }
        slots
    };
    match get_many(pool, &unique).await {
        Ok(records) => {
            for (item, mine) in batch.into_iter().zip(slots) {
                let found = mine
                    .into_iter()
                    .map(|at| records.get(at).cloned().flatten())
                    .collect();
                let _gone = item.reply.send(Ok(found));
            }
        }
        Err(e) => {
            for item in batch {
                let _gone = item.reply.send(Err(Error::backend(e.clone())));
            }
        }
    }
}
