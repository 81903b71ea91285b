#!/bin/sh
# test_xent_explain.sh NABLA WORK_DIR - `nabla xent --explain` and `--naive` on a 3-row f32
# batch made here:
#   row 0: z = [-100, -101, -102], target 0: exp(z) is subnormal in f32, so the naive
#          softmax-then-log is finite but wrong (the true loss is log(1 + e^-1 + e^-2));
#   row 1: z = [1000, 1001, 1002], target 2: exp overflows, the naive row is not finite;
#   row 2: z = [1, 2, 3], target 1: the naive row is right.
# The values --explain prints are checked against the formulas computed here with awk.
set -u
nabla=$1
work=$2
case $nabla in /*) ;; */*) nabla=$(pwd)/$nabla ;; esac
test_name=test_xent_explain
. "$(dirname "$0")/lib.sh" # fail, err_has, out_has, mknpy (check is its own: it runs nabla)
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
check() { # check NAME STATUS ARGS...
    current=$1
    want=$2
    shift 2
    timeout 60 "$nabla" "$@" >out 2>err
    rc=$?
    [ "$rc" -eq "$want" ] || fail "exit status $rc, expected $want"
}
# close A B TOL: |A - B| <= TOL (1 + |B|)
close() {
    awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d;
        m = b < 0 ? -b : b; exit !(d <= t * (1 + m)) }'
}
# f32 little-endian: -100 -101 -102 / 1000 1001 1002 / 1 2 3
mknpy z.npy '<f4' '(3, 3)' '\000\000\310\302\000\000\312\302\000\000\314\302\000\000\172\104\000\100\172\104\000\200\172\104\000\000\200\077\000\000\000\100\000\000\100\100'
mknpy t.npy '<i8' '(3,)' '\000\000\000\000\000\000\000\000\002\000\000\000\000\000\000\000\001\000\000\000\000\000\000\000'
# same targets with row 1 = -100 (ignore_index)
mknpy tpad.npy '<i8' '(3,)' '\000\000\000\000\000\000\000\000\234\377\377\377\377\377\377\377\001\000\000\000\000\000\000\000'

# ---- --naive: both kinds of bad rows flagged, the good one not, differences finite ----
check "naive" 0 xent --logits z.npy --targets t.npy --naive
grep -q '^       0 .*<- naive is finite but wrong$' out || fail "row 0 not flagged finite-but-wrong"
grep -q '^       1 .*<- naive is not finite$' out || fail "row 1 not flagged not-finite"
grep '^       2 ' out | grep -q '<-' && fail "row 2 (z = 1 2 3) flagged"
out_has "naive rows not finite: 1"
out_has "naive rows finite but wrong (rel err > 1.0e-04): 1"
# the true loss of rows 0 and 1 is log(1 + e^-1 + e^-2); the reference column says so
want=$(awk 'BEGIN { printf "%.12g", log(1 + exp(-1) + exp(-2)) }')
ref0=$(awk '$1 == "0" { print $2 }' out)
close "$ref0" "$want" 1e-12 || fail "row 0 reference $ref0, expected $want"
err0=$(awk '$1 == "0" { print $5 }' out)
awk -v e="$err0" 'BEGIN { exit !(e > 1e-3) }' || fail "row 0 naive error $err0 should be > 1e-3"
diff=$(sed -n 's/^largest |grad fused - grad naive| over finite naive rows: //p' out)
case $diff in *nan* | *inf* | "") fail "largest gradient difference is '$diff'" ;; esac
awk -v d="$diff" 'BEGIN { exit !(d > 1e-4 && d < 1) }' || fail "largest gradient difference $diff"
fe=$(sed -n "s/^fused kernel's largest row rel err against the f64 reference: //p" out)
awk -v e="$fe" 'BEGIN { exit !(e < 1e-6) }' || fail "fused kernel error $fe >= 1e-6"
out_has "loss (mean)"

# a looser tolerance no longer flags row 0 (its error is ~2e-2), the inf row stays flagged
check "naive-tol" 0 xent --logits z.npy --targets t.npy --naive-tol 0.5
out_has "naive rows finite but wrong (rel err > 5.0e-01): 0"
out_has "naive rows not finite: 1"
check "naive-tol bad" 2 xent --logits z.npy --targets t.npy --naive-tol 2
err_has "--naive-tol 2 outside (0, 1)"
check "naive-tol no value" 2 xent --logits z.npy --targets t.npy --naive-tol
err_has "--naive-tol needs a value"

# ---- --explain: the row's numbers against the formulas (a = 0.1, V = 3, W = 3) ----
check "explain" 0 xent --logits z.npy --targets t.npy --explain 2 --label-smoothing 0.1
out_has "row 2: target class 1"
grep -q '^row 0' out && fail "row 0 explained but only row 2 was asked for"
lse=$(awk 'BEGIN { printf "%.12g", 3 + log(exp(-2) + exp(-1) + 1) }')
got=$(sed -n 's/.*lse = m + log s = \([^ ]*\)$/\1/p' out)
close "$got" "$lse" 1e-8 || fail "lse $got, expected $lse"
L=$(awk -v l="$lse" 'BEGIN { printf "%.12g", 0.9 * (l - 2) + 0.1 / 3 * (3 * l - 6) }')
got=$(sed -n 's/^  row loss L = \([^ ]*\) .*/\1/p' out)
close "$got" "$L" 1e-10 || fail "row loss $got, expected $L"
for j in 0 1 2; do
    line=$(awk -v j="$j" '$1 == j && NF >= 6' out)
    [ -n "$line" ] || fail "no table line for class $j"
    set -- $line
    p=$(awk -v j="$j" -v l="$lse" 'BEGIN { printf "%.12g", exp(j + 1 - l) }')
    T=$(awk -v j="$j" 'BEGIN { printf "%.12g", (j == 1 ? 0.9 : 0) + 0.1 / 3 }')
    d=$(awk -v p="$p" -v t="$T" 'BEGIN { printf "%.12g", (p - t) / 3 }')
    close "$2" "$((j + 1))" 0 || fail "class $j: z $2"
    close "$3" "$p" 1e-8 || fail "class $j: p $3, expected $p"
    close "$4" "$T" 1e-8 || fail "class $j: target $4, expected $T"
    close "$5" "$d" 1e-9 || fail "class $j: dL/dz $5, expected $d"
    close "$6" "$d" 1e-6 || fail "class $j: fused dL/dz $6, expected $d"
done
grep -q '^         1 .*<- target$' out || fail "the target class is not marked"

# default rows (0-2), a padded row, the sum reduction and a z-loss term
check "explain default rows" 0 xent --logits z.npy --targets tpad.npy --explain --reduction sum --z-loss 0.01
out_has "row 0: target class 0"
out_has "row 1: padding (ignore_index): contributes nothing; dL/dz = 0"
out_has "row 2: target class 1"
out_has "scale = 1 (sum)"
zl=$(awk 'BEGIN { l = 3 + log(exp(-2) + exp(-1) + 1); printf "%.9g", 0.01 * l * l }')
out_has "z-loss zc lse^2 = $zl"

# ---- bad row lists ----
check "explain row out of range" 1 xent --logits z.npy --targets t.npy --explain 1,5
err_has "--explain 1,5: row 5 out of range for 3 rows"
check "explain bad spec" 2 xent --logits z.npy --targets t.npy --explain 0,x
err_has "--explain '0,x': expected row numbers and ranges like 0,3,5-7"
check "explain reversed range" 2 xent --logits z.npy --targets t.npy --explain 2-1
err_has "expected row numbers and ranges"
check "explain too many rows" 2 xent --logits z.npy --targets t.npy --explain 0-99
err_has "--explain 0-99: more than 64 rows"
echo "test_xent_explain: ok"
