#!/usr/bin/env python3
"""Small HTTP helpers for the tests/e2e/*.sh scripts (standard library only, loopback only).

  e2e_http.py long-train-body ITERATIONS [TRACE_EVERY]
        print a /train body that runs exactly ITERATIONS updates (no stop rule can end it)
  e2e_http.py calibrate BASE_URL SECONDS MAX_ITERATIONS
        time a /train of that body and print the iteration count that takes about SECONDS
        (at most MAX_ITERATIONS)
  e2e_http.py post BASE_URL PATH BODY_FILE
        POST a JSON body, print "STATUS SECONDS" then the response body (for background use)
  e2e_http.py stream BASE_URL ITERATIONS
        POST /train with Accept: application/x-ndjson, read it line by line and print
        "lines=N first=T_FIRST last=T_LAST total=T ok=BOOL": when each line arrived, seconds
        after the request was sent, and whether it ended in the summary object
  e2e_http.py stub PORT:MODE ...
        upstream stand-in for the load-balancer rule tests. MODE 503: every POST gets a 503
        problem; MODE 200: every POST gets 200 {"ok":true}. GET /hits answers how many POSTs
        this port has had (the /hits requests themselves are not counted).
  e2e_http.py big-loss-body N
        print a /loss/mse body with N predictions and N targets (mse known exactly: 0.25)
"""

import http.client
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


def long_train_body(iterations, trace_every=0):
    # One sample, one feature, mse, no stop rule: the run always ends with max_iterations.
    # lr 1e-3 keeps it far from diverging; the work per update is the same whatever the
    # parameters do.
    return json.dumps({
        "inputs": [[1.0]],
        "targets": [0.5],
        "loss": "mse",
        "learning_rate": 0.001,
        "max_iterations": iterations,
        "trace_every": trace_every,
    })


def connect(base):
    u = urlsplit(base)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=120)


def post(base, path, body, headers=None):
    conn = connect(base)
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    t0 = time.monotonic()
    conn.request("POST", path, body=body.encode() if isinstance(body, str) else body, headers=h)
    resp = conn.getresponse()
    data = resp.read()
    return resp.status, time.monotonic() - t0, data


def calibrate(base, seconds, max_iterations):
    # Grow the run until it takes at least half a second, then time it once more. A busy
    # machine can only make a run slower, never faster, so the fastest rate seen is the
    # best estimate of the real speed: the run sized from it takes at least SECONDS.
    n, best_rate = 20_000, 0.0
    while True:
        status, took, data = post(base, "/train", long_train_body(n))
        if status != 200:
            raise SystemExit(f"calibrate: /train answered {status}: {data[:200]!r}")
        best_rate = max(best_rate, n / max(took, 1e-6))
        if took >= 0.5 or n >= max_iterations:
            break
        n = min(n * 4, max_iterations)
    _, took, _ = post(base, "/train", long_train_body(n))
    best_rate = max(best_rate, n / max(took, 1e-6))
    print(min(max_iterations, max(1, int(best_rate * seconds))))


def stream(base, iterations):
    conn = connect(base)
    body = long_train_body(iterations, trace_every=max(1, iterations // 2))
    t0 = time.monotonic()
    conn.request("POST", "/train", body=body.encode(), headers={
        "Content-Type": "application/json", "Accept": "application/x-ndjson"})
    resp = conn.getresponse()
    times, last = [], None
    while True:
        line = resp.readline()
        if not line:
            break
        if line.strip():
            times.append(time.monotonic() - t0)
            last = line
    total = time.monotonic() - t0
    ok = resp.status == 200 and last is not None and b"stop_reason" in last
    first = times[0] if times else -1.0
    final = times[-1] if times else -1.0
    print(f"lines={len(times)} first={first:.3f} last={final:.3f} total={total:.3f} "
          f"ok={str(ok).lower()} status={resp.status} "
          f"buffering_header={resp.getheader('X-Accel-Buffering')}")


def stub(specs):
    servers = []
    for spec in specs:
        port, mode = spec.split(":")
        hits = {"n": 0}
        lock = threading.Lock()

        def make_handler(mode=mode, hits=hits, lock=lock):
            class Handler(BaseHTTPRequestHandler):
                protocol_version = "HTTP/1.1"

                def log_message(self, *args):
                    pass

                def reply(self, status, ctype, payload):
                    data = json.dumps(payload).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

                def do_GET(self):
                    self.reply(200, "application/json", {"hits": hits["n"]})

                def do_POST(self):
                    self.rfile.read(int(self.headers.get("Content-Length") or 0))
                    with lock:
                        hits["n"] += 1
                    if mode == "503":
                        self.reply(503, "application/problem+json", {
                            "type": "about:blank", "title": "Service Unavailable",
                            "status": 503, "detail": "stub: overloaded", "errors": []})
                    else:
                        self.reply(200, "application/json", {"ok": True})
            return Handler

        srv = ThreadingHTTPServer(("127.0.0.1", int(port)), make_handler())
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
    print("stub ready", flush=True)
    threading.Event().wait()


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "long-train-body":
        print(long_train_body(int(args[0]), int(args[1]) if len(args) > 1 else 0))
    elif cmd == "calibrate":
        calibrate(args[0], float(args[1]), int(args[2]))
    elif cmd == "post":
        with open(args[2], "rb") as f:
            body = f.read()
        try:
            status, took, data = post(args[0], args[1], body)
            print(f"{status} {took:.3f}")
            sys.stdout.write(data.decode(errors="replace"))
        except (OSError, http.client.HTTPException) as e:
            print(f"000 0 {type(e).__name__}: {e}")
    elif cmd == "stream":
        stream(args[0], int(args[1]))
    elif cmd == "stub":
        stub(args)
    elif cmd == "big-loss-body":
        n = int(args[0])
        # predictions 0.5 everywhere, targets alternating 0 and 1: every term is 0.25. The
        # numbers are written with 17 digits (they still parse to exactly 0.5, 0 and 1) so the
        # body has the size of real data: about 37 bytes per pair, 37 MB for n = 1e6.
        preds = ",".join(["0.50000000000000000"] * n)
        targs = ",".join("0.0000000000000000" if i % 2 == 0 else "1.0000000000000000"
                         for i in range(n))
        sys.stdout.write('{"predictions":[' + preds + '],"targets":[' + targs + ']}')
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
