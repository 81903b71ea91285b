#!/bin/sh
# test_export.sh NABLA WORK_DIR - `nabla export` read back by PyTorch and NumPy, exactly as the
# README shows: two models trained on a noisy 3-class CSV (300 rows, features on different
# scales), one standardised with ReLU, one raw with tanh-GELU; each exported as --format torch
# (safetensors with nn.Sequential names, parsed without the safetensors package, which Debian
# lacks) and --format npz. For each, torch.nn.Sequential.load_state_dict (strict) and a NumPy
# forward pass must reproduce `nabla eval --data d.csv`'s accuracy on all 300 rows exactly (to the
# row: 4 decimals of a count out of 300). Also: the .npz passes zipfile's CRC check, names are
# 0.weight, 0.bias, 2.weight, ..., and bad usage fails with a message.
# Needs python3 with torch and numpy (Debian python3-torch); without them: skip (exit 77).
set -eu
nabla=$1
work=$2
test_name=test_export
case $nabla in /*) ;; */*) nabla=$(pwd)/$nabla ;; esac
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
py=""
for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import torch, numpy' >/dev/null 2>&1; then
        py=$p
        break
    fi
done
[ -n "$py" ] || { echo "test_export: no python3 with torch and numpy, skipped"; exit 77; }
rm -rf "$work"
mkdir -p "$work"
cd "$work"

awk 'BEGIN { srand(3); print "a,b,c,label"
    for (i = 0; i < 300; i++) { c = i % 3
        printf "%.3f,%.2f,%.1f,%d\n", 100 + 8 * c + 12 * rand(), 0.1 * c + 0.25 * rand(), 50 * rand(), c } }' >d.csv

cat >load.py <<'PY'
# The README's loading code: PyTorch from the safetensors export, NumPy from the .npz.
import json, struct, sys
import numpy as np
import torch

def load_safetensors(path):
    """{name: tensor} and the metadata of a safetensors file, without the safetensors package."""
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    meta = header.pop("__metadata__", {})
    dtypes = {"F32": np.float32, "F64": np.float64}
    sd = {}
    for name, t in header.items():
        lo, hi = t["data_offsets"]
        a = np.frombuffer(b[8 + n + lo:8 + n + hi], dtype=dtypes[t["dtype"]])
        sd[name] = torch.from_numpy(a.reshape(t["shape"]).copy())
    return sd, meta

ACTS = {"relu": lambda: torch.nn.ReLU(), "tanh": lambda: torch.nn.Tanh(),
        "gelu": lambda: torch.nn.GELU(approximate="tanh"), "sigmoid": lambda: torch.nn.Sigmoid(),
        "leaky_relu": lambda: torch.nn.LeakyReLU(0.01)}

def torch_model(path):
    sd, meta = load_safetensors(path)
    sizes = [int(s) for s in meta["sizes"].split(",")]
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(ACTS[meta["activation"]]())
    model = torch.nn.Sequential(*layers)
    model.load_state_dict(sd)  # strict: every name must match
    return model.eval(), meta

def prepare(x, scale, shift, mean=None, std=None):
    """nabla's input pipeline: x * scale + shift (to f32), then (x - mean) / std in f64."""
    x = (x.astype(np.float64) * scale + shift).astype(np.float32)
    if mean is not None:
        x = ((x.astype(np.float64) - mean.astype(np.float64)) / std.astype(np.float64))
    return x.astype(np.float32)

data = np.loadtxt(sys.argv[3], delimiter=",", skiprows=1)
x, y = data[:, :-1], data[:, -1].astype(np.int64)

# PyTorch
model, meta = torch_model(sys.argv[1])
mean = np.array(json.loads(meta["input_mean"]), np.float32) if "input_mean" in meta else None
std = np.array(json.loads(meta["input_std"]), np.float32) if "input_std" in meta else None
xt = prepare(x, float(meta["input_scale"]), float(meta["input_shift"]), mean, std)
with torch.no_grad():
    pred_t = model(torch.from_numpy(xt)).argmax(1).numpy()

# NumPy
z = np.load(sys.argv[2])
xn = prepare(x, float(z["input.scale"]), float(z["input.shift"]),
             z["input.mean"] if "input.mean" in z.files else None,
             z["input.std"] if "input.std" in z.files else None)
act = {"relu": lambda h: np.maximum(h, 0),
       "gelu": lambda h: 0.5 * h * (1 + np.tanh(0.7978845608028654 * (h + 0.044715 * h ** 3)))}
h, i = xn, 0
while "%d.weight" % i in z.files:
    h = h @ z["%d.weight" % i].T + z["%d.bias" % i]
    if "%d.weight" % (i + 2) in z.files:
        h = act[sys.argv[4]](h).astype(np.float32)
    i += 2
pred_n = h.argmax(1)
print("torch %.4f numpy %.4f names %s" % ((pred_t == y).mean(), (pred_n == y).mean(),
                                          ",".join(n for n in z.files if "weight" in n)))
PY

for run in "relu --standardize" "gelu"; do
    set -- $run
    act=$1
    shift
    check "train ($act $*)" 0 "$nabla" train --data d.csv --epochs 15 --hidden 16,8 --threads 1 \
        --activation "$act" --warmup 10 --batch 32 --save "m_$act.safetensors" --quiet "$@"
    check "eval ($act)" 0 "$nabla" eval --model "m_$act.safetensors" --data d.csv
    eacc=$(awk '/^loss .* accuracy/ { print $4 }' out)
    [ -n "$eacc" ] || fail "eval printed no accuracy"
    check "export torch ($act)" 0 "$nabla" export --model "m_$act.safetensors" --format torch \
        --out "e_$act.safetensors"
    check "export npz ($act)" 0 "$nabla" export --model "m_$act.safetensors" --out "e_$act.npz"
    check "PyTorch and NumPy load the exports ($act)" 0 "$py" load.py "e_$act.safetensors" \
        "e_$act.npz" d.csv "$act"
    out_has "torch $eacc numpy $eacc names 0.weight,2.weight,4.weight"
    check "the npz is a sound zip ($act)" 0 "$py" -c "import zipfile, sys
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
print(z.namelist())" "e_$act.npz"
    echo "  $act: eval $eacc, $(cat out)"
done
grep -q "input_mean" e_relu.safetensors || fail "the standardised export has no input_mean"

check "no --format, no known extension" 2 "$nabla" export --model m_gelu.safetensors --out e.bin
err_has "--format (torch or npz) are required"
check "unknown format" 2 "$nabla" export --model m_gelu.safetensors --format onnx --out e.onnx
err_has "--format 'onnx': expected torch or npz"
check "missing model" 1 "$nabla" export --model nowhere.safetensors --out e.npz
err_has "nowhere.safetensors"
echo "test_export: all checks passed"
