#!/bin/sh
# test_train_fused.sh NABLA WORK - `nabla train --fused-head` (the last layer and the loss as one
# nb_linear_cross_entropy): on spirals and seq-toy it reaches the plain head's test accuracy
# (within 0.02: both heads make the same steps up to f32 rounding, which can only flip a few
# borderline rows of 900); the option is recorded in the checkpoint and told in the header; a
# --fused-head run resumed (the option read back from the checkpoint) ends bitwise equal to the
# uninterrupted one; a plain run resumed with --fused-head is told the change and runs.
set -eu
nabla=$1
work=$2
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
mkdir -p "$work"
cd "$work"
test_name=test_train_fused
. "$here/lib.sh"

last_acc() { tail -n 1 "$1" | sed -n 's/.*"test_acc": \([0-9.]*\).*/\1/p'; }
# same_acc A B: both learned (> MIN) and |A - B| <= 0.02
same_acc() {
    awk -v a="$1" -v b="$2" -v lo="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > lo && b > lo && d <= 0.02) }' ||
        fail "test accuracy plain $1, fused $2: not both above $3 within 0.02"
}

# ---- spirals: the same accuracy, the option recorded
opts="--data spirals --epochs 30 --batch 32 --hidden 64,64 --seed 5 --threads 1"
check "spirals, plain head" 0 "$nabla" train $opts --metrics plain.jsonl --save plain.st
check "spirals, fused head" 0 "$nabla" train $opts --fused-head --metrics fused.jsonl --save fused.st
out_has "smoothing 0.1, fused head, 1 thread"
p=$(last_acc plain.jsonl)
f=$(last_acc fused.jsonl)
echo "spirals test accuracy: plain $p, fused $f"
same_acc "$p" "$f" 0.9
head -n 1 fused.jsonl | grep -qF '"fused-head": "yes"' || fail "metrics config lacks fused-head yes"
head -n 1 plain.jsonl | grep -qF '"fused-head": "no"' || fail "metrics config lacks fused-head no"
grep -aqF '"train.fused-head":"yes"' fused.st || fail "checkpoint lacks train.fused-head yes"
# the checkpoint is an ordinary one: eval reads it
check "eval of the fused run" 0 "$nabla" eval --model fused.st --data spirals
out_has "accuracy"

# ---- seq-toy (sequences, padding): the same accuracy
check "seq-toy, plain head" 0 "$nabla" train --data seq-toy --epochs 3 --threads 1 --quiet --metrics sp.jsonl
check "seq-toy, fused head" 0 "$nabla" train --data seq-toy --epochs 3 --threads 1 --quiet --fused-head --metrics sf.jsonl
p=$(last_acc sp.jsonl)
f=$(last_acc sf.jsonl)
echo "seq-toy test accuracy: plain $p, fused $f"
same_acc "$p" "$f" 0.5

# ---- resume: a constant schedule, so that 10 + 10 epochs are the 20 of one run
ropts="--data spirals --batch 32 --hidden 32 --seed 3 --threads 1 --schedule constant --quiet"
check "fused, 20 epochs" 0 "$nabla" train $ropts --epochs 20 --fused-head --save ref.st
check "fused, 10 epochs" 0 "$nabla" train $ropts --epochs 10 --fused-head --save run.st
check "resumed to 20 without retyping --fused-head" 0 "$nabla" train --resume run.st --epochs 20
out_has "fused head, 1 thread, resumed"
check "resumed fused run equals the uninterrupted one" 0 "$nabla" diff ref.st run.st --tol 0
# a plain run resumed with the fused head: told, then trained on
check "plain, 10 epochs" 0 "$nabla" train $ropts --epochs 10 --save p10.st
check "plain run resumed with --fused-head" 0 "$nabla" train --resume p10.st --epochs 20 --fused-head
err_has "--fused-head yes overrides the checkpoint's no"
grep -aqF '"train.fused-head":"yes"' p10.st || fail "the resumed checkpoint lacks train.fused-head yes"
# measured 3.5e-6 (weights and optimiser state); 1e-4 leaves room for other BLAS kernels
check "its weights are close to the fused run's" 0 "$nabla" diff ref.st p10.st --tol 1e-4
# ---- `nabla bench train` times the fused head's step beside the plain one
check "bench train" 0 "$nabla" bench train --hidden 32,16 --batch 16 --steps 3 --threads 1 --json
out_has '"ms_per_step_fused_head": '
echo "$test_name: ok"
