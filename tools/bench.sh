#!/usr/bin/env bash
# tools/bench.sh - Tollgate against nginx and the mock upstream, one run.
#
# Usage: tools/bench.sh BUILD_DIR        (make bench runs tools/bench.sh build)
#
# NOTES
#     Starts, on free loopback ports and in a private temp dir: the mock
#     upstream (the reference), Debian's nginx as a plain reverse proxy in
#     front of it, and Tollgate in front of it.  Then measures:
#       1. throughput: wrk -t2 -c64 POST /v1/messages (non-streaming) against
#          the mock, nginx and Tollgate: req/s, p50, p99;
#       2. latency added over the mock at concurrency 1 (wrk -t1 -c1);
#       3. streaming: 1,000 concurrent SSE streams of 20 chunks (loadgen)
#          against the mock, nginx and Tollgate: completions, errors, added
#          time to first byte, and each proxy's peak RSS (master + workers,
#          sampled every 50 ms) minus its idle RSS, per open stream;
#       4. BUILD_DIR/microbench, when that binary exists.
#     Prints a summary (ratios to the reference measured in this same run:
#     absolute numbers on a shared 2-CPU machine are noise) and writes the
#     method, versions, configs and every raw tool output to
#     BUILD_DIR/results-YYYYmmdd-HHMMSS.txt.  docs/benchmarks.md explains it.
#
#     Every process is started in its own session (setsid), so cleanup
#     can signal each one's whole process group by its id; the EXIT trap
#     does that for everything this script started.
#
#     Knobs (environment): BENCH_WORKERS (default: nproc), BENCH_MOCK_WORKERS
#     (default: BENCH_WORKERS), BENCH_CONNS (64), BENCH_THREADS (2),
#     BENCH_DURATION (10 s), BENCH_WARMUP (2 s), BENCH_ROUNDS (2: each wrk
#     measurement is taken that many times, in alternating order),
#     BENCH_LAT_DURATION (5 s),
#     BENCH_STREAMS (1000), BENCH_CHUNKS (20), BENCH_CHUNK_DELAY_MS (50),
#     BENCH_ACCESS_LOG (off; "on" logs to a file in both proxies),
#     BENCH_KEEP (1 keeps the temp dir).

set -u -o pipefail

SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_DIR=$SELF_DIR/bench

if [ $# -ne 1 ]; then
    echo "usage: tools/bench.sh BUILD_DIR" >&2
    exit 2
fi
BUILD=$(cd "$1" 2>/dev/null && pwd) || {
    echo "bench: build dir \"$1\" does not exist; run make first" >&2
    exit 1
}

NPROC=$(nproc)
WORKERS=${BENCH_WORKERS:-$NPROC}
MOCK_WORKERS=${BENCH_MOCK_WORKERS:-$WORKERS}
CONNS=${BENCH_CONNS:-64}
THREADS=${BENCH_THREADS:-2}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
ROUNDS=${BENCH_ROUNDS:-2}
LAT_DURATION=${BENCH_LAT_DURATION:-5}
STREAMS=${BENCH_STREAMS:-1000}
CHUNKS=${BENCH_CHUNKS:-20}
CHUNK_DELAY_MS=${BENCH_CHUNK_DELAY_MS:-50}
ACCESS_LOG=${BENCH_ACCESS_LOG:-off}
KEEP=${BENCH_KEEP:-0}
KEY=tg-bench-0123456789abcdef
LKEY=tg-bench-limited-0123456789 # a key with every limit set (none reached)
TARGET_RATIO=0.6
TARGET_KB_PER_STREAM=32

TOLLGATE=$BUILD/tollgate
MOCK=$BUILD/mock-upstream
LOADGEN=$BUILD/loadgen
MICROBENCH=$BUILD/microbench

STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS=$BUILD/results-$STAMP.txt
TMP=
PIDS=()        # session leaders started here, killed by process group
SUMMARY=()     # summary lines, printed at the end and saved


die()
{
    echo "bench: $*" >&2
    if [ -n "$RESULTS" ] && [ -f "$RESULTS" ]; then
        echo "bench: FAILED: $*" >>"$RESULTS"
        echo "bench: partial results in $RESULTS" >&2
    fi
    exit 1
}


# True while <pid> is a live process (a zombie awaiting wait is not).
alive()
{
    local line

    line=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    line=${line##*) }
    [ "${line%% *}" != Z ]
}


# Signal every process group we started: TERM, a grace period of up to
# 3 s for the masters to stop their workers, then KILL whatever is left.
cleanup()
{
    local pid any

    trap - EXIT INT TERM HUP PIPE
    for pid in "${PIDS[@]}"; do
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    done
    for _ in $(seq 30); do
        any=0
        for pid in "${PIDS[@]}"; do
            if alive "$pid"; then
                any=1
            fi
        done
        [ $any -eq 0 ] && break
        sleep 0.1
    done
    for pid in "${PIDS[@]}"; do
        kill -KILL -- "-$pid" 2>/dev/null
    done
    wait 2>/dev/null
    if [ -n "$TMP" ] && [ -d "$TMP" ]; then
        if [ "$KEEP" = 1 ]; then
            echo "bench: kept $TMP" >&2
        else
            rm -rf "$TMP"
        fi
    fi
}


# Run <cmd>... in its own session with output to <file>, and wait for it.
# Registered in PIDS meanwhile, so an interrupt kills it with the rest.
# Returns the command's exit status.
run_bounded()
{
    local file=$1 pid rc

    shift
    setsid "$@" >"$file" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait "$pid"
    rc=$?
    forget "$pid"
    return $rc
}


# Forget <pid> after it was stopped on purpose.
forget()
{
    local p out=()

    for p in "${PIDS[@]}"; do
        [ "$p" != "$1" ] && out+=("$p")
    done
    PIDS=("${out[@]}")
}


# Append to the results file.
out()
{
    printf '%s\n' "$*" >>"$RESULTS"
}


section()
{
    printf '\n==== %s ====\n' "$*" >>"$RESULTS"
}


# Add a line to the summary (kept in order, printed at the end).
say()
{
    SUMMARY+=("$*")
}


# Float arithmetic: calc FORMAT EXPR.
calc()
{
    awk "BEGIN { printf \"$1\", ($2) }"
}


# Set PORT to a free TCP port on 127.0.0.1, below the kernel's ephemeral
# range (so no outgoing connection of this run or anyone else's can take
# it between the check and the bind), not in use in any state, and not
# already picked by this run.
PICKED=" "
pick_port()
{
    local p lo

    lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
    lo=${lo:-32768}
    [ "$lo" -gt 12000 ] || lo=61000
    for _ in $(seq 200); do
        if [ "$lo" -eq 61000 ]; then
            p=$((61000 + RANDOM % 4000))
        else
            p=$((10000 + RANDOM % (lo - 10000)))
        fi
        case "$PICKED" in *" $p "*) continue ;; esac
        if [ -z "$(ss -Htan "sport = :$p" 2>/dev/null)" ]; then
            PICKED="$PICKED$p "
            PORT=$p
            return 0
        fi
    done
    return 1
}


# Wait until 127.0.0.1:<port> accepts connections while <pid> lives.
wait_port()
{
    local name=$1 pid=$2 port=$3 log=$4

    for _ in $(seq 100); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "bench: $name exited during start-up; its output:" >&2
            tail -n 20 "$log" >&2
            return 1
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    echo "bench: $name does not accept on 127.0.0.1:$port after 5 s" >&2
    tail -n 20 "$log" >&2
    return 1
}


# POST the non-streaming body once to <url> and insist on a 200 with an
# Anthropic message in it, so a broken component fails here, clearly,
# rather than as a suspiciously fast benchmark of error replies.
probe()
{
    local name=$1 url=$2 log=$3 code

    code=$(curl -sS -o "$TMP/probe-$name.out" -w '%{http_code}' \
                --max-time 10 -X POST "$url" \
                -H 'content-type: application/json' \
                -H 'anthropic-version: 2023-06-01' \
                -H "x-api-key: $KEY" \
                --data-binary "@$BENCH_DIR/messages.json" 2>"$TMP/probe-$name.err")
    section "probe $name: POST $url -> $code"
    cat "$TMP/probe-$name.out" "$TMP/probe-$name.err" >>"$RESULTS"
    out ""
    if [ "$code" != 200 ] || ! grep -q '"type":"message"' "$TMP/probe-$name.out"; then
        echo "bench: $name answers $code to POST $url, not a 200 message:" >&2
        head -c 600 "$TMP/probe-$name.out" "$TMP/probe-$name.err" >&2
        echo >&2
        echo "bench: last lines of $log:" >&2
        tail -n 20 "$log" >&2
        return 1
    fi
}


# Print <pid> and all its descendants, one per line.
tree()
{
    local pid=$1 c

    echo "$pid"
    for c in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
        tree "$c"
    done
}


# Sample, every 50 ms until killed, the summed VmRSS, Pss and open fds of
# the processes <pid>...: "<epoch-seconds> <rss-kB> <pss-kB> <fds>".
# Pure bash with no fork per sample, so sampling costs little CPU.
sampler()
{
    local pid k v rss pss fds f

    while :; do
        rss=0 pss=0 fds=0
        for pid in "$@"; do
            {
                while read -r k v _; do
                    if [ "$k" = VmRSS: ]; then
                        rss=$((rss + v))
                        break
                    fi
                done <"/proc/$pid/status"
                while read -r k v _; do
                    if [ "$k" = Pss: ]; then
                        pss=$((pss + v))
                        break
                    fi
                done <"/proc/$pid/smaps_rollup"
            } 2>/dev/null
            f=("/proc/$pid/fd/"*)
            fds=$((fds + ${#f[@]}))
        done
        echo "$EPOCHREALTIME $rss $pss $fds"
        sleep 0.04
    done
}


# Print the CPU time (user + system, clock ticks) used so far by the
# processes <pid>....  The command name in /proc/PID/stat may hold spaces
# ("worker 0"), so the fields are counted from the last ')'.
cpu_ticks()
{
    local pid line sum=0
    local -a f

    for pid in "$@"; do
        line=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        read -r -a f <<<"${line##*) }"
        sum=$((sum + f[11] + f[12]))
    done
    echo "$sum"
}


# wrk against <url>: run_wrk LABEL URL THREADS CONNS SECONDS [PID...].
# Sets W_RPS W_P50 W_P99 (ms) W_BAD (non-2xx + socket errors) W_REQS, and
# W_CPU: CPU microseconds the processes <pid>... spent per request (the
# figure least disturbed by other work on the machine).
run_wrk()
{
    local label=$1 url=$2 t=$3 c=$4 d=$5 raw parsed c0 c1
    shift 5

    raw=$TMP/wrk-$label.txt
    c0=$(cpu_ticks "$@")
    BENCH_BODY=$BENCH_DIR/messages.json BENCH_KEY=${WRK_KEY:-$KEY} \
        run_bounded "$raw" timeout $((d + 30)) wrk -t"$t" -c"$c" -d"${d}s" \
        --latency -s "$BENCH_DIR/post.lua" "$url"
    local rc=$?
    c1=$(cpu_ticks "$@")
    section "wrk $label: wrk -t$t -c$c -d${d}s --latency -s post.lua $url (exit $rc)"
    cat "$raw" >>"$RESULTS"
    [ $rc -eq 0 ] || die "wrk $label failed (exit $rc); see $RESULTS"
    parsed=$(awk '
        function ms(v) {
            if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
            if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
            if (v ~ /m$/)  return substr(v, 1, length(v) - 1) * 60000
            if (v ~ /s$/)  return substr(v, 1, length(v) - 1) * 1000
            return v + 0
        }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        /^Requests\/sec:/ { rps = $2 }
        /requests in/ { reqs = $1 }
        /Non-2xx or 3xx responses:/ { bad += $NF }
        /Socket errors:/ { gsub(",", ""); bad += $4 + $6 + $8 + $10 }
        END {
            if (rps == "" || p50 == "") exit 1
            printf "%s %.3f %.3f %d %d\n", rps, p50, p99, bad, reqs
        }' "$raw") || die "cannot parse the output of wrk $label; see $RESULTS"
    read -r W_RPS W_P50 W_P99 W_BAD W_REQS <<<"$parsed"
    W_CPU=$(calc '%.1f' "$W_REQS > 0 ? ($c1 - $c0) * 1000000 / $CLK_TCK / $W_REQS : 0")
    out "parsed: rps=$W_RPS p50_ms=$W_P50 p99_ms=$W_P99 errors=$W_BAD requests=$W_REQS cpu_us_per_request=$W_CPU (pids: ${*:-none})"
}


# Streaming run: run_stream LABEL URL [PID...].  With PIDs, samples their
# memory from 0.5 s before to 0.5 s after the load.  Sets S_DONE S_ERR
# S_TTFB50 S_TTFB99 S_PEAK S_IDLE S_PSS_PEAK S_PSS_IDLE S_FDS_PEAK
# S_FDS_IDLE S_AFTER S_DUR (s) S_TICK (mean ms between samples).
run_stream()
{
    local label=$1 url=$2 raw samples spid t0 t1 rc
    shift 2

    raw=$TMP/loadgen-$label.txt
    samples=$TMP/rss-$label.txt
    spid=
    if [ $# -gt 0 ]; then
        setsid bash -c "$(declare -f sampler); sampler $*" >"$samples" 2>/dev/null &
        spid=$!
        PIDS+=("$spid")
        sleep 0.5
    fi
    t0=$EPOCHREALTIME
    run_bounded "$raw" timeout 90 "$LOADGEN" -u "$url" -c "$STREAMS" \
        -n "$STREAMS" -b "$BENCH_DIR/messages-stream.json" \
        -H "x-api-key: $KEY" -H "anthropic-version: 2023-06-01" \
        -H "content-type: application/json" \
        -H "x-mock-chunks: $CHUNKS" -H "x-mock-delay-ms: $CHUNK_DELAY_MS" \
        --expect-status 200
    rc=$?
    t1=$EPOCHREALTIME
    if [ -n "$spid" ]; then
        sleep 0.5
        kill -TERM -- "-$spid" 2>/dev/null
        wait "$spid" 2>/dev/null
        forget "$spid"
    fi
    section "loadgen $label: loadgen -u $url -c $STREAMS -n $STREAMS -b messages-stream.json -H x-mock-chunks:$CHUNKS -H x-mock-delay-ms:$CHUNK_DELAY_MS (exit $rc)"
    cat "$raw" >>"$RESULTS"
    [ $rc -eq 0 ] || [ $rc -eq 1 ] \
        || die "loadgen $label failed (exit $rc); see $RESULTS"
    S_DONE=$(sed -n 's/^completed=//p' "$raw")
    S_ERR=$(sed -n 's/^errors=//p' "$raw")
    S_TTFB50=$(sed -n 's/^ttfb_p50_ms=//p' "$raw")
    S_TTFB99=$(sed -n 's/^ttfb_p99_ms=//p' "$raw")
    S_DUR=$(sed -n 's/^duration_s=//p' "$raw")
    [ -n "$S_DONE" ] && [ -n "$S_TTFB50" ] \
        || die "cannot parse the output of loadgen $label; see $RESULTS"
    S_ERR=${S_ERR:-0}
    S_PEAK=0 S_IDLE=0 S_PSS_PEAK=0 S_PSS_IDLE=0 S_FDS_PEAK=0 S_FDS_IDLE=0 S_AFTER=0
    S_TICK=0
    if [ -n "$spid" ]; then
        # Idle = mean of the samples before the load; peak = the largest
        # RSS (and, separately, the most fds) seen during the load; after =
        # the last sample, 0.5 s after the load.
        read -r S_IDLE S_PSS_IDLE S_FDS_IDLE S_PEAK S_PSS_PEAK S_FDS_PEAK S_AFTER S_TICK \
            < <(awk -v t0="$t0" -v t1="$t1" '
                $2 == 0 { next }
                { if (first == "") first = $1; lastt = $1; ns++ }
                $1 < t0 { n++; ri += $2; pi += $3; fi += $4; next }
                $1 <= t1 && $2 > rp { rp = $2; pp = $3 }
                $1 <= t1 && $4 > fp { fp = $4 }
                { last = $2 }
                END {
                    if (n == 0) n = 1
                    tick = ns > 1 ? (lastt - first) * 1000 / (ns - 1) : 0
                    printf "%d %d %d %d %d %d %d %.0f\n", ri / n, pi / n,
                           fi / n, rp, pp, fp, last, tick
                }' "$samples")
        section "memory samples $label (epoch-s rss-kB pss-kB fds; load from $t0 to $t1)"
        cat "$samples" >>"$RESULTS"
        out "parsed: idle_rss_kb=$S_IDLE idle_pss_kb=$S_PSS_IDLE idle_fds=$S_FDS_IDLE peak_rss_kb=$S_PEAK peak_pss_kb=$S_PSS_PEAK peak_fds=$S_FDS_PEAK rss_after_kb=$S_AFTER"
    fi
}


# ---------------------------------------------------------------- checks

for bin in "$TOLLGATE" "$MOCK" "$LOADGEN"; do
    [ -x "$bin" ] || die "$bin is missing; run make first"
done
for tool in nginx wrk curl ss setsid timeout awk; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed"
done
NGINX=$(command -v nginx)
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

# 1,000 streams hold a client and an upstream socket in each proxy, and as
# many again in loadgen and the mock.
NOFILE_HARD=$(ulimit -Hn)
if [ "$NOFILE_HARD" = unlimited ] || [ "$NOFILE_HARD" -gt 65536 ]; then
    NOFILE_HARD=65536
fi
ulimit -n "$NOFILE_HARD" 2>/dev/null || die "cannot raise ulimit -n to $NOFILE_HARD"
NOFILE=$(ulimit -n)
[ "$NOFILE" -ge $((2 * STREAMS + 256)) ] \
    || die "ulimit -n is $NOFILE; $STREAMS streams need $((2 * STREAMS + 256))"

case "$ACCESS_LOG" in
on | off) ;;
*) die "BENCH_ACCESS_LOG must be on or off" ;;
esac

TMP=$(mktemp -d /tmp/tollgate-bench.XXXXXX) || die "mktemp failed"
chmod 755 "$TMP"
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE
: >"$RESULTS" || die "cannot write $RESULTS"

# ---------------------------------------------------------------- method

LOADAVG_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

{
    echo "Tollgate benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo
    echo "Method: tools/bench.sh and docs/benchmarks.md.  All processes on"
    echo "127.0.0.1; load generator, mock and proxy share the same CPUs, so"
    echo "compare the ratios, not the absolute numbers."
    echo
    echo "workers: tollgate $WORKERS, nginx $WORKERS, mock $MOCK_WORKERS"
    echo "throughput: wrk -t$THREADS -c$CONNS -d${DURATION}s --latency, after a ${WARMUP}s warm-up"
    echo "latency: wrk -t1 -c1 -d${LAT_DURATION}s --latency"
    echo "streaming: loadgen -c $STREAMS -n $STREAMS, $CHUNKS chunks per stream, $CHUNK_DELAY_MS ms before each"
    echo "access log: $ACCESS_LOG in both proxies; error logs to the temp dir"
    echo "ulimit -n: $NOFILE"
    echo
    echo "---- versions"
    echo "kernel: $(uname -srm)"
    echo "cpu: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "nproc: $NPROC"
    echo "nginx: $("$NGINX" -v 2>&1)"
    echo "wrk: $(wrk -v 2>&1 | head -n 1)"
    echo "tollgate: $("$TOLLGATE" -v 2>&1)"
    echo "libcurl: $(curl-config --version 2>/dev/null || echo unknown)"
    echo "git: $(git -C "$SELF_DIR/.." describe --always --dirty 2>/dev/null || echo unknown)"
    echo "loadavg before: $LOADAVG_BEFORE"
} >>"$RESULTS"

# ---------------------------------------------------------------- start

MOCK_LOG=$TMP/mock.log
: >"$MOCK_LOG"
setsid "$MOCK" -l 127.0.0.1:0 -w "$MOCK_WORKERS" -q >"$MOCK_LOG" 2>&1 &
MOCK_PID=$!
PIDS+=("$MOCK_PID")
MOCK_PORT=
for _ in $(seq 100); do
    MOCK_PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$MOCK_LOG" | head -n 1)
    [ -n "$MOCK_PORT" ] && break
    kill -0 "$MOCK_PID" 2>/dev/null || break
    sleep 0.05
done
[ -n "$MOCK_PORT" ] || { tail -n 20 "$MOCK_LOG" >&2; die "mock-upstream did not start"; }
wait_port mock-upstream "$MOCK_PID" "$MOCK_PORT" "$MOCK_LOG" \
    || die "mock-upstream did not start"

if [ "$ACCESS_LOG" = on ]; then
    NGX_ACCESS="$TMP/nginx-access.log"
    TG_ACCESS="$TMP/tollgate-access.log"
else
    NGX_ACCESS=off
    TG_ACCESS=off
fi

pick_port || die "no free port for nginx"
NGX_PORT=$PORT
USER_LINE="# (not root: workers run as the current user)"
if [ "$(id -u)" = 0 ]; then
    USER_LINE="user $(id -un) $(id -gn);"
fi
sed -e "s|@TMP@|$TMP|g" -e "s|@WORKERS@|$WORKERS|g" \
    -e "s|@NOFILE@|$NOFILE|g" -e "s|@PORT@|$NGX_PORT|g" \
    -e "s|@MOCK_PORT@|$MOCK_PORT|g" -e "s|@ACCESS_LOG@|$NGX_ACCESS|g" \
    -e "s|@WORKER_CONNECTIONS@|$((NOFILE < 16384 ? NOFILE - 64 : 16384))|g" \
    -e "s|@USER_LINE@|$USER_LINE|g" \
    "$BENCH_DIR/nginx.conf.in" >"$TMP/nginx.conf"
NGX_LOG=$TMP/nginx-error.log
"$NGINX" -t -q -p "$TMP" -e "$NGX_LOG" -c "$TMP/nginx.conf" >"$TMP/nginx-t.log" 2>&1 \
    || { cat "$TMP/nginx-t.log" >&2; die "nginx rejects $TMP/nginx.conf"; }
setsid "$NGINX" -p "$TMP" -e "$NGX_LOG" -c "$TMP/nginx.conf" >"$TMP/nginx.out" 2>&1 &
NGX_PID=$!
PIDS+=("$NGX_PID")
wait_port nginx "$NGX_PID" "$NGX_PORT" "$TMP/nginx.out" || die "nginx did not start"

pick_port || die "no free port for tollgate"
TG_PORT=$PORT
sed -e "s|@TMP@|$TMP|g" -e "s|@WORKERS@|$WORKERS|g" \
    -e "s|@PORT@|$TG_PORT|g" -e "s|@MOCK_PORT@|$MOCK_PORT|g" \
    -e "s|@ACCESS_LOG@|$TG_ACCESS|g" -e "s|@KEY@|$KEY|g" -e "s|@LKEY@|$LKEY|g" \
    "$BENCH_DIR/tollgate.conf.in" >"$TMP/tollgate.conf"
TG_LOG=$TMP/tollgate-error.log
"$TOLLGATE" -t -c "$TMP/tollgate.conf" >"$TMP/tollgate-t.log" 2>&1 \
    || { cat "$TMP/tollgate-t.log" >&2; die "tollgate rejects $TMP/tollgate.conf"; }
setsid "$TOLLGATE" -c "$TMP/tollgate.conf" >"$TMP/tollgate.out" 2>&1 &
TG_PID=$!
PIDS+=("$TG_PID")
wait_port tollgate "$TG_PID" "$TG_PORT" "$TMP/tollgate.out" || die "tollgate did not start"

MOCK_URL=http://127.0.0.1:$MOCK_PORT/v1/messages
NGX_URL=http://127.0.0.1:$NGX_PORT/v1/messages
TG_URL=http://127.0.0.1:$TG_PORT/v1/messages

probe mock "$MOCK_URL" "$MOCK_LOG" || die "mock-upstream does not answer"
probe nginx "$NGX_URL" "$NGX_LOG" || die "nginx does not proxy"
probe tollgate "$TG_URL" "$TG_LOG" || die "tollgate does not proxy"

MOCK_PIDS=$(tree "$MOCK_PID" | tr '\n' ' ')
NGX_PIDS=$(tree "$NGX_PID" | tr '\n' ' ')
TG_PIDS=$(tree "$TG_PID" | tr '\n' ' ')

section "configs"
out "mock-upstream: $MOCK -l 127.0.0.1:0 -w $MOCK_WORKERS -q  (port $MOCK_PORT)"
out "mock-upstream processes (parent first): $MOCK_PIDS"
out "nginx processes (master first): $NGX_PIDS"
out "tollgate processes (master first): $TG_PIDS"
out ""
out "---- $TMP/nginx.conf"
cat "$TMP/nginx.conf" >>"$RESULTS"
out ""
out "---- $TMP/tollgate.conf"
cat "$TMP/tollgate.conf" >>"$RESULTS"
out ""
out "---- request body (non-streaming; the streaming one adds \"stream\":true)"
cat "$BENCH_DIR/messages.json" >>"$RESULTS"

echo "bench: mock :$MOCK_PORT, nginx :$NGX_PORT, tollgate :$TG_PORT; running (about 2 minutes)" >&2

# ---------------------------------------------------------------- throughput

url_of()
{
    case $1 in
    mock) echo "$MOCK_URL" ;;
    nginx) echo "$NGX_URL" ;;
    tollgate | limited) echo "$TG_URL" ;;
    esac
}


pids_of()
{
    case $1 in
    mock) echo "$MOCK_PIDS" ;;
    nginx) echo "$NGX_PIDS" ;;
    tollgate | limited) echo "$TG_PIDS" ;;
    esac
}


# "limited" is Tollgate again, with a key that has an rpm, burst, tpm,
# concurrency limit, a user quota and a model allow-list (set high enough
# never to refuse): the cost of the limits against the unlimited key.
key_of()
{
    case $1 in
    limited) echo "$LKEY" ;;
    *) echo "$KEY" ;;
    esac
}


# Rounds alternate the order (mock nginx tollgate, then tollgate nginx
# mock, ...), so a burst of load from elsewhere on the machine does not
# always land on the same target; the summary shows the mean of the rounds
# and each round's ratio.
order_of()
{
    if [ $(($1 % 2)) -eq 1 ]; then
        echo mock nginx tollgate
    else
        echo tollgate nginx mock
    fi
}

declare -A RPS P50 P99 BAD LP50 LP99 LBAD RRPS CPU
for t in mock nginx tollgate limited; do
    CPU[$t]=0 RPS[$t]=0 P50[$t]=0 P99[$t]=0 BAD[$t]=0
    LP50[$t]=0 LP99[$t]=0 LBAD[$t]=0
done
for r in $(seq "$ROUNDS"); do
    for t in $(order_of "$r") limited; do
        WRK_KEY=$(key_of "$t")
        if [ "$r" -eq 1 ] && [ "$WARMUP" -gt 0 ]; then
            run_wrk "warmup-$t" "$(url_of "$t")" "$THREADS" "$CONNS" "$WARMUP"
        fi
        # shellcheck disable=SC2046 # a list of pids
        run_wrk "c$CONNS-$t-round$r" "$(url_of "$t")" "$THREADS" "$CONNS" "$DURATION" $(pids_of "$t")
        WRK_KEY=
        RRPS[$t,$r]=$W_RPS
        CPU[$t]=$(calc '%.2f' "${CPU[$t]} + $W_CPU / $ROUNDS")
        RPS[$t]=$(calc '%.2f' "${RPS[$t]} + $W_RPS / $ROUNDS")
        P50[$t]=$(calc '%.3f' "${P50[$t]} + $W_P50 / $ROUNDS")
        P99[$t]=$(calc '%.3f' "${P99[$t]} + $W_P99 / $ROUNDS")
        BAD[$t]=$((BAD[$t] + W_BAD))
    done
done

# ---------------------------------------------------------------- latency

for r in $(seq "$ROUNDS"); do
    for t in $(order_of "$r"); do
        run_wrk "c1-$t-round$r" "$(url_of "$t")" 1 1 "$LAT_DURATION"
        LP50[$t]=$(calc '%.3f' "${LP50[$t]} + $W_P50 / $ROUNDS")
        LP99[$t]=$(calc '%.3f' "${LP99[$t]} + $W_P99 / $ROUNDS")
        LBAD[$t]=$((LBAD[$t] + W_BAD))
    done
done

# ---------------------------------------------------------------- streaming

# Memory is taken from each proxy's first streaming run only: afterwards
# the proxy holds its idle upstream connections and allocator pages, and
# a second run would measure growth beyond that high-water mark instead.
declare -A SDONE SERR ST50 ST99 SPEAK SIDLE SFPEAK SFIDLE SAFTER SDUR STICK
for t in mock nginx tollgate; do
    SDONE[$t]=0 SERR[$t]=0 ST50[$t]=0 ST99[$t]=0 SDUR[$t]=0
done
for r in $(seq "$ROUNDS"); do
    for t in $(order_of "$r"); do
        pids=
        if [ "$r" -eq 1 ]; then
            case $t in
            nginx) pids=$NGX_PIDS ;;
            tollgate) pids=$TG_PIDS ;;
            esac
        fi
        # shellcheck disable=SC2086 # pids is a list
        run_stream "$t-round$r" "$(url_of "$t")" $pids
        SDONE[$t]=$((SDONE[$t] + S_DONE))
        SERR[$t]=$((SERR[$t] + S_ERR))
        ST50[$t]=$(calc '%.3f' "${ST50[$t]} + $S_TTFB50 / $ROUNDS")
        ST99[$t]=$(calc '%.3f' "${ST99[$t]} + $S_TTFB99 / $ROUNDS")
        SDUR[$t]=$(calc '%.3f' "$S_DUR > ${SDUR[$t]} ? $S_DUR : ${SDUR[$t]}")
        if [ -n "$pids" ]; then
            SPEAK[$t]=$S_PEAK SIDLE[$t]=$S_IDLE SFPEAK[$t]=$S_FDS_PEAK
            SFIDLE[$t]=$S_FDS_IDLE SAFTER[$t]=$S_AFTER STICK[$t]=$S_TICK
        fi
    done
done

# ---------------------------------------------------------------- translation

# Translation CPU per streamed chunk (docs/benchmarks.md, "Translation"):
# a second Tollgate ("xl") on the same mock, with one Anthropic and one
# OpenAI endpoint, each in a group of its own and reached through a key of
# that group, so that each of four streams is known to go where it should:
#   a  Anthropic client -> Anthropic endpoint (pass-through)
#   b  Anthropic client -> OpenAI endpoint    (translated)
#   c  OpenAI client    -> OpenAI endpoint    (pass-through)
#   d  OpenAI client    -> Anthropic endpoint (translated)
# and nginx passes streams a and c through as the reference ("na", "nc").
# Each run is loadgen with XL_STREAMS streams at once of XL_CHUNKS text
# deltas, the mock waiting XL_DELAY_MS before each (as a model's tokens
# come: each chunk reaches the proxy in a read of its own); the figure is
# the CPU (utime + stime from /proc/PID/stat) the proxy's worker processes
# used during the run, divided by the text deltas streamed.  Rounds
# alternate the order of the six runs; the summary gives the median over
# the rounds of each figure and of each per-round ratio.  Knobs:
# BENCH_XL_STREAMS (500), BENCH_XL_CHUNKS (200), BENCH_XL_DELAY_MS (20;
# 0 sends the chunks back to back, so that many arrive in one read),
# BENCH_XL_CONNS (= streams), BENCH_XL_ROUNDS (9).
XL_KEY_A=tg-bench-xl-anthropic-0123456789
XL_KEY_O=tg-bench-xl-openai-0123456789ab

# The worker processes below <pid>: those whose title names a worker
# ("tollgate: worker 0", "nginx: worker process"), not the master or
# Tollgate's admin process.
xl_workers()
{
    local p

    for p in $(tree "$1" | tail -n +2); do
        if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q worker; then
            printf '%s ' "$p"
        fi
    done
}


# Start the xl Tollgate; sets XL_URL_M, XL_URL_C, XL_WORKER_PIDS.
xl_start()
{
    local port pid

    pick_port || die "no free port for the translation Tollgate"
    port=$PORT
    cat >"$TMP/xl.conf" <<EOF
listen = { address = "127.0.0.1"; port = $port; };
workers = $WORKERS;
admin = { address = "127.0.0.1"; port = 0; };
pid_file = "$TMP/xl.pid";
log = { error = "$TMP/xl-error.log"; access = "off"; level = "info"; };
limits = { max_connections = 10000; };
groups = ( { name = "ant"; }, { name = "oai"; } );
endpoints = (
    { name = "ant"; url = "http://127.0.0.1:$MOCK_PORT"; style = "anthropic";
      credential = "bench-upstream-key"; group = "ant"; },
    { name = "oai"; url = "http://127.0.0.1:$MOCK_PORT"; style = "openai";
      credential = "bench-upstream-key"; group = "oai"; }
);
keys = (
    { key = "$XL_KEY_A"; group = "ant"; },
    { key = "$XL_KEY_O"; group = "oai"; }
);
EOF
    "$TOLLGATE" -t -c "$TMP/xl.conf" >"$TMP/xl-t.log" 2>&1 \
        || { cat "$TMP/xl-t.log" >&2; die "tollgate rejects $TMP/xl.conf"; }
    setsid "$TOLLGATE" -c "$TMP/xl.conf" >"$TMP/xl.out" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_port tollgate-xl "$pid" "$port" "$TMP/xl.out" \
        || die "the translation Tollgate did not start"
    sleep 0.3
    XL_PID=$pid
    XL_WORKER_PIDS=$(xl_workers "$pid")
    XL_URL_M=http://127.0.0.1:$port/v1/messages
    XL_URL_C=http://127.0.0.1:$port/v1/chat/completions
    # The OpenAI client's body: the same conversation as the Anthropic one.
    cat >"$TMP/chat-stream.json" <<'EOF'
{"model":"gpt-4o","max_completion_tokens":1024,"messages":[{"role":"system","content":"You are a concise assistant that answers questions about the operation of toll roads, bridges and tunnels. Prefer short, factual answers and say when you do not know."},{"role":"user","content":"How do toll booths decide how much a vehicle pays? Answer in three sentences."},{"role":"assistant","content":"Most toll systems charge by vehicle class, usually counted by axles or weight, and sometimes by time of day. Electronic systems read a transponder or a licence plate and bill an account. Distance-based roads charge for the stretch between entry and exit."},{"role":"user","content":"And how do open-road systems handle vehicles without a transponder?"}],"temperature":0.7,"stream":true,"stream_options":{"include_usage":true}}
EOF
}


# One run: xl_run CASE.  Sets XL_CPU (worker CPU ns per text delta) and
# adds the run's failures to XL_BAD.
xl_run()
{
    local case=$1 url key pids body raw c0 c1 rc done err unterm
    local -a hdr

    case $case in
    a | b) url=$XL_URL_M pids=$XL_WORKER_PIDS ;;
    c | d) url=$XL_URL_C pids=$XL_WORKER_PIDS ;;
    na) url=$NGX_URL pids=$XL_NGX_WORKERS ;;
    nc) url=http://127.0.0.1:$NGX_PORT/v1/chat/completions pids=$XL_NGX_WORKERS ;;
    esac
    case $case in
    a | d) key=$XL_KEY_A ;;
    b | c) key=$XL_KEY_O ;;
    *) key=$KEY ;;
    esac
    case $case in
    a | b | na)
        body=$BENCH_DIR/messages-stream.json
        hdr=(-H "x-api-key: $key" -H "anthropic-version: 2023-06-01")
        ;;
    *)
        body=$TMP/chat-stream.json
        hdr=(-H "authorization: Bearer $key")
        ;;
    esac
    raw=$TMP/xl-$case.txt
    # shellcheck disable=SC2086 # pids is a list
    c0=$(cpu_ticks $pids)
    run_bounded "$raw" timeout 120 "$LOADGEN" -u "$url" -c "$XL_CONNS" \
        -n "$XL_STREAMS" -b "$body" "${hdr[@]}" \
        -H "content-type: application/json" \
        -H "x-mock-chunks: $XL_CHUNKS" -H "x-mock-delay-ms: $XL_DELAY_MS" \
        --expect-status 200
    rc=$?
    # shellcheck disable=SC2086
    c1=$(cpu_ticks $pids)
    section "translation $case: loadgen -u $url -c $XL_CONNS -n $XL_STREAMS -b $(basename "$body") x-mock-chunks:$XL_CHUNKS x-mock-delay-ms:$XL_DELAY_MS (exit $rc; worker ticks $c0 -> $c1)"
    cat "$raw" >>"$RESULTS"
    done=$(sed -n 's/^completed=//p' "$raw")
    err=$(sed -n 's/^errors=//p' "$raw")
    unterm=$(sed -n 's/^sse_unterminated=//p' "$raw")
    if [ "${done:-0}" -ne "$XL_STREAMS" ] || [ "${err:-1}" -ne 0 ] \
        || [ "${unterm:-1}" -ne 0 ]; then
        XL_BAD=$((XL_BAD + 1))
    fi
    XL_CPU=$(calc '%.1f' "($c1 - $c0) * 1000000000 / $CLK_TCK / ($XL_STREAMS * $XL_CHUNKS)")
    out "parsed: completed=$done errors=$err unterminated=$unterm worker_cpu_ns_per_chunk=$XL_CPU"
}


# The median of the numbers given.
xl_median()
{
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
        END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}


# The whole section: rounds, then summary lines.
translation_bench()
{
    local r t order
    local -A XL
    local -a rab rdc rang rcng ca cb cc cd cna cnc

    XL_STREAMS=${BENCH_XL_STREAMS:-500}
    XL_CHUNKS=${BENCH_XL_CHUNKS:-200}
    XL_DELAY_MS=${BENCH_XL_DELAY_MS:-20}
    XL_CONNS=${BENCH_XL_CONNS:-$XL_STREAMS}
    XL_ROUNDS=${BENCH_XL_ROUNDS:-9}
    XL_BAD=0
    XL_NGX_WORKERS=$(xl_workers "$NGX_PID")
    xl_start
    echo "bench: translation: $XL_ROUNDS rounds of 6 runs of $XL_STREAMS streams x $XL_CHUNKS chunks" >&2
    # A warm-up run of each kind, not counted.
    out "translation: worker processes: tollgate $XL_WORKER_PIDS, nginx $XL_NGX_WORKERS"
    for t in a b c d na nc; do
        xl_run "$t"
    done
    for r in $(seq "$XL_ROUNDS"); do
        if [ $((r % 2)) -eq 1 ]; then
            order="a b c d na nc"
        else
            order="nc na d c b a"
        fi
        for t in $order; do
            xl_run "$t"
            XL[$t]=$XL_CPU
        done
        ca+=("${XL[a]}") cb+=("${XL[b]}") cc+=("${XL[c]}") cd+=("${XL[d]}")
        cna+=("${XL[na]}") cnc+=("${XL[nc]}")
        rab+=("$(calc '%.3f' "${XL[b]} / ${XL[a]}")")
        rdc+=("$(calc '%.3f' "${XL[d]} / ${XL[c]}")")
        rang+=("$(calc '%.3f' "${XL[a]} / ${XL[na]}")")
        rcng+=("$(calc '%.3f' "${XL[c]} / ${XL[nc]}")")
    done
    [ "$(xl_workers "$XL_PID")" = "$XL_WORKER_PIDS" ] \
        || XL_BAD=$((XL_BAD + 1000))
    say ""
    say "Translation CPU per streamed chunk: $XL_STREAMS streams x $XL_CHUNKS text deltas, $XL_CONNS at once, $XL_DELAY_MS ms before each delta; worker utime+stime / deltas, median of $XL_ROUNDS rounds"
    say "$(printf '  %-44s %12s   %s' run ns/chunk 'per round')"
    say "$(printf '  %-44s %12s   %s' 'a  Anthropic client -> Anthropic (pass)' "$(xl_median "${ca[@]}")" "${ca[*]}")"
    say "$(printf '  %-44s %12s   %s' 'b  Anthropic client -> OpenAI (translated)' "$(xl_median "${cb[@]}")" "${cb[*]}")"
    say "$(printf '  %-44s %12s   %s' 'c  OpenAI client -> OpenAI (pass)' "$(xl_median "${cc[@]}")" "${cc[*]}")"
    say "$(printf '  %-44s %12s   %s' 'd  OpenAI client -> Anthropic (translated)' "$(xl_median "${cd[@]}")" "${cd[*]}")"
    say "$(printf '  %-44s %12s   %s' 'nginx, stream a' "$(xl_median "${cna[@]}")" "${cna[*]}")"
    say "$(printf '  %-44s %12s   %s' 'nginx, stream c' "$(xl_median "${cnc[@]}")" "${cnc[*]}")"
    t=$(xl_median "${rab[@]}")
    say "  translation CPU per chunk vs pass-through, (b)/(a) = $t  (target <= 1.05: $(awk -v r="$t" 'BEGIN { print (r <= 1.05) ? "ok" : "ABOVE TARGET" }'); per round: ${rab[*]})"
    t=$(xl_median "${rdc[@]}")
    say "  translation CPU per chunk vs pass-through, (d)/(c) = $t  (target <= 1.05: $(awk -v r="$t" 'BEGIN { print (r <= 1.05) ? "ok" : "ABOVE TARGET" }'); per round: ${rdc[*]})"
    say "  pass-through CPU per chunk vs nginx, (a)/nginx = $(xl_median "${rang[@]}"), (c)/nginx = $(xl_median "${rcng[@]}")  (per round: ${rang[*]} / ${rcng[*]})"
    if [ "$XL_BAD" -ne 0 ]; then
        say "  WARNING: some translation runs failed or a worker was respawned ($XL_BAD); these figures are not valid; see the results file"
    fi
    for f in "$TMP/xl-error.log"; do
        section "$(basename "$f"): last 20 lines"
        tail -n 20 "$f" >>"$RESULTS" 2>/dev/null
    done
}

# ---------------------------------------------------------------- health

# A proxy whose processes changed during the run crashed and was
# respawned: its numbers are not to be trusted.
RESPAWNED=
[ "$(tree "$NGX_PID" | tr '\n' ' ')" = "$NGX_PIDS" ] || RESPAWNED="$RESPAWNED nginx"
[ "$(tree "$TG_PID" | tr '\n' ' ')" = "$TG_PIDS" ] || RESPAWNED="$RESPAWNED tollgate"

section "mock-upstream /_mock/stats after the run"
curl -sS --max-time 5 "http://127.0.0.1:$MOCK_PORT/_mock/stats" >>"$RESULTS" 2>&1
out ""
for f in "$NGX_LOG" "$TG_LOG" "$MOCK_LOG"; do
    section "$(basename "$f"): $(wc -l <"$f" 2>/dev/null || echo 0) lines, last 40"
    tail -n 40 "$f" >>"$RESULTS" 2>/dev/null
done

# ---------------------------------------------------------------- microbench

MB_OUT=
mb_rc=0
if [ -x "$MICROBENCH" ]; then
    run_bounded "$TMP/microbench.txt" timeout 120 "$MICROBENCH"
    mb_rc=$?
    MB_OUT=$(cat "$TMP/microbench.txt")
    section "microbench: $MICROBENCH (exit $mb_rc)"
    printf '%s\n' "$MB_OUT" >>"$RESULTS"
fi

# ---------------------------------------------------------------- accounting

# PostgreSQL accounting: the same wrk load against three Tollgates in front
# of the same mock, started side by side from tollgate.conf.in: "nodb"
# (no database: usage records are only counted), "pg" (a private
# PostgreSQL, tools/pg-local.sh: usage aggregated per hour into
# usage_hourly, quotas and prices synced) and "detail" (the same plus
# usage.detail: one usage_requests row per request).  BENCH_PG_ROUNDS
# (default 4) rounds, the order alternating; each round's ratio to nodb,
# and the median over the rounds.  pg runs right after nodb in odd rounds
# and right before it in even ones, so with an even count a machine that
# drifts slower (or faster) during the section biases half the rounds
# each way, and the median cancels it.  Then the ingestion rate end to end:
# pg's admin is stopped (SIGSTOP) while wrk fills its ring (and, when the
# ring is full, the workers' spool files), then continued; records/s =
# the records sent meanwhile / the time until usage_hourly counts them all
# (committed).  BENCH_PG=off skips the section.  PostgreSQL runs on the
# same CPUs (fsync off, as pg-local.sh starts it), so its work is part of
# the cost measured.

# Start a Tollgate for variant <name> on a free port, with <extra> appended
# to its config; sets ACCT_PORT[name] and ACCT_PIDS[name].
acct_start()
{
    local name=$1 extra=$2 conf=$TMP/acct-$1.conf pid

    pick_port || die "no free port for tollgate ($name)"
    ACCT_PORT[$name]=$PORT
    sed -e "s|@TMP@|$TMP/acct-$name|g" -e "s|@WORKERS@|$WORKERS|g" \
        -e "s|@PORT@|$PORT|g" -e "s|@MOCK_PORT@|$MOCK_PORT|g" \
        -e "s|@ACCESS_LOG@|$TG_ACCESS|g" -e "s|@KEY@|$KEY|g" -e "s|@LKEY@|$LKEY|g" \
        "$BENCH_DIR/tollgate.conf.in" >"$conf"
    printf '%s\n' "$extra" >>"$conf"
    mkdir -p "$TMP/acct-$name"
    "$TOLLGATE" -t -c "$conf" >"$TMP/acct-$name.t" 2>&1 \
        || { cat "$TMP/acct-$name.t" >&2; die "tollgate rejects $conf"; }
    setsid env -u TOLLGATE_DATABASE "$TOLLGATE" -c "$conf" \
        >"$TMP/acct-$name.out" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    ACCT_PID[$name]=$pid
    wait_port "tollgate ($name)" "$pid" "$PORT" "$TMP/acct-$name.out" \
        || die "tollgate ($name) did not start"
    section "configs: $conf"
    cat "$conf" >>"$RESULTS"
}


# psql against variant pg's database: acct_sql SQL; prints the value.
acct_sql()
{
    psql -X -q -At -d "${ACCT_DB/dbname=postgres/dbname=bench_pg}" -c "$1" \
        2>>"$TMP/acct-psql.err"
}


# Wait until usage_hourly counts <n> requests (at most <secs> seconds);
# prints the seconds it took, from now, or fails.
acct_wait_rows()
{
    local want=$1 secs=$2 t0 got

    t0=$EPOCHREALTIME
    while :; do
        got=$(acct_sql "SELECT coalesce(sum(requests), 0) FROM usage_hourly")
        [ "${got:-0}" -ge "$want" ] && break
        if [ "$(calc '%d' "$EPOCHREALTIME - $t0 > $secs")" = 1 ]; then
            out "acct: usage_hourly holds ${got:-?} requests, want $want"
            return 1
        fi
        sleep 0.02
    done
    calc '%.3f' "$EPOCHREALTIME - $t0"
}


# The median of the numbers given.
acct_median()
{
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
        END { if (NR % 2) print v[(NR + 1) / 2];
              else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}


acct_section()
{
    local rounds=${BENCH_PG_ROUNDS:-4} r t order pgdir port admin
    local before sent secs i pgpids c0 c1 a0 a1 cpu
    local -a ratios_pg=() ratios_detail=()
    declare -gA ACCT_PORT ACCT_PID ACCT_RPS ACCT_CPU ACCT_ADM ACCT_PGC

    if [ "${BENCH_PG:-on}" = off ]; then
        return 0
    fi
    if [ ! -x "$SELF_DIR/pg-local.sh" ] || ! command -v psql >/dev/null; then
        say ""
        say "PostgreSQL accounting: skipped (no tools/pg-local.sh or psql)"
        return 0
    fi
    pgdir=$TMP/acct-pg
    pick_port || die "no free port for PostgreSQL"
    port=$PORT
    ACCT_DB=$("$SELF_DIR/pg-local.sh" start "$pgdir" "$port" 2>"$TMP/acct-pg.err") \
        || { cat "$TMP/acct-pg.err" >&2; die "PostgreSQL did not start"; }
    # Stopped on every exit, before the processes this script started.
    trap '"$SELF_DIR/pg-local.sh" stop "'"$pgdir"'" >/dev/null 2>&1; cleanup' EXIT
    psql -X -q -d "$ACCT_DB" -c "CREATE DATABASE bench_pg" -c "CREATE DATABASE bench_detail" \
        >>"$RESULTS" 2>&1 || die "CREATE DATABASE failed"
    acct_start nodb "usage = { ring_slots = 262144; spool_dir = \"$TMP/acct-nodb/spool\"; };"
    acct_start pg "database = \"${ACCT_DB/dbname=postgres/dbname=bench_pg}\";
usage = { ring_slots = 262144; spool_dir = \"$TMP/acct-pg/spool-tg\"; };"
    acct_start detail "database = \"${ACCT_DB/dbname=postgres/dbname=bench_detail}\";
usage = { ring_slots = 262144; spool_dir = \"$TMP/acct-pg/spool-tgd\"; detail = true; };"
    for t in pg detail; do
        for i in $(seq 100); do
            grep -q "database ready" "$TMP/acct-$t/tollgate-error.log" 2>/dev/null && break
            sleep 0.1
        done
        grep -q "database ready" "$TMP/acct-$t/tollgate-error.log" \
            || die "tollgate ($t) never got its database ready"
    done
    for t in nodb pg detail; do
        probe "acct-$t" "http://127.0.0.1:${ACCT_PORT[$t]}/v1/messages" \
            "$TMP/acct-$t/tollgate-error.log" || die "tollgate ($t) does not proxy"
        run_wrk "acct-warmup-$t" "http://127.0.0.1:${ACCT_PORT[$t]}/v1/messages" \
            "$THREADS" "$CONNS" "$WARMUP"
    done
    out "acct: loadavg before the rounds: $(cut -d' ' -f1-3 /proc/loadavg)"
    ACCT_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
    pgpids=$(tree "$(head -n 1 "$pgdir/data/postmaster.pid")" | tr '\n' ' ')
    for r in $(seq "$rounds"); do
        if [ $((r % 2)) -eq 1 ]; then order="nodb pg detail"; else order="detail pg nodb"; fi
        for t in $order; do
            admin=$(tg_children_named "${ACCT_PID[$t]}" admin)
            # shellcheck disable=SC2086 # lists of pids
            a0=$(cpu_ticks $admin) c0=$(cpu_ticks $pgpids)
            # shellcheck disable=SC2046 # a list of pids
            run_wrk "acct-$t-round$r" "http://127.0.0.1:${ACCT_PORT[$t]}/v1/messages" \
                "$THREADS" "$CONNS" "$DURATION" $(tree "${ACCT_PID[$t]}")
            # shellcheck disable=SC2086 # lists of pids
            a1=$(cpu_ticks $admin) c1=$(cpu_ticks $pgpids)
            ACCT_RPS[$t,$r]=$W_RPS
            ACCT_CPU[$t]=$(calc '%.2f' "${ACCT_CPU[$t]:-0} + $W_CPU / $rounds")
            ACCT_ADM[$t]=$(calc '%.2f' "${ACCT_ADM[$t]:-0} + ($a1 - $a0) * 1000000 / $CLK_TCK / $W_REQS / $rounds")
            ACCT_PGC[$t]=$(calc '%.2f' "${ACCT_PGC[$t]:-0} + ($c1 - $c0) * 1000000 / $CLK_TCK / $W_REQS / $rounds")
        done
        ratios_pg+=("$(calc '%.4f' "${ACCT_RPS[pg,$r]} / ${ACCT_RPS[nodb,$r]}")")
        ratios_detail+=("$(calc '%.4f' "${ACCT_RPS[detail,$r]} / ${ACCT_RPS[nodb,$r]}")")
    done

    # Ingestion: pg's admin stopped while wrk fills the ring.
    admin=$(tg_children_named "${ACCT_PID[pg]}" admin)
    [ -n "$admin" ] || die "no admin process under tollgate (pg)"
    sleep 2
    before=$(acct_sql "SELECT coalesce(sum(requests), 0) FROM usage_hourly")
    kill -STOP "$admin"
    run_wrk "acct-fill" "http://127.0.0.1:${ACCT_PORT[pg]}/v1/messages" \
        "$THREADS" "$CONNS" "$DURATION"
    sent=$((W_REQS))
    # CPU of admin and of every PostgreSQL process meanwhile: what the
    # ingestion costs, whatever else runs on the machine.
    pgpids=$(tree "$(head -n 1 "$pgdir/data/postmaster.pid")" | tr '\n' ' ')
    # shellcheck disable=SC2086 # lists of pids
    c0=$(cpu_ticks "$admin" $pgpids)
    kill -CONT "$admin"
    secs=$(acct_wait_rows $((before + sent)) 120) || die "ingestion did not complete; see $RESULTS"
    pgpids=$(tree "$(head -n 1 "$pgdir/data/postmaster.pid")" | tr '\n' ' ')
    # shellcheck disable=SC2086 # lists of pids
    c1=$(cpu_ticks "$admin" $pgpids)
    cpu=$(calc '%.3f' "($c1 - $c0) / $CLK_TCK")
    out "acct: ingestion: $sent records in $secs s after SIGCONT, $cpu s of CPU (admin and PostgreSQL)"

    say ""
    say "PostgreSQL accounting: POST /v1/messages, wrk -t$THREADS -c$CONNS -d${DURATION}s, rounds: $rounds (order alternating); PostgreSQL 15 on the same CPUs (fsync off)"
    say "  load average before the rounds: $ACCT_LOAD"
    say "$(printf '  %-8s %11s %9s %9s  %s' variant cpu_us/req admin_us pg_us 'req/s per round')"
    for t in nodb pg detail; do
        local line=""
        for r in $(seq "$rounds"); do
            line="$line $(printf '%8.0f' "${ACCT_RPS[$t,$r]}")"
        done
        say "$(printf '  %-8s %11.1f %9.2f %9.2f %s' "$t" "${ACCT_CPU[$t]}" "${ACCT_ADM[$t]}" "${ACCT_PGC[$t]}" "$line")"
    done
    say "  (cpu_us/req: all of Tollgate's processes; admin_us: of which admin; pg_us: every PostgreSQL process, per request)"
    for t in pg detail; do
        say "  $t: accounting costs admin + PostgreSQL $(calc '%.2f' "${ACCT_ADM[$t]} - ${ACCT_ADM[nodb]} + ${ACCT_PGC[$t]}") us per request over nodb = $(calc '%.1f' "100 * (${ACCT_ADM[$t]} - ${ACCT_ADM[nodb]} + ${ACCT_PGC[$t]}) / ${ACCT_CPU[nodb]}") % of nodb's CPU per request; CPU-bound req/s ratio $(calc '%.3f' "${ACCT_CPU[nodb]} / (${ACCT_CPU[nodb]} + ${ACCT_ADM[$t]} - ${ACCT_ADM[nodb]} + ${ACCT_PGC[$t]})")"
    done
    local med_pg med_detail
    med_pg=$(acct_median "${ratios_pg[@]}")
    med_detail=$(acct_median "${ratios_detail[@]}")
    say "  pg/nodb req/s: median $med_pg (per round: ${ratios_pg[*]}; target >= 0.95: $(awk -v r="$med_pg" 'BEGIN { print (r >= 0.95) ? "ok" : "BELOW TARGET" }'))"
    say "  detail/nodb req/s: median $med_detail (per round: ${ratios_detail[*]})"
    say "  ingestion end to end, ring pre-filled while admin was stopped: $sent records drained, journaled and committed in $secs s"
    say "    = $(calc '%.0f' "$sent / $secs") records/s wall clock (from SIGCONT until usage_hourly counts the last one; polled every 20 ms)"
    say "    = $(calc '%.0f' "$sent / ($cpu > 0 ? $cpu : 0.001)") records per CPU-second of admin + PostgreSQL ($cpu s of CPU; target >= 50000/s)"
    "$SELF_DIR/pg-local.sh" stop "$pgdir" >/dev/null 2>&1
}


# Pids of <parent>'s children whose process name starts with <prefix>.
tg_children_named()
{
    local c

    for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
        case "$(cat /proc/"$c"/comm 2>/dev/null)" in
        "$2"*) echo "$c" ;;
        esac
    done
}

# ---------------------------------------------------------------- summary

say "Tollgate benchmark: $WORKERS workers per proxy, access log $ACCESS_LOG, $NPROC CPUs shared by load generator, mock and proxy"
say "  load average before the run: $LOADAVG_BEFORE (above 0 means other work on the machine; trust the ratios, not the absolute figures)"
say ""
say "Throughput: POST /v1/messages (non-streaming), wrk -t$THREADS -c$CONNS -d${DURATION}s, mean of rounds: $ROUNDS"
say "$(printf '  %-9s %10s %9s %9s %7s %11s' target req/s p50_ms p99_ms errors cpu_us/req)"
for t in mock nginx tollgate; do
    say "$(printf '  %-9s %10.0f %9.3f %9.3f %7d %11.1f' "$t" "${RPS[$t]}" "${P50[$t]}" "${P99[$t]}" "${BAD[$t]}" "${CPU[$t]}")"
done
RATIO=$(calc '%.2f' "${RPS[tollgate]} / ${RPS[nginx]}")
VERDICT=$(awk -v r="$RATIO" -v t="$TARGET_RATIO" 'BEGIN { print (r >= t) ? "ok" : "BELOW TARGET" }')
PER_ROUND=
for r in $(seq "$ROUNDS"); do
    PER_ROUND="$PER_ROUND $(calc '%.2f' "${RRPS[tollgate,$r]} / ${RRPS[nginx,$r]}")"
done
say "  tollgate/nginx req/s = $RATIO  (target >= $TARGET_RATIO: $VERDICT; per round:$PER_ROUND)"
say "  tollgate/nginx CPU per request = $(calc '%.2f' "${CPU[tollgate]} / ${CPU[nginx]}")  (cpu_us/req: user + system time of all the target's processes / requests)"
say "  nginx/mock req/s = $(calc '%.2f' "${RPS[nginx]} / ${RPS[mock]}"), tollgate/mock req/s = $(calc '%.2f' "${RPS[tollgate]} / ${RPS[mock]}")"
say "$(printf '  %-9s %10.0f %9.3f %9.3f %7d %11.1f' limited "${RPS[limited]}" "${P50[limited]}" "${P99[limited]}" "${BAD[limited]}" "${CPU[limited]}")"
LRATIO=$(calc '%.2f' "${RPS[limited]} / ${RPS[tollgate]}")
LVERDICT=$(awk -v r="$LRATIO" 'BEGIN { print (r >= 0.9) ? "ok" : "BELOW TARGET" }')
say "  tollgate with limits / without = $LRATIO req/s, $(calc '%.2f' "${CPU[limited]} / ${CPU[tollgate]}") CPU per request  (target >= 0.90: $LVERDICT)"
say ""
say "Latency added over the mock at concurrency 1 (wrk -t1 -c1 -d${LAT_DURATION}s, mean of rounds: $ROUNDS)"
say "$(printf '  %-9s %9s %9s %11s %11s %7s' target p50_ms p99_ms added_p50 added_p99 errors)"
for t in mock nginx tollgate; do
    if [ $t = mock ]; then
        a50=- a99=-
    else
        a50=$(calc '%+.3f' "${LP50[$t]} - ${LP50[mock]}")
        a99=$(calc '%+.3f' "${LP99[$t]} - ${LP99[mock]}")
    fi
    say "$(printf '  %-9s %9.3f %9.3f %11s %11s %7d' "$t" "${LP50[$t]}" "${LP99[$t]}" "$a50" "$a99" "${LBAD[$t]}")"
done
say "  tollgate added / nginx added, p50 = $(calc '%.2f' "(${LP50[tollgate]} - ${LP50[mock]}) / ((${LP50[nginx]} - ${LP50[mock]}) > 0.001 ? (${LP50[nginx]} - ${LP50[mock]}) : 0.001)")"
say ""
say "Streaming: $STREAMS concurrent streams x $CHUNKS chunks, $CHUNK_DELAY_MS ms before each chunk (loadgen), rounds: $ROUNDS"
say "$(printf '  %-9s %11s %6s %9s %9s %10s %10s' target 'done' errors ttfb_p50 ttfb_p99 added_p50 added_p99)"
for t in mock nginx tollgate; do
    if [ $t = mock ]; then
        a50=- a99=-
    else
        a50=$(calc '%+.2f' "${ST50[$t]} - ${ST50[mock]}")
        a99=$(calc '%+.2f' "${ST99[$t]} - ${ST99[mock]}")
    fi
    say "$(printf '  %-9s %5d/%-5d %6d %9.2f %9.2f %10s %10s' "$t" "${SDONE[$t]}" $((STREAMS * ROUNDS)) "${SERR[$t]}" "${ST50[$t]}" "${ST99[$t]}" "$a50" "$a99")"
done
say "  (ttfb in ms, mean of the rounds; added = proxy - mock)"
declare -A KBS
say "  memory, in each proxy's first streaming run:"
say "$(printf '  %-9s %10s %10s %10s %10s %12s' proxy idle_rss peak_rss KB/stream peak_fds rss_after)"
for t in nginx tollgate; do
    KBS[$t]=$(calc '%.1f' "(${SPEAK[$t]} - ${SIDLE[$t]}) / $STREAMS")
    say "$(printf '  %-9s %8dKB %8dKB %10s %10d %10dKB' "$t" "${SIDLE[$t]}" "${SPEAK[$t]}" "${KBS[$t]}" "$((SFPEAK[$t] - SFIDLE[$t]))" "${SAFTER[$t]}")"
done
VERDICT=$(awk -v k="${KBS[tollgate]}" -v t="$TARGET_KB_PER_STREAM" 'BEGIN { print (k < t) ? "ok" : "ABOVE TARGET" }')
say "  tollgate KB per open stream = ${KBS[tollgate]}  (target < $TARGET_KB_PER_STREAM: $VERDICT); nginx = ${KBS[nginx]}"
say "  (RSS = VmRSS summed over master + workers, sampled every ${STICK[tollgate]} ms; KB/stream = (peak - idle) / $STREAMS;"
say "   peak_fds = most fds open beyond idle: 2 per stream, less idle upstream connections reused;"
say "   rss_after = 0.5 s after the last stream ended)"
D_MS=$((CHUNKS * CHUNK_DELAY_MS))
for t in nginx tollgate; do
    W_MS=$(calc '%.0f' "2 * $D_MS - ${SDUR[$t]} * 1000")
    if [ "${SDONE[$t]}" -eq $((STREAMS * ROUNDS)) ] && [ "$W_MS" -gt $((2 * STICK[$t])) ]; then
        say "  $t: every stream lasts >= $D_MS ms and no run took over $(calc '%.0f' "${SDUR[$t]} * 1000") ms, so all $STREAMS were open together for >= $W_MS ms"
    else
        say "  $t: WARNING: cannot show all $STREAMS streams were open at once (run ${SDUR[$t]} s, streams >= $D_MS ms); raise BENCH_CHUNK_DELAY_MS"
    fi
done
ERRS=0
for t in mock nginx tollgate; do
    ERRS=$((ERRS + BAD[$t] + LBAD[$t] + SERR[$t]))
    [ "${SDONE[$t]}" -eq $((STREAMS * ROUNDS)) ] || ERRS=$((ERRS + 1))
done
if [ "$ERRS" -ne 0 ]; then
    say ""
    say "WARNING: some requests or streams failed (errors or done columns above); the figures above are not valid; see the results file"
fi
if [ -n "$RESPAWNED" ]; then
    say ""
    say "WARNING: processes of$RESPAWNED changed during the run (crash and respawn?); see the error logs in the results"
fi
if [ -n "$MB_OUT" ]; then
    say ""
    say "Microbenchmarks ($MICROBENCH, exit $mb_rc)"
    while IFS= read -r line; do
        say "  $line"
    done < <(printf '%s\n' "$MB_OUT" | grep 'ns/op')
fi
acct_section
translation_bench
say ""
say "Results: $RESULTS"

section "summary"
printf '%s\n' "${SUMMARY[@]}" >>"$RESULTS"
out "loadavg after: $(cat /proc/loadavg)"
printf '%s\n' "${SUMMARY[@]}"
