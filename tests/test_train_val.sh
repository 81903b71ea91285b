#!/bin/sh
# test_train_val.sh NABLA WORK_DIR - `nabla train`'s validation, test and resume rules: a
# validation split carved from the training data of every data set and scored each epoch, the
# test set only at the end, --patience and --save-best on a run whose validation worsens, a
# checkpoint that records every option (--resume needs nothing else; options given again
# override with a notice; --epochs extends a finished run), and the metrics file's records.
set -eu
nabla=$1
work=$2
case $nabla in /*) ;; */*) nabla=$(pwd)/$nabla ;; esac
test_name=test_train_val
. "$(dirname "$0")/lib.sh"
rm -rf "$work"
mkdir -p "$work"
cd "$work"

# ---- every data set gets a validation split; the test set is scored once, at the end
check "spirals: validation each epoch, test at the end" 0 \
    "$nabla" train --data spirals --epochs 2 --hidden 16 --threads 1 --metrics m.jsonl
out_has "2700 train / 300 validation / 900 test"
[ "$(grep -c 'val loss' out)" -eq 2 ] || fail "not 2 epoch lines with a validation loss"
grep 'test ' out | grep -q epoch && [ "$(grep -c '^test ' out)" -eq 1 ] || fail "no single test line"
grep '^epoch' out | grep -q test && fail "an epoch line shows the test set"
[ "$(grep -c '"val_loss": ' m.jsonl)" -eq 2 ] || fail "val_loss not on both epoch lines"
[ "$(grep -c '"test_acc": ' m.jsonl)" -eq 1 ] || fail "test_acc not on the end line only"
check "seq-toy: validation tokens from held-out training sequences" 0 \
    "$nabla" train --data seq-toy --epochs 1 --hidden 16 --threads 1
out_has "validation"
out_has "val loss"
check "--val-frac 0: no validation" 0 "$nabla" train --data spirals --epochs 1 --hidden 8 --val-frac 0
out_has "3000 train / 0 validation / 900 test"
grep -q "val loss" out && fail "validation printed with --val-frac 0"
check "--patience without validation" 2 \
    "$nabla" train --data spirals --epochs 1 --hidden 8 --val-frac 0 --patience 2
err_has "validation"
check "--save-best without --save" 2 "$nabla" train --data spirals --epochs 1 --save-best
err_has "--save-best needs --save"
check "--val-frac 1.5" 2 "$nabla" train --data spirals --val-frac 1.5
err_has "--val-frac"
check "--data mnist without --data-dir (the default folder is Fashion-MNIST's)" 2 \
    "$nabla" train --data mnist --epochs 1
err_has "--data mnist needs --data-dir DIR"
check "--data mnist with an empty --data-dir names where it looked" 1 \
    "$nabla" train --data mnist --data-dir . --epochs 1
err_has "./train-images-idx3-ubyte"
check "a mistyped option gets a suggestion" 2 "$nabla" train --epoch 3
err_has "did you mean --epochs?"

# ---- patience and the best model on data whose validation worsens: random labels
awk 'BEGIN { srand(11); print "a,b,c,d,label";
             for (i = 0; i < 240; i++) printf "%.4f,%.4f,%.4f,%.4f,%d\n", rand(), rand(), rand(), rand(), int(rand() * 3) }' >noise.csv
nopts="--data noise.csv --hidden 64 --epochs 60 --lr 0.02 --warmup 0 --schedule constant --threads 1 --val-frac 0.25 --patience 3"
check "early stop on a worsening validation loss" 0 \
    "$nabla" train $nopts --save n.st --save-best --metrics n.jsonl
out_has "early stop"
end=$(tail -n 1 n.jsonl)
echo "$end" | grep -q '"early_stopped": true' || fail "the end record says no early stop: $end"
done_=$(json_num n.jsonl '$' epochs_done)
best=$(json_num n.jsonl '$' best_epoch)
[ "$done_" -lt 60 ] || fail "ran all 60 epochs"
[ $((done_ - best)) -eq 3 ] || fail "stopped at epoch $done_, best $best: not 3 epochs of patience"
# the best epoch is the one of the lowest validation loss
low=$(grep '^{"epoch"' n.jsonl | sed 's/.*"epoch": \([0-9]*\),.*"val_loss": \([0-9.]*\),.*/\2 \1/' | sort -g | head -n 1 | cut -d' ' -f2)
[ "$low" = "$best" ] || fail "best_epoch $best, but the lowest validation loss is at epoch $low"
[ -s n.best.st ] || fail "no n.best.st"
# the best model is the one of best_epoch, and its test figures are those the end record gives
check "eval the best model" 0 "$nabla" eval --model n.best.st
out_has "(epoch $best)"
acc=$(sed -n 's/.*  accuracy \([0-9.]*\)$/\1/p' out)
bacc=$(json_num n.jsonl '$' best_test_acc)
awk -v a="$acc" -v b="$bacc" 'BEGIN { exit !(a - b < 1e-4 && b - a < 1e-4) }' ||
    fail "eval of the best model: accuracy $acc, the run reported $bacc"

# ---- resume: the checkpoint records the options; stopping early and extending reproduce the run
copts="--data spirals --hidden 16 --schedule constant --warmup 0 --threads 1 --seed 3"
"$nabla" train $copts --epochs 4 --save ref.st --quiet || fail "reference run failed"
"$nabla" train $copts --epochs 2 --save run.st --quiet || fail "short run failed"
check "--resume CKPT --epochs 4 extends a finished run" 0 "$nabla" train --resume run.st --epochs 4
err_has "--epochs 4 overrides the checkpoint's 2"
out_has "epoch   3"
out_has "saved run.st"
check "the extended run equals the uninterrupted one, bit for bit" 0 \
    "$nabla" diff ref.st run.st --tol 0
check "--resume CKPT alone: a finished run stays finished" 0 "$nabla" train --resume run.st
grep -q "^epoch" out && fail "a finished run trained again"
out_has "test  loss"
check "--resume with another seed" 1 "$nabla" train --resume run.st --seed 4
err_has "--seed 4 differs from the checkpoint's 3"
check "--resume with another learning rate: a notice" 0 \
    "$nabla" train --resume run.st --lr 0.001 --epochs 5 --save lr.st
err_has "--lr 0.001 overrides the checkpoint's default"
# patience resumed exactly: stop the noisy run early, extend it, and get the same end
"$nabla" train $nopts --epochs 3 --save p.st --save-best --quiet || fail "short noisy run failed"
check "--resume of a patience run" 0 "$nabla" train --resume p.st --epochs 60 --metrics p.jsonl
[ "$(json_num p.jsonl '$' epochs_done)" = "$done_" ] || fail "the resumed run stopped at $(json_num p.jsonl '$' epochs_done), the uninterrupted one at $done_"
[ "$(json_num p.jsonl '$' best_epoch)" = "$best" ] || fail "the resumed run's best epoch is $(json_num p.jsonl '$' best_epoch), the uninterrupted one's $best"
check "the resumed patience run equals the uninterrupted one" 0 "$nabla" diff n.st p.st --tol 0
check "and so do their best models" 0 "$nabla" diff n.best.st p.best.st --tol 0
# ---- --standardize: the training rows' statistics, in the checkpoint, applied by eval
awk 'BEGIN { srand(5); print "x1,x2,label";
             for (i = 0; i < 300; i++) { c = i % 3; printf "%.3f,%.3f,%d\n", 1000 + 50 * c + 20 * rand(), 0.001 * rand(), c } }' >scaled.csv
check "train --standardize" 0 "$nabla" train --data scaled.csv --standardize --hidden 16 \
    --epochs 60 --lr 0.02 --batch 32 --warmup 0 --threads 1 --save s.st --metrics s.jsonl
tacc=$(json_num s.jsonl '$' test_acc)
check "eval of the standardised model on the raw rows it held out" 0 "$nabla" eval --model s.st
acc=$(sed -n 's/.*  accuracy \([0-9.]*\)$/\1/p' out)
awk -v a="$acc" -v b="$tacc" 'BEGIN { exit !(a - b < 1e-4 && b - a < 1e-4 && a >= 0.9) }' ||
    fail "eval accuracy $acc, the run's test accuracy $tacc (expected equal and >= 0.9)"
cp s.st s2.st
check "--standardize is kept on resume" 0 "$nabla" train --resume s2.st --epochs 61
check "another --header on resume: the data is fixed" 1 "$nabla" train --resume s.st --epochs 61 --header no
check "--standardize on seq-toy" 2 "$nabla" train --data seq-toy --standardize
err_has "one-hot"
# ---- class names: built in for Fashion-MNIST/MNIST, from --class-names FILE otherwise
printf 'arm one\narm two\narm three\n' >names.txt
check "--class-names FILE" 0 "$nabla" train --data spirals --epochs 1 --hidden 8 \
    --class-names names.txt --save cn.st
out_has "classes: 0 arm one, 1 arm two, 2 arm three"
check "eval shows the recorded names" 0 "$nabla" eval --model cn.st
out_has "class  2 arm three"
printf 'a\nb\n' >names2.txt
check "--class-names with too few names" 1 "$nabla" train --data spirals --epochs 1 --class-names names2.txt
err_has "2 names for 3 classes"

# ---- the progress bar fits the terminal: no redraw is as wide as the terminal (80, 60, 40)
if command -v script >/dev/null 2>&1; then
    for cols in 80 60 40; do
        current="progress bar at $cols columns"
        echo "check: $current"
        timeout 60 script -qc "stty cols $cols; '$nabla' train --data spirals --epochs 1 --hidden 8 --batch 8" /dev/null >tty.txt 2>&1 ||
            fail "train in a pseudo-terminal failed"
        grep -q "batch/s" tty.txt || fail "no progress bar drawn"
        wide=$(tr '\r' '\n' <tty.txt | sed 's/\x1b\[K//g' | grep "batch/s" | awk -v c="$cols" 'length($0) >= c' | head -n 1)
        [ -z "$wide" ] || fail "a progress line is $cols columns or wider: $wide"
    done
fi
# ---- what an adversarial review found
check "export onto its own model is refused" 1 "$nabla" export --model s.st --format torch --out s.st
err_has "is the same file as --model"
"$nabla" eval --model s.st >/dev/null 2>&1 || fail "export destroyed s.st"
cp scaled.csv changed.csv
"$nabla" train --data changed.csv --epochs 2 --hidden 8 --save ch.st --quiet || fail "changed.csv run"
sed -i '5s/,[0-9]$/,2/' changed.csv
check "--resume after the data file changed is refused" 1 "$nabla" train --resume ch.st --epochs 3
err_has "changed.csv has changed since the checkpoint was written"
# an early-stopped run stays stopped when resumed with nothing else (n.st stopped early above)
cp n.st n2.st
check "--resume of an early-stopped run trains nothing" 0 "$nabla" train --resume n2.st --epochs 60
grep -q "^epoch" out && fail "an early-stopped run trained again"
out_has "early stop"
# names from the checkpoint, not the file again
rm names.txt
cp cn.st cn2.st
check "--resume of a --class-names run without its file" 0 "$nabla" train --resume cn2.st --epochs 2
out_has "classes: 0 arm one"
# metrics: recorded with the run, continued only in the run's own file
"$nabla" train --data spirals --epochs 2 --hidden 8 --save mA.st --metrics mA.jsonl --quiet || fail "run A"
"$nabla" train --data spirals --epochs 2 --hidden 8 --seed 9 --save mB.st --metrics mB.jsonl --quiet || fail "run B"
check "--resume CKPT alone continues the recorded metrics file" 0 "$nabla" train --resume mA.st --epochs 3
[ "$(grep -c '^{"epoch": ' mA.jsonl)" -eq 3 ] || fail "mA.jsonl does not hold epochs 1-3"
[ "$(grep -c '^{"config": ' mA.jsonl)" -eq 1 ] && [ "$(grep -c '^{"end": ' mA.jsonl)" -eq 1 ] ||
    fail "mA.jsonl: not one configuration and one end line"
cp mB.jsonl mB_before.jsonl
check "--resume with another run's metrics file is refused" 1 \
    "$nabla" train --resume mA.st --epochs 4 --metrics mB.jsonl
err_has "holds another run's metrics"
cmp -s mB.jsonl mB_before.jsonl || fail "the other run's metrics file was changed"
# a data file is recorded by its absolute path: resume and eval from another directory
mkdir -p elsewhere/sub
cp scaled.csv elsewhere/sub/s.csv
(cd elsewhere/sub && "$nabla" train --data s.csv --epochs 2 --hidden 8 --save m.st --quiet) ||
    fail "run in elsewhere/sub"
check "--resume from another directory" 0 "$nabla" train --resume elsewhere/sub/m.st --epochs 3
out_has "epoch   3"
check "--data in another spelling on resume is the same data" 0 \
    "$nabla" train --resume elsewhere/sub/m.st --epochs 4 --data ./elsewhere/sub/s.csv
check "eval from another directory" 0 "$nabla" eval --model elsewhere/sub/m.st
out_has "elsewhere/sub/s.csv (the run's split"
echo "test_train_val: all checks passed"
