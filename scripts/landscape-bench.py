#!/usr/bin/env python3
"""POST /landscape side by side with the Python peer (BENCHMARKS.md, "POST /landscape").

Two cases, each a 500 x 500 grid over (/weights/0, /bias) without a path:
  - the textbook neuron: inputs [[1]], targets [0.5], sigmoid + l2;
  - a 1,000-sample linear regression: x_i = i/999*6 - 3,
    y_i = 2 x_i - 1 + ((7919 i mod 1000)/1000 - 0.5), identity + mse
(the data of benches/landscape.rs). Three measurements:
  1. over HTTP: losslab (A) and the peer (B) alternately, the same JSON body, the time from
     sending the request to the last byte of the answer (the answer is not parsed while
     timed); before timing, both answers are parsed and their grids compared;
  2. the peer's grid alone: its landscape.evaluate_points on the same data, in this
     process (numpy), best of N;
  3. losslab's grid alone: `cargo bench --bench landscape` (1 rayon thread and every core).

Usage (from the repository root, with a Python that has the peer's packages, numpy):
  PEER_VENV=... $PEER_VENV/bin/python scripts/landscape-bench.py
      starts both itself: losslab from $LOSSLAB_BIN (default
      $CARGO_TARGET_DIR/release/losslab, else target/release/losslab) and the peer with
      its run.sh, each on a free loopback port, and stops them at the end;
  $PEER_VENV/bin/python scripts/landscape-bench.py A_URL B_URL
      against services already running (loopback only).
Options: --peer-dir (the peer's folder, default ../shared/bench/peer), --runs N (HTTP
requests per side and case, default 15), --no-cargo-bench, --quick.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from urllib.parse import urlparse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 500


def neuron_body() -> dict:
    return {
        "inputs": [[1.0]], "targets": [0.5], "activation": "sigmoid", "loss": "l2",
        "init": {"weights": 0.0, "bias": 0.0},
        "x": {"parameter": "/weights/0", "from": -4.0, "to": 6.0, "steps": STEPS},
        "y": {"parameter": "/bias", "from": -5.0, "to": 5.0, "steps": STEPS},
    }


def regression_body() -> dict:
    xs = [i / 999 * 6 - 3 for i in range(1000)]
    ys = [2 * x - 1 + ((7919 * i) % 1000 / 1000 - 0.5) for i, x in enumerate(xs)]
    return {
        "inputs": xs, "targets": ys, "activation": "identity", "loss": "mse",
        "init": {"weights": 0.0, "bias": 0.0},
        "x": {"parameter": "/weights/0", "from": -1.0, "to": 5.0, "steps": STEPS},
        "y": {"parameter": "/bias", "from": -4.0, "to": 2.0, "steps": STEPS},
    }


CASES = [("textbook neuron 500x500", neuron_body), ("1000-sample regression 500x500", regression_body)]


# ---------------------------------------------------------------------------------------
# HTTP

class Client:
    """One keep-alive connection to a loopback service."""

    def __init__(self, url: str):
        u = urlparse(url)
        if u.hostname not in ("127.0.0.1", "localhost", "::1"):
            sys.exit(f"{url}: only loopback services are measured")
        self.host, self.port = u.hostname, u.port or 80
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)

    def post(self, path: str, body: bytes) -> tuple[int, bytes, float]:
        """(status, body, seconds); a connection the server closed while idle (uvicorn's
        keep-alive timeout is 5 s) is opened again and the request timed from there."""
        for attempt in (1, 2):
            try:
                t = time.perf_counter()
                self.conn.request("POST", path, body, {"Content-Type": "application/json",
                                                       "Accept": "application/json"})
                r = self.conn.getresponse()
                data = r.read()
                return r.status, data, time.perf_counter() - t
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def compare(a: dict, b: dict) -> str:
    """How far A's grid is from B's: equal bits, or the largest relative difference."""
    ga, gb = a["loss"], b["loss"]
    if len(ga) != len(gb) or any(len(ra) != len(rb) for ra, rb in zip(ga, gb)):
        return "NO (shapes differ)"
    worst, nulls, equal = 0.0, 0, 0
    for ra, rb in zip(ga, gb):
        for va, vb in zip(ra, rb):
            if va is None or vb is None:
                nulls += (va is None) != (vb is None)
                continue
            if va == vb:
                equal += 1
            worst = max(worst, abs(va - vb) / max(abs(va), abs(vb), 1e-300))
    total = sum(len(r) for r in ga)
    if nulls:
        return f"NO ({nulls} nulls differ)"
    return f"{equal}/{total} equal, max rel diff {worst:.1e}"


def http_side_by_side(a_url: str, b_url: str, runs: int) -> list[dict]:
    rows = []
    a, b = Client(a_url), Client(b_url)
    for name, make in CASES:
        body = json.dumps(make()).encode()
        sa, da, _ = a.post("/landscape", body)
        sb, db, _ = b.post("/landscape", body)
        if sa != 200 or sb != 200:
            sys.exit(f"{name}: A answered {sa}, B answered {sb}: {da[:300]!r} {db[:300]!r}")
        agree = compare(json.loads(da), json.loads(db))
        ta, tb = [], []
        for i in range(runs):  # alternately, A first then B first
            order = [(a, ta), (b, tb)] if i % 2 == 0 else [(b, tb), (a, ta)]
            for client, times in order:
                status, _, dt = client.post("/landscape", body)
                assert status == 200, status
                times.append(dt)
        rows.append({"case": name, "a": statistics.median(ta), "b": statistics.median(tb),
                     "a_min": min(ta), "b_min": min(tb), "bytes_a": len(da), "bytes_b": len(db),
                     "agree": agree})
    return rows


# ---------------------------------------------------------------------------------------
# Grids alone

def peer_grid(peer_dir: str, runs: int) -> list[dict]:
    sys.path.insert(0, peer_dir)
    import numpy as np  # noqa: E402  (the peer's venv)
    import landscape  # noqa: E402

    out = []
    for (name, make), n in zip(CASES, (runs * 2, max(3, runs // 3))):
        job = landscape.parse(make())
        spec = job["spec"]
        _, px, xs = job["x"]
        _, py, ys = job["y"]
        best = math.inf
        for _ in range(n):
            t = time.perf_counter()
            with np.errstate(all="ignore"):
                g = landscape.evaluate_points(spec, px, py, np.tile(xs, len(ys)), np.repeat(ys, len(xs)))
            best = min(best, time.perf_counter() - t)
            assert len(g) == len(xs) * len(ys)
        out.append({"case": name, "best": best})
    return out


def cargo_grid() -> list[dict]:
    env = dict(os.environ, CARGO_TERM_COLOR="never")
    p = subprocess.run(["cargo", "bench", "--locked", "--bench", "landscape"], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"cargo bench failed:\n{p.stderr[-2000:]}")
    rows = []
    pat = re.compile(r"^(.*?): 1 thread ([0-9.]+) ms .*?, (\d+) threads ([0-9.]+) ms .*= (\d+)% of")
    for line in p.stdout.splitlines():
        m = pat.match(line)
        if m:
            rows.append({"case": m[1], "one": float(m[2]) / 1e3, "threads": int(m[3]),
                         "all": float(m[4]) / 1e3, "share": int(m[5])})
    return rows


# ---------------------------------------------------------------------------------------
# Starting the services (when no URLs are given)

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, what: str, proc: subprocess.Popen):
    u = urlparse(url)
    for _ in range(300):
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=1)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"{what} did not start at {url}")


def start_services(peer_dir: str) -> tuple[str, str, list]:
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    binary = os.environ.get("LOSSLAB_BIN", os.path.join(target, "release", "losslab"))
    if not os.access(binary, os.X_OK):
        sys.exit(f"no release build at {binary}: cargo build --release first (or set LOSSLAB_BIN)")
    pa, pb = free_port(), free_port()
    a = subprocess.Popen([binary], env=dict(os.environ, LOSSLAB_ADDR=f"127.0.0.1:{pa}"),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    b = subprocess.Popen(["bash", os.path.join(peer_dir, "run.sh"), str(pb)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    a_url, b_url = f"http://127.0.0.1:{pa}", f"http://127.0.0.1:{pb}"
    wait_up(a_url, "losslab", a)
    wait_up(b_url, "the peer", b)
    return a_url, b_url, [a, b]


# ---------------------------------------------------------------------------------------

def ms(s: float) -> str:
    return f"{s * 1e3:,.1f} ms" if s < 10 else f"{s:,.2f} s"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a_url", nargs="?")
    ap.add_argument("b_url", nargs="?")
    ap.add_argument("--peer-dir", default=os.path.join(ROOT, "..", "shared", "bench", "peer"))
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--no-cargo-bench", action="store_true")
    ap.add_argument("--quick", action="store_true", help="3 HTTP runs per side and case")
    args = ap.parse_args()
    runs = 3 if args.quick else args.runs
    peer_dir = os.path.abspath(args.peer_dir)
    if not os.path.exists(os.path.join(peer_dir, "landscape.py")):
        sys.exit(f"no peer at {peer_dir} (--peer-dir)")
    started = []
    try:
        if args.a_url and args.b_url:
            a_url, b_url = args.a_url, args.b_url
        else:
            a_url, b_url, started = start_services(peer_dir)
        load = os.getloadavg()[0]
        print(f"A = losslab at {a_url}, B = the peer at {b_url}; {os.cpu_count()} cores, "
              f"load average {load:.1f} at the start")
        http_rows = http_side_by_side(a_url, b_url, runs)
    finally:
        for p in started:
            p.terminate()
        for p in started:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
    print()
    print(f"Over HTTP (median of {runs} per side, alternately; min in brackets):")
    print()
    print("| case | losslab | peer | losslab / peer | answer size (A, B) | grids agree |")
    print("|---|---|---|---|---|---|")
    for r in http_rows:
        print(f"| {r['case']} | {ms(r['a'])} ({ms(r['a_min'])}) | {ms(r['b'])} ({ms(r['b_min'])}) | "
              f"{r['b'] / r['a']:.1f}x | {r['bytes_a'] / 1e6:.1f} MB, {r['bytes_b'] / 1e6:.1f} MB | {r['agree']} |")
    peer = peer_grid(peer_dir, runs)
    ours = [] if args.no_cargo_bench else cargo_grid()
    print()
    print("The grid alone (250,000 points; best of several runs):")
    print()
    print("| case | losslab, 1 thread | losslab, all cores | share of 1-thread x cores | peer (numpy) | losslab / peer |")
    print("|---|---|---|---|---|---|")
    for p in peer:
        o = next((r for r in ours if r["case"] == p["case"]), None)
        rate = lambda s: f"{250_000 / s:.2e} points/s"
        if o:
            print(f"| {p['case']} | {ms(o['one'])} ({rate(o['one'])}) | {ms(o['all'])} on {o['threads']} "
                  f"({rate(o['all'])}) | {o['share']} % | {ms(p['best'])} ({rate(p['best'])}) | "
                  f"{p['best'] / o['all']:.1f}x |")
        else:
            print(f"| {p['case']} | – | – | – | {ms(p['best'])} ({rate(p['best'])}) | – |")
    print()
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
