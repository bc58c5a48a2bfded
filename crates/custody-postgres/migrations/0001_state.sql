-- custody-postgres schema version 1: the state store (SPEC.md, "The
-- custody_state table"). Run by PgStateStore::migrate inside its
-- transaction, after the custody_schema_version table exists; safe to run
-- again (IF NOT EXISTS), so that migrators racing, or an engine whose DDL
-- is not transactional, cannot fail half-way into a broken schema.
--
-- key: the record key's UTF-8 bytes (bytea, not text: any UTF-8 key,
-- NUL included, in any database encoding, compared byte for byte with no
-- collation).
CREATE TABLE IF NOT EXISTS custody_state (
    key bytea PRIMARY KEY CHECK (octet_length(key) BETWEEN 1 AND 512),
    version bigint NOT NULL CHECK (version >= 1),
    value bytea NOT NULL CHECK (octet_length(value) <= 65536)
);
