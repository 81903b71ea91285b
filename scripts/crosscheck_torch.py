#!/usr/bin/python3
"""Random cross-check of `nabla xent` against PyTorch's F.cross_entropy (float64).

Draws random shapes and options (ignore_index, class weights, label smoothing, reductions,
[N,V] and [B,T,V], probability targets, f32 and f64 logits), runs `nabla xent` on .npy files and
compares loss and gradient with PyTorch computed in float64 (f64: 1e-9 relative, f32: 2e-5). Needs Debian's python3-torch; `make test` does not run it.
  /usr/bin/python3 scripts/crosscheck_torch.py build/nabla [CASES]
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

nabla = sys.argv[1]
cases = int(sys.argv[2]) if len(sys.argv) > 2 else 200
rng = np.random.default_rng(12345)
worst = 0.0
with tempfile.TemporaryDirectory() as d:
    p = lambda n: os.path.join(d, n)
    for case in range(cases):
        V = int(rng.integers(1, 40))
        shape = [int(rng.integers(1, 9))] if rng.random() < 0.5 else [int(rng.integers(1, 4)), int(rng.integers(1, 6))]
        soft = rng.random() < 0.25
        z = rng.normal(0, 3, size=shape + [V]) * (100 if rng.random() < 0.1 else 1)
        f32 = rng.random() < 0.5  # f32 logits: compared with float64 PyTorch on the same values
        if f32:
            z = z.astype(np.float32).astype(np.float64)
        tol = 2e-5 if f32 else 1e-9
        ign = int(rng.choice([-100, 0, V - 1, 7]))
        red = str(rng.choice(["mean", "sum", "none"]))
        smooth = float(rng.choice([0.0, 0.1, 0.37]))
        use_w = rng.random() < 0.5
        w = rng.uniform(0.1, 3.0, size=V)
        args = [nabla, "xent", "--logits", p("z.npy"), "--reduction", red,
                "--label-smoothing", repr(smooth), "--loss-out", p("l.npy"), "--grad-out", p("g.npy")]
        zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
        kw = dict(reduction=red, label_smoothing=smooth)
        if use_w:
            np.save(p("w.npy"), w)
            args += ["--weight", p("w.npy")]
            kw["weight"] = torch.tensor(w)
        if soft:
            t = rng.dirichlet(np.ones(V), size=shape)
            np.save(p("t.npy"), t)
            tt = torch.tensor(t)
        else:
            t = rng.integers(0, V, size=shape).astype(np.int64)
            t[rng.random(shape) < 0.3] = ign
            if (t != ign).sum() == 0 and red == "mean":
                t.flat[0] = 0 if ign != 0 else V - 1
                if t.flat[0] == ign or t.flat[0] >= V:
                    continue
            np.save(p("t.npy"), t)
            args += ["--ignore-index", str(ign)]
            tt = torch.tensor(t)
            kw["ignore_index"] = ign
        np.save(p("z.npy"), z.astype(np.float32) if f32 else z)
        args += ["--targets", p("t.npy")]
        zz = zt.movedim(-1, 1) if len(shape) == 2 else zt
        ttt = tt.movedim(-1, 1) if (soft and len(shape) == 2) else tt
        L = F.cross_entropy(zz, ttt, **kw)
        (L.sum() if red == "none" else L).backward()
        r = subprocess.run(args, capture_output=True, text=True)
        if r.returncode != 0:
            print("case", case, "nabla failed:", r.stderr.strip(), kw, shape, V, soft)
            sys.exit(1)
        l = np.load(p("l.npy"))
        g = np.load(p("g.npy"))
        ref_l = L.detach().numpy()
        ref_g = zt.grad.numpy()
        el = np.max(np.abs(l - ref_l) / np.maximum(np.abs(ref_l), 1e-12)) if ref_l.size else 0
        eg = np.max(np.abs(g - ref_g)) / max(np.max(np.abs(ref_g)), 1e-300)
        worst = max(worst, el, eg)
        if not (el < tol and eg < tol):
            print(f"case {case}: loss rel err {el:.3g}, grad rel err {eg:.3g}", kw, shape, V,
                  "soft" if soft else "", "f32" if f32 else "f64")
            sys.exit(1)
print(f"{cases} random cases (f32 and f64 logits) agree with PyTorch {torch.__version__} "
      f"(f64: 1e-9, f32: 2e-5 relative)")
