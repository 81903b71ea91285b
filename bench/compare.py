#!/usr/bin/python3
"""Prints nabla / PyTorch ratios from the JSON lines of `nabla bench --json` and
bench/torch_bench.py (read from the files given on the command line)."""
import json
import sys

rows = []
for path in sys.argv[1:]:
    with open(path) as f:
        rows += [json.loads(line) for line in f if line.strip().startswith("{")]

mem = {r["threads"]: r["gbps"] for r in rows if r["bench"] == "memcpy"}
print("\nfused loss vs PyTorch (median ms; speed-up = torch / nabla; roofline = memcpy GB/s)")
print(f"{'n x v':>14} {'thr':>3} {'mode':>8} {'nabla':>9} {'unfused':>9} {'torch':>9} "
      f"{'speed-up':>9} {'GB/s':>7} {'of memcpy':>9}")
key = lambda r: (r["n"], r["v"], r["threads"], r["mode"], r.get("variant"), r.get("dtype"))
by = {}
for r in rows:
    if r["bench"] == "xent":
        by.setdefault(key(r), {})[r["impl"]] = r
for k, d in sorted(by.items()):
    if "fused" not in d or k[4] != "mean" or k[5] != "f32":
        continue
    f = d["fused"]
    t = d.get("torch")
    u = d.get("unfused")
    sp = f"{t['ms_median'] / f['ms_median']:8.1f}x" if t else "        -"
    frac = f"{100 * f['gbps'] / mem[k[2]]:8.0f}%" if k[2] in mem else "        -"
    print(f"{k[0]:>6} x {k[1]:<6} {k[2]:>3} {k[3]:>8} {f['ms_median']:9.2f} "
          f"{u['ms_median'] if u else float('nan'):9.2f} "
          f"{t['ms_median'] if t else float('nan'):9.2f} {sp} {f['gbps']:7.2f} {frac}")
print("\ntraining step, MLP 784-256-128-10, batch 128 (median ms per step)")
tr = {}
for r in rows:
    if r["bench"] == "train":
        tr.setdefault(r["threads"], {})[r["impl"]] = r
for thr, d in sorted(tr.items()):
    n = d.get("nabla") or d.get("fused") or next((v for k, v in d.items() if k != "torch"), None)
    t = d.get("torch")
    line = f"threads {thr}: nabla {n['ms_per_step']:.3f} ms ({n['gflops']:.0f} GFLOP/s)" if n else ""
    if n and "ms_gemm_only" in n:
        line += (f", its {n['ms_gemm_only']:.3f} ms of products alone: step / products "
                 f"{n['step_over_gemm']:.2f} (hand-written loop {n['ms_loop']:.3f} ms)")
    if t:
        line += f", torch {t['ms_per_step']:.3f} ms, speed-up {t['ms_per_step'] / n['ms_per_step']:.2f}x"
    print(line)
