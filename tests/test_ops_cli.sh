#!/bin/sh
# test_ops_cli.sh NABLA WORK_DIR - `nabla gradcheck` draws each op's samples from its own
# generator (a run of one op prints exactly its lines of the full run, so adding an op changes no
# other op's numbers), and `nabla bench ops` reports every op against memcpy.
set -u
nabla=$1
work=$2
rm -rf "$work" && mkdir -p "$work" || exit 1
fail=0
bad() { echo "FAIL: $*"; fail=1; }

timeout 120 "$nabla" gradcheck >"$work/all.txt" 2>&1 || bad "gradcheck exit $?"
for op in tanh softmax dropout cross_entropy; do
    timeout 60 "$nabla" gradcheck --op $op >"$work/one.txt" 2>&1 || bad "gradcheck --op $op exit $?"
    grep "^$op " "$work/all.txt" >"$work/a.txt"
    grep "^$op " "$work/one.txt" >"$work/b.txt"
    [ -s "$work/a.txt" ] || bad "no $op lines in the full run"
    cmp -s "$work/a.txt" "$work/b.txt" || bad "--op $op lines differ from the full run's"
done
# SiLU is listed and checked
timeout 30 "$nabla" gradcheck --list >"$work/list.txt" 2>&1 || bad "gradcheck --list exit $?"
grep -q "^silu .*x sigmoid(x)" "$work/list.txt" || bad "silu not in gradcheck --list"
[ "$(grep -c '^silu .* ok$' "$work/all.txt")" -ge 2 ] || bad "silu cases not ok in the full run"
# bench ops: every op, both passes, against memcpy, with the BLAS core
timeout 60 "$nabla" bench ops --n 4096 --repeat 2 >"$work/bench.txt" 2>&1 || bad "bench ops exit $?"
grep -q "^memcpy of .* GB/s" "$work/bench.txt" || bad "bench ops: no memcpy line"
grep -q "BLAS core" "$work/bench.txt" || bad "bench ops: no BLAS core"
for op in add mul relu tanh softmax sum; do
    for pass in fwd bwd; do
        grep -q "^$op  *$pass .*%$" "$work/bench.txt" || bad "bench ops: no $op $pass line"
    done
done
timeout 60 "$nabla" bench ops --n 2048 --repeat 1 --json >"$work/bench.json" 2>&1 || bad "bench ops --json exit $?"
[ "$(grep -c '"bench": "ops"' "$work/bench.json")" -eq 12 ] || bad "bench ops --json: not 12 lines"
exit $fail
