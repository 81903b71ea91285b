#!/bin/sh
# test_lce_vocab.sh LCE_VOCAB_MAIN NABLA - the vocabulary-parallel fused linear + cross-entropy
# under mpirun -np 1, 2 and 3 (V = 23 and 3001: slices of unequal sizes): each rank's loss, dL/dx
# and slice of dL/dW, dL/db equal the single-process op's (tests/lce_vocab_main.c says how). Then
# `nabla bench lce --vocab-parallel` under -np 2 prints one JSON line per rank and path.
set -eu
prog=$1
nabla=$2
# Open MPI keeps internal allocations past MPI_Finalize (and unloads the plugins that made
# them), which LeakSanitizer would report under `make sanitize`; the op's own memory is
# leak-checked by the single-process tests (test_lce, test_lce_shard). AddressSanitizer's other
# checks stay on.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
export ASAN_OPTIONS
root=""
out=$(mktemp)
trap 'rm -f "$out"' EXIT
[ "$(id -u)" -eq 0 ] && root="--allow-run-as-root"
for np in 1 2 3; do
    # one thread per rank: up to three ranks share the test machine's cores
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
        mpirun -np $np --oversubscribe $root -x ASAN_OPTIONS -x OMP_NUM_THREADS \
        -x OPENBLAS_NUM_THREADS "$prog" > "$out" 2>&1 || {
        cat "$out"; echo "FAIL: mpirun -np $np"; exit 1; }
    grep -q "^ok: .* on $np rank(s)" "$out" || { cat "$out"; echo "FAIL: -np $np"; exit 1; }
    tail -1 "$out"
done
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 mpirun -np 2 --oversubscribe $root -x ASAN_OPTIONS \
    -x OMP_NUM_THREADS -x OPENBLAS_NUM_THREADS "$nabla" bench lce --vocab-parallel --json \
    --n 64 --d 16 --v 1001 --repeat 2 > "$out"
for want in '"impl": "fused", "vocab_parallel": true, "rank": 0, "ranks": 2, .*"v_slice": 500,' \
    '"impl": "fused", "vocab_parallel": true, "rank": 1, "ranks": 2, .*"v_slice": 501,' \
    '"impl": "fused-recompute", "vocab_parallel": true, "rank": 1, .*"peak_rss_bytes": [1-9]'; do
    grep -q "$want" "$out" || { cat "$out"; echo "FAIL: bench lce --vocab-parallel: $want"; exit 1; }
done
# three fused paths (in leaves, saved, recompute) x two ranks
[ "$(grep -c '"bench": "lce"' "$out")" -eq 6 ] || { cat "$out"; echo "FAIL: 6 lines"; exit 1; }
echo "ok: vocabulary-parallel == single process at -np 1, 2, 3; bench lce --vocab-parallel"
