#!/usr/bin/python3
"""Golden reference data for nabla's optimisers, LR schedules and gradient clipping.

Run it from anywhere with Debian's Python (PyTorch 1.13, NumPy):

    /usr/bin/python3 scripts/gen_optim_golden.py

It rewrites tests/data/optim_*.npy (27 files, about 16 KB). The output is deterministic (fixed
seed, one thread, no timestamps), so running it again changes no file unless this script
changed. The files are committed: `make test` / ctest never needs Python or PyTorch.

Everything is computed by torch in float64. Inputs (initial parameters, gradients) are drawn as
float32 and widened, so the C test can feed the very same values to f32 parameters. Before
anything is saved, torch's numbers are cross-checked against a plain NumPy transcription of the
formulas in include/nabla/optim.h, so the golden data means what the header says.

Optimiser trajectories. Two parameters, P0 of shape [3,4] and P1 of shape [5], flattened and
concatenated into a row of 17 values (P0 row-major, then P1). Initial values are +-U(1.5, 3), so
no parameter comes near 0 in 6 steps (checked below) and relative tolerances are meaningful.
For each config, torch.optim.<cls> (foreach=False) takes 6 steps, with .grad set by hand:
    optim_grads.npy        f64 [6,17]  gradient fed at step s (same for every config)
    optim_<NAME>.npy       f64 [7,17]  row 0: initial values, row s: parameters after step s
    optim_<NAME>_state.npy f64 [B,17]  torch's state after step 6: B = 1 (momentum_buffer) for
                                       SGD with momentum, B = 2 (exp_avg, exp_avg_sq) for
                                       Adam/AdamW; absent for plain SGD. All entries have
                                       |value| > 1e-4 (checked), for relative comparisons.
Configs (NAME: class and options):
    sgd              SGD lr 0.1
    sgd_momentum     SGD lr 0.1 momentum 0.9
    sgd_dampening    SGD lr 0.1 momentum 0.9 dampening 0.5
    sgd_nesterov     SGD lr 0.1 momentum 0.9 nesterov
    sgd_momentum_wd  SGD lr 0.1 momentum 0.9 weight_decay 0.01
    adam             Adam defaults (lr 1e-3, betas (0.9, 0.999), eps 1e-8)
    adam_wd          Adam lr 0.01 weight_decay 0.1
    adamw            AdamW lr 0.01 weight_decay 0.1
    adam_betas       Adam lr 0.01 betas (0.5, 0.6) eps 1e-3
    optim_defaults.npy     f64 [2,5]   torch's defaults (lr, beta1, beta2, eps, weight_decay) of
                                       Adam (row 0) and AdamW (row 1)

Gradient clipping, torch.nn.utils.clip_grad_norm_ over the same two-parameter layout:
    optim_clip_before.npy  f64 [C,17]  gradients before
    optim_clip_after.npy   f64 [C,17]  gradients after
    optim_clip_norm.npy    f64 [C,2]   (max_norm, returned total norm)
Cases (rows): 0 norm ~2.4 > max_norm 1 (scaled); 1 norm ~0.24 < 1 (unchanged); 2 norm
1 - 4e-7, inside (max_norm - 1e-6, max_norm], where torch still scales by
max_norm / (norm + 1e-6) < 1; 3 one gradient +inf (norm inf, torch's coefficient 0: inf -> NaN,
the rest -> +-0).

Learning-rate schedules: the lr the optimiser uses at step t = 0 .. T-1, read from
optimizer.param_groups[0]["lr"] before each optimizer.step(); scheduler.step() after it.
    optim_sched_<NAME>.npy f64 [T]
    step             lr 0.1, StepLR(step_size 3, gamma 0.5), T 20
    step_warmup      lr 0.1, warm-up 4 (LambdaLR (t+1)/4), then StepLR(3, 0.3), T 20
    cosine           lr 0.1, CosineAnnealingLR(T_max 20, eta_min 0), T 21 (t = 0 .. total)
    cosine_warmup    lr 0.1, warm-up 5, then CosineAnnealingLR(T_max 15, eta_min 1e-3), T 21
    constant_warmup  lr 0.1, warm-up 4, then constant, T 12
Warm-up then decay is torch's SequentialLR(LambdaLR, StepLR/CosineAnnealingLR) with the
milestone at the end of the warm-up; it is cross-checked against the two torch schedulers run
separately and concatenated, and against the closed form in optim.h. The cosine files stop at
t = total: beyond it torch's CosineAnnealingLR rises again (it is periodic) while nabla's
schedule stays at min_lr, so the two do not coincide there.
"""

import math
import os
import warnings

import numpy as np
import torch
from torch.optim import SGD, Adam, AdamW
from torch.optim import lr_scheduler as L

SEED = 20240613
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(os.path.dirname(HERE), "tests", "data")

SHAPES = [(3, 4), (5,)]
SIZES = [int(np.prod(s)) for s in SHAPES]
N = sum(SIZES)  # 17
STEPS = 6

torch.set_num_threads(1)
# SequentialLR calls scheduler.step(0) at a milestone, which torch 1.13 warns about.
warnings.filterwarnings("ignore", message="The epoch parameter")
torch.use_deterministic_algorithms(True)


def save(name, arr):
    path = os.path.join(OUT, name)
    np.save(path, np.ascontiguousarray(arr, dtype=np.float64), allow_pickle=False)


def f32_exact(x):
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def split(row):
    out, k = [], 0
    for shape, n in zip(SHAPES, SIZES):
        out.append(row[k:k + n].reshape(shape))
        k += n
    return out


def flat(tensors):
    return np.concatenate([t.detach().numpy().reshape(-1) for t in tensors])


rng = np.random.default_rng(SEED)
INIT = f32_exact(rng.choice([-1.0, 1.0], N) * rng.uniform(1.5, 3.0, N))
GRADS = f32_exact(rng.uniform(-1.0, 1.0, (STEPS, N)))

# ---- optimisers ---------------------------------------------------------------------------

CONFIGS = [
    ("sgd", SGD, dict(lr=0.1)),
    ("sgd_momentum", SGD, dict(lr=0.1, momentum=0.9)),
    ("sgd_dampening", SGD, dict(lr=0.1, momentum=0.9, dampening=0.5)),
    ("sgd_nesterov", SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("sgd_momentum_wd", SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    ("adam", Adam, dict()),
    ("adam_wd", Adam, dict(lr=0.01, weight_decay=0.1)),
    ("adamw", AdamW, dict(lr=0.01, weight_decay=0.1)),
    ("adam_betas", Adam, dict(lr=0.01, betas=(0.5, 0.6), eps=1e-3)),
]


def run_torch(cls, kw):
    ps = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in split(INIT)]
    opt = cls(ps, foreach=False, **kw)
    traj = [flat(ps)]
    for s in range(STEPS):
        for p, g in zip(ps, split(GRADS[s])):
            p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        traj.append(flat(ps))
    names = ["momentum_buffer"] if cls is SGD else ["exp_avg", "exp_avg_sq"]
    state = []
    for name in names:
        if cls is SGD and kw.get("momentum", 0.0) == 0.0:
            break
        state.append(np.concatenate([opt.state[p][name].numpy().reshape(-1) for p in ps]))
    return np.stack(traj), (np.stack(state) if state else None), opt.defaults


def run_formula(cls, kw):
    """optim.h's update rules, transcribed in NumPy (independent of torch.optim)."""
    lr = kw.get("lr", 1e-3)
    wd = kw.get("weight_decay", 0.0 if cls is not AdamW else 1e-2)
    mu, damp, nest = kw.get("momentum", 0.0), kw.get("dampening", 0.0), kw.get("nesterov", False)
    b1, b2 = kw.get("betas", (0.9, 0.999))
    eps = kw.get("eps", 1e-8)
    p = INIT.copy()
    buf, m, v = None, np.zeros(N), np.zeros(N)
    traj = [p.copy()]
    for s in range(STEPS):
        g = GRADS[s].copy()
        t = s + 1
        if cls is SGD:
            g = g + wd * p
            if mu > 0:
                buf = g.copy() if buf is None else mu * buf + (1 - damp) * g
                g = g + mu * buf if nest else buf
            p = p - lr * g
        else:
            if cls is AdamW:
                p = p * (1 - lr * wd)
            else:
                g = g + wd * p
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            p = p - lr / (1 - b1**t) * m / (np.sqrt(v) / np.sqrt(1 - b2**t) + eps)
        traj.append(p.copy())
    return np.stack(traj)


def check_close(what, got, ref, rtol):
    err = np.max(np.abs(got - ref) / np.maximum(np.abs(ref), 1e-300))
    assert err <= rtol, f"{what}: relative error {err:.3g} > {rtol:.3g}"


def gen_optimisers():
    save("optim_grads.npy", GRADS)
    for name, cls, kw in CONFIGS:
        traj, state, _ = run_torch(cls, kw)
        check_close(f"{name} vs optim.h formula", traj, run_formula(cls, kw), 1e-13)
        assert np.min(np.abs(traj)) > 0.25, f"{name}: a parameter came near 0"
        save(f"optim_{name}.npy", traj)
        if state is not None:
            assert np.min(np.abs(state)) > 1e-4, f"{name}: a state entry came near 0"
            save(f"optim_{name}_state.npy", state)
    rows = []
    for cls in (Adam, AdamW):
        d = cls([torch.zeros(1, requires_grad=True)]).defaults
        rows.append([d["lr"], d["betas"][0], d["betas"][1], d["eps"], d["weight_decay"]])
    save("optim_defaults.npy", np.array(rows, dtype=np.float64))


# ---- gradient clipping --------------------------------------------------------------------


def gen_clip():
    base = f32_exact(rng.uniform(-1.0, 1.0, N))
    edge = base / np.linalg.norm(base) * (1.0 - 4e-7)
    inf = base.copy()
    inf[5] = np.inf
    cases = [(base, 1.0), (f32_exact(0.1 * base), 1.0), (edge, 1.0), (inf, 1.0)]
    before, after, norms = [], [], []
    for g, max_norm in cases:
        ps = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in SHAPES]
        for p, gi in zip(ps, split(g)):
            p.grad = torch.tensor(gi, dtype=torch.float64)
        total = torch.nn.utils.clip_grad_norm_(ps, max_norm).item()
        out = np.concatenate([p.grad.numpy().reshape(-1) for p in ps])
        # Cross-check against the header's words: scale by max_norm / (norm + 1e-6) if < 1.
        norm = math.sqrt(float(np.sum(g * g)))
        assert total == norm or abs(total - norm) <= 1e-14 * norm
        coef = max_norm / (norm + 1e-6)
        with np.errstate(invalid="ignore"):
            ref = g * coef if coef < 1.0 else g
        assert np.array_equal(np.isnan(out), np.isnan(ref))
        fin = ~np.isnan(ref)
        assert np.allclose(out[fin], ref[fin], rtol=1e-14, atol=0.0)
        before.append(g)
        after.append(out)
        norms.append([max_norm, total])
    assert norms[0][1] > 1.0 and norms[1][1] < 1.0
    assert 1.0 - 1e-6 < norms[2][1] < 1.0 and not np.array_equal(after[2], before[2])
    save("optim_clip_before.npy", np.stack(before))
    save("optim_clip_after.npy", np.stack(after))
    save("optim_clip_norm.npy", np.array(norms))


# ---- learning-rate schedules --------------------------------------------------------------


def lrs_of(make, T, lr=0.1):
    """lr used at steps 0 .. T-1 by an SGD optimiser driven by the scheduler make(opt)."""
    p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = SGD([p], lr=lr)
    sched = make(opt)
    out = []
    for _ in range(T):
        out.append(opt.param_groups[0]["lr"])
        p.grad = torch.zeros(1, dtype=torch.float64)
        opt.step()
        sched.step()
    return np.array(out, dtype=np.float64)


def warm(w):
    return lambda opt: L.LambdaLR(opt, lambda t: (t + 1) / w)


def closed_form(kind, T, lr, warmup=0, total=0, step_size=1, gamma=1.0, min_lr=0.0):
    out = []
    for t in range(T):
        if t < warmup:
            out.append(lr * (t + 1) / warmup)
        elif kind == "step":
            out.append(lr * gamma ** ((t - warmup) // step_size))
        elif kind == "cosine":
            u = (t - warmup) / (total - warmup)
            out.append(min_lr + (lr - min_lr) * (1 + math.cos(math.pi * u)) / 2)
        else:
            out.append(lr)
    return np.array(out)


def sequential(w, then):
    return lambda opt: L.SequentialLR(opt, [warm(w)(opt), then(opt)], milestones=[w])


def gen_schedules():
    T = 20
    cases = []
    # StepLR alone: nabla's step schedule with no warm-up is exactly this.
    got = lrs_of(lambda o: L.StepLR(o, step_size=3, gamma=0.5), T)
    cases.append(("step", got, closed_form("step", T, 0.1, step_size=3, gamma=0.5)))

    # Warm-up 4 then StepLR(3, 0.3): SequentialLR, and the two schedulers run separately.
    got = lrs_of(sequential(4, lambda o: L.StepLR(o, step_size=3, gamma=0.3)), T)
    parts = np.concatenate([lrs_of(warm(4), 4), lrs_of(lambda o: L.StepLR(o, 3, 0.3), T - 4)])
    check_close("step_warmup: SequentialLR vs concatenation", got, parts, 1e-14)
    cases.append(("step_warmup", got,
                  closed_form("step", T, 0.1, warmup=4, step_size=3, gamma=0.3)))

    # Cosine without warm-up, t = 0 .. total (the last value is eta_min = 0 up to rounding).
    got = lrs_of(lambda o: L.CosineAnnealingLR(o, T_max=20, eta_min=0.0), 21)
    ref = closed_form("cosine", 21, 0.1, total=20)
    assert np.max(np.abs(got - ref)) <= 1e-16
    cases.append(("cosine", got, None))

    # Warm-up 5 then cosine over total - warmup = 15 steps down to 1e-3, t = 0 .. total.
    got = lrs_of(sequential(5, lambda o: L.CosineAnnealingLR(o, T_max=15, eta_min=1e-3)), 21)
    parts = np.concatenate([lrs_of(warm(5), 5),
                            lrs_of(lambda o: L.CosineAnnealingLR(o, 15, eta_min=1e-3), 16)])
    check_close("cosine_warmup: SequentialLR vs concatenation", got, parts, 1e-14)
    cases.append(("cosine_warmup", got,
                  closed_form("cosine", 21, 0.1, warmup=5, total=20, min_lr=1e-3)))

    # Warm-up 4 then constant: LambdaLR with min(1, (t + 1) / 4).
    got = lrs_of(lambda o: L.LambdaLR(o, lambda t: min(1.0, (t + 1) / 4)), 12)
    cases.append(("constant_warmup", got, closed_form("constant", 12, 0.1, warmup=4)))

    for name, got, ref in cases:
        if ref is not None:
            check_close(f"{name}: torch vs optim.h closed form", got, ref, 1e-13)
        save(f"optim_sched_{name}.npy", got)


if __name__ == "__main__":
    gen_optimisers()
    gen_clip()
    gen_schedules()
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT)
                if f.startswith("optim_") and f.endswith(".npy"))
    print(f"wrote tests/data/optim_*.npy ({total} bytes)")
