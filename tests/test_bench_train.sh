#!/bin/sh
# test_bench_train.sh NABLA - `nabla bench train` reports the trainer's step (median and mean),
# the hand-written loop, the products alone and their ratio, counts only computed products (no
# timing bound: speed targets live in `make bench`), and the hand loop allocates nothing in
# steady state.
set -eu
nabla=$1
out=$("$nabla" bench train --hidden 32,16 --batch 16 --steps 5 --threads 1 --json)
echo "$out"
for k in ms_per_step ms_per_step_mean ms_loop ms_gemm_only step_over_gemm gflops \
    gflops_gemm_only core; do
    echo "$out" | grep -q "\"$k\": " || { echo "FAIL: no $k"; exit 1; }
done
echo "$out" | grep -q '"steady_state_allocations": 0' || { echo "FAIL: the step allocates"; exit 1; }
# FLOPs of 784-32-16-10 at batch 16: forward and dW for 3 layers, dX for the last 2
flops=$((2 * 16 * (784 * 32 * 2 + 32 * 16 * 3 + 16 * 10 * 3)))
awk -v o="$out" -v f="$flops" 'BEGIN {
    ms = o; sub(/.*"ms_gemm_only": /, "", ms); sub(/,.*/, "", ms);
    g = o; sub(/.*"gflops_gemm_only": /, "", g); sub(/,.*/, "", g);
    want = f / (ms * 1e6);
    exit !(g > 0 && (g - want) / want < 0.01 && (want - g) / want < 0.01) }' ||
    { echo "FAIL: gflops_gemm_only is not $flops FLOPs over ms_gemm_only"; exit 1; }
# the mean step (what an epoch adds up) in ms like the median: half the steps take at least the
# median, so the mean is at least half of it
awk -v o="$out" 'BEGIN {
    md = o; sub(/.*"ms_per_step": /, "", md); sub(/,.*/, "", md);
    mn = o; sub(/.*"ms_per_step_mean": /, "", mn); sub(/,.*/, "", mn);
    exit !(mn > 0 && mn >= md / 2) }' ||
    { echo "FAIL: ms_per_step_mean is not a mean step in ms"; exit 1; }
"$nabla" bench train --hidden 0 --steps 1 2>err.txt && { echo "FAIL: --hidden 0 accepted"; exit 1; }
grep -q "expected sizes like 256,128" err.txt || { echo "FAIL: message"; exit 1; }
rm -f err.txt
echo "ok"
