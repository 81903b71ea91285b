#!/bin/sh
# test_custom_op_example.sh EXAMPLE WORK_DIR - examples/custom_op.c as a user runs it: the right
# hand-written layer-norm backward passes nb_gradcheck (exit 0, every input "ok"); each wrong
# variant is caught (exit 1) with the right input and elements named: the fencepost bug
# (the dx loop stops at D - 1 = 7) puts all four rows of column 7 of x at the top of the worst
# list, and gamma and beta, whose gradients are right in every variant, stay "ok".
set -u
ex=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
fail() {
    echo "test_custom_op_example: FAIL: $*" >&2
    [ -s "$work/out" ] && cat "$work/out" >&2
    exit 1
}
run() { # run WANT_STATUS ARGS...
    want=$1
    shift
    timeout 60 "$ex" "$@" >"$work/out" 2>"$work/err"
    rc=$?
    [ $rc -eq "$want" ] || { cat "$work/err" >&2; fail "'$*': exit $rc, expected $want"; }
}
line_of() { grep "^$1 " "$work/out"; }

run 0
grep -q "^PASSED: max relative error" "$work/out" || fail "right variant: no PASSED line"
for p in x gamma beta; do
    line_of "$p" | grep -q "(f32 promoted to f64)  ok$" || fail "right variant: $p not ok"
done
grep -q "^note: f32 inputs were checked on f64 copies" "$work/out" || fail "no f32 caveat"

run 1 --wrong last-column
grep -q "^CAUGHT" "$work/out" || fail "last-column: not caught"
line_of x | grep -q "worst at \[[0-3], 7\]: .* FAIL$" || fail "last-column: x's worst not in column 7"
# the four worst elements are x [0..3, 7], each once
top=$(sed -n '/worst elements:/,$p' "$work/out" | sed -n 2,5p)
for row in 0 1 2 3; do
    echo "$top" | grep -q "^  x  *\[$row, 7\] " || fail "last-column: x [$row, 7] not among the 4 worst"
done
line_of gamma | grep -q " ok$" || fail "last-column: gamma flagged"
line_of beta | grep -q " ok$" || fail "last-column: beta flagged"

for v in mean-term overwrite; do
    run 1 --wrong $v
    grep -q "^CAUGHT" "$work/out" || fail "$v: not caught"
    line_of x | grep -q "FAIL$" || fail "$v: x not flagged"
    line_of gamma | grep -q " ok$" || fail "$v: gamma flagged"
    line_of beta | grep -q " ok$" || fail "$v: beta flagged"
done

run 2 --wrong nonsense
grep -q "unknown variant 'nonsense'" "$work/err" || fail "unknown variant message"
echo "test_custom_op_example: ok"
