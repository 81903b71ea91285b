#!/usr/bin/python3
"""PyTorch's epoch of `nabla train`'s default recipe, for `make bench`: one JSON line per run.

The same work as an epoch of `nabla train` (its train_seconds): Fashion-MNIST's 54000 training rows
(the 6000 validation rows held out, as nabla does) already in memory as f32 in [0, 1]; a new
shuffled order every epoch; batches of 128 gathered from it; the MLP 784-256-128-10 with ReLU and
PyTorch's default initialisation (nabla's default); cross-entropy with label smoothing 0.1;
AdamW (lr 2e-3, betas 0.9/0.999, eps 1e-8, weight decay 1e-4); the cosine schedule with 200
warm-up steps, set every step; and the figures nabla reports for each step: the loss sum, the
training accuracy and the global gradient norm. The clock runs from the first step of an epoch to
the end of its last; nothing is evaluated. `--bare` drops the accuracy and the norm (PyTorch's
loop at its leanest), for reference. PyTorch's CPU tensors come from glibc's malloc, which maps
and unmaps the step's large buffers (the batch, the weight gradients) every step, so each step
page-faults them in again; scripts/bench.sh also runs it with MALLOC_MMAP_THRESHOLD_ and
MALLOC_TRIM_THRESHOLD_ raised (the buffers then stay in the heap), recorded as malloc_tuned, and
the comparison takes PyTorch's faster setting.

  /usr/bin/python3 bench/torch_epoch.py --threads 2 --interop 1 [--epochs 3] [--bare]
"""
import argparse
import gzip
import json
import math
import os
import struct
import time

import torch
import torch.nn.functional as F


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise SystemExit(f"{path}: not an IDX file of unsigned bytes")
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = torch.frombuffer(bytearray(raw[4 + 4 * ndim:]), dtype=torch.uint8)
    return data.reshape(dims)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--interop", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--bare", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(a.interop)
    torch.manual_seed(1)
    X = read_idx(os.path.join(a.data_dir, "train-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(a.data_dir, "train-labels-idx1-ubyte.gz")).long()
    X = X.reshape(X.shape[0], -1).float() / 255.0
    keep = torch.randperm(X.shape[0])[6000:]  # 54000 training rows, as nabla's split
    X, y = X[keep].contiguous(), y[keep].contiguous()
    N, B = X.shape[0], 128
    steps = (N + B - 1) // B
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(),
                                torch.nn.Linear(256, 128), torch.nn.ReLU(),
                                torch.nn.Linear(128, 10))
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-4)
    total, warm = steps * a.epochs, 200

    def lr_at(t):  # nabla's cosine schedule (nb_schedule_lr)
        if t < warm:
            return 2e-3 * (t + 1) / warm
        frac = min(1.0, (t - warm) / max(1, total - warm))
        return 2e-3 * 0.5 * (1.0 + math.cos(math.pi * frac))

    seconds, t = [], 0
    for epoch in range(a.epochs):
        t0 = time.perf_counter()
        order = torch.randperm(N)
        loss_sum, hits, gnorm_sum = 0.0, 0, 0.0
        for s in range(steps):
            idx = order[s * B:(s + 1) * B]
            xb, yb = X.index_select(0, idx), y.index_select(0, idx)
            for g in opt.param_groups:
                g["lr"] = lr_at(t)
            opt.zero_grad(set_to_none=True)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb, label_smoothing=0.1)
            loss.backward()
            if not a.bare:
                gnorm_sum += torch.linalg.vector_norm(
                    torch.stack([torch.linalg.vector_norm(p.grad) for p in params])).item()
                hits += (logits.detach().argmax(1) == yb).sum().item()
            opt.step()
            loss_sum += loss.item() * yb.shape[0]
            t += 1
        seconds.append(time.perf_counter() - t0)
    med = sorted(seconds)[len(seconds) // 2]
    print(json.dumps(dict(bench="epoch", impl="torch", torch=torch.__version__, threads=a.threads,
                          interop=a.interop, bare=a.bare, steps=steps, batch=B,
                          malloc_tuned="MALLOC_MMAP_THRESHOLD_" in os.environ,
                          epoch_seconds=[round(s, 4) for s in seconds],
                          median_seconds=round(med, 4),
                          train_acc_last=round(hits / N, 4) if not a.bare else None,
                          train_loss_last=round(loss_sum / N, 4))), flush=True)


if __name__ == "__main__":
    main()
