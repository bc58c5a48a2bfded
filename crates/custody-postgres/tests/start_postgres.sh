#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for custody-postgres's tests and
# prints the environment the tests read, as `export` lines:
#
#   eval "$(crates/custody-postgres/tests/start_postgres.sh "$SCRATCH/pg")"
#   cargo test -p custody-postgres --all-features --locked
#   crates/custody-postgres/tests/start_postgres.sh --stop "$SCRATCH/pg"
#
# SCRATCH_DIR must not exist or be empty; everything (data directory,
# socket, log, TLS files) goes in it. The server listens on 127.0.0.1 only,
# on a free port, with `trust` authentication except for members of the role
# `custody_password_roles` (scram-sha-256: the tests' password and GRANT
# checks) and TLS on (a CA made here; its certificate is
# CUSTODY_TEST_POSTGRES_CA). PostgreSQL refuses to run as root: as root, the
# server runs as the OS user `postgres` (Debian's package creates it), and
# the directories above SCRATCH_DIR are made traversable (o+x) for it.
#
# Stop it with `--stop SCRATCH_DIR`, which reads the server's PID from its
# data directory: the restart test (tests/restart.rs) stops and starts the
# server, so the PID printed here is stale after it.
#
# Exported:
#   CUSTODY_TEST_POSTGRES_URL      postgres://postgres@127.0.0.1:PORT/custody_test
#   CUSTODY_TEST_POSTGRES_PID      the postmaster's PID (at start)
#   CUSTODY_TEST_POSTGRES_DATA     the data directory
#   CUSTODY_TEST_POSTGRES_BIN      the directory of pg_ctl, postgres, psql
#   CUSTODY_TEST_POSTGRES_OS_USER  the OS user the server runs as (as root only)
#   CUSTODY_TEST_POSTGRES_CA       the CA certificate of the server's TLS certificate
set -euo pipefail

bin="${CUSTODY_POSTGRES_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
[ -x "$bin/initdb" ] || { echo "error: no PostgreSQL binaries (apt-get install postgresql, or set CUSTODY_POSTGRES_BIN)" >&2; exit 1; }

os_user=""
if [ "$(id -u)" = 0 ]; then os_user=postgres; fi
as_owner() {
    if [ -n "$os_user" ]; then runuser -u "$os_user" -- "$@"; else "$@"; fi
}

if [ "${1:-}" = "--stop" ]; then
    dir="$(cd "${2:?usage: start_postgres.sh --stop SCRATCH_DIR}" && pwd)"
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >&2 || true
    fi
    exit 0
fi

dir="${1:?usage: start_postgres.sh SCRATCH_DIR}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
if [ -n "$(ls -A "$dir")" ]; then echo "error: $dir is not empty" >&2; exit 1; fi
if [ -n "$os_user" ]; then
    chown "$os_user" "$dir"
    # The server's user must reach the directory.
    p="$(dirname "$dir")"
    while [ "$p" != / ]; do
        if ! runuser -u "$os_user" -- test -x "$p"; then
            echo "note: chmod o+x $p (for the $os_user user)" >&2
            chmod o+x "$p"
        fi
        p="$(dirname "$p")"
    done
fi
as_owner mkdir -p "$dir/sock" "$dir/tls"

# TLS: a CA and a server certificate for 127.0.0.1 / localhost signed by it.
if command -v openssl >/dev/null 2>&1; then
    (
        cd "$dir/tls"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
            -subj "/CN=custody test CA" -keyout ca.key -out ca.crt 2>/dev/null
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' >server.ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 7 \
            -extfile server.ext -out server.crt 2>/dev/null
        rm -f ca.key server.csr server.ext ca.srl
        chmod 600 server.key
        if [ -n "$os_user" ]; then chown "$os_user" server.key server.crt; fi
    )
    ssl=on
else
    echo "note: no openssl: the server runs without TLS (the TLS test skips)" >&2
    ssl=off
fi

as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
# Members of custody_password_roles log in with a password; everyone else
# over loopback is trusted (test-only).
cat >"$dir/data/pg_hba.conf" <<HBA
local all all trust
host all +custody_password_roles 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
HBA

started=""
for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    # Taken if something answers there.
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
    # The settings live in postgresql.conf, so that a plain `pg_ctl start`
    # (the restart test) brings the server back as it was.
    sed -i '/^# custody test settings$/,$d' "$dir/data/postgresql.conf"
    cat >>"$dir/data/postgresql.conf" <<CONF
# custody test settings
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir/sock'
max_connections = 200
ssl = $ssl
ssl_cert_file = '$dir/tls/server.crt'
ssl_key_file = '$dir/tls/server.key'
CONF
    if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start >&2; then
        started=yes
        break
    fi
done
[ -n "$started" ] || { echo "error: PostgreSQL did not start; see $dir/postgres.log" >&2; exit 1; }

psql() { as_owner "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir/sock" -p "$port" -U postgres "$@"; }
psql -d postgres -c "CREATE DATABASE custody_test" >&2
psql -d custody_test -c "CREATE ROLE custody_password_roles NOLOGIN" >&2

echo "export CUSTODY_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:$port/custody_test'"
echo "export CUSTODY_TEST_POSTGRES_PID='$(head -n 1 "$dir/data/postmaster.pid")'"
echo "export CUSTODY_TEST_POSTGRES_DATA='$dir/data'"
echo "export CUSTODY_TEST_POSTGRES_BIN='$bin'"
if [ -n "$os_user" ]; then echo "export CUSTODY_TEST_POSTGRES_OS_USER='$os_user'"; fi
if [ "$ssl" = on ]; then echo "export CUSTODY_TEST_POSTGRES_CA='$dir/tls/ca.crt'"; fi
