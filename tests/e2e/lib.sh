# shellcheck shell=bash disable=SC2034  # (variables here are read by the scripts that source it)
# Shared helpers for the tests/e2e/*.sh scripts (sourced, not run).
#
# Every script: prints one line per check (PASS/FAIL/SKIP), ends with `N passed, M failed`
# (plus `, K skipped` when something could not run) and exits non-zero iff a check failed.
# All traffic stays on 127.0.0.1. Processes a script starts are tracked by pid and ended by
# pid in the exit trap; nothing is killed by name.

set -u -o pipefail

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$E2E_DIR/../.." && pwd)"
E2E_PASSED=0
E2E_FAILED=0
E2E_SKIPPED=0
E2E_START=$(date +%s.%N)
E2E_PIDS=()

pass() { E2E_PASSED=$((E2E_PASSED + 1)); echo "PASS: $*"; }
fail() { E2E_FAILED=$((E2E_FAILED + 1)); echo "FAIL: $*"; }
skip() { E2E_SKIPPED=$((E2E_SKIPPED + 1)); echo "SKIP: $*"; }
info() { echo "  .. $*"; }

# check "what was checked" command args...  → PASS or FAIL by the command's exit status.
check() {
    local what="$1"
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}

elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$E2E_START" "$(date +%s.%N)"; }

# The closing line CI reads, then the exit status.
summary() {
    local name
    name="$(basename "$0")"
    echo "$name took $(elapsed) s"
    if [ "$E2E_SKIPPED" -gt 0 ]; then
        echo "$E2E_PASSED passed, $E2E_FAILED failed, $E2E_SKIPPED skipped"
    else
        echo "$E2E_PASSED passed, $E2E_FAILED failed"
    fi
    [ "$E2E_FAILED" -eq 0 ]
}

# Track a background process so the exit trap ends it (by pid, never by name).
track() { E2E_PIDS+=("$1"); }

e2e_cleanup() {
    local pid
    for pid in "${E2E_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    wait 2>/dev/null || true
}

# The release binary under test: $LOSSLAB_BIN, relative paths taken from the repo root.
losslab_bin() {
    local bin="${LOSSLAB_BIN:-target/release/losslab}"
    case "$bin" in
        /*) ;;
        *) bin="$REPO_ROOT/$bin" ;;
    esac
    echo "$bin"
}

# Install Debian packages whose commands are missing. Other jobs may hold the dpkg lock:
# wait for it instead of failing.
E2E_APT_UPDATED=0
apt_install() {
    [ "$#" -gt 0 ] || return 0
    echo "  .. installing with apt-get: $*"
    if [ "$E2E_APT_UPDATED" -eq 0 ]; then
        apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null 2>&1 || true
        E2E_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "$@" >/dev/null
}

# need_cmd COMMAND PACKAGE: apt-install PACKAGE when COMMAND is not on PATH (or sbin).
need_cmd() {
    if ! command -v "$1" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$1" ]; then
        apt_install "$2"
    fi
    command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]
}

# A TCP port on 127.0.0.1 that is free right now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# http_status METHOD URL [BODY] → prints the status code (000 when no answer).
http_status() {
    local method="$1" url="$2" body="${3-}"
    if [ -n "$body" ]; then
        curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X "$method" \
            -H 'content-type: application/json' --data-binary "$body" "$url" || true
    else
        curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X "$method" "$url" || true
    fi
}

# wait_status URL STATUS SECONDS: poll GET URL until it answers STATUS.
wait_status() {
    local url="$1" want="$2" secs="$3" deadline
    deadline=$(($(date +%s) + secs))
    while [ "$(date +%s)" -le "$deadline" ]; do
        [ "$(http_status GET "$url")" = "$want" ] && return 0
        sleep 0.2
    done
    return 1
}

# alive PID: the process exists and is not a zombie (an exited child not yet waited for).
alive() {
    local state
    state="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
    [ -n "$state" ] && [ "${state#Z}" = "$state" ]
}

# wait_exit PID SECONDS: wait for a child of this shell to exit and set WAIT_RC to its exit
# status, or to "timeout" (status 1). Not for use inside $(...): a subshell cannot wait.
WAIT_RC=""
wait_exit() {
    local pid="$1" secs="$2" deadline
    deadline=$(($(date +%s) + secs))
    while alive "$pid"; do
        if [ "$(date +%s)" -gt "$deadline" ]; then
            WAIT_RC=timeout
            return 1
        fi
        sleep 0.1
    done
    wait "$pid" 2>/dev/null
    WAIT_RC=$?
    return 0
}
