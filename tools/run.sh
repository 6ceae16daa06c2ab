#!/usr/bin/env bash
# `make run`: start Tollgate with conf/tollgate.conf in the foreground.
# When the configuration points at the local mock upstream (the default),
# start the mock first so a newcomer gets a full round trip offline.
# When neither the configuration ("database") nor $TOLLGATE_DATABASE names
# a database, start a private PostgreSQL in run/pg (tools/pg-local.sh, on a
# port chosen once and kept in run/pg-port, socket in run/pg/sock) with a
# database "tollgate", and stop it when Tollgate stops.  The bootstrap
# administrator's password is generated once into run/admin-password (mode
# 0600) and handed over in $TOLLGATE_ADMIN_PASSWORD, unless the
# configuration sets admin.bootstrap_password.
set -euo pipefail
build=${1:-build}
conf=${TG_CONF:-conf/tollgate.conf}
cd "$(dirname "$0")/.."
mkdir -p run

mock_pid=""
pg_started=""
cleanup() {
    [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null || true
    if [ -n "$pg_started" ]; then
        tools/pg-local.sh stop run/pg || true
    fi
}
trap cleanup EXIT

# A free TCP port on 127.0.0.1, kept for the next runs.
pg_port() {
    local p
    if [ -s run/pg-port ]; then
        cat run/pg-port
        return
    fi
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p" >run/pg-port
            echo "$p"
            return
        fi
    done
    echo "run: no free port for PostgreSQL" >&2
    exit 1
}

database="the one named by the configuration"
if [ -n "${TOLLGATE_DATABASE:-}" ]; then
    database="\$TOLLGATE_DATABASE"
elif ! grep -Eq '^[[:space:]]*database[[:space:]]*=' "$conf"; then
    port=$(pg_port)
    conninfo=$(tools/pg-local.sh start run/pg "$port" | tail -n 1)
    pg_started=1
    if [ -z "$(psql -X -A -t -d "$conninfo" \
        -c "SELECT 1 FROM pg_database WHERE datname = 'tollgate'")" ]; then
        psql -X -q -d "$conninfo" -c "CREATE DATABASE tollgate" >/dev/null
    fi
    export TOLLGATE_DATABASE="${conninfo%dbname=postgres}dbname=tollgate"
    database="a local PostgreSQL in run/pg (port $port, log run/pg/log)"
fi

admin_password=""
if ! grep -Eq '^[^#]*bootstrap_password[[:space:]]*=' "$conf"; then
    if [ ! -s run/admin-password ]; then
        (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' |
            head -c 24 >run/admin-password)
    fi
    chmod 600 run/admin-password
    admin_password=$(cat run/admin-password)
    export TOLLGATE_ADMIN_PASSWORD="$admin_password"
fi

"$build/tollgate" -t -c "$conf" >/dev/null

if grep -Eq '^[^#]*url *= *"http://127\.0\.0\.1:18080' "$conf"; then
    "$build/mock-upstream" -l 127.0.0.1:18080 --chunks 8 --delay-ms 60 \
        --ledger run/mock-ledger.jsonl >run/mock.log 2>&1 &
    mock_pid=$!
    for _ in $(seq 50); do
        grep -q listening run/mock.log 2>/dev/null && break
        sleep 0.1
    done
    upstream="the mock upstream on 127.0.0.1:18080 (tools/mock-upstream)"
else
    upstream="the endpoints configured in $conf"
fi

port=$(sed -nE '/^listen/,/\}/s/^[^#]*port *= *([0-9]+).*/\1/p' "$conf" | head -1)
port=${port:-8080}
key=$(sed -nE 's/^[^#]*keys *= *\( *"([^"]+)".*/\1/p' "$conf" | head -1)
key=${key:-tg-demo-0123456789abcdef}

cat <<MSG

Tollgate is starting on http://127.0.0.1:$port in front of $upstream.
Logs: run/error.log and run/access.log.  Stop with Ctrl-C.

Try it:

  curl -s http://127.0.0.1:$port/v1/messages \\
    -H 'x-api-key: $key' -H 'anthropic-version: 2023-06-01' \\
    -H 'content-type: application/json' \\
    -d '{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"Hello"}]}'

  # the same, streamed as server-sent events
  curl -sN http://127.0.0.1:$port/v1/messages \\
    -H 'x-api-key: $key' -H 'anthropic-version: 2023-06-01' \\
    -H 'content-type: application/json' \\
    -d '{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Hello"}]}'

  # OpenAI style
  curl -s http://127.0.0.1:$port/v1/chat/completions -H 'authorization: Bearer $key' \\
    -H 'content-type: application/json' \\
    -d '{"model":"gpt-4o","messages":[{"role":"user","content":"Hello"}]}'

  # SDKs and Claude Code: point them here
  ANTHROPIC_BASE_URL=http://127.0.0.1:$port ANTHROPIC_API_KEY=$key claude

  curl -s http://127.0.0.1:8081/healthz    # admin: health, database state

Database: $database.
MSG

if [ -n "$admin_password" ]; then
    cat <<MSG
Admin (tollctl, docs/tollctl.md; API, docs/admin-api.md): user "admin", password "$admin_password"
(kept in run/admin-password; it is set when the administrator is first
created, so a password changed since then is yours):

  export TOLLGATE_ADMIN_URL=http://127.0.0.1:8081
  $build/tollctl login admin --password-stdin < run/admin-password
  $build/tollctl users list
  $build/tollctl usage --from -1d --group-by user,model
  curl -s http://127.0.0.1:8081/metrics | head

The README's tour goes on from here (users, keys, approvals, quotas).
MSG
fi

cat <<MSG

To use the real Anthropic API, edit $conf (see the comment above
"endpoints", or conf/examples/anthropic.conf), export ANTHROPIC_API_KEY and
run 'make run' again.

MSG

"$build/tollgate" -c "$conf"
