#!/usr/bin/env python3
"""Server CPU time per binary-body request: POST /loss/mse with gradient, 10^6 elements,
sent and answered as safetensors (the request of ../shared/bench/binary.py), to each
running server in turn; reports the wall-time median and the CPU time (user + system) the
server's process and its children spent per request, read from /proc — steadier than
wall time on a shared machine, as other work delays a request but does not add to its CPU.

    scripts/binary-cpu.py URL=PID [URL=PID ...] [--runs 20] [--n 1000000]

e.g. scripts/binary-cpu.py http://127.0.0.1:8080=$(pgrep -nx losslab) http://127.0.0.1:18082=$PEER_PID
(the peer's PID is that of peer/run.sh: uvicorn, whose workers are its children).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import statistics
import struct
import time
import urllib.parse

import numpy as np

SEED = 20240611  # binary.py's
ST = "application/x-safetensors"


def pack(tensors: dict, request: dict) -> bytes:
    header, blobs, off = {}, [], 0
    for name, arr in tensors.items():
        b = np.ascontiguousarray(arr, dtype="<f8").tobytes()
        header[name] = {"dtype": "F64", "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"request": json.dumps(request)}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for p in pids:
        with open(f"/proc/{p}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / os.sysconf("SC_CLK_TCK")


def family(pid: int) -> list[int]:
    """The process and its children (uvicorn's workers)."""
    out = [pid]
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("servers", nargs="+", help="URL=PID")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--n", type=int, default=1_000_000)
    args = ap.parse_args()
    rng = np.random.default_rng(SEED + args.n)
    pred = rng.standard_normal(args.n)
    targ = pred + 0.1 * rng.standard_normal(args.n)
    body = pack({"predictions": pred, "targets": targ}, {"gradient": True})
    print(f"n={args.n}: body {len(body) / 1e6:.1f} MB, {args.runs} requests per server")
    for spec in args.servers:
        url, pid = spec.rsplit("=", 1)
        u = urllib.parse.urlsplit(url)
        assert u.hostname in ("127.0.0.1", "localhost", "::1"), "loopback only"
        pids = family(int(pid))
        conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=120)

        def post() -> float:
            t0 = time.perf_counter()
            conn.request("POST", "/loss/mse", body, {"Content-Type": ST, "Accept": ST})
            r = conn.getresponse()
            data = r.read()
            assert r.status == 200, (r.status, data[:200])
            return time.perf_counter() - t0

        post()  # warm-up
        s0, c0 = cpu_seconds(pids), resource.getrusage(resource.RUSAGE_SELF)
        walls = [post() for _ in range(args.runs)]
        s1, c1 = cpu_seconds(pids), resource.getrusage(resource.RUSAGE_SELF)
        conn.close()
        client = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
        print(
            f"{url}: wall median {statistics.median(walls) * 1e3:.1f} ms (min {min(walls) * 1e3:.1f}); "
            f"server CPU {(s1 - s0) / args.runs * 1e3:.1f} ms/request; client CPU {client / args.runs * 1e3:.1f} ms/request"
        )


if __name__ == "__main__":
    main()
