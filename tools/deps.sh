#!/usr/bin/env bash
# Install the Debian packages Tollgate builds, tests and benchmarks with.
# A no-op when everything is present; apt-get only runs for what is missing.
set -euo pipefail

# pkg-config module -> Debian package, for the libraries we link.
libs=(
    "libconfig:libconfig-dev"
    "jansson:libjansson-dev"
    "libcurl:libcurl4-openssl-dev"
    "openssl:libssl-dev"
    "libpq:libpq-dev"
    "cunit:libcunit1-dev"
    "zlib:zlib1g-dev"
    "libbrotlidec:libbrotli-dev"
    "libbrotlienc:libbrotli-dev"
    "libzstd:libzstd-dev"
)
# Command or file -> Debian package, for servers and tools used by tests.
tools=(
    "pkg-config:pkg-config"
    "/usr/lib/postgresql/15/bin/initdb:postgresql"
    "/usr/lib/postgresql/15/bin/pg_ctl:postgresql"
    "psql:postgresql-client"
    "/usr/sbin/nginx:nginx"
    "wrk:wrk"
    "nghttp:nghttp2-client"
    "clang:clang"
    "/usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a:libclang-rt-14-dev"
    "curl:curl"
    "promtool:prometheus"
    "node:nodejs"
    "npm:npm"
)

missing=()
have_pkgconfig=0
command -v pkg-config >/dev/null 2>&1 && have_pkgconfig=1
for entry in "${libs[@]}"; do
    mod=${entry%%:*} pkg=${entry#*:}
    if [ $have_pkgconfig = 0 ] || ! pkg-config --exists "$mod"; then
        missing+=("$pkg")
    fi
done
for entry in "${tools[@]}"; do
    what=${entry%%:*} pkg=${entry#*:}
    case "$what" in
        /*) [ -e "$what" ] || missing+=("$pkg") ;;
        *) command -v "$what" >/dev/null 2>&1 || missing+=("$pkg") ;;
    esac
done

install_sdks() {
    # The official SDKs the integration suite drives Tollgate with, at the
    # versions pinned in tests/sdk/package-lock.json.
    local dir
    dir="$(dirname "$0")/../tests/sdk"
    if [ ! -f "$dir/node_modules/@anthropic-ai/sdk/package.json" ] \
        || [ ! -f "$dir/node_modules/openai/package.json" ]; then
        echo "deps: installing the Anthropic and OpenAI SDKs into tests/sdk"
        (cd "$dir" && npm ci --silent --no-audit --no-fund >/dev/null)
    fi
}

if [ ${#missing[@]} -eq 0 ]; then
    install_sdks
    exit 0
fi

echo "deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
        echo "deps: missing packages (${missing[*]}) and not root; install them with apt-get" >&2
        exit 1
    }
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts nginx and a PostgreSQL cluster on install; Tollgate's tests
# and `make run` start their own PostgreSQL (tools/pg-local.sh) on private
# ports and socket directories, so the system ones are left alone.
install_sdks
