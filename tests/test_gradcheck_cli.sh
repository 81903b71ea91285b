#!/bin/sh
# test_gradcheck_cli.sh NABLA WORK_DIR - `nabla gradcheck --worst K` says where: after each case
# a line per input with its max errors and its worst element as coordinates of that input's
# shape, then the K worst elements, largest relative error first, the first being the worst.
set -u
nabla=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
fail() {
    echo "test_gradcheck_cli: FAIL: $*" >&2
    [ -s "$work/out" ] && head -n 30 "$work/out" >&2
    [ -s "$work/err" ] && cat "$work/err" >&2
    exit 1
}
timeout 60 "$nabla" gradcheck --op softmax --worst 3 >"$work/out" 2>"$work/err" || fail "exit $?"
# the [3, 5] case: two coordinates, each inside the shape
line=$(grep -A1 '^softmax  *\[3, 5\]  ' "$work/out" | sed -n 2p)
echo "$line" | grep -q '^input 0        15 elements .* worst at \[[0-2], [0-4]\]: analytic .* numeric .*  ok$' ||
    fail "[3, 5] case: per-input line '$line'"
# the [2, 2, 4] case: three coordinates
line=$(grep -A1 '^softmax  *\[2, 2, 4\]  ' "$work/out" | sed -n 2p)
echo "$line" | grep -q 'worst at \[[01], [01], [0-3]\]: ' || fail "[2, 2, 4] case: '$line'"
# every case lists 3 worst elements in decreasing order, the first at the input's worst place
awk '/^input 0 / { split($0, a, "worst at "); split(a[2], b, ":"); worst = b[1];
                   split($0, c, "max rel err "); split(c[2], d, " "); maxrel = d[1] + 0; k = 0; next }
     /^3 worst elements:$/ { k = 1; prev = 1e300; next }
     k >= 1 && /^  input 0 / { n = split($0, f, "rel err "); r = f[n] + 0;
                   if (r > prev) { print "not sorted: " $0; bad = 1 }
                   if (k == 1 && index($0, worst) == 0) { print "first is not " worst ": " $0; bad = 1 }
                   if (k == 1 && r != maxrel) { print "first rel err " r " != " maxrel; bad = 1 }
                   prev = r; k++; cases += (k == 4) }
     END { if (cases != 3) { print "expected 3 cases with 3 worst elements, got " cases; bad = 1 }
           exit bad }' "$work/out" >"$work/bad" || fail "$(cat "$work/bad")"
grep -q '^3 cases checked, 0 failed' "$work/out" || fail "summary line"
# without --worst the output stays one line per case
timeout 60 "$nabla" gradcheck --op softmax >"$work/out" 2>"$work/err" || fail "plain run: exit $?"
grep -q '^input 0' "$work/out" && fail "per-input lines printed without --worst"
"$nabla" gradcheck --worst 33 >"$work/out" 2>"$work/err"
[ $? -eq 2 ] || fail "--worst 33: exit status"
grep -q -- "--worst 33 outside \[0, 32\]" "$work/err" || fail "--worst 33 message"
"$nabla" gradcheck --worst x >"$work/out" 2>"$work/err"
[ $? -eq 2 ] || fail "--worst x: exit status"
grep -q "bad value for --worst: 'x'" "$work/err" || fail "--worst x message"
echo "test_gradcheck_cli: ok"
