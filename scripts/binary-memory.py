#!/usr/bin/env python3
"""Peak memory of one binary-body request: starts the release server, warms it up, then
sends POST /loss/mse with gradient as safetensors (10^6 elements by default, answered as
safetensors) and reports the growth of the server's peak RSS (VmHWM) against the body size.

    scripts/binary-memory.py [--n 1000000] [--bin target/release/losslab]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import struct
import subprocess
import time

import numpy as np


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


def status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def post(port: int, body: bytes) -> tuple[int, bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    st = "application/x-safetensors"
    c.request("POST", "/loss/mse", body, {"Content-Type": st, "Accept": st})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    ap.add_argument("--bin", default=os.environ.get("LOSSLAB_BIN", f"{target}/release/losslab"))
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([args.bin], env={**os.environ, "LOSSLAB_ADDR": f"127.0.0.1:{port}"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        rng = np.random.default_rng(20240611)
        small = pack({"predictions": rng.standard_normal(1000), "targets": rng.standard_normal(1000)}, {"gradient": True})
        for _ in range(3):
            assert post(port, small)[0] == 200
        pred = rng.standard_normal(args.n)
        body = pack({"predictions": pred, "targets": pred + 0.1 * rng.standard_normal(args.n)}, {"gradient": True})
        before_hwm, before_rss = status_kb(proc.pid, "VmHWM"), status_kb(proc.pid, "VmRSS")
        status, answer = post(port, body)
        after_hwm = status_kb(proc.pid, "VmHWM")
        assert status == 200, answer[:300]
        growth = (after_hwm - before_hwm) * 1024
        peak_over_idle = (after_hwm - before_rss) * 1024
        print(f"n={args.n}: body {len(body) / 1e6:.1f} MB, answer {len(answer) / 1e6:.1f} MB")
        print(f"server VmRSS before {before_rss / 1024:.1f} MiB, VmHWM before {before_hwm / 1024:.1f} MiB, after {after_hwm / 1024:.1f} MiB")
        print(f"peak over the idle RSS: {peak_over_idle / 1e6:.1f} MB = {peak_over_idle / len(body):.2f}x the body "
              f"(VmHWM growth {growth / 1e6:.1f} MB)")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
