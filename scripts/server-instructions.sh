#!/usr/bin/env bash
# User-space instructions per small request, counted by valgrind's callgrind: each binary
# runs under callgrind, wrk warms it up, the counters are zeroed, wrk -c64 sends the
# bench's small POST /loss/mse for a few seconds, and the counters are dumped. Unlike
# req/s or CPU time on a shared machine (±10–20% from minute to minute), the count is
# steady to about 1%: it compares two builds of the request path, though not the
# kernel's share or contention between threads, which it does not see.
#
#   scripts/server-instructions.sh BIN [BIN...]
#
# Settings (environment): SECONDS_PER_RUN=6, PORT=8170, URL_PATH=/loss/mse, BODY=file.
# Needs valgrind (Debian: apt-get install -y valgrind) and wrk.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: server-instructions.sh BIN [BIN...]" >&2; exit 2; }
for cmd in wrk valgrind callgrind_control callgrind_annotate; do
  command -v "$cmd" >/dev/null || { echo "error: $cmd not found (Debian: wrk, valgrind)" >&2; exit 1; }
done
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LUA="$HERE/../../shared/bench/lua/post.lua"
[ -f "$LUA" ] || { echo "error: $LUA not found (the shared bench)" >&2; exit 1; }
SECS="${SECONDS_PER_RUN:-6}"
PORT="${PORT:-8170}"
URL_PATH="${URL_PATH:-/loss/mse}"
TMP="$(mktemp -d)"
pid=""
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$TMP"' EXIT
BODY="${BODY:-$TMP/mse.json}"
[ -f "$BODY" ] || printf '%s' '{"predictions":[0.9,0.2,0.75,0.4,1.3],"targets":[1.0,0.0,1.0,0.5,1.0],"reduction":"mean"}' > "$BODY"
URL="http://127.0.0.1:$PORT$URL_PATH"

printf '%-20s %9s %14s\n' binary requests "instr/request"
for bin in "$@"; do
  out="$TMP/$(basename "$bin")"
  mkdir -p "$out"
  ADDR="127.0.0.1:$PORT" LOSSLAB_ADDR="127.0.0.1:$PORT" \
    valgrind --tool=callgrind --callgrind-out-file="$out/cg.out" "$bin" >/dev/null 2>"$out/valgrind.log" &
  pid=$!
  for _ in $(seq 150); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
  wrk -t2 -c64 -d3s -s "$LUA" "$URL" -- "$BODY" >/dev/null 2>&1   # warm-up
  callgrind_control -z "$pid" >/dev/null 2>&1
  n="$(wrk -t2 -c64 -d"$SECS"s -s "$LUA" "$URL" -- "$BODY" 2>/dev/null \
       | sed -n 's/^WRK_RESULT .*"requests":\([0-9]*\).*/\1/p')"
  callgrind_control -d "$pid" >/dev/null 2>&1
  sleep 1
  kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
  pid=""
  dump="$(ls -t "$out"/cg.out.* 2>/dev/null | head -1)"
  ir="$(callgrind_annotate "$dump" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)"
  if [ -z "${n:-}" ] || [ "${n:-0}" -eq 0 ] || [ -z "$ir" ]; then
    printf '%-20s %9s %14s\n' "$(basename "$bin")" "${n:-0}" "failed"
  else
    printf '%-20s %9d %14d\n' "$(basename "$bin")" "$n" "$((ir / n))"
  fi
done
