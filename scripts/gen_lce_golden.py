#!/usr/bin/python3
"""Golden reference data for nabla's fused linear + cross-entropy head (include/nabla/lce.h).

Run it from anywhere with Debian's Python (PyTorch, NumPy):

    /usr/bin/python3 scripts/gen_lce_golden.py

It rewrites tests/data/lce_*.npy and tests/data/lce_cases.txt, deterministically (fixed seed, no
timestamps). The files are committed: ctest never needs Python or PyTorch (tests/test_lce_golden.c
reads them).

The reference is PyTorch in float64, written the unfused way the fused op replaces:

    u = x @ W.T + b            (b optional)
    z = cap * tanh(u / cap)    (soft-cap, when cap > 0)
    per-row loss = F.cross_entropy(z, y, weight, ignore_index, reduction="none", label_smoothing)
                   + zc * logsumexp(z)^2 on real rows (nabla's z-loss; torch has none)
    mean = sum / W with W = sum of w_y over real rows (loss 0, gradient 0 when W = 0: nabla's rule),
    sum = sum, none = the per-row losses (gradient of their sum)

and the gradients of x, W and b come from torch's autograd. Padding (ignore_index or mask == 0)
is given to torch by setting those targets to ignore_index. Inputs of f32 cases are saved as f32
and the reference is computed in float64 from the same rounded values.

Files, for a case NAME (tests/data/lce_cases.txt lists the options, one line per case:
`NAME reduction ignore_index label_smoothing has_mask has_weight z_loss softcap has_bias`):
    lce_NAME_x.npy  [N,D] or [B,T,D]    lce_NAME_w.npy  [V,D]     lce_NAME_b.npy  [V] (if has_bias)
    lce_NAME_targets.npy  i64           lce_NAME_mask.npy u8      lce_NAME_weight.npy  f64 [V]
    lce_NAME_loss.npy  f64 ([] or the targets' shape)
    lce_NAME_dx.npy, lce_NAME_dw.npy, lce_NAME_db.npy  f64 gradients (upstream 1)
"""

import os

import numpy as np
import torch
import torch.nn.functional as F

SEED = 20261207
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(os.path.dirname(HERE), "tests", "data")


def save(name, arr):
    np.save(os.path.join(OUT, name), np.ascontiguousarray(arr), allow_pickle=False)


def reference(x, w, b, y_eff, ignore_index, weight, a, zc, cap, reduction):
    v = w.shape[0]
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    wt = torch.tensor(w.astype(np.float64), requires_grad=True)
    bt = None if b is None else torch.tensor(b.astype(np.float64), requires_grad=True)
    u = xt.reshape(-1, x.shape[-1]) @ wt.T
    if bt is not None:
        u = u + bt
    z = cap * torch.tanh(u / cap) if cap > 0 else u
    yt = torch.tensor(y_eff.reshape(-1).astype(np.int64))
    cw = None if weight is None else torch.tensor(weight)
    keep = yt != ignore_index
    per = F.cross_entropy(z, yt, weight=cw, ignore_index=ignore_index, reduction="none",
                          label_smoothing=a)
    if zc != 0.0:
        lse = torch.logsumexp(z, dim=1)
        per = per + zc * torch.where(keep, lse * lse, torch.zeros_like(lse))
    if reduction == "none":
        loss = per
        per.sum().backward()
    else:
        total = per.sum()
        if reduction == "mean":
            W = cw[yt[keep]].sum() if cw is not None else keep.sum().to(torch.float64)
            total = total / W if W.item() != 0.0 else total * 0.0
        loss = total
        loss.backward()
    L = loss.detach().numpy()
    if reduction == "none":
        L = L.reshape(y_eff.shape)
    grads = [t.grad.detach().numpy().copy() for t in (xt, wt)]
    grads.append(None if bt is None else bt.grad.detach().numpy().copy())
    assert v == z.shape[1]
    return np.array(L, dtype=np.float64), grads


# name, dtype, x shape, V, reduction, ignore_index, smoothing, mask, weight, z-loss, cap, bias,
# padded rows (every k-th row; 0 none), all padding
CASES = [
    ("f64_mean", np.float64, (11, 5), 37, "mean", -100, 0.0, False, False, 0.0, 0.0, True, 0),
    ("f64_nobias_sum", np.float64, (11, 5), 37, "sum", -100, 0.0, False, False, 0.0, 0.0, False,
     0),
    ("f64_options", np.float64, (13, 6), 29, "mean", -100, 0.1, True, True, 1e-2, 0.0, True, 4),
    ("f64_softcap_none", np.float64, (9, 4), 23, "none", 0, 0.05, False, False, 0.0, 3.0, True,
     0),
    ("f64_btd", np.float64, (2, 5, 4), 19, "mean", -100, 0.2, True, False, 1e-3, 2.0, True, 3),
    ("f64_all_padding", np.float64, (6, 3), 10, "mean", -100, 0.1, False, False, 0.0, 0.0, True,
     1),
    ("f32_options", np.float32, (12, 8), 41, "mean", -100, 0.1, True, True, 1e-3, 5.0, True, 5),
    ("f32_v2200", np.float32, (40, 8), 2200, "mean", -100, 0.1, False, True, 1e-4, 0.0, True,
     7),
]


def main():
    rng = np.random.default_rng(SEED)
    lines = ["# NAME reduction ignore_index label_smoothing has_mask has_weight z_loss softcap "
             "has_bias (scripts/gen_lce_golden.py)"]
    for (name, dt, xs, V, red, ign, a, has_mask, has_w, zc, cap, has_b, pad) in CASES:
        D = xs[-1]
        rows = int(np.prod(xs[:-1]))
        x = rng.uniform(-1, 1, size=xs).astype(dt)
        w = rng.uniform(-1.5, 1.5, size=(V, D)).astype(dt)
        b = rng.uniform(-0.5, 0.5, size=(V,)).astype(dt) if has_b else None
        y = rng.integers(0, V, size=xs[:-1]).astype(np.int64)
        if ign == 0:
            y[y == 0] = 1  # class 0 is the padding id here; pad rows 2 and 5
            y.reshape(-1)[[2, 5]] = 0
        flat = y.reshape(-1)
        if pad:
            for i in range(rows):
                if i % pad == pad - 1 or pad == 1:
                    flat[i] = ign
        mask = np.ones(xs[:-1], dtype=np.uint8)
        if has_mask:
            mask.reshape(-1)[[0, rows - 1]] = 0
        weight = rng.uniform(0.2, 2.0, size=V) if has_w else None
        y_eff = y.copy()
        y_eff.reshape(-1)[mask.reshape(-1) == 0] = ign
        L, (dx, dw, db) = reference(x, w, b, y_eff, ign, weight, a, zc, cap, red)
        save(f"lce_{name}_x.npy", x)
        save(f"lce_{name}_w.npy", w)
        if has_b:
            save(f"lce_{name}_b.npy", b)
            save(f"lce_{name}_db.npy", db)
        save(f"lce_{name}_targets.npy", y)
        if has_mask:
            save(f"lce_{name}_mask.npy", mask)
        if has_w:
            save(f"lce_{name}_weight.npy", weight)
        save(f"lce_{name}_loss.npy", L)
        save(f"lce_{name}_dx.npy", dx.reshape(xs))
        save(f"lce_{name}_dw.npy", dw)
        lines.append(f"{name} {red} {ign} {a!r} {int(has_mask)} {int(has_w)} {zc!r} {cap!r} "
                     f"{int(has_b)}")
    with open(os.path.join(OUT, "lce_cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
