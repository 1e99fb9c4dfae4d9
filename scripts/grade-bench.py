#!/usr/bin/env python3
"""Items graded per second by POST /grade: 2,000 small /loss items (half claim ½·MSE, so the
diagnosis runs) and 200 textbook-neuron trace items (half a student's ascending loop).
Median and best of ROUNDS requests each (default 5; after one warm-up request), timed from sending the body to
having read the whole response; the client's own JSON encoding and decoding are outside the
timing (the response is decoded afterwards, to print the verdicts).
    [ROUNDS=5] scripts/grade-bench.py LOSSLAB_URL [PEER_URL]
The overhead per item beyond computing its reference, without HTTP: cargo bench --bench grade"""
import json, os, sys, time, urllib.request, math, statistics
def post(base, data):
    req = urllib.request.Request(base + "/grade", data=data, headers={"content-type": "application/json"})
    t=time.perf_counter()
    with urllib.request.urlopen(req) as r: raw=r.read()
    dt=time.perf_counter()-t
    return dt, json.loads(raw)
small=[]
for i in range(2000):
    a=[0.1*(i%7), 0.5, -0.25*(i%3)]; y=[0.2, 0.1*(i%5), 0.3]
    mse=sum((p-q)**2 for p,q in zip(a,y))/3
    small.append({"task":{"loss":{"kind":"mse","predictions":a,"targets":y}},"answer":{"loss": mse if i%2==0 else mse/2}})
neuron={"inputs":[[1.0]],"targets":[0.5],"activation":"sigmoid","loss":"l2","init":{"weights":math.log(9),"bias":0.0},"use_bias":False,"learning_rate":0.2,"max_iterations":10000,"stop":{"loss_below":0.001}}
def rows(sign, n):
    w=math.log(9); out=[]
    for i in range(n):
        a=1/(1+math.exp(-w)); out.append({"iteration":i,"loss":0.5*(a-0.5)**2,"weights":[w]}); w+=sign*0.2*(a-0.5)*a*(1-a)
    return out
good=rows(-1,4); bad=rows(1,4)
traces=[{"task":{"train":neuron},"answer":{"iterations":287 if i%2==0 else 143,"trace":good if i%2==0 else bad}} for i in range(200)]
for name, base in zip(("losslab", "peer"), sys.argv[1:3]):
    for label, items in [("2000 small /loss items (half wrong)", small), ("200 textbook-neuron trace items (half wrong)", traces)]:
        data=json.dumps({"items":items}).encode()
        post(base, data)
        ts=[]
        for _ in range(int(os.environ.get("ROUNDS", "5"))):
            dt,out=post(base, data)
            ts.append(dt)
        med=statistics.median(ts); best=min(ts)
        print(f"{name:8s} {label}: median {med*1000:.1f} ms / request = {len(items)/med:,.0f} items/s; best {best*1000:.1f} ms = {len(items)/best:,.0f} items/s (passed {out['passed']}, failed {out['failed']})")
