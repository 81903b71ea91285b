#!/bin/sh
# test_xent_head.sh NABLA WORK_DIR - `nabla xent --input X --classifier W [--bias b]`: the fused
# linear + cross-entropy head from the command line, on the PyTorch golden case f64_mean
# (tests/data/lce_*, scripts/gen_lce_golden.py: loss 4.21978384), its gradient outputs, and its
# usage errors.
set -eu
nabla=$1
work=$2
here=$(cd "$(dirname "$0")" && pwd)
test_name=test_xent_head
data=$here/data
rm -rf "$work" && mkdir -p "$work" && cd "$work"
. "$here/lib.sh"
c=$data/lce_f64_mean

check "loss vs PyTorch" 0 "$nabla" xent --input ${c}_x.npy --classifier ${c}_w.npy \
    --bias ${c}_b.npy --targets ${c}_targets.npy
out_has "loss (mean) 4.21978384"
out_has "tokens 11 real of 11"
check "gradients" 0 "$nabla" xent --input ${c}_x.npy --classifier ${c}_w.npy --bias ${c}_b.npy \
    --targets ${c}_targets.npy --loss-out loss.npy --grad-out dx.npy \
    --grad-classifier-out dw.npy --grad-bias-out db.npy
for f in loss dx dw db; do [ -s $f.npy ] || fail "$f.npy not written"; done
grep -q "'shape': (11, 5)" dx.npy || fail "dx.npy is not [11, 5]"
grep -q "'shape': (37, 5)" dw.npy || fail "dw.npy is not [37, 5]"
grep -q "'shape': (37,)" db.npy || fail "db.npy is not [37]"
check "soft-cap and options" 0 "$nabla" xent --input ${c}_x.npy --classifier ${c}_w.npy \
    --targets ${c}_targets.npy --softcap 2 --label-smoothing 0.1 --reduction sum --z-loss 0.01
out_has "loss (sum)"
check "no classifier" 2 "$nabla" xent --input ${c}_x.npy --targets ${c}_targets.npy
err_has "--input needs --classifier and --targets"
check "classifier without input" 2 "$nabla" xent --logits ${c}_x.npy --classifier ${c}_w.npy \
    --targets ${c}_targets.npy
err_has "go with --input"
check "grad-bias-out without bias" 2 "$nabla" xent --input ${c}_x.npy --classifier ${c}_w.npy \
    --targets ${c}_targets.npy --grad-bias-out db2.npy
err_has "--grad-bias-out needs --bias"
check "W of the wrong shape" 1 "$nabla" xent --input ${c}_x.npy --classifier ${c}_b.npy \
    --targets ${c}_targets.npy
err_has "linear_cross_entropy: W [37] must be [V,D]"
check "output over an input" 1 "$nabla" xent --input ${c}_x.npy --classifier ${c}_w.npy \
    --targets ${c}_targets.npy --grad-classifier-out ${c}_w.npy
err_has "same file as --classifier"
echo "test_xent_head: ok"
