#!/usr/bin/env bash
# Server CPU per request under load: for each binary, wrk -c64 on a small POST /loss/mse
# (the bench's body), with the server's user and system CPU time read from
# /proc/PID/stat around the run. Binaries alternate round by round and the medians are
# printed: on a shared 2-core machine throughput alone swings ±10% from minute to minute,
# while CPU per request compared within one invocation is steadier.
#
#   scripts/server-cpu.sh ROUNDS BIN [BIN...]
#
# Settings (environment): SECONDS_PER_RUN=4, PORT=8160, URL_PATH=/loss/mse, BODY=file.
# A binary is started with LOSSLAB_ADDR (and ADDR, for stand-ins) set to 127.0.0.1:PORT.
set -euo pipefail
ROUNDS="${1:?usage: server-cpu.sh ROUNDS BIN [BIN...]}"
shift
[ $# -ge 1 ] || { echo "usage: server-cpu.sh ROUNDS BIN [BIN...]" >&2; exit 2; }
DEFAULT_SECS=4 DEFAULT_PORT=8160
# shellcheck source=scripts/small-load.sh
source "$(dirname "${BASH_SOURCE[0]}")/small-load.sh"
pid=""
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$TMP"' EXIT
TICKS="$(getconf CLK_TCK)"

for _ in $(seq "$ROUNDS"); do
  for bin in "$@"; do
    start "$bin"
    load 1 >/dev/null   # warm-up
    read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    n="$(load "$SECS")"
    read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    kill -9 "$pid"; wait "$pid" 2>/dev/null || true
    pid=""
    echo "$(basename "$bin") ${n:-0} $((u1 - u0)) $((s1 - s0))" >> "$TMP/runs"
  done
done

python3 - "$TMP/runs" "$SECS" "$TICKS" <<'PY'
import collections, statistics as st, sys
runs, secs, ticks = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
d = collections.defaultdict(list)
for line in open(runs):
    b, n, u, s = line.split()
    if int(n) > 0:
        us = 1e6 / ticks / int(n)
        d[b].append((int(n) / secs, int(u) * us, int(s) * us))
print(f"{'binary':16s} {'req/s':>8s} {'user µs/req':>12s} {'sys µs/req':>11s}  runs")
for b, v in d.items():
    print(f"{b:16s} {st.median(x[0] for x in v):8.0f} {st.median(x[1] for x in v):12.2f} "
          f"{st.median(x[2] for x in v):11.2f}  {len(v)}")
PY
