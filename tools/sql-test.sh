#!/usr/bin/env bash
# Expected-output tests of the schema and the tg_api functions.
#
#   tools/sql-test.sh [NAME...]     run tests/sql/NAME.sql (default: all)
#   SQL_TEST_ACCEPT=1 tools/sql-test.sh NAME
#                                   write the output as the new expected file
#                                   (without NAME: also the analysts' ones)
#
# Starts a throwaway PostgreSQL 15 (tools/pg-local.sh when present, else
# the same steps here: initdb as the "postgres" user into a temporary
# directory, a private port and socket directory), builds a template
# database the way admin does at start (schema_migrations, every
# sql/migrations/NNNN_*.sql in one transaction each, then schema tg_api
# from sql/views/*.sql and sql/functions/*.sql in name order), and runs
# each test file with psql in a fresh copy of it.  The output, with
# times, process ids and source locations masked, must equal
# tests/sql/expected/NAME.out.  Run without NAME, it also checks
# docs/sql.md: a row for every column, and each query of the analysts'
# section against tests/sql/expected/analysts_NN.out.  Ends with "sql: N
# passed, M failed" and exits non-zero when a test failed or the setup did.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bindir=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
tests=$root/tests/sql
results=$root/build/sql-test
mkdir -p "$results"

if [ ! -x "$bindir/pg_ctl" ]; then
    echo "sql-test: $bindir/pg_ctl not found; install postgresql (tools/deps.sh)"
    echo "sql: 0 passed, 1 failed"
    exit 1
fi

tmp=$(mktemp -d /tmp/tg-sqltest.XXXXXX)
chmod 0755 "$tmp"
port=""
started=0

as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

cleanup() {
    if [ "$started" = 1 ]; then
        if [ -x "$root/tools/pg-local.sh" ]; then
            "$root/tools/pg-local.sh" stop "$tmp" >/dev/null 2>&1
        else
            as_owner "$bindir/pg_ctl" -D "$tmp/data" -m immediate -w stop \
                >/dev/null 2>&1
        fi
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# Start the server on the first free port of a few random ones.
start_server() {
    local p
    for _ in 1 2 3 4 5 6 7 8; do
        p=$((20000 + RANDOM % 30000))
        if [ -x "$root/tools/pg-local.sh" ]; then
            if "$root/tools/pg-local.sh" start "$tmp" "$p" >"$tmp/start.log" 2>&1
            then
                port=$p sock=$tmp/sock started=1
                return 0
            fi
        else
            if [ ! -f "$tmp/data/PG_VERSION" ]; then
                mkdir -p "$tmp/data" "$tmp/sock"
                [ "$(id -u)" = 0 ] && chown postgres "$tmp/data" "$tmp/sock" "$tmp"
                as_owner "$bindir/initdb" -D "$tmp/data" -U postgres -A trust \
                    -E UTF8 --locale=C --no-sync >"$tmp/initdb.log" 2>&1 ||
                    { cat "$tmp/initdb.log"; return 1; }
            fi
            # Unix socket only: no TCP port to collide with anyone.
            if as_owner "$bindir/pg_ctl" -D "$tmp/data" -l "$tmp/log" -w -t 60 \
                -o "-p $p -k $tmp/sock -c listen_addresses='' -c fsync=off" \
                start >/dev/null 2>&1; then
                port=$p sock=$tmp/sock started=1
                return 0
            fi
        fi
    done
    cat "$tmp/start.log" "$tmp/log" 2>/dev/null | tail -n 20
    return 1
}

if ! start_server; then
    echo "sql-test: could not start PostgreSQL"
    echo "sql: 0 passed, 1 failed"
    exit 1
fi

psql_base=(psql -X -q -h "$sock" -p "$port" -U postgres)

# The template database, built like admin's start-up does it.
setup() {
    "${psql_base[@]}" -d postgres -v ON_ERROR_STOP=1 \
        -c "CREATE DATABASE tg_template" || return 1
    "${psql_base[@]}" -d tg_template -v ON_ERROR_STOP=1 -c \
        "CREATE TABLE schema_migrations (version integer PRIMARY KEY,
             name text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now())" || return 1
    local f base
    for f in "$root"/sql/migrations/[0-9][0-9][0-9][0-9]_*.sql; do
        base=$(basename "$f" .sql)
        "${psql_base[@]}" -d tg_template -v ON_ERROR_STOP=1 -1 -f "$f" \
            -c "INSERT INTO schema_migrations (version, name)
                VALUES (${base%%_*}, '${base#*_}')" || return 1
    done
    local args=(-c "DROP SCHEMA IF EXISTS tg_api CASCADE"
                -c "CREATE SCHEMA tg_api")
    for f in "$root"/sql/views/*.sql "$root"/sql/functions/*.sql; do
        [ -f "$f" ] && args+=(-f "$f")
    done
    "${psql_base[@]}" -d tg_template -v ON_ERROR_STOP=1 -1 "${args[@]}" \
        || return 1
}

if ! setup >"$results/setup.out" 2>&1; then
    cat "$results/setup.out"
    echo "sql-test: setting up the template database failed"
    echo "sql: 0 passed, 1 failed"
    exit 1
fi

# Mask what changes from run to run.
normalize() {
    sed -E \
        -e 's/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z/<time>/g' \
        -e 's/server process with PID [0-9]+/server process with PID <pid>/' \
        -e 's/^(DETAIL:  Failing row contains) .*/\1 (...)./' \
        -e '/^(LOCATION|SCHEMA NAME|TABLE NAME|COLUMN NAME|DATATYPE NAME):  /d'
}

if [ $# -gt 0 ]; then
    names=("$@")
else
    names=()
    for f in "$tests"/*.sql; do
        names+=("$(basename "$f" .sql)")
    done
fi

passed=0 failed=0 n=0
for name in "${names[@]}"; do
    n=$((n + 1))
    db="t_$n"
    out=$results/$name.out
    exp=$tests/expected/$name.out
    if [ ! -f "$tests/$name.sql" ]; then
        echo "FAIL $name: no tests/sql/$name.sql"
        failed=$((failed + 1))
        continue
    fi
    "${psql_base[@]}" -d postgres -c "CREATE DATABASE $db TEMPLATE tg_template" \
        >/dev/null 2>&1
    # -a echoes each statement; errors print with their SQLSTATE and
    # DETAIL (VERBOSITY verbose) but no PL/pgSQL context, which names
    # internal line numbers.
    (cd "$tests" && "${psql_base[@]}" -d "$db" -a \
        -v VERBOSITY=verbose -v SHOW_CONTEXT=never -f "$name.sql" 2>&1) |
        normalize >"$out"
    if [ "${SQL_TEST_ACCEPT:-0}" = 1 ]; then
        mkdir -p "$tests/expected"
        cp "$out" "$exp"
    fi
    if [ -f "$exp" ] && diff -u "$exp" "$out" >"$out.diff"; then
        echo "ok   $name"
        passed=$((passed + 1))
        rm -f "$out.diff"
    else
        echo "FAIL $name (diff in ${out#"$root"/}.diff)"
        [ -f "$out.diff" ] && head -n 40 "$out.diff"
        failed=$((failed + 1))
    fi
    "${psql_base[@]}" -d postgres -c "DROP DATABASE $db" >/dev/null 2>&1
done

# docs/sql.md: every column of every table and view has its row in the
# page.
check_columns() {
    local doc=$root/docs/sql.md missing=0 t c
    while IFS='|' read -r t c; do
        # The column's name, in backquotes, in the first cell of a table
        # row under the "### `table`" heading.
        if ! awk -v t="### \`$t\`" -v c="\`$c\`" '
            $0 == t { in_t = 1; next }
            /^#/ { in_t = 0 }
            in_t && /^\|/ { split($0, cell, "|");
                             if (index(cell[2], c) > 0) found = 1 }
            END { exit !found }' "$doc"; then
            echo "docs/sql.md: no row for $t.$c"
            missing=1
        fi
    done < <("${psql_base[@]}" -d tg_template -At -F '|' -c "
        SELECT c.relname, a.attname FROM pg_attribute a
          JOIN pg_class c ON c.oid = a.attrelid
         WHERE c.relnamespace = 'public'::regnamespace
           AND c.relkind IN ('r', 'v') AND a.attnum > 0
           AND NOT a.attisdropped ORDER BY 1, a.attnum")
    return $missing
}

# docs/sql.md's analysts' section: each ```sql block (role management
# left out) runs on its own against tests/sql/data/analysts_seed.sql,
# with the seed's fixed clock first in search_path so that now() in the
# documented queries is a known time, and its output must equal
# tests/sql/expected/analysts_NN.out (NN: the block's number in the
# section), like the expected-output tests above.
check_analysts() {
    local doc=$root/docs/sql.md db=t_docs failed=0 f name out exp
    local dir=$results/analysts
    rm -rf "$dir"
    mkdir -p "$dir"
    "${psql_base[@]}" -d postgres -c "CREATE DATABASE $db TEMPLATE tg_template" \
        >/dev/null || return 1
    if ! "${psql_base[@]}" -d "$db" -v ON_ERROR_STOP=1 \
        -f "$tests/data/analysts_seed.sql" >"$dir/seed.out" 2>&1; then
        echo "docs: loading analysts_seed.sql failed:"
        tail -n 5 "$dir/seed.out"
        failed=1
    fi
    awk -v dir="$dir" '
        /^## For analysts/ { on = 1 } /^## Usage: how it gets here/ { on = 0 }
        on && /^```sql/ { blk = 1; n++
                          f = sprintf("%s/analysts_%02d.sql", dir, n); next }
        blk && /^```/ { blk = 0; close(f); next }
        blk && !/^(CREATE ROLE|GRANT|  *[a-z_, ]+ TO analyst;)/ { print > f }
    ' "$doc"
    for f in "$dir"/analysts_*.sql; do
        name=$(basename "$f" .sql)
        out=$dir/$name.out
        exp=$tests/expected/$name.out
        # A block of role management only: nothing left to run.
        grep -q '[^[:space:]]' "$f" || continue
        "${psql_base[@]}" -d "$db" -a -v VERBOSITY=verbose \
            -v SHOW_CONTEXT=never \
            -c "SET search_path = analysts_clock, pg_catalog, public" \
            -f "$f" 2>&1 | normalize >"$out"
        if [ "${SQL_TEST_ACCEPT:-0}" = 1 ]; then
            cp "$out" "$exp"
        fi
        if [ -f "$exp" ] && diff -u "$exp" "$out" >"$out.diff"; then
            rm -f "$out.diff"
        else
            echo "docs: $name (docs/sql.md) differs from its expected output" \
                "(diff in ${out#"$root"/}.diff)"
            [ -f "$out.diff" ] && head -n 30 "$out.diff"
            failed=1
        fi
    done
    # An expected file whose block is gone from the page.
    for f in "$tests"/expected/analysts_*.out; do
        [ -f "$f" ] || continue
        name=$(basename "$f" .out)
        if [ ! -s "$dir/$name.sql" ]; then
            echo "docs: $name.out has no query in docs/sql.md"
            failed=1
        fi
    done
    "${psql_base[@]}" -d postgres -c "DROP DATABASE $db" >/dev/null 2>&1
    return $failed
}

check_docs() {
    local rc=0
    check_columns || rc=1
    check_analysts || rc=1
    return $rc
}

if [ $# -eq 0 ]; then
    if check_docs; then
        echo "ok   docs"
        passed=$((passed + 1))
    else
        echo "FAIL docs"
        failed=$((failed + 1))
    fi
fi

echo "sql: $passed passed, $failed failed"
[ "$failed" = 0 ]
