#!/usr/bin/env bash
# Graceful-shutdown test of the losslab binary, on loopback.
#
# A: long /train runs (one plain JSON, one NDJSON stream) are in flight when SIGTERM arrives.
#    /readyz must answer 503 at once while the server keeps serving for the shutdown delay;
#    after the delay new connections are refused; both runs complete (200, every update
#    done); then the process exits 0, within delay + grace.
# B: a run longer than the grace period does not hold the process: it exits 0 once the
#    grace is over.
#
#   LOSSLAB_BIN=target/release/losslab bash tests/e2e/graceful_shutdown.sh

source "$(dirname "$0")/lib.sh"
BIN="$(losslab_bin)"
SCRATCH="$(mktemp -d /tmp/losslab-graceful.XXXXXX)"
trap 'e2e_cleanup; rm -rf "$SCRATCH"' EXIT
HTTP="$E2E_DIR/e2e_http.py"

if [ ! -x "$BIN" ]; then
    fail "losslab binary at $BIN (set LOSSLAB_BIN)"
    summary
    exit 1
fi
info "binary: $BIN ($("$BIN" --version 2>&1 | head -1))"

now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$(now)"; }

# start_server DELAY GRACE → SERVER_PID, BASE
start_server() {
    local port
    port="$(free_port)"
    BASE="http://127.0.0.1:$port"
    LOSSLAB_ADDR="127.0.0.1:$port" LOSSLAB_SHUTDOWN_DELAY_SECS="$1" LOSSLAB_GRACE_SECS="$2" \
        LOSSLAB_MAX_ITERATIONS=1000000000 LOSSLAB_TIMEOUT_SECS=300 \
        "$BIN" serve >>"$SCRATCH/server.log" 2>&1 &
    SERVER_PID=$!
    track "$SERVER_PID"
    wait_status "$BASE/readyz" 200 15
}

echo "== A: long /train runs in flight when SIGTERM arrives (delay 2 s, grace 30 s)"
DELAY=2
GRACE=30
check "server starts and is ready" start_server "$DELAY" "$GRACE"
# Each run must outlast the delay by a few seconds: ~7 s, started 1 s before SIGTERM.
ITERS="$(python3 "$HTTP" calibrate "$BASE" 7 1000000000)"
info "a /train of $ITERS updates takes about 7 s here (max_iterations raised, trace_every 0)"
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
info "SIGTERM sent; /readyz answered $ready ${ready_after} s later"
check "/readyz answers 503 at once after SIGTERM (within 1 s)" \
    python3 -c "import sys; assert sys.argv[1] == '503' and float(sys.argv[2]) < 1.0" "$ready" "$ready_after"
check "during the shutdown delay /healthz still answers 200" test "$(http_status GET "$BASE/healthz")" = 200
check "during the shutdown delay a new POST /loss/mse is still served (200)" \
    test "$(http_status POST "$BASE/loss/mse" '{"predictions":[1,2],"targets":[1,0]}')" = 200

python3 -c "import sys,time; time.sleep(max(0.0, float(sys.argv[1]) + float(sys.argv[2]) - time.time()))" "$T_TERM" "$((DELAY + 1))"
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
info "NDJSON /train: $(cat "$SCRATCH/stream.out")"
check "the in-flight NDJSON /train stream completed (rows, then the summary line)" \
    grep -q 'ok=true' "$SCRATCH/stream.out"

wait_exit "$SERVER_PID" $((DELAY + GRACE + 5))
exit_after="$(since "$T_TERM")"
info "server exited with status $WAIT_RC, ${exit_after} s after SIGTERM"
check "the server exits 0 after draining" test "$WAIT_RC" = 0
check "... within shutdown delay + grace (${DELAY} + ${GRACE} s)" \
    python3 -c "import sys; assert float(sys.argv[1]) <= float(sys.argv[2]) + 1" "$exit_after" "$((DELAY + GRACE))"

echo "== B: a run longer than the grace period (delay 1 s, grace 2 s)"
DELAY=1
GRACE=2
check "server starts and is ready" start_server "$DELAY" "$GRACE"
python3 "$HTTP" long-train-body "$((ITERS * 3))" >"$SCRATCH/longer.json"
python3 "$HTTP" post "$BASE" /train "$SCRATCH/longer.json" >"$SCRATCH/longer.out" 2>&1 &
LONGER_PID=$!
track "$LONGER_PID"
sleep 1
T_TERM="$(now)"
kill -TERM "$SERVER_PID"
wait_exit "$SERVER_PID" $((DELAY + GRACE + 10))
exit_after="$(since "$T_TERM")"
info "server exited with status $WAIT_RC, ${exit_after} s after SIGTERM (a run about three times longer was in flight)"
check "the server exits 0 once the grace period is over" test "$WAIT_RC" = 0
check "... no later than shutdown delay + grace + 1 s (${DELAY} + ${GRACE} + 1)" \
    python3 -c "import sys; assert float(sys.argv[1]) <= float(sys.argv[2]) + 1" "$exit_after" "$((DELAY + GRACE))"
wait_exit "$LONGER_PID" 10
info "the cut-off client saw: $(head -1 "$SCRATCH/longer.out")"

summary
