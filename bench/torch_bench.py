#!/usr/bin/python3
"""PyTorch side of `make bench`: the same shapes as `nabla bench`, one JSON object per line.

Run by scripts/bench.sh when Debian's python3-torch is installed; never needed by `make test`.
  /usr/bin/python3 bench/torch_bench.py --threads 1 [--repeat 10]
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F


def timed(fn, repeat):
    fn()  # warm-up
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[0] * 1e3, ts[len(ts) // 2] * 1e3, ts[-1] * 1e3


def bench_xent(n, v, variant, repeat, threads):
    g = torch.Generator().manual_seed(1)
    z = torch.randn(n, v, generator=g) * 2
    y = torch.randint(0, v, (n,), generator=g)
    kw = {}
    if variant == "ignore25":
        y[::4] = -100
    if variant == "smooth01":
        kw["label_smoothing"] = 0.1
    out = []

    def fwd():
        with torch.no_grad():
            F.cross_entropy(z, y, **kw)

    zg = z.clone().requires_grad_(True)

    def fwd_bwd():
        zg.grad = None
        F.cross_entropy(zg, y, **kw).backward()

    for mode, fn, bpl in (("fwd", fwd, 4), ("fwd_bwd", fwd_bwd, 8)):
        mn, md, mx = timed(fn, repeat)
        out.append(dict(bench="xent", impl="torch", n=n, v=v, threads=threads, variant=variant,
                        dtype="f32", mode=mode, ms_min=round(mn, 3), ms_median=round(md, 3),
                        ms_max=round(mx, 3), gbps=round(n * v * bpl / (md * 1e-3) / 1e9, 2)))
    return out


def bench_train(batch, steps, threads):
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(),
                                torch.nn.Linear(256, 128), torch.nn.ReLU(),
                                torch.nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(batch, 784)
    y = torch.randint(0, 10, (batch,))

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    mn, md, mx = timed(step, steps)
    flops = 2 * (784 * 256 + 256 * 128 + 128 * 10) * batch * 3
    return [dict(bench="train", impl="torch", hidden="256,128", batch=batch, threads=threads,
                 steps=steps, ms_per_step=round(md, 4), ms_min=round(mn, 4), ms_max=round(mx, 4),
                 gflops=round(flops / (md * 1e-3) / 1e9, 2))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--shapes", default="2048x32768,512x50257,8192x1000")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    for shape in a.shapes.split(","):
        n, v = (int(s) for s in shape.split("x"))
        for r in bench_xent(n, v, "mean", a.repeat, a.threads):
            print(json.dumps(r), flush=True)
    for r in bench_train(128, 200, a.threads):
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
