#!/bin/sh
# First start: initdb with a password for POSTGRES_USER (TCP; the socket inside the container
# trusts local users) and a database of the same name.
# Every start: PostgreSQL as PID 1 on 127.0.0.1:$PGPORT (SIGTERM: a fast, clean shutdown).
set -eu
user=${POSTGRES_USER:-goal_engine}
port=${PGPORT:-5432}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required on the first start}"
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pwfile"
    pg_ctl -o "-c listen_addresses='' -p $port" -w start >/dev/null
    createdb -p "$port" -h /var/run/postgresql -U "$user" "${POSTGRES_DB:-$user}"
    pg_ctl -w stop >/dev/null
fi
exec postgres -c listen_addresses=127.0.0.1 -c port="$port" -c max_connections="${PG_MAX_CONNECTIONS:-200}" \
    -c shared_buffers="${PG_SHARED_BUFFERS:-128MB}"
