#!/usr/bin/env bash
# Mixed load on one server (loopback only): wrk at 256 connections on small /loss requests
# for LOAD_MIXED_SECS (20) while 8 clients loop 1e6-iteration /train requests, and a small
# client asks /healthz every 20 ms. Checks: 0 socket errors, every status 200 or a
# documented 503 (overloaded / past the time limit), and /healthz p99 under 10 ms during the
# run — /healthz is answered on the async runtime, never behind the heavy work.
# Prints its figures and ends "N passed, M failed".
#
#   LOSSLAB_BIN=target/release/losslab bash tests/e2e/load_mixed.sh

# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
BIN="$(losslab_bin)"
SECS="${LOAD_MIXED_SECS:-20}"
SCRATCH="$(mktemp -d /tmp/losslab-load-mixed.XXXXXX)"
trap 'e2e_cleanup; rm -rf "$SCRATCH"' EXIT

if [ ! -x "$BIN" ]; then
    fail "losslab binary at $BIN (set LOSSLAB_BIN)"
    summary
    exit 1
fi
need_cmd wrk wrk || { fail "wrk installed"; summary; exit 1; }

PORT="$(free_port)"
BASE="http://127.0.0.1:$PORT"
LOSSLAB_ADDR="127.0.0.1:$PORT" "$BIN" >"$SCRATCH/server.log" 2>&1 &
SERVER=$!
track "$SERVER"
check "server answers /healthz" wait_status "$BASE/healthz" 200 30

cat >"$SCRATCH/loss.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"predictions": [0.5, 2.0, -1.0, 0.25], "targets": [1.0, 0.0, -1.5, 0.25]}'
statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for code, n in pairs(s) do total[code] = (total[code] or 0) + n end
  end
  local parts = {}
  for code, n in pairs(total) do table.insert(parts, code .. "=" .. n) end
  table.sort(parts)
  io.write("STATUSES " .. table.concat(parts, " ") .. "\n")
  io.write(string.format("P99_MS %.2f\n", latency:percentile(99) / 1000))
end
LUA

# 8 /train loops and the /healthz probe, for the length of the wrk run
python3 - "$PORT" "$SECS" >"$SCRATCH/clients.out" 2>&1 <<'PY' &
import http.client, json, sys, threading, time
port, secs = int(sys.argv[1]), float(sys.argv[2])
end = time.monotonic() + secs
train = json.dumps({"inputs": [[1.0]], "targets": [0.5], "activation": "sigmoid", "loss": "l2",
    "learning_rate": 1e-9, "max_iterations": 1000000, "trace_every": 0}).encode()
lock = threading.Lock()
train_status, errors, healthz_ms = {}, [], []
def trainer():
    while time.monotonic() < end:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            c.request("POST", "/train", train, {"content-type": "application/json"})
            r = c.getresponse(); r.read(); c.close()
            with lock: train_status[r.status] = train_status.get(r.status, 0) + 1
        except Exception as e:
            with lock: errors.append(repr(e))
def prober():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while time.monotonic() < end:
        t0 = time.perf_counter()
        try:
            c.request("GET", "/healthz"); r = c.getresponse(); r.read()
            ms = (time.perf_counter() - t0) * 1e3
            with lock:
                healthz_ms.append(ms)
                if r.status != 200: errors.append(f"healthz {r.status}")
        except Exception as e:
            with lock: errors.append("healthz " + repr(e))
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        time.sleep(0.02)
threads = [threading.Thread(target=trainer) for _ in range(8)] + [threading.Thread(target=prober)]
for t in threads: t.start()
for t in threads: t.join()
healthz_ms.sort()
p = lambda q: healthz_ms[min(len(healthz_ms) - 1, int(q * len(healthz_ms)))] if healthz_ms else float("nan")
print("TRAIN", " ".join(f"{k}={v}" for k, v in sorted(train_status.items())))
print("ERRORS", len(errors), "; ".join(errors[:5]))
print(f"HEALTHZ n={len(healthz_ms)} p50={p(0.5):.2f} p99={p(0.99):.2f} max={healthz_ms[-1] if healthz_ms else float('nan'):.2f}")
PY
CLIENTS=$!
track "$CLIENTS"
sleep 1 # the /train loops take their slots first
wrk -t2 -c256 -d"${SECS}s" --timeout 20s -s "$SCRATCH/loss.lua" "$BASE/loss/mse" >"$SCRATCH/wrk.out" 2>&1
WRK_RC=$?
wait "$CLIENTS"
cat "$SCRATCH/wrk.out" | sed 's/^/  wrk | /'
sed 's/^/  clients | /' "$SCRATCH/clients.out"

check "wrk ran (exit $WRK_RC)" test "$WRK_RC" = 0
socket_errors="$(sed -n 's/.*Socket errors: //p' "$SCRATCH/wrk.out")"
check "wrk: 0 socket errors (${socket_errors:-none reported})" test -z "$socket_errors"
statuses="$(sed -n 's/^STATUSES //p' "$SCRATCH/wrk.out")"
rps="$(sed -n 's/^Requests\/sec: *//p' "$SCRATCH/wrk.out")"
info "/loss: $rps requests/s; statuses: $statuses; p99 $(sed -n 's/^P99_MS //p' "$SCRATCH/wrk.out") ms"
check "/loss: every status 200 or 503 ($statuses)" \
    python3 -c "import sys; s=dict(p.split('=') for p in sys.argv[1].split()); assert s and set(s) <= {'200','503'} and int(s.get('200',0)) > 0, s" "$statuses"
train="$(sed -n 's/^TRAIN //p' "$SCRATCH/clients.out")"
check "/train loops: every status 200 or 503 ($train)" \
    python3 -c "import sys; s=dict(p.split('=') for p in sys.argv[1].split()); assert s and set(s) <= {'200','503'} and int(s.get('200',0)) > 0, s" "$train"
errors="$(sed -n 's/^ERRORS \([0-9]*\).*/\1/p' "$SCRATCH/clients.out")"
check "clients: 0 connection errors (${errors:-?})" test "${errors:-1}" = 0
healthz="$(sed -n 's/^HEALTHZ //p' "$SCRATCH/clients.out")"
p99="$(sed -n 's/.*p99=\([0-9.na]*\).*/\1/p' <<<"$healthz")"
check "/healthz during the run: p99 ${p99} ms < 10 ms ($healthz)" \
    python3 -c "import sys; assert float(sys.argv[1]) < 10, sys.argv[1]" "${p99:-nan}"
check "server still alive" alive "$SERVER"
echo "load_mixed: /loss ${rps} req/s at 256 connections; /train ${train}; /healthz ${healthz}"
summary
