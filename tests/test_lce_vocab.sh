#!/bin/sh
# test_lce_vocab.sh LCE_VOCAB_MAIN - the vocabulary-parallel fused linear + cross-entropy under
# mpirun -np 1, 2 and 3 (V = 23 and 3001: slices of unequal sizes): each rank's loss, dL/dx and
# slice of dL/dW, dL/db equal the single-process op's (tests/lce_vocab_main.c says how).
set -eu
prog=$1
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
echo "ok: vocabulary-parallel == single process at -np 1, 2, 3"
