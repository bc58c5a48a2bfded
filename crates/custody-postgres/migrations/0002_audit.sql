-- custody-postgres schema version 2: the audit log (SPEC.md, "The audit
-- log in PostgreSQL"). Append-only: a signer's role needs SELECT and
-- INSERT on these tables, never UPDATE or DELETE (README, "Running many
-- signers"). Idempotent (IF NOT EXISTS), as every migration.
--
-- custody_audit: one row per record. Records form one hash chain per
-- `chain` (a wallet, a stored key, or the operations chain "-"), each
-- exactly an audit-log record of custody-core (`record` is its canonical
-- JSON line, `seq` and `hash` copies of its fields for the index and the
-- chain check at insert).
CREATE TABLE IF NOT EXISTS custody_audit (
    chain text NOT NULL CHECK (octet_length(chain) BETWEEN 1 AND 1024),
    seq bigint NOT NULL CHECK (seq >= 1),
    hash bytea NOT NULL CHECK (octet_length(hash) = 32),
    record text NOT NULL,
    PRIMARY KEY (chain, seq)
);

-- Every chain that has a record (inserted with a chain's first record, in
-- its transaction): what a checkpoint walks to find each chain's head
-- without scanning the log.
CREATE TABLE IF NOT EXISTS custody_audit_chain (
    chain text PRIMARY KEY CHECK (octet_length(chain) BETWEEN 1 AND 1024)
);

-- Signed checkpoints: the head of every chain at one moment, signed by a
-- key of a KeyBackend. `id` counts up from 1; the body that is signed is
-- rebuilt from these columns and the heads below (SPEC.md).
CREATE TABLE IF NOT EXISTS custody_audit_checkpoint (
    id bigint PRIMARY KEY CHECK (id >= 1),
    time_ms bigint NOT NULL CHECK (time_ms >= 0),
    origin text NOT NULL CHECK (octet_length(origin) BETWEEN 1 AND 256),
    public_key bytea NOT NULL CHECK (octet_length(public_key) = 33),
    signature bytea NOT NULL CHECK (octet_length(signature) = 65)
);

CREATE TABLE IF NOT EXISTS custody_audit_checkpoint_head (
    checkpoint bigint NOT NULL REFERENCES custody_audit_checkpoint (id),
    chain text NOT NULL,
    seq bigint NOT NULL CHECK (seq >= 1),
    hash bytea NOT NULL CHECK (octet_length(hash) = 32),
    PRIMARY KEY (checkpoint, chain)
);
