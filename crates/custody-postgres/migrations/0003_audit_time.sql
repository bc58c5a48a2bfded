-- custody-postgres schema version 3: an index on each audit record's time
-- within its chain, so that one wallet's records since a time
-- (PgAuditLog's AuditSink::wallet_records, what a policy node counts
-- velocity limits from) are found without reading the wallet's whole
-- chain. An expression index over the record itself: the append
-- statements write no new column, and the index cannot disagree with the
-- record it is computed from. A canonical record line begins
-- {"seq":<seq>,"time":<time>, (custody-core SPEC.md, "Audit log
-- records"); a row that does not (never one a signer writes) indexes as
-- NULL instead of failing its insert, and the reader refuses it by its
-- chain checks. At most 18 digits: always a bigint. Idempotent (IF NOT
-- EXISTS), as every migration.
--
-- Building it reads every record once, holding a lock that blocks
-- appends meanwhile; on a large log, run it first, by hand, as
-- CREATE INDEX CONCURRENTLY IF NOT EXISTS with the same definition.
CREATE INDEX IF NOT EXISTS custody_audit_chain_time
    ON custody_audit (chain,
        ((substring(record from '^\{"seq":[0-9]{1,19},"time":([0-9]{1,18}),'))::bigint));
