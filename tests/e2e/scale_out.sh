#!/usr/bin/env bash
# Scale-out test: three losslab replicas on loopback ports behind Debian's nginx, run with
# the SAME load-balancer config as docker-compose (deploy/nginx/losslab.conf.template,
# rendered with these ports), under a bounded wrk load of mixed /loss and /train requests.
# Mid-run one replica is killed with SIGKILL and another is sent SIGTERM; later the killed
# one is started again. Every request must still succeed with the right answer: 0 non-2xx,
# 0 socket errors, 0 wrong bodies. Also checked through the load balancer: NDJSON streams
# are not buffered, a 1e6-element /loss body passes, POSTs are retried on a refused
# connection but never on a 503.
#
#   LOSSLAB_BIN=target/release/losslab bash tests/e2e/scale_out.sh
#   SCALE_OUT_SECS (default 30): length of the wrk run; the events scale with it.
# All traffic goes to 127.0.0.1.

# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
BIN="$(losslab_bin)"
DURATION="${SCALE_OUT_SECS:-30}"
SCRATCH="$(mktemp -d /tmp/losslab-scale-out.XXXXXX)"
chmod 755 "$SCRATCH" # nginx workers run as nobody and must reach their temp dirs here
KEEP="${E2E_KEEP:-0}"

declare -A NGINX_MASTER=()
stop_nginx() { # graceful: TERM the master (KILL would orphan its workers), then wait
    local pid="$1"
    kill -TERM "$pid" 2>/dev/null || return 0
    wait_exit "$pid" 10 || { kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
}
cleanup() {
    local pid
    for pid in "${NGINX_MASTER[@]}"; do stop_nginx "$pid"; done
    e2e_cleanup
    if [ "$KEEP" = 1 ]; then echo "  .. kept $SCRATCH"; else rm -rf "$SCRATCH"; fi
}
trap cleanup EXIT

echo "== setup"
if [ ! -x "$BIN" ]; then
    fail "losslab binary at $BIN (set LOSSLAB_BIN)"
    summary
    exit 1
fi
info "binary: $BIN ($("$BIN" --version 2>&1 | head -1))"
check "nginx available (Debian package)" need_cmd nginx nginx
check "wrk available (Debian package)" need_cmd wrk wrk
check "envsubst available (Debian gettext-base)" need_cmd envsubst gettext-base
check "curl available" need_cmd curl curl
NGINX=/usr/sbin/nginx
command -v nginx >/dev/null 2>&1 && NGINX="$(command -v nginx)"

# --- replicas -----------------------------------------------------------------------
declare -a PORT PID
SHUTDOWN_DELAY=4
GRACE=10
start_replica() { # start_replica INDEX: (re)start replica INDEX on its port
    local i="$1"
    LOSSLAB_ADDR="127.0.0.1:${PORT[$i]}" \
        LOSSLAB_SHUTDOWN_DELAY_SECS=$SHUTDOWN_DELAY LOSSLAB_GRACE_SECS=$GRACE \
        LOSSLAB_MAX_ITERATIONS=1000000000 LOSSLAB_LOG_FORMAT=json \
        "$BIN" serve >>"$SCRATCH/replica$i.log" 2>&1 &
    PID[$i]=$!
    track "${PID[$i]}"
}
for i in 1 2 3; do
    PORT[$i]="$(free_port)"
    start_replica "$i"
done
for i in 1 2 3; do
    check "replica $i (pid ${PID[$i]}, 127.0.0.1:${PORT[$i]}) answers /healthz and /readyz 200" \
        bash -c "$(declare -f wait_status http_status); wait_status http://127.0.0.1:${PORT[$i]}/healthz 200 15 && wait_status http://127.0.0.1:${PORT[$i]}/readyz 200 5"
done

# --- the load balancer, rendered from the compose template ---------------------------
# render_lb NAME LISTEN_PORT U1 U2 U3 → starts nginx on 127.0.0.1:LISTEN_PORT.
render_lb() {
    local name="$1" listen="$2" dir="$SCRATCH/$1"
    mkdir -p "$dir/logs"
    chmod 755 "$dir"
    LOSSLAB_LB_LISTEN="127.0.0.1:$listen" LOSSLAB_UPSTREAM_1="$3" LOSSLAB_UPSTREAM_2="$4" \
        LOSSLAB_UPSTREAM_3="$5" \
        envsubst '${LOSSLAB_LB_LISTEN} ${LOSSLAB_UPSTREAM_1} ${LOSSLAB_UPSTREAM_2} ${LOSSLAB_UPSTREAM_3}' \
        <"$REPO_ROOT/deploy/nginx/losslab.conf.template" >"$dir/losslab.conf"
    # The wrapper is what the nginx image's own nginx.conf provides in compose.
    cat >"$dir/nginx.conf" <<EOF
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    include $dir/losslab.conf;
}
EOF
    "$NGINX" -q -t -p "$dir" -c "$dir/nginx.conf" || return 1
    "$NGINX" -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' >"$dir/access.log" 2>>"$dir/error.log" &
    NGINX_MASTER[$name]=$!
    track "${NGINX_MASTER[$name]}"
    local deadline=$(($(date +%s) + 10))
    until curl -s -o /dev/null "http://127.0.0.1:$listen/" 2>/dev/null; do
        [ "$(date +%s)" -gt "$deadline" ] && return 1
        sleep 0.1
    done
}
LB_PORT="$(free_port)"
LB="http://127.0.0.1:$LB_PORT"
check "nginx (${NGINX}) starts on $LB with deploy/nginx/losslab.conf.template rendered for the 3 replicas" \
    render_lb lb "$LB_PORT" "127.0.0.1:${PORT[1]}" "127.0.0.1:${PORT[2]}" "127.0.0.1:${PORT[3]}"

echo "== through the load balancer, before any load"
LOSS_BODY='{"predictions":[0.5,1.5,2.0,-1.0],"targets":[0.0,1.0,2.5,-1.0]}'
body="$(curl -s --max-time 10 -H 'content-type: application/json' --data-binary "$LOSS_BODY" "$LB/loss/mse")"
check "POST /loss/mse via LB: mse([0.5,1.5,2,-1], [0,1,2.5,-1]) = 0.1875 (hand-computed)" \
    python3 -c "import json,sys; r=json.loads(sys.argv[1]); assert r['loss'] == 0.1875 and r['count'] == 4, r" "$body"
TEXTBOOK='{"inputs":[[1]],"targets":[0.5],"activation":"sigmoid","loss":"l2","init":{"weights":2.1972245773362196,"bias":0},"use_bias":false,"learning_rate":0.2,"max_iterations":1000,"stop":{"loss_below":0.001},"trace_every":0}'
body="$(curl -s --max-time 10 -H 'content-type: application/json' --data-binary "$TEXTBOOK" "$LB/train")"
check "POST /train via LB: the textbook neuron stops after 287 updates (API.md)" \
    python3 -c "import json,sys; r=json.loads(sys.argv[1]); assert r['iterations'] == 287 and r['stop_reason'] == 'loss_below', r" "$body"

ITERS="$(python3 "$E2E_DIR/e2e_http.py" calibrate "http://127.0.0.1:${PORT[1]}" 2.0 1000000000)"
info "a /train of $ITERS updates takes about 2 s here"
stream="$(python3 "$E2E_DIR/e2e_http.py" stream "$LB" "$ITERS")"
info "NDJSON via LB: $stream"
check "NDJSON /train via LB arrives line by line (first row long before the last; not buffered)" \
    python3 -c "
import sys; kv = dict(p.split('=', 1) for p in sys.argv[1].split())
assert kv['ok'] == 'true' and int(kv['lines']) >= 3, kv
first, last = float(kv['first']), float(kv['last'])
assert last >= 0.8 and first < 0.4 * last, kv" "$stream"

python3 "$E2E_DIR/e2e_http.py" big-loss-body 1000000 >"$SCRATCH/big.json"
big="$(python3 "$E2E_DIR/e2e_http.py" post "$LB" /loss/mse "$SCRATCH/big.json" | head -c 300)"
info "1e6-element /loss body ($(stat -c %s "$SCRATCH/big.json") bytes) via LB: $(echo "$big" | head -1)"
check "a 1e6-element POST /loss/mse body passes the LB and gives mse 0.25 over 1000000 terms" \
    python3 -c "
import json, sys; status, _, rest = sys.argv[1].partition(' ')
assert status == '200', sys.argv[1]
r = json.loads(rest.split('\n', 1)[1]); assert r['loss'] == 0.25 and r['count'] == 1000000, r" "$big"

echo "== load: wrk for ${DURATION} s; SIGKILL replica 1, SIGTERM replica 2, restart replica 1"
WRK_OUT="$SCRATCH/wrk.out"
T_START=$(date +%s.%N)
wrk -t2 -c8 -d"${DURATION}s" --timeout 10s --latency -s "$E2E_DIR/scale_out.lua" "$LB" >"$WRK_OUT" 2>&1 &
WRK_PID=$!
track "$WRK_PID"
at() { # at SECONDS: sleep until SECONDS after the load started
    python3 -c "import sys,time; time.sleep(max(0.0, float(sys.argv[1]) + float(sys.argv[2]) - time.time()))" "$T_START" "$1"
}
# The restart leaves half the run: nginx tries a failed replica again after fail_timeout
# (5 s in the template), and the restarted one must be seen taking load.
KILL_AT=$(python3 -c "print(round($DURATION * 0.20, 1))")
TERM_AT=$(python3 -c "print(round($DURATION * 0.35, 1))")
RESTART_AT=$(python3 -c "print(round($DURATION * 0.50, 1))")

at "$KILL_AT"
T_KILL=$(date +%s.%N)
kill -KILL "${PID[1]}"
wait_exit "${PID[1]}" 5
info "t=${KILL_AT}s: replica 1 (pid ${PID[1]}) SIGKILLed, exit status $WAIT_RC"
check "replica 1 died of SIGKILL (status 137)" test "$WAIT_RC" = 137

at "$TERM_AT"
T_TERM=$(date +%s.%N)
kill -TERM "${PID[2]}"
ready_after_term="$(http_status GET "http://127.0.0.1:${PORT[2]}/readyz")"
health_after_term="$(http_status GET "http://127.0.0.1:${PORT[2]}/healthz")"
info "t=${TERM_AT}s: replica 2 (pid ${PID[2]}) sent SIGTERM; /readyz $ready_after_term, /healthz $health_after_term"
check "replica 2: /readyz answers 503 at once after SIGTERM" test "$ready_after_term" = 503
check "replica 2: still serving during the shutdown delay (/healthz 200)" test "$health_after_term" = 200
wait_exit "${PID[2]}" $((SHUTDOWN_DELAY + GRACE + 5))
T_EXIT2=$(date +%s.%N)
info "replica 2 exited with status $WAIT_RC after $(python3 -c "print(f'{$T_EXIT2 - $T_TERM:.1f}')") s"
check "replica 2 exits 0 within shutdown delay + grace (${SHUTDOWN_DELAY} + ${GRACE} s)" test "$WAIT_RC" = 0

at "$RESTART_AT"
T_RESTART=$(date +%s.%N)
start_replica 1
check "replica 1 restarted (pid ${PID[1]}) and healthy" \
    bash -c "$(declare -f wait_status http_status); wait_status http://127.0.0.1:${PORT[1]}/healthz 200 15"
info "t=${RESTART_AT}s: replica 1 back on 127.0.0.1:${PORT[1]}"

wait_exit "$WRK_PID" $((DURATION + 30))
info "wrk exit status $WAIT_RC"
sed 's/^/  | /' "$WRK_OUT"
check "wrk ran to the end (exit 0)" test "$WAIT_RC" = 0
check "replica 3 (pid ${PID[3]}) survived the whole run" alive "${PID[3]}"

# Counts: wrk's own (all requests, socket errors, non-2xx/3xx) and the Lua script's
# (status and exact body of every response).
wrk_line="$(grep '^WRK_SUMMARY' "$WRK_OUT")"
lua_line="$(grep '^LUA_SUMMARY' "$WRK_OUT")"
kv() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
REQS="$(kv requests "$wrk_line")"
SOCKET_ERRORS=$(($(kv connect "$wrk_line") + $(kv read "$wrk_line") + $(kv write "$wrk_line") + $(kv timeout "$wrk_line")))
NON2XX="$(kv non2xx3xx "$wrk_line")"
OK_LOSS="$(kv loss_ok "$lua_line")"
OK_SHORT="$(kv train_short_ok "$lua_line")"
OK_LONG="$(kv train_long_ok "$lua_line")"
BAD_STATUS="$(kv bad_status "$lua_line")"
BAD_BODY="$(kv bad_body "$lua_line")"
FAILED=$((SOCKET_ERRORS + BAD_STATUS + BAD_BODY))
SUCCEEDED=$((OK_LOSS + OK_SHORT + OK_LONG))
echo "  .. load: ${REQS:-?} requests: ${OK_LOSS:-?} /loss/mse, ${OK_SHORT:-?} short /train, ${OK_LONG:-?} long /train correct; ${SOCKET_ERRORS} socket errors, ${NON2XX:-?} non-2xx (wrk), ${BAD_STATUS:-?} non-200 and ${BAD_BODY:-?} wrong bodies (Lua)"
check "load ran: at least 200 requests, each of /loss, short /train and long /train answered" \
    test "${REQS:-0}" -ge 200 -a "${OK_LOSS:-0}" -gt 0 -a "${OK_SHORT:-0}" -gt 0 -a "${OK_LONG:-0}" -gt 0
check "0 socket errors (connect/read/write/timeout) at the client" test "$SOCKET_ERRORS" -eq 0
check "0 non-2xx responses (wrk)" test "${NON2XX:-1}" -eq 0
check "0 non-200 responses and 0 wrong answers (Lua check of every body)" \
    test "${BAD_STATUS:-1}" -eq 0 -a "${BAD_BODY:-1}" -eq 0
check "every request the client counted was answered correctly (${SUCCEEDED} of ${REQS:-?})" \
    test "$SUCCEEDED" -eq "${REQS:--1}"

# The LB's access log says which replica answered each request and which were retried.
# 499 = the client closed the connection first: wrk does that to whatever is in flight when
# its time is up, so a 499 in the last second is the end of the run, not a failure.
python3 - "$SCRATCH/lb/access.log" "$T_START" "$T_KILL" "$T_TERM" "$T_RESTART" "$DURATION" \
    "${PORT[1]}" "${PORT[2]}" "${PORT[3]}" >"$SCRATCH/lbstats" <<'EOF'
import re, sys
log, t_start, t_kill, t_term, t_restart, duration = sys.argv[1], *map(float, sys.argv[2:7])
ports = sys.argv[7:10]
t_end = t_start + duration
line_re = re.compile(r't=(\S+) .*?" (\d{3}) .*upstream=\[([^\]]*)\] ustatus=\[([^\]]*)\]')
served = {p: {"before_kill": 0, "after_restart": 0} for p in ports}
retried = non200 = total = closed_at_end = 0
for line in open(log):
    m = line_re.search(line)
    if not m:
        continue
    t, status, addrs, ustatus = float(m[1]), m[2], m[3], m[4]
    if t < t_start:
        continue
    total += 1
    if status == "499" and t >= t_end - 1.0:
        closed_at_end += 1
    elif status != "200":
        non200 += 1
    hops = [a.strip() for a in addrs.split(",")]
    if len(hops) > 1:
        retried += 1
    last = hops[-1].rsplit(":", 1)[-1]
    if last in served:
        if t < t_kill:
            served[last]["before_kill"] += 1
        if t > t_restart:
            served[last]["after_restart"] += 1
print(f"total={total} retried={retried} non200={non200} closed_by_wrk_at_end={closed_at_end} "
      + " ".join(f"r{i + 1}_before_kill={served[p]['before_kill']} r{i + 1}_after_restart={served[p]['after_restart']}"
                 for i, p in enumerate(ports)))
EOF
lb_line="$(cat "$SCRATCH/lbstats")"
info "LB access log: $lb_line"
check "LB log: every request answered 200 by a replica (but those wrk dropped at its end)" test "$(kv non200 "$lb_line")" = 0
check "LB log: all 3 replicas served load before the kill" \
    test "$(kv r1_before_kill "$lb_line")" -gt 0 -a "$(kv r2_before_kill "$lb_line")" -gt 0 -a "$(kv r3_before_kill "$lb_line")" -gt 0
check "LB log: the restarted replica 1 took load again" test "$(kv r1_after_restart "$lb_line")" -gt 0
RETRIED="$(kv retried "$lb_line")"
info "requests nginx moved to another replica after a connection error: $RETRIED"

echo "== retry rules, against stand-in upstreams (tests/e2e/e2e_http.py stub)"
S1="$(free_port)"
S2="$(free_port)"
S3="$(free_port)"
python3 "$E2E_DIR/e2e_http.py" stub "$S1:503" "$S2:503" "$S3:503" >"$SCRATCH/stub503.log" 2>&1 &
track $!
LB503_PORT="$(free_port)"
sleep 0.5
render_lb lb503 "$LB503_PORT" "127.0.0.1:$S1" "127.0.0.1:$S2" "127.0.0.1:$S3"
codes=""
for _ in 1 2 3; do
    codes+="$(http_status POST "http://127.0.0.1:$LB503_PORT/loss/mse" "$LOSS_BODY") "
done
hits=0
for p in "$S1" "$S2" "$S3"; do
    hits=$((hits + $(curl -s "http://127.0.0.1:$p/hits" | python3 -c 'import json,sys; print(json.load(sys.stdin)["hits"])')))
done
info "3 POSTs through an LB whose replicas all answer 503: client saw [${codes% }], replicas saw $hits requests"
check "a 503 from a replica goes to the client and is NOT retried on another (3 POSTs, 3 upstream hits)" \
    test "$codes" = "503 503 503 " -a "$hits" -eq 3

S4="$(free_port)"
DEAD1="$(free_port)"
DEAD2="$(free_port)"
python3 "$E2E_DIR/e2e_http.py" stub "$S4:200" >"$SCRATCH/stub200.log" 2>&1 &
track $!
LBR_PORT="$(free_port)"
sleep 0.5
render_lb lbretry "$LBR_PORT" "127.0.0.1:$DEAD1" "127.0.0.1:$DEAD2" "127.0.0.1:$S4"
codes=""
for _ in 1 2 3 4 5 6; do
    codes+="$(http_status POST "http://127.0.0.1:$LBR_PORT/loss/mse" "$LOSS_BODY") "
done
hits="$(curl -s "http://127.0.0.1:$S4/hits" | python3 -c 'import json,sys; print(json.load(sys.stdin)["hits"])')"
info "6 POSTs through an LB with 2 of 3 replicas refusing connections: client saw [${codes% }], live replica saw $hits"
check "a POST whose replica refuses the connection is retried on the next one (6 POSTs, all 200)" \
    test "$codes" = "200 200 200 200 200 200 " -a "$hits" -eq 6

echo "scale-out counts: requests=${REQS:-?} succeeded=${SUCCEEDED} failed=${FAILED} (socket errors ${SOCKET_ERRORS}, non-2xx ${NON2XX:-?}, wrong bodies ${BAD_BODY:-?}) retried_by_lb=${RETRIED}"
summary
