#!/bin/sh
# test_xent_dtype.sh NABLA WORK_DIR - `nabla xent --logits-dtype bf16|f16`: half-precision logits
# that a .npy file cannot name (NumPy has no bfloat16) travel as uint16 ('<u2') bit patterns.
#
# The same six logits are written three ways (bytes below, computed once with Python's struct):
#   L32.npy   '<f4'  1.1 -0.7 2.3 / 0.123 3.14159 -1.9       (not representable in bf16)
#   Lbf.npy   '<u2'  their bf16 roundings (nearest even): 0x3f8d 0xbf33 0x4013 0x3dfc 0x4049 0xbff3
#   Lrnd.npy  '<f4'  the same rounded values as f32: 1.1015625 -0.69921875 2.296875 / ...
#   Lh.npy    '<u2'  their f16 roundings 0x3c66 0xb99a 0x409a 0x2fdf 0x4248 0xbf9a, and L16.npy
#             '<f2' with the same bytes
# The bf16 run must give exactly the loss (and gradient) of the pre-rounded f32 run, and not the
# loss of the unrounded one: the file's values are read as bf16, computed in f32. No Python here.
set -eu
nabla=$1
work=$2
case $nabla in /*) ;; */*) nabla=$(pwd)/$nabla ;; esac
test_name=test_xent_dtype
. "$(dirname "$0")/lib.sh" # check, fail, err_has, out_has, mknpy
rm -rf "$work"
mkdir -p "$work"
cd "$work"



mknpy L32.npy '<f4' '(2, 3)' '\315\314\214\077\063\063\063\277\063\063\023\100\155\347\373\075\320\017\111\100\063\063\363\277'
mknpy Lbf.npy '<u2' '(2, 3)' '\215\077\063\277\023\100\374\075\111\100\363\277'
mknpy Lrnd.npy '<f4' '(2, 3)' '\000\000\215\077\000\000\063\277\000\000\023\100\000\000\374\075\000\000\111\100\000\000\363\277'
mknpy Lh.npy '<u2' '(2, 3)' '\146\074\232\271\232\100\337\057\110\102\232\277'
mknpy L16.npy '<f2' '(2, 3)' '\146\074\232\271\232\100\337\057\110\102\232\277'
mknpy T.npy '<i8' '(2,)' '\001\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000'

loss_of() { sed -n 's/^loss (mean) //p' out; }

check "f32 logits" 0 "$nabla" xent --logits L32.npy --targets T.npy
l32=$(loss_of)
check "pre-rounded f32 logits" 0 "$nabla" xent --logits Lrnd.npy --targets T.npy
lrnd=$(loss_of)
check "bf16 bit patterns" 0 "$nabla" xent --logits Lbf.npy --targets T.npy --logits-dtype bf16
lbf=$(loss_of)
[ -n "$lbf" ] && [ "$lbf" = "$lrnd" ] || fail "bf16 loss '$lbf', pre-rounded f32 loss '$lrnd'"
[ "$lbf" != "$l32" ] || fail "bf16 loss '$lbf' equals the unrounded f32 loss: not read as bf16"
# the values themselves (double-precision hand computation): 3.18480668 rounded, 3.18663907 not
awk -v a="$lbf" 'BEGIN { d = a - 3.18480668; exit !(d < 1e-6 && d > -1e-6) }' ||
    fail "bf16 loss $lbf, expected 3.18480668"
awk -v a="$l32" 'BEGIN { d = a - 3.18663907; exit !(d < 1e-6 && d > -1e-6) }' ||
    fail "f32 loss $l32, expected 3.18663907"
# the gradient too (same f32 arithmetic on the same values: the same bytes)
check "bf16 gradient" 0 "$nabla" xent --logits Lbf.npy --targets T.npy --logits-dtype bf16 \
    --reduction none --loss-out lbf_rows.npy --grad-out gbf.npy
check "pre-rounded gradient" 0 "$nabla" xent --logits Lrnd.npy --targets T.npy \
    --reduction none --loss-out lrnd_rows.npy --grad-out grnd.npy
cmp -s gbf.npy grnd.npy || fail "gradients of the bf16 and the pre-rounded f32 logits differ"
cmp -s lbf_rows.npy lrnd_rows.npy || fail "per-row losses of bf16 and pre-rounded f32 differ"
check "bf16 --naive" 0 "$nabla" xent --logits Lbf.npy --targets T.npy --logits-dtype bf16 --naive
out_has "naive rows not finite: 0"

# f16 bit patterns: the same as the '<f2' file with the same bytes
check "f16 as <f2" 0 "$nabla" xent --logits L16.npy --targets T.npy
l16=$(loss_of)
check "f16 bit patterns" 0 "$nabla" xent --logits Lh.npy --targets T.npy --logits-dtype f16
[ "$(loss_of)" = "$l16" ] || fail "f16 bit patterns give '$(loss_of)', the <f2 file '$l16'"
check "--logits-dtype f16 with <f2" 0 "$nabla" xent --logits L16.npy --targets T.npy \
    --logits-dtype f16
[ "$(loss_of)" = "$l16" ] || fail "--logits-dtype f16 on <f2 gives '$(loss_of)', not '$l16'"
[ "$l16" != "$lbf" ] || fail "f16 and bf16 give the same loss: the dtype is not applied"

# refusals name the file, the dtype found and what was expected
check "uint16 without --logits-dtype" 1 "$nabla" xent --logits Lbf.npy --targets T.npy
err_has "Lbf.npy"
err_has "'<u2'"
err_has "--logits-dtype bf16"
check "--logits-dtype bf16 on f32" 1 "$nabla" xent --logits L32.npy --targets T.npy \
    --logits-dtype bf16
err_has "L32.npy"
err_has "holds f32 values, not bf16 bit patterns"
err_has "'<u2'"
check "--logits-dtype bf16 on <f2" 1 "$nabla" xent --logits L16.npy --targets T.npy \
    --logits-dtype bf16
err_has "holds f16 values, not bf16 bit patterns"
check "--logits-dtype f32" 2 "$nabla" xent --logits L32.npy --targets T.npy --logits-dtype f32
err_has "--logits-dtype 'f32': expected bf16 or f16"
check "uint16 targets are still refused" 1 "$nabla" xent --logits Lbf.npy --targets Lh.npy \
    --logits-dtype bf16
err_has "Lh.npy"
err_has "'<u2'"
check "help" 0 "$nabla" xent --help
out_has "--logits-dtype bf16|f16"

echo "test_xent_dtype: all checks passed"
