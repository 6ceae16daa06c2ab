#!/usr/bin/env bash
# A private PostgreSQL 15 for development and tests.
#
#   tools/pg-local.sh start  DIR PORT   initdb into DIR/data if empty, start,
#                                       wait until it accepts, print conninfo
#   tools/pg-local.sh stop   DIR        fast shutdown (no-op when stopped)
#   tools/pg-local.sh status DIR [PORT] exit 0 when running (prints conninfo)
#
# DIR holds data/ (the cluster), sock/ (its unix-socket directory) and
# log (the server log).  The server listens on 127.0.0.1:PORT and on
# DIR/sock/.s.PGSQL.PORT; authentication is "trust", so keep it on a
# private port of a machine you own.  PostgreSQL refuses to run as root:
# run as root, the script gives DIR to the unprivileged "postgres" user and
# runs the server as that user (runuser).  Run as anyone else, the server
# runs as that user.  The printed conninfo reaches the server through its
# socket directory as the database superuser "postgres".
set -euo pipefail

usage() {
    echo "usage: tools/pg-local.sh start|stop|status DIR [PORT]" >&2
    exit 2
}

[ $# -ge 2 ] || usage
cmd=$1
dir=$2
port=${3:-}

bindir=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
if [ ! -x "$bindir/pg_ctl" ]; then
    echo "pg-local: $bindir/pg_ctl not found; run tools/deps.sh (postgresql)" >&2
    exit 1
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
data=$dir/data
sock=$dir/sock
log=$dir/log

# Run "$@" as the user who owns the cluster.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

conninfo() {
    echo "host=$sock port=$1 user=postgres dbname=postgres"
}

running() {
    [ -f "$data/PG_VERSION" ] && as_owner "$bindir/pg_ctl" -D "$data" status \
        >/dev/null 2>&1
}

case "$cmd" in
start)
    [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] ||
        usage
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || {
            echo "pg-local: no \"postgres\" user; install postgresql" >&2
            exit 1
        }
        # The server user must reach DIR through every parent directory.
        p=$dir
        while [ "$p" != / ]; do
            p=$(dirname "$p")
            if ! runuser -u postgres -- test -x "$p"; then
                chmod o+x "$p"
            fi
        done
        mkdir -p "$data" "$sock"
        chown postgres:postgres "$dir" "$data" "$sock"
        touch "$log" && chown postgres:postgres "$log"
    else
        mkdir -p "$data" "$sock"
    fi
    chmod 0700 "$data"
    if running; then
        conninfo "$(sed -n 4p "$data/postmaster.pid")"
        exit 0
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
        as_owner "$bindir/initdb" -D "$data" -U postgres -A trust -E UTF8 \
            --locale=C --no-sync >"$dir/initdb.log" 2>&1 || {
            echo "pg-local: initdb failed; see $dir/initdb.log" >&2
            tail -n 20 "$dir/initdb.log" >&2
            exit 1
        }
    fi
    # -w waits until the server accepts connections (60 s at most).
    if ! as_owner "$bindir/pg_ctl" -D "$data" -l "$log" -w -t 60 \
        -o "-p $port -k $sock -c listen_addresses=127.0.0.1 -c fsync=off" \
        -o "-c max_connections=200 -c shared_buffers=32MB" \
        start >/dev/null; then
        echo "pg-local: start failed; see $log" >&2
        tail -n 20 "$log" >&2
        exit 1
    fi
    conninfo "$port"
    ;;
stop)
    if running; then
        as_owner "$bindir/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null
    fi
    ;;
status)
    if running; then
        conninfo "$(sed -n 4p "$data/postmaster.pid")"
        exit 0
    fi
    echo "pg-local: not running" >&2
    exit 3
    ;;
*)
    usage
    ;;
esac
