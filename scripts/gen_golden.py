#!/usr/bin/python3
"""Golden reference data for nabla's log-softmax and fused cross-entropy tests.

Run it from anywhere with Debian's Python (PyTorch 1.13, SciPy, NumPy):

    /usr/bin/python3 scripts/gen_golden.py

It rewrites tests/data/{xent_*,lsm_*}.npy and tests/data/xent_cases.txt. The output is
deterministic (fixed seed, no timestamps), so running it again changes no file unless the script
changed. The files are committed: `make test` / ctest never needs Python, PyTorch or SciPy.

Everything is computed in float64. Inputs are made here from a fixed seed and saved in the dtype
the C test feeds (f64 mostly, some f32, one f16); references for f32/f16 inputs are computed in
float64 from the very same (rounded) values.

Cross-entropy semantics are nabla's (include/nabla/loss.h), which are PyTorch's
F.cross_entropy plus a z-loss and two deliberate differences:

    L_n  = keep_n [ (1-a) w_{y_n} (-l_{n,y_n}) + (a/V) sum_c w_c (-l_{n,c}) + zc lse_n^2 ]
    mean = sum_n L_n / W,   W = sum_n keep_n w_{y_n}

  * padding (ignore_index, or mask == 0) is applied in torch by setting those targets to
    ignore_index;
  * torch has no z-loss, so it is added explicitly: sum-form cross-entropy + zc * sum over real
    tokens of logsumexp(z_n)^2, divided by W for the mean;
  * an all-padding batch gives loss 0 and gradient 0 (torch: NaN) -- written explicitly;
  * padded rows are never read by nabla: garbage (NaN/inf) there is replaced by 0 before torch
    sees it, and the expected gradient of those rows is exactly 0.

Files, for a case NAME (the list with its options is tests/data/xent_cases.txt):
    xent_NAME_logits.npy   [N,V] or [B,T,V], f64 / f32 / f16
    xent_NAME_targets.npy  class ids, i64 or i32 (hard-target cases)
    xent_NAME_probs.npy    target probabilities, logits' shape and dtype (soft cases, soft_*)
    xent_NAME_mask.npy     optional, targets' shape, u8 / bool / f32 / f64, 0 = padding
    xent_NAME_weight.npy   optional class weights [V], f64 or f32
    xent_NAME_loss.npy     f64; shape [] for mean/sum, targets' shape for none
    xent_NAME_grad.npy     f64 dL/dlogits (for reduction none: d(sum_n L_n)/dlogits)

xent_cases.txt: one line per case, `NAME reduction ignore_index label_smoothing has_mask
has_weight z_loss`; lines starting with '#' are comments. Cases whose NAME starts with "soft_"
use probability targets (xent_NAME_probs.npy, no targets file; ignore_index does not apply).

Log-softmax battery (scipy.special.log_softmax over the last axis):
    lsm_inputs.npy      f64 [R,V]  random, huge +/-, mixed +/-1e4, -inf entries, constant rows
    lsm_ref.npy         f64 [R,V]
    lsm_inputs_f32.npy  f32 [R,V]  same kinds of rows at f32 magnitudes
    lsm_ref_f32.npy     f64 [R,V]  reference computed in f64 from the f32 values
    lsm_v1_inputs.npy   f64 [R,1]  single-element rows (log_softmax = 0)
    lsm_v1_ref.npy      f64 [R,1]
"""

import os
import sys

import numpy as np
import scipy.special
import torch
import torch.nn.functional as F

SEED = 20240611
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(os.path.dirname(HERE), "tests", "data")

torch.set_default_dtype(torch.float64)


def save(name, arr):
    path = os.path.join(OUT, name)
    np.save(path, np.ascontiguousarray(arr), allow_pickle=False)


# --------------------------------------------------------------------------------------------
# Independent numpy implementation of the formula in loss.h, used only to cross-check that the
# torch calls below mean what loss.h says (so the two sources agree before anything is saved).
# --------------------------------------------------------------------------------------------
def formula_hard(z, y, keep, w, a, zc, reduction):
    shape = y.shape
    z = z.reshape(-1, z.shape[-1])
    y = y.reshape(-1)
    keep = keep.reshape(-1)
    n, v = z.shape
    w = np.ones(v) if w is None else w
    L = np.zeros(n)
    wsum = 0.0
    for i in range(n):
        if not keep[i]:
            continue
        lse = scipy.special.logsumexp(z[i])
        l = z[i] - lse
        with np.errstate(invalid="ignore"):
            smooth = (a / v) * np.sum(w * -l) if a > 0 else 0.0
        L[i] = (1 - a) * w[y[i]] * -l[y[i]] + smooth + zc * lse * lse
        wsum += w[y[i]]
    if reduction == "none":
        return L.reshape(shape)
    if reduction == "sum":
        return L.sum()
    return L.sum() / wsum


def torch_hard(z64, y_eff, ignore_index, w, a, zc, reduction):
    """Loss and gradient for hard targets. y_eff already has padding set to ignore_index."""
    v = z64.shape[-1]
    shape = y_eff.shape
    zt = torch.tensor(z64.reshape(-1, v), requires_grad=True)
    yt = torch.tensor(y_eff.reshape(-1).astype(np.int64))
    wt = None if w is None else torch.tensor(w.astype(np.float64))
    keep = yt != ignore_index
    per = F.cross_entropy(zt, yt, weight=wt, ignore_index=ignore_index, reduction="none",
                          label_smoothing=a)
    lse = torch.logsumexp(zt, dim=1)
    if zc != 0.0:
        per = per + zc * torch.where(keep, lse * lse, torch.zeros_like(lse))
    if reduction == "none":
        loss = per
        per.sum().backward()
    elif reduction == "sum":
        # Cross-check: torch's own sum reduction equals the sum of its per-token losses.
        tsum = F.cross_entropy(zt, yt, weight=wt, ignore_index=ignore_index, reduction="sum",
                               label_smoothing=a)
        assert abs(tsum.item() + (zc * (lse * lse)[keep].sum()).item() - per.sum().item()) <= \
            1e-12 * max(1.0, abs(tsum.item()))
        loss = per.sum()
        loss.backward()
    else:
        W = (wt[yt[keep]].sum() if wt is not None else keep.sum().to(torch.float64))
        loss = per.sum() / W
        # Cross-check: torch's own mean reduction is the same thing when there is no z-loss.
        tmean = F.cross_entropy(zt, yt, weight=wt, ignore_index=ignore_index, reduction="mean",
                                label_smoothing=a)
        if zc == 0.0:
            assert abs(tmean.item() - loss.item()) <= 1e-12 * max(1.0, abs(loss.item())), \
                (tmean.item(), loss.item())
        loss.backward()
    L = loss.detach().numpy()
    if reduction == "none":
        L = L.reshape(shape)
    G = zt.grad.detach().numpy().reshape(z64.shape)
    return np.array(L, dtype=np.float64), np.array(G, dtype=np.float64)


def torch_soft(z64, probs, keep, w, a, reduction):
    """Probability targets; masked rows are dropped before torch sees them (mean over real rows)."""
    v = z64.shape[-1]
    rows = keep.reshape(-1).astype(bool)
    zt = torch.tensor(z64.reshape(-1, v), requires_grad=True)
    pt = torch.tensor(probs.reshape(-1, v))
    wt = None if w is None else torch.tensor(w.astype(np.float64))
    sel = torch.tensor(np.nonzero(rows)[0])
    loss = F.cross_entropy(zt[sel], pt[sel], weight=wt, reduction=reduction, label_smoothing=a)
    if reduction == "none":
        loss.sum().backward()
        full = np.zeros(rows.shape[0])
        full[rows] = loss.detach().numpy()
        L = full.reshape(keep.shape)
    else:
        loss.backward()
        L = np.array(loss.item())
    G = zt.grad.detach().numpy().reshape(z64.shape)
    return np.array(L, dtype=np.float64), np.array(G, dtype=np.float64)


def formula_soft(z, t, keep, w, a, reduction):
    shape = keep.shape
    z = z.reshape(-1, z.shape[-1])
    t = t.reshape(-1, z.shape[-1])
    keep = keep.reshape(-1)
    v = z.shape[1]
    w = np.ones(v) if w is None else w
    L = np.zeros(z.shape[0])
    for i in range(z.shape[0]):
        if keep[i]:
            l = scipy.special.log_softmax(z[i])
            L[i] = -np.sum(w * ((1 - a) * t[i] + a / v) * l)
    if reduction == "none":
        return L.reshape(shape)
    if reduction == "sum":
        return L.sum()
    return L.sum() / keep.sum()


# --------------------------------------------------------------------------------------------
# Case table
# --------------------------------------------------------------------------------------------
CASES = []  # lines of xent_cases.txt


def keep_of(mask, shape):
    return np.ones(shape, dtype=bool) if mask is None else (np.asarray(mask) != 0)


def add_hard(name, logits, targets, reduction="mean", ignore_index=-100, a=0.0, mask=None,
             weight=None, zc=0.0, garbage_rows=None, expected=None):
    """Registers a hard-target case. `logits` is in the dtype the C test feeds."""
    z64 = logits.astype(np.float64)
    keep = keep_of(mask, targets.shape) & (targets != ignore_index)
    if garbage_rows is not None:
        # nabla never reads padded rows: torch sees zeros there instead of the garbage.
        assert not keep.reshape(-1)[garbage_rows].any()
        z64 = z64.copy().reshape(-1, z64.shape[-1])
        z64[garbage_rows] = 0.0
        z64 = z64.reshape(logits.shape)
    y_eff = np.where(keep, targets, ignore_index).astype(np.int64)
    w64 = None if weight is None else weight.astype(np.float64)
    if expected is not None:
        L, G = expected
    else:
        L, G = torch_hard(z64, y_eff, ignore_index, w64, a, zc, reduction)
        ref = formula_hard(z64, y_eff, keep, w64, a, zc, reduction)
        assert np.allclose(L, ref, rtol=1e-12, atol=0), (name, L, ref)
    assert np.all(np.isfinite(G)), name
    if garbage_rows is not None:
        assert np.all(G.reshape(-1, G.shape[-1])[garbage_rows] == 0.0)
    save(f"xent_{name}_logits.npy", logits)
    save(f"xent_{name}_targets.npy", targets)
    if mask is not None:
        save(f"xent_{name}_mask.npy", mask)
    if weight is not None:
        save(f"xent_{name}_weight.npy", weight)
    save(f"xent_{name}_loss.npy", np.asarray(L, dtype=np.float64))
    save(f"xent_{name}_grad.npy", np.asarray(G, dtype=np.float64))
    CASES.append(f"{name} {reduction} {ignore_index} {a!r} {int(mask is not None)} "
                 f"{int(weight is not None)} {zc!r}")


def add_soft(name, logits, probs, reduction="mean", a=0.0, mask=None, weight=None):
    assert name.startswith("soft_")
    z64 = logits.astype(np.float64)
    keep = keep_of(mask, probs.shape[:-1])
    w64 = None if weight is None else weight.astype(np.float64)
    L, G = torch_soft(z64, probs.astype(np.float64), keep, w64, a, reduction)
    ref = formula_soft(z64, probs.astype(np.float64), keep, w64, a, reduction)
    assert np.allclose(L, ref, rtol=1e-12, atol=0), (name, L, ref)
    save(f"xent_{name}_logits.npy", logits)
    save(f"xent_{name}_probs.npy", probs)
    if mask is not None:
        save(f"xent_{name}_mask.npy", mask)
    if weight is not None:
        save(f"xent_{name}_weight.npy", weight)
    save(f"xent_{name}_loss.npy", np.asarray(L, dtype=np.float64))
    save(f"xent_{name}_grad.npy", np.asarray(G, dtype=np.float64))
    CASES.append(f"{name} {reduction} -100 {a!r} {int(mask is not None)} "
                 f"{int(weight is not None)} 0.0")


def lengths_mask(lengths, T, dtype):
    m = np.zeros((len(lengths), T), dtype=dtype)
    for b, n in enumerate(lengths):
        m[b, :n] = 1
    return m


def xent_cases(rng):
    def randn(*shape, scale=2.0):
        return rng.standard_normal(shape) * scale

    def targets(shape, v, dtype=np.int64):
        return rng.integers(0, v, size=shape).astype(dtype)

    # Plain [N,V], PyTorch defaults.
    add_hard("default", randn(6, 5), targets((6,), 5))

    # ignore_index = 0 used as the pad id: real targets are 1..V-1.
    y = rng.integers(1, 6, size=8).astype(np.int64)
    y[[2, 5, 7]] = 0
    add_hard("pad_ignore0", randn(8, 6), y, ignore_index=0)

    # [B,T,V] with variable-length masks, one per mask dtype. Masked positions keep valid random
    # targets (so ignoring the mask would change the answer). In mask_u8 one unmasked position
    # also holds ignore_index: padding is the union of the two.
    B, T, V = 3, 5, 7
    lens = [5, 3, 1]
    y = targets((B, T), V)
    y[0, 2] = -100
    add_hard("mask_u8", randn(B, T, V), y, mask=lengths_mask(lens, T, np.uint8))
    add_hard("mask_bool", randn(B, T, V), targets((B, T), V, np.int32),
             mask=lengths_mask([2, 5, 4], T, np.bool_))
    add_hard("mask_f32", randn(B, T, V), targets((B, T), V),
             mask=lengths_mask([4, 1, 5], T, np.float32))
    add_hard("mask_f64", randn(B, T, V), targets((B, T), V, np.int32),
             mask=lengths_mask([3, 5, 2], T, np.float64))

    # Label smoothing, without and with padding.
    add_hard("smooth", randn(7, 6), targets((7,), 6), a=0.1)
    y = targets((9,), 6)
    y[[0, 4, 5]] = -100
    add_hard("smooth_pad", randn(9, 6), y, a=0.1)
    add_hard("smooth_mask", randn(B, T, V), targets((B, T), V), a=0.1,
             mask=lengths_mask([5, 2, 3], T, np.uint8))

    # Class weights, alone and with smoothing and padding (ignore_index and mask forms).
    w = rng.uniform(0.2, 3.0, size=6)
    y = targets((8,), 6)
    y[[1, 6]] = -100
    add_hard("weight", randn(8, 6), y, weight=w)
    add_hard("weight_smooth_pad", randn(8, 6), y.copy(), a=0.1, weight=w)
    wv = rng.uniform(0.2, 3.0, size=V)
    add_hard("weight_smooth_mask", randn(B, T, V), targets((B, T), V), a=0.15,
             mask=lengths_mask([4, 5, 2], T, np.uint8), weight=wv)

    # Reductions: sum and none, with padding, weights and smoothing.
    y = targets((B, T), V)
    y[1, 3] = -100
    add_hard("sum_pad", randn(B, T, V), y, reduction="sum",
             mask=lengths_mask([5, 4, 3], T, np.uint8))
    add_hard("sum_weight_smooth", randn(7, 5), targets((7,), 5), reduction="sum", a=0.2,
             weight=rng.uniform(0.5, 2.0, size=5))
    y = targets((B, T), V)
    add_hard("none_pad", randn(B, T, V), y, reduction="none",
             mask=lengths_mask([5, 1, 3], T, np.uint8))
    y = targets((10,), 6)
    y[[3, 8]] = -100
    add_hard("none_weight_smooth", randn(10, 6), y, reduction="none", a=0.1,
             weight=rng.uniform(0.5, 2.0, size=6))

    # f32 logits: moderate values with smoothing, f32 weights and an f32 mask.
    add_hard("f32_smooth_weight_mask", randn(B, T, V).astype(np.float32),
             targets((B, T), V), a=0.1, weight=rng.uniform(0.5, 2.0, size=V).astype(np.float32),
             mask=lengths_mask([5, 3, 4], T, np.float32))

    # f32 logits of magnitude ~1e38 (differences stay below FLT_MAX). Rows: random; target at
    # the max (loss ~0); target at the min (loss ~2e38). Every gap between logits is >> ulp(1e38)
    # (~1e31), so the answer is well conditioned in f32 -- no exact ties, whose softmax (1/2, 1/2)
    # an f32 lse of 1e38 cannot resolve.
    z = rng.uniform(-1.5e38, 1.5e38, size=(6, 8)).astype(np.float32)
    z[1, :] = np.linspace(-1e38, 1e38, 8).astype(np.float32)
    y = targets((6,), 8)
    y[1] = 6
    y[2] = int(np.argmax(z[2]))
    y[3] = int(np.argmin(z[3]))
    add_hard("f32_huge", z, y)

    # A -inf column in some rows (never the target); no smoothing, which would make it inf.
    z = randn(7, 6)
    z[[0, 3, 5], 2] = -np.inf
    z[4, [0, 5]] = -np.inf
    y = targets((7,), 6)
    y[[0, 3, 5]] = np.array([1, 4, 0])
    y[4] = 3
    add_hard("neginf_col", z, y)
    # The same in f32 with the sum reduction.
    add_hard("neginf_col_f32", z.astype(np.float32), y.astype(np.int32), reduction="sum")

    # V = 1: log_softmax is 0, the loss and gradient are 0.
    add_hard("v1", randn(5, 1), np.zeros(5, dtype=np.int64))

    # fp16 logits (computed in f32 by nabla, referenced in f64 from the fp16 values).
    y = targets((12,), 10)
    y[[4, 9]] = -100
    add_hard("f16", randn(12, 10, scale=4.0).astype(np.float16), y, a=0.05)

    # All padding: nabla gives 0 and a zero gradient (torch: NaN) -- written explicitly.
    z = randn(4, 5)
    add_hard("all_pad", z, np.full(4, -100, dtype=np.int64),
             expected=(np.array(0.0), np.zeros_like(z)))
    z = randn(2, 3, 4)
    add_hard("all_pad_mask", z, targets((2, 3), 4), mask=np.zeros((2, 3), dtype=np.uint8),
             a=0.1, zc=0.01, expected=(np.array(0.0), np.zeros_like(z)))

    # Garbage (NaN, +inf, -inf) in padded rows: nabla never reads them.
    z = randn(6, 5)
    z[1, :] = np.nan
    z[4, :] = np.array([np.inf, -np.inf, np.nan, 1e308, -1e308])
    y = targets((6,), 5)
    y[[1, 4]] = -100
    add_hard("garbage_pad", z, y, a=0.1, garbage_rows=[1, 4])
    # Mask form: garbage logits and out-of-range targets in the masked rows.
    z = randn(2, 4, 5)
    z[0, 3, :] = np.inf
    z[1, 1:, :] = np.nan
    y = targets((2, 4), 5)
    y[0, 3] = 12345
    y[1, 2] = -7
    add_hard("garbage_mask", z, y, mask=lengths_mask([3, 1], 4, np.bool_),
             weight=rng.uniform(0.5, 2.0, size=5), garbage_rows=[3, 5, 6, 7])

    # z-loss (PaLM), in each reduction and with everything else switched on.
    y = targets((8,), 6)
    y[[2, 7]] = -100
    add_hard("zloss", randn(8, 6, scale=3.0), y, zc=0.05)
    add_hard("zloss_all", randn(B, T, V, scale=3.0), targets((B, T), V), a=0.1, zc=0.02,
             mask=lengths_mask([5, 2, 4], T, np.uint8), weight=rng.uniform(0.5, 2.0, size=V))
    add_hard("zloss_sum", randn(6, 5), targets((6,), 5), reduction="sum", zc=0.1)
    y = targets((B, T), V)
    add_hard("zloss_none", randn(B, T, V), y, reduction="none", zc=0.1,
             mask=lengths_mask([2, 5, 3], T, np.uint8))

    # Soft targets (probabilities).
    def probs(*shape):
        return rng.dirichlet(np.ones(shape[-1]) * 0.7, size=shape[:-1])

    add_soft("soft_plain", randn(6, 5), probs(6, 5))
    add_soft("soft_smooth", randn(6, 5), probs(6, 5), a=0.1)
    add_soft("soft_weight", randn(6, 5), probs(6, 5), weight=rng.uniform(0.5, 2.0, size=5))
    add_soft("soft_weight_smooth", randn(6, 5), probs(6, 5), a=0.2,
             weight=rng.uniform(0.5, 2.0, size=5))
    add_soft("soft_mask", randn(B, T, V), probs(B, T, V), a=0.1,
             mask=lengths_mask([5, 2, 3], T, np.uint8))
    add_soft("soft_sum_weight", randn(7, 4), probs(7, 4), reduction="sum",
             weight=rng.uniform(0.5, 2.0, size=4))
    add_soft("soft_none_mask", randn(B, T, V), probs(B, T, V), reduction="none", a=0.1,
             mask=lengths_mask([3, 5, 1], T, np.float32))
    add_soft("soft_f32", randn(5, 6).astype(np.float32), probs(5, 6).astype(np.float32), a=0.1)


def lsm_battery(rng):
    V = 8
    rows = []
    for _ in range(4):
        rows.append(rng.standard_normal(V) * 3.0)
    rows.append(1000.0 + rng.standard_normal(V))                    # naive exp overflows
    rows.append(-1000.0 + rng.standard_normal(V))                   # naive exp underflows
    rows.append(1e300 * rng.uniform(0.5, 1.0, V))                   # huge positive
    rows.append(-1e300 * rng.uniform(0.5, 1.0, V))                  # huge negative
    rows.append(1e6 + rng.standard_normal(V))                       # large offset, O(1) spread
    rows.append(np.array([1e4, -1e4, 1e4 - 1.0, -1e4 + 3.0, 0.5, 1e4 - 0.25, -9999.5, 2.0]))
    rows.append(np.array([1.0, -np.inf, 2.0, -np.inf, 0.0, 3.0, -np.inf, -1.0]))  # -inf entries
    rows.append(np.full(V, 7.0))                                    # constant
    rows.append(np.full(V, 1e300))                                  # constant, huge
    rows.append(np.full(V, -1e300))                                 # constant, huge negative
    rows.append(-1000.0 + np.arange(V, dtype=np.float64))
    x = np.stack(rows)
    save("lsm_inputs.npy", x)
    save("lsm_ref.npy", scipy.special.log_softmax(x, axis=-1))

    rows = []
    for _ in range(4):
        rows.append(rng.standard_normal(V) * 3.0)
    rows.append(100.0 + rng.standard_normal(V))                     # naive f32 exp overflows
    rows.append(-110.0 + rng.standard_normal(V))                    # naive f32 exp underflows
    rows.append(1e38 * rng.uniform(0.5, 1.0, V))                    # huge positive
    rows.append(-1e38 * rng.uniform(0.5, 1.0, V))                   # huge negative
    rows.append(1e4 + rng.standard_normal(V))                       # large offset, O(1) spread
    rows.append(np.array([1e4, -1e4, 1e4 - 1.0, -1e4 + 3.0, 0.5, 1e4 - 0.25, -9999.5, 2.0]))
    rows.append(np.array([1.0, -np.inf, 2.0, -np.inf, 0.0, 3.0, -np.inf, -1.0]))
    rows.append(np.full(V, 7.0))
    rows.append(np.full(V, 3e38))
    x32 = np.stack(rows).astype(np.float32)
    save("lsm_inputs_f32.npy", x32)
    save("lsm_ref_f32.npy", scipy.special.log_softmax(x32.astype(np.float64), axis=-1))

    x1 = np.array([[0.0], [1e300], [-1e300], [-3.5], [1000.0]])
    save("lsm_v1_inputs.npy", x1)
    save("lsm_v1_ref.npy", scipy.special.log_softmax(x1, axis=-1))


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(SEED)
    lsm_battery(rng)
    xent_cases(rng)
    with open(os.path.join(OUT, "xent_cases.txt"), "w") as f:
        f.write("# Written by scripts/gen_golden.py; do not edit by hand.\n")
        f.write("# NAME reduction ignore_index label_smoothing has_mask has_weight z_loss\n")
        f.write("# NAME soft_* = probability targets (xent_NAME_probs.npy).\n")
        for line in CASES:
            f.write(line + "\n")
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT)
                if f.startswith(("xent_", "lsm_")))
    print(f"{len(CASES)} cross-entropy cases, {total} bytes in {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
