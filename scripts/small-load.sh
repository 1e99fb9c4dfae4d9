# shellcheck shell=bash disable=SC2034  # sets variables its callers use
# Sourced by server-cpu.sh and server-instructions.sh, not run: the bench's small
# POST /loss/mse sent by wrk -t2 -c64 to one binary at a time on 127.0.0.1:PORT.
# The caller sets DEFAULT_SECS and DEFAULT_PORT first; the settings (environment) are
# SECONDS_PER_RUN, PORT, URL_PATH and BODY (a file).
command -v wrk >/dev/null || { echo "error: wrk not found (Debian: apt-get install -y wrk)" >&2; exit 1; }
LUA="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../../shared/bench/lua/post.lua"
[ -f "$LUA" ] || { echo "error: $LUA not found (the shared bench)" >&2; exit 1; }
SECS="${SECONDS_PER_RUN:-$DEFAULT_SECS}"
PORT="${PORT:-$DEFAULT_PORT}"
URL_PATH="${URL_PATH:-/loss/mse}"
URL="http://127.0.0.1:$PORT$URL_PATH"
TMP="$(mktemp -d)"
BODY="${BODY:-$TMP/mse.json}"
[ -f "$BODY" ] || printf '%s' '{"predictions":[0.9,0.2,0.75,0.4,1.3],"targets":[1.0,0.0,1.0,0.5,1.0],"reduction":"mean"}' > "$BODY"

# start BIN: runs it in the background on PORT (LOSSLAB_ADDR, and ADDR for stand-ins), under
# the command prefix in WRAP if set; sets pid and waits (at most 30 s) for /healthz
start() {
  ADDR="127.0.0.1:$PORT" LOSSLAB_ADDR="127.0.0.1:$PORT" ${WRAP:-} "$1" >/dev/null 2>"$TMP/stderr" &
  pid=$!
  for _ in $(seq 150); do
    curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
}

# load SECONDS: prints how many requests wrk completed in that time
load() {
  wrk -t2 -c64 -d"$1"s -s "$LUA" "$URL" -- "$BODY" 2>/dev/null \
    | sed -n 's/^WRK_RESULT .*"requests":\([0-9]*\).*/\1/p'
}
