#!/usr/bin/env bash
# Time the q filters of users_list and keys_list over 100,000 users and
# 1,000,000 keys, with the trigram indexes and without them.
#
#   tools/sql-bench-q.sh [USERS [KEYS]]
#
# Starts a throwaway PostgreSQL 15 (tools/pg-local.sh), builds the schema
# as admin does (every migration, then sql/views and sql/functions),
# seeds users and keys with triggers off (no NOTIFY storm), ANALYZEs, and
# runs each query five times on one warm connection, printing the median
# in milliseconds.  Then it drops the trigram indexes (what a database
# without pg_trgm has) and times the same queries again.  Prints one line
# per query: "<case> <ms with indexes> <ms without>".
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
users=${1:-100000}
keys=${2:-1000000}
tmp=$(mktemp -d /tmp/tg-sqlbench.XXXXXX)
chmod 0755 "$tmp"
port=$((20000 + RANDOM % 30000))

cleanup() {
    "$root/tools/pg-local.sh" stop "$tmp" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

"$root/tools/pg-local.sh" start "$tmp" "$port" >/dev/null
psql_db=(psql -X -q -h "$tmp/sock" -p "$port" -U postgres -d postgres
         -v ON_ERROR_STOP=1)

"${psql_db[@]}" -c "CREATE TABLE schema_migrations (version integer
    PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL
    DEFAULT now())"
for f in "$root"/sql/migrations/[0-9][0-9][0-9][0-9]_*.sql; do
    base=$(basename "$f" .sql)
    "${psql_db[@]}" -1 -f "$f" -c "INSERT INTO schema_migrations
        (version, name) VALUES (${base%%_*}, '${base#*_}')" >/dev/null
done
args=(-c "DROP SCHEMA IF EXISTS tg_api CASCADE" -c "CREATE SCHEMA tg_api")
for f in "$root"/sql/views/*.sql "$root"/sql/functions/*.sql; do
    args+=(-f "$f")
done
"${psql_db[@]}" -1 "${args[@]}" >/dev/null

# The trigram indexes (migration 0003) are built after the rows go in,
# which is much faster than maintaining them row by row; their build time
# is reported.
trgm_drop="DROP INDEX IF EXISTS users_username_trgm_idx, users_email_trgm_idx,
    api_keys_name_trgm_idx, api_keys_prefix_trgm_idx"
"${psql_db[@]}" -c "$trgm_drop"
echo "seeding $users users and $keys keys..." >&2
"${psql_db[@]}" <<EOF >/dev/null
SET session_replication_role = replica;
INSERT INTO users (username, email)
SELECT 'user' || i, 'user' || i || '@example.com'
  FROM generate_series(1, $users) AS i;
INSERT INTO api_keys (user_id, name, digest, prefix, last4)
SELECT 1 + (i % $users),
       (ARRAY['laptop', 'ci', 'prod', 'notebook', 'server'])[1 + i % 5]
       || '-' || substr(md5(i::text), 1, 8),
       sha256(i::text::bytea),
       'sk-tg-' || substr(md5('p' || i), 1, 4),
       substr(md5('l' || i), 1, 4)
  FROM generate_series(1, $keys) AS i;
EOF
"${psql_db[@]}" <<EOF | sed -n 's/^Time: \([0-9.]*\) ms.*/trigram index built in \1 ms/p' >&2
\timing on
CREATE INDEX users_username_trgm_idx ON users
    USING gin (lower(username) gin_trgm_ops);
CREATE INDEX users_email_trgm_idx ON users
    USING gin (lower(coalesce(email, '')) gin_trgm_ops);
CREATE INDEX api_keys_name_trgm_idx ON api_keys
    USING gin (lower(name) gin_trgm_ops);
CREATE INDEX api_keys_prefix_trgm_idx ON api_keys
    USING gin (lower(prefix) gin_trgm_ops);
\timing off
VACUUM ANALYZE users;
VACUUM ANALYZE api_keys;
EOF

ctx='{"actor": null, "role": "system", "addr": "127.0.0.1", "host": "b"}'
cases=(
    "users q=user4242 (rare)|users_list|{\"q\": \"user4242\"}"
    "users q=example (every row)|users_list|{\"q\": \"example\"}"
    "users q=zzzz (none)|users_list|{\"q\": \"zzzz\"}"
    "keys q=3f2a91 (rare)|keys_list|{\"q\": \"3f2a91\"}"
    "keys q=laptop (a fifth)|keys_list|{\"q\": \"laptop\"}"
    "keys q=zzzz (none)|keys_list|{\"q\": \"zzzz\"}"
    "keys q=zz (2 chars, none)|keys_list|{\"q\": \"zz\"}"
)

# Median of five runs of each case, in ms, one per line.
run_cases() {
    local c label fn arg
    for c in "${cases[@]}"; do
        IFS='|' read -r label fn arg <<<"$c"
        {
            echo '\timing on'
            for _ in 1 2 3 4 5 6; do
                echo "SELECT jsonb_array_length(tg_api.$fn('$ctx', '$arg')"
                echo "       -> 'items');"
            done
        } | "${psql_db[@]}" -t 2>&1 | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' |
            tail -n 5 | sort -n | sed -n 3p
    done
}

mapfile -t with < <(run_cases)
"${psql_db[@]}" -c "$trgm_drop"
mapfile -t without < <(run_cases)

printf '%-30s %14s %14s\n' "case" "trigram ms" "no index ms"
for i in "${!cases[@]}"; do
    printf '%-30s %14s %14s\n' "${cases[$i]%%|*}" "${with[$i]}" \
        "${without[$i]}"
done
