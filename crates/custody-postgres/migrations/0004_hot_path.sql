-- custody-postgres schema version 4: the two tables every signature
-- writes, made cheaper to write (measured in the workspace README,
-- "Running many signers"). Idempotent, as every migration.
--
-- 1. No CHECK constraints on custody_state and custody_audit. PostgreSQL
--    reads every CHECK constraint of a table back from its stored form and
--    plans it again in every INSERT or UPDATE statement (not once per
--    connection, as a prepared statement's own plan): the six cost about
--    30 µs of server CPU per signature, some 15% of it. What they refused
--    is refused where it is relied on: every writer's statement is sent
--    only with a key of 1-512 bytes, a value of at most 65536 bytes, a
--    version that only counts up from 1, a chain of 1-1024 bytes, a hash
--    of 32 bytes and a sequence number from 1 (the chain's check at
--    insert); every reader refuses a row outside those as `malformed`
--    (version below 1, a value over 65536 bytes, a hash not 32 bytes, a
--    sequence number below 1), tested. NOT NULL stays (checked without
--    planning anything). Another engine's own constraint names may differ:
--    there they stay, which changes nothing but the cost.
ALTER TABLE custody_state
    DROP CONSTRAINT IF EXISTS custody_state_key_check,
    DROP CONSTRAINT IF EXISTS custody_state_version_check,
    DROP CONSTRAINT IF EXISTS custody_state_value_check;
ALTER TABLE custody_audit
    DROP CONSTRAINT IF EXISTS custody_audit_chain_check,
    DROP CONSTRAINT IF EXISTS custody_audit_seq_check,
    DROP CONSTRAINT IF EXISTS custody_audit_hash_check;

-- 2. Each record's time as a column of its own, indexed with its chain, in
--    place of version 3's index over an expression on the record (a regular
--    expression evaluated, and the expression planned, in every insert:
--    about 17 µs per signature). The column is written by every append
--    with the record's own time; rows before this version get it from
--    their record here (a row whose line does not begin as a canonical
--    record does, never one a signer writes, gets 0: outside every window,
--    and refused by any read that reaches it). The column can disagree
--    with its record only by someone writing the table by hand: every
--    reader checks each row it reads against its record, and a read of a
--    wallet's records since a time starts from a row it checks that way
--    (PgAuditLog's AuditSink::wallet_records, SPEC.md).
--
--    On a large log, create the index first, by hand, as CREATE INDEX
--    CONCURRENTLY IF NOT EXISTS with the same definition (after the column
--    is filled); the UPDATE below rewrites every row of the log once.
ALTER TABLE custody_audit ADD COLUMN IF NOT EXISTS time_ms bigint;
UPDATE custody_audit
    SET time_ms = coalesce(
        (substring(record from '^\{"seq":[0-9]{1,19},"time":([0-9]{1,18}),'))::bigint, 0)
    WHERE time_ms IS NULL;
ALTER TABLE custody_audit ALTER COLUMN time_ms SET NOT NULL;
CREATE INDEX IF NOT EXISTS custody_audit_chain_time_ms ON custody_audit (chain, time_ms);
DROP INDEX IF EXISTS custody_audit_chain_time;
