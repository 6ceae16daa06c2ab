#!/usr/bin/env bash
# `make run`: start Tollgate with conf/tollgate.conf in the foreground.
# When the configuration points at the local mock upstream (the default),
# start the mock first so a newcomer gets a full round trip offline.
set -euo pipefail
build=${1:-build}
conf=${TG_CONF:-conf/tollgate.conf}
cd "$(dirname "$0")/.."
mkdir -p run

"$build/tollgate" -t -c "$conf" >/dev/null

mock_pid=""
cleanup() {
    [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null || true
}
trap cleanup EXIT

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

  curl -s http://127.0.0.1:8081/status     # admin: processes and counters

To use the real Anthropic API, edit $conf (see the comment above
"endpoints", or conf/examples/anthropic.conf), export ANTHROPIC_API_KEY and
run 'make run' again.

MSG

"$build/tollgate" -c "$conf"
