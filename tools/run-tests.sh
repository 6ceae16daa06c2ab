#!/usr/bin/env bash
# Run the unit, SQL and integration suites from build dir $1 and print one
# closing line "N passed, M failed" over both.  Exit non-zero on any failure,
# including a suite that crashed before printing its own count.
set -uo pipefail
build=${1:-build}
total_pass=0 total_fail=0

run_suite() {
    local name=$1; shift
    local out rc line p f
    out=$(mktemp)
    echo "== $name"
    "$@" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    line=$(grep -E "^$name: [0-9]+ passed, [0-9]+ failed" "$out" | tail -n 1)
    rm -f "$out"
    if [ -z "$line" ]; then
        echo "$name: suite did not report (exit status $rc)"
        total_fail=$((total_fail + 1))
        return
    fi
    p=$(sed -E 's/^[a-z]+: ([0-9]+) passed, ([0-9]+) failed.*/\1/' <<<"$line")
    f=$(sed -E 's/^[a-z]+: ([0-9]+) passed, ([0-9]+) failed.*/\2/' <<<"$line")
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
        echo "$name: exit status $rc"
        total_fail=$((total_fail + 1))
    fi
}

run_suite unit "$build/unit-tests"
run_suite sql tools/sql-test.sh
TG_BUILD="$build" run_suite integration "$build/integration-tests"

echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
