#!/usr/bin/env bash
# Graceful-shutdown test of the losslab binary, on loopback.
#
# A: long /train runs (one plain JSON, one NDJSON stream) are in flight when SIGTERM arrives.
#    /readyz must answer 503 at once while the server keeps serving for the shutdown delay;
#    after the delay new connections are refused; both runs complete (200, every update
#    done); then the process exits 0, within delay + grace, as soon as they are done.
# B: a run longer than the grace period does not hold the process: it exits 0 once the
#    grace is over, and that run is cut off.
#
#   LOSSLAB_BIN=target/release/losslab bash tests/e2e/graceful_shutdown.sh

# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
BIN="$(losslab_bin)"
SCRATCH="$(mktemp -d /tmp/losslab-graceful.XXXXXX)"
trap 'e2e_cleanup; rm -rf "$SCRATCH"' EXIT
HTTP="$E2E_DIR/e2e_http.py"
need_cmd curl curl || { fail "curl available"; summary; exit 1; }

if [ ! -x "$BIN" ]; then
    fail "losslab binary at $BIN (set LOSSLAB_BIN)"
    summary
    exit 1
fi
info "binary: $BIN ($("$BIN" --version 2>&1 | head -1))"

now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$(now)"; }
sleep_until() { # sleep_until T0 SECONDS: until SECONDS after T0
    python3 -c "import sys,time; time.sleep(max(0.0, float(sys.argv[1]) + float(sys.argv[2]) - time.time()))" "$1" "$2"
}

# start_server DELAY GRACE → SERVER_PID, BASE. Iterations are allowed far beyond the
# default so a run can be long; LOSSLAB_MAX_CONCURRENCY=4 so the requests made during the
# delay do not queue behind the long runs.
start_server() {
    local port
    port="$(free_port)"
    BASE="http://127.0.0.1:$port"
    LOSSLAB_ADDR="127.0.0.1:$port" LOSSLAB_SHUTDOWN_DELAY_SECS="$1" LOSSLAB_GRACE_SECS="$2" \
        LOSSLAB_MAX_ITERATIONS=10000000000 LOSSLAB_TIMEOUT_SECS=300 LOSSLAB_MAX_CONCURRENCY=4 \
        "$BIN" serve >>"$SCRATCH/server.log" 2>&1 &
    SERVER_PID=$!
    track "$SERVER_PID"
    wait_status "$BASE/readyz" 200 15
}

# The default delay (5 s) leaves room for the checks made during it even on a busy machine;
# the grace is generous because the two runs share the cores with whatever else runs, and
# a run cut off by the grace would fail this test for the wrong reason.
DELAY=5
GRACE=60
echo "== A: long /train runs in flight when SIGTERM arrives (delay $DELAY s, grace $GRACE s)"
check "server starts and is ready" start_server "$DELAY" "$GRACE"
# Each run must outlast the delay by a few seconds: ~9 s alone, started 1 s before SIGTERM.
ITERS="$(python3 "$HTTP" calibrate "$BASE" 9 1000000000)"
info "a /train of $ITERS updates takes about 9 s here alone (max_iterations raised, trace_every 0)"
python3 "$HTTP" long-train-body "$ITERS" >"$SCRATCH/long.json"
python3 "$HTTP" post "$BASE" /train "$SCRATCH/long.json" >"$SCRATCH/long.out" 2>&1 &
LONG_PID=$!
track "$LONG_PID"
python3 "$HTTP" stream "$BASE" "$ITERS" >"$SCRATCH/stream.out" 2>&1 &
STREAM_PID=$!
track "$STREAM_PID"
sleep 1
check "both runs are in flight before SIGTERM" bash -c "$(declare -f alive); alive $LONG_PID && alive $STREAM_PID"

T_TERM="$(now)"
kill -TERM "$SERVER_PID"
ready="$(http_status GET "$BASE/readyz")"
ready_after="$(since "$T_TERM")"
health="$(http_status GET "$BASE/healthz")"
loss="$(http_status POST "$BASE/loss/mse" '{"predictions":[1,2],"targets":[1,0]}')"
checks_done="$(since "$T_TERM")"
info "SIGTERM sent; /readyz answered $ready ${ready_after} s later; then /healthz $health, POST /loss/mse $loss (done ${checks_done} s after SIGTERM)"
# "At once": the very first /readyz after the signal already says 503 (and, so that load
# balancers can act on it, well inside the delay).
check "/readyz answers 503 at once after SIGTERM (the first request after it)" \
    python3 -c "import sys; assert sys.argv[1] == '503' and float(sys.argv[2]) < float(sys.argv[3]), sys.argv" \
    "$ready" "$ready_after" "$DELAY"
check "the requests below were made within the shutdown delay (${checks_done} s < ${DELAY} s)" \
    python3 -c "import sys; assert float(sys.argv[1]) < float(sys.argv[2])" "$checks_done" "$DELAY"
check "during the shutdown delay /healthz still answers 200" test "$health" = 200
check "during the shutdown delay a new POST /loss/mse is still served (200)" test "$loss" = 200

sleep_until "$T_TERM" "$((DELAY + 1))"
refused="$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$BASE/healthz" || true)"
info "$(since "$T_TERM") s after SIGTERM: a new request got '$refused' (000 = no connection)"
check "after the delay new connections are no longer accepted" test "$refused" = 000
check "... while the long runs are still in flight (draining)" \
    bash -c "$(declare -f alive); alive $LONG_PID && alive $STREAM_PID && alive $SERVER_PID"

wait_exit "$LONG_PID" $((GRACE + 10))
read -r long_status long_secs <"$SCRATCH/long.out"
info "plain /train finished: status $long_status after $long_secs s, $(since "$T_TERM") s after SIGTERM"
check "the in-flight /train completed with 200 and all $ITERS updates (stop_reason max_iterations)" \
    python3 -c "
import json, sys
head, _, body = open(sys.argv[1]).read().partition('\n')
assert head.split()[0] == '200', head
r = json.loads(body); assert r['iterations'] == int(sys.argv[2]) and r['stop_reason'] == 'max_iterations', r" \
    "$SCRATCH/long.out" "$ITERS"
wait_exit "$STREAM_PID" $((GRACE + 10))
T_DRAINED="$(now)"
info "NDJSON /train: $(cat "$SCRATCH/stream.out")"
check "the in-flight NDJSON /train stream completed (rows, then the summary line)" \
    grep -q 'ok=true' "$SCRATCH/stream.out"

wait_exit "$SERVER_PID" $((DELAY + GRACE + 5))
exit_after="$(since "$T_TERM")"
drained_for="$(since "$T_DRAINED")"
info "server exited with status $WAIT_RC, ${exit_after} s after SIGTERM, ${drained_for} s after the last response"
check "the server exits 0 after draining" test "$WAIT_RC" = 0
check "... within shutdown delay + grace (${DELAY} + ${GRACE} s)" \
    python3 -c "import sys; assert float(sys.argv[1]) <= float(sys.argv[2]) + 1" "$exit_after" "$((DELAY + GRACE))"
check "... and promptly once the last in-flight response is done (< 2 s after it)" \
    python3 -c "import sys; assert float(sys.argv[1]) < 2.0" "$drained_for"

DELAY=1
GRACE=2
echo "== B: a run longer than the grace period (delay $DELAY s, grace $GRACE s)"
check "server starts and is ready" start_server "$DELAY" "$GRACE"
python3 "$HTTP" long-train-body "$((ITERS * 3))" >"$SCRATCH/longer.json"
python3 "$HTTP" post "$BASE" /train "$SCRATCH/longer.json" >"$SCRATCH/longer.out" 2>&1 &
LONGER_PID=$!
track "$LONGER_PID"
sleep 1
check "a run about three times longer than A's is in flight before SIGTERM" alive "$LONGER_PID"
T_TERM="$(now)"
kill -TERM "$SERVER_PID"
wait_exit "$SERVER_PID" $((DELAY + GRACE + 10))
exit_after="$(since "$T_TERM")"
info "server exited with status $WAIT_RC, ${exit_after} s after SIGTERM"
check "the server exits 0 once the grace period is over" test "$WAIT_RC" = 0
check "... having waited out delay + grace for the run, and no more than 1 s past it (${DELAY} + ${GRACE} s)" \
    python3 -c "import sys; t, lim = float(sys.argv[1]), float(sys.argv[2]); assert lim - 0.5 <= t <= lim + 1, t" \
    "$exit_after" "$((DELAY + GRACE))"
wait_exit "$LONGER_PID" 10
info "the cut-off client saw: $(head -1 "$SCRATCH/longer.out")"
check "... and that run was cut off, not answered" bash -c "! head -1 '$SCRATCH/longer.out' | grep -q '^200 '"

summary
