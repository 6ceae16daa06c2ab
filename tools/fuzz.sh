#!/usr/bin/env bash
# Build and run every libFuzzer target for SECONDS each.
#
#   tools/fuzz.sh SECONDS [NAME...]
#
# Each tests/fuzz/fuzz_<name>.c is linked with all of core/*.c (simplest way
# to give every target what it needs; fuzz_decode also gets worker/decode.c
# and the compression libraries, fuzz_translate and fuzz_translate_fast
# worker/translate*.c, fuzz_usage and fuzz_usage_resp worker/usage*.c and
# the decoders,
# fuzz_api admin/api_spec.c, fuzz_models shm/models.c and shm/prices.c,
# fuzz_tollctl tools/tollctl_*.c, fuzz_webhook admin/webhook.c,
# fuzz_metrics admin/metrics.c and shm/*.c) into build/fuzz/fuzz_<name>, and run
# for SECONDS on a scratch copy of tests/fuzz/corpus/<name>/ kept under
# build/fuzz/, so new inputs found by the fuzzer never pollute the repo.
# Crash inputs are written to build/fuzz/<name>-artifacts/.  Give NAMEs to
# run only those targets.  Exits non-zero when a target fails to build or
# finds anything.
set -uo pipefail

secs=${1:-}
if ! [[ "$secs" =~ ^[0-9]+$ ]]; then
    echo "usage: tools/fuzz.sh SECONDS [NAME...]" >&2
    exit 2
fi
shift

cd "$(dirname "$0")/.."
out=build/fuzz
mkdir -p "$out"

CC=${FUZZ_CC:-clang}
CFLAGS="-std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined"
CFLAGS="$CFLAGS -fno-sanitize-recover=undefined -I."
LIBS="-lconfig -ljansson -lcurl -lcrypto"

if [ $# -gt 0 ]; then
    targets=()
    for n in "$@"; do
        targets+=("tests/fuzz/fuzz_$n.c")
    done
else
    targets=(tests/fuzz/fuzz_*.c)
fi
if [ $# -eq 0 ] && [ ! -e "${targets[0]}" ]; then
    echo "fuzz: no targets in tests/fuzz" >&2
    exit 2
fi

core_src=(core/*.c)
failed=0
summary=()

for src in "${targets[@]}"; do
    name=$(basename "$src" .c)
    name=${name#fuzz_}
    bin=$out/fuzz_$name
    corpus=$out/$name-corpus
    artifacts=$out/$name-artifacts/
    log=$out/fuzz_$name.log

    if [ ! -f "$src" ]; then
        echo "fuzz: $src does not exist" >&2
        summary+=("$name: missing")
        failed=1
        continue
    fi
    echo "== fuzz_$name: build"
    extra_src=()
    extra_libs=""
    case "$name" in
    decode)
        extra_src=(worker/decode.c)
        extra_libs="-lz -lbrotlidec -lzstd" ;;
    translate | translate_fast)
        extra_src=(worker/translate.c worker/translate_req.c
            worker/translate_fast.c) ;;
    usage | usage_resp)
        extra_src=(worker/usage.c worker/usage_resp.c worker/decode.c)
        extra_libs="-lz -lbrotlidec -lzstd" ;;
    api) extra_src=(admin/api_spec.c) ;;
    models) extra_src=(shm/models.c shm/prices.c) ;;
    tollctl) extra_src=(tools/tollctl_*.c) ;;
    webhook) extra_src=(admin/webhook.c) ;;
    metrics) extra_src=(admin/metrics.c shm/*.c) ;;
    esac
    # shellcheck disable=SC2086
    if ! $CC $CFLAGS -o "$bin" "$src" "${core_src[@]}" "${extra_src[@]}" \
        $LIBS $extra_libs; then
        summary+=("$name: build failed")
        failed=1
        continue
    fi

    rm -rf "$artifacts"
    mkdir -p "$corpus" "$artifacts"
    if [ -d "tests/fuzz/corpus/$name" ]; then
        cp -r "tests/fuzz/corpus/$name/." "$corpus/"
    else
        echo "fuzz: no seed corpus tests/fuzz/corpus/$name/" >&2
    fi

    echo "== fuzz_$name: run ${secs}s"
    # libconfig 1.5 leaks a token on some syntax errors (fixed upstream
    # after 1.5); per-input leak checks would slow fuzz_conf a hundredfold.
    # The leak check at exit still runs.
    extra=()
    [ "$name" = conf ] && extra=(-detect_leaks=0)
    "$bin" "${extra[@]}" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$artifacts" \
        "$corpus" >"$log" 2>&1
    rc=$?
    execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' \
        "$log" | tail -n 1)
    crashes=$(find "$artifacts" -type f | wc -l)
    if [ "$rc" != 0 ] || [ "$crashes" != 0 ]; then
        echo "fuzz_$name: FAILED (exit $rc, $crashes artifact(s) in $artifacts)"
        grep -E "ERROR|SUMMARY|check failed|runtime error" "$log" | head -n 20
        echo "full log: $log"
        summary+=("$name: FAILED, ${execs:-?} execs, see $log")
        failed=1
    else
        summary+=("$name: ok, ${execs:-?} execs, corpus $(ls "$corpus" | wc -l)")
    fi
done

echo "== fuzz summary"
for line in "${summary[@]}"; do
    echo "$line"
done
exit "$failed"
