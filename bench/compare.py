#!/usr/bin/python3
"""Prints nabla / PyTorch ratios from the JSON lines of `nabla bench --json`, bench/torch_bench.py,
bench/torch_epoch.py and `nabla train --metrics` files (read from the files given on the command
line)."""
import json
import sys

rows = []
for path in sys.argv[1:]:
    with open(path) as f:
        lines = [json.loads(line) for line in f if line.strip().startswith("{")]
    if lines and "config" in lines[0]:  # a `nabla train --metrics` file: its epochs' times
        secs = [r["train_seconds"] for r in lines if "train_seconds" in r]
        rows.append(dict(bench="epoch", impl="nabla", threads=lines[0]["threads"],
                         core=lines[0].get("openblas_core"), epoch_seconds=secs,
                         median_seconds=sorted(secs)[len(secs) // 2] if secs else None,
                         train_acc_last=([r["train_acc"] for r in lines if "train_acc" in r]
                                         or [None])[-1]))
    else:
        rows += lines

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

# An epoch of the default recipe: median train_seconds of nabla train's epochs against the median
# epoch of bench/torch_epoch.py doing the same work (at 2 threads the faster inter-op setting)
STEPS = 422  # 54000 training rows in batches of 128 (the last one of 112)
ep = [r for r in rows if r["bench"] == "epoch"]
if ep:
    print("\nepoch of the default recipe, Fashion-MNIST 54000 rows, batch 128 (median seconds of "
          "3 epochs; speed-up = torch / nabla)")
    steps = {r["threads"]: r for r in rows if r["bench"] == "train" and r["impl"] != "torch"}
    for thr in sorted({r["threads"] for r in ep}):
        n = next((r for r in ep if r["impl"] == "nabla" and r["threads"] == thr), None)
        same = [r for r in ep if r["impl"] == "torch" and r["threads"] == thr and not r["bare"]]
        bare = [r for r in ep if r["impl"] == "torch" and r["threads"] == thr and r["bare"]]
        t = min(same, key=lambda r: r["median_seconds"]) if same else None
        b = min(bare, key=lambda r: r["median_seconds"]) if bare else None
        line = f"threads {thr}:"
        if n:
            line += f" nabla {n['median_seconds']:.3f} s ({n['core']})"
            s = steps.get(thr)
            if s:  # an epoch adds up its steps: the mean step (the median beside it)
                ms = s.get("ms_per_step_mean", s["ms_per_step"])
                pred = ms * STEPS / 1e3
                line += (f", bench train mean step x {STEPS} = {pred:.3f} s "
                         f"(median x {STEPS} = {s['ms_per_step'] * STEPS / 1e3:.3f}; "
                         f"epoch / steps {n['median_seconds'] / pred:.3f})")
        if t:
            tuned = ", malloc tuned" if t.get("malloc_tuned") else ""
            line += f"; torch {t['median_seconds']:.3f} s (interop {t['interop']}{tuned})"
            if n:
                line += f", speed-up {t['median_seconds'] / n['median_seconds']:.2f}x"
        if b:
            line += f"; torch bare loop {b['median_seconds']:.3f} s"
            if n:
                line += f", speed-up {b['median_seconds'] / n['median_seconds']:.2f}x"
        print(line)
    print("targets: speed-up >= 1.35x at 1 thread, >= 1.5x at 2 threads; epoch / steps within "
          "0.95-1.05")
