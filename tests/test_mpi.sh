#!/bin/sh
# test_mpi.sh NABLA WORK - data-parallel training: mpirun -np 2 gives the same weights as one
# process and as --accum 2 (float32, 1e-5 relative), on the padded seq-toy task.
set -eu
nabla=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
cd "$work"
# Open MPI keeps internal allocations past MPI_Finalize (and unloads the plugins that made
# them), which LeakSanitizer would report under `make sanitize`; leak checking of nabla's own
# training code is done by the single-process tests (test_cli, test_resume, test_alloc_fail).
# AddressSanitizer's other checks stay on.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
export ASAN_OPTIONS
mpi="mpirun -np 2 --oversubscribe -x ASAN_OPTIONS"
[ "$(id -u)" -eq 0 ] && mpi="$mpi --allow-run-as-root"
opts="--data seq-toy --epochs 2 --hidden 32 --batch 64 --lr 0.01 --quiet"
"$nabla" train $opts --save np1.st
"$nabla" train $opts --save acc2.st --accum 2
$mpi "$nabla" train $opts --save np2.st
"$nabla" diff np1.st np2.st --only layers --tol 1e-5
"$nabla" diff acc2.st np2.st --only layers --tol 1e-5
# batch 1 over 2 ranks: every step one rank's shard is empty (no real tokens); it must add
# exactly nothing and no NaN (nabla diff fails on NaN)
small="--data seq-toy --epochs 1 --hidden 16 --batch 1 --lr 0.01 --warmup 0 --quiet"
"$nabla" train $small --save b1np1.st
$mpi "$nabla" train $small --save b1np2.st
"$nabla" diff b1np1.st b1np2.st --only layers --tol 1e-5
# and something actually changed the weights: a different seed is far away
"$nabla" train $opts --save other.st --seed 9
if "$nabla" diff np1.st other.st --only layers --tol 1e-3 > /dev/null; then
    echo "FAIL: different seeds gave the same weights"; exit 1
fi
echo "ok: -np 2 == -np 1 == --accum 2"
