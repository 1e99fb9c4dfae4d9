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
for cmd in valgrind callgrind_control callgrind_annotate; do
  command -v "$cmd" >/dev/null || { echo "error: $cmd not found (Debian: apt-get install -y valgrind)" >&2; exit 1; }
done
DEFAULT_SECS=6 DEFAULT_PORT=8170
# shellcheck source=scripts/small-load.sh
source "$(dirname "${BASH_SOURCE[0]}")/small-load.sh"
pid=""
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$TMP"' EXIT

printf '%-20s %9s %14s\n' binary requests "instr/request"
for bin in "$@"; do
  out="$TMP/$(basename "$bin")"
  mkdir -p "$out"
  WRAP="valgrind --tool=callgrind --callgrind-out-file=$out/cg.out" start "$bin"
  load 3 >/dev/null   # warm-up
  callgrind_control -z "$pid" >/dev/null 2>&1
  n="$(load "$SECS")"
  callgrind_control -d "$pid" >/dev/null 2>&1
  sleep 1
  kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
  pid=""
  dump="$out/cg.out.1"   # the first dump after the start
  ir="$(callgrind_annotate "$dump" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)"
  if [ -z "${n:-}" ] || [ "${n:-0}" -eq 0 ] || [ -z "$ir" ]; then
    printf '%-20s %9s %14s\n' "$(basename "$bin")" "${n:-0}" "failed"
  else
    printf '%-20s %9d %14d\n' "$(basename "$bin")" "$n" "$((ir / n))"
  fi
done
