#!/bin/sh
# test_eval_cli.sh NABLA WORK_DIR - `nabla eval` and `nabla predict` score the right rows with the
# right numbers:
#  - a model with more outputs than the data has classes is scored right (the logits' row stride
#    is the model's output count), cross-checked against the confusion matrix of the full data;
#  - `eval --model M` of a CSV run scores exactly the run's held-out rows: the same count, loss
#    and accuracy as training's last epoch; `--data FILE` scores every row of FILE; a file that
#    changed since is refused, naming it; a built-in set uses the run's seed;
#  - non-finite inputs are refused by predict and eval, naming the file, row and column.
# Data is made here with awk and printf (no Python). Stops at the first failed check.
set -eu
nabla=$1
work=$2
case $nabla in /*) ;; */*) nabla=$(pwd)/$nabla ;; esac
test_name=test_eval_cli
. "$(dirname "$0")/lib.sh" # check, fail, err_has, out_has, mknpy
rm -rf "$work"
mkdir -p "$work"
cd "$work"

# the numbers of eval's summary lines
samples() { sed -n 's/.*: \([0-9]*\) samples$/\1/p' out; }
acc() { sed -n 's/.*  accuracy \([0-9.]*\)$/\1/p' out; }
loss() { sed -n 's/^loss \([0-9.]*\)  accuracy.*/\1/p' out; }
# a metrics key of the last epoch, rounded to eval's 4 decimals
last_metric() { tail -n 1 "$1" | sed -n "s/.*\"$2\": \([0-9.]*\).*/\1/p" | awk '{ printf "%.4f", $1 }'; }

# ---------------------------------------------------------------- more outputs than classes
# 5 well-separated classes on a line (class c around x = 3c), 300 rows: the model learns them
# all. sub.csv keeps the rows of classes 0..2, so it has 3 classes for a model with 5 outputs.
awk 'BEGIN { for (i = 0; i < 300; i++) { c = i % 5; o = ((i * 37) % 100) / 100 - 0.5;
    printf "%.3f,%.3f,%d\n", 3 * c + o, ((i * 11) % 100) / 100, c } }' >five.csv
awk -F, '$3 <= 2' five.csv >sub.csv
check "train a 5-class model" 0 "$nabla" train --data five.csv --epochs 40 --batch 32 --lr 0.01 \
    --hidden 32 --label-smoothing 0 --warmup 0 --save K5.st --quiet
check "eval: every row of the 5-class file" 0 "$nabla" eval --model K5.st --data five.csv
[ "$(samples)" = 300 ] || fail "scored $(samples) rows, expected all 300"
awk -v a="$(acc)" 'BEGIN { exit !(a >= 0.95) }' || fail "accuracy $(acc) on separable data"
# hits of classes 0..2 from the confusion matrix (rows: true class, then predicted 0..4)
hits=$(awk '/^confusion/ { m = 1; next } m && NF == 6 && $1 <= 2 { h += $($1 + 2) } END { print h }' out)
n3=$(wc -l <sub.csv | tr -d ' ')
expect_acc=$(awk -v h="$hits" -v n="$n3" 'BEGIN { printf "%.4f", h / n }')
check "eval: a 3-class file on the 5-output model" 0 "$nabla" eval --model K5.st --data sub.csv
[ "$(samples)" = "$n3" ] || fail "scored $(samples) rows, expected all $n3 of sub.csv"
[ "$(acc)" = "$expect_acc" ] || fail "accuracy $(acc), expected $expect_acc ($hits of $n3, from the full file's confusion matrix)"
out_has "  class  4: 0.0000 (0)"

# ---------------------------------------------------------------- the run's own held-out rows
# Random labels: a network memorises its training rows but not the held-out ones, so scoring
# training rows as held-out would show (held-out accuracy ~1/3, training rows much higher).
awk 'BEGIN { srand(5); for (i = 0; i < 200; i++)
    printf "%.4f,%.4f,%.4f,%.4f,%d\n", rand(), rand(), rand(), rand(), int(rand() * 3) }' >noisy.csv
check "train on noisy.csv, a quarter held out" 0 "$nabla" train --data noisy.csv --test-frac 0.25 \
    --seed 7 --epochs 60 --batch 32 --hidden 128,128 --lr 0.01 --warmup 0 --label-smoothing 0 \
    --save N.st --metrics N.jsonl --quiet
check "eval --model: the run's held-out rows" 0 "$nabla" eval --model N.st
[ "$(samples)" = 50 ] || fail "scored $(samples) rows; the run held out 50 (200 x 0.25)"
[ "$(acc)" = "$(last_metric N.jsonl test_acc)" ] ||
    fail "held-out accuracy $(acc); training's last epoch reported $(last_metric N.jsonl test_acc)"
[ "$(loss)" = "$(last_metric N.jsonl test_loss)" ] ||
    fail "held-out loss $(loss); training's last epoch reported $(last_metric N.jsonl test_loss)"
out_has "/noisy.csv (the run's split"  # recorded by its absolute path
out_has "seed 7"
heldout=$(acc)
check "eval --model --split train: the run's training rows" 0 "$nabla" eval --model N.st --split train
[ "$(samples)" = 150 ] || fail "scored $(samples) training rows, expected 150"
awk -v a="$(acc)" -v h="$heldout" 'BEGIN { exit !(a > h + 0.2) }' ||
    fail "training rows $(acc) vs held-out $heldout: the data does not tell them apart"
check "eval --data FILE: every row" 0 "$nabla" eval --model N.st --data noisy.csv
[ "$(samples)" = 200 ] || fail "scored $(samples) rows of noisy.csv, expected 200"
out_has "every row of noisy.csv"
check "eval --data FILE --split test: still every row, with a note" 0 \
    "$nabla" eval --model N.st --data noisy.csv --split test
[ "$(samples)" = 200 ] || fail "scored $(samples) rows of noisy.csv, expected 200"
err_has "--split does not apply"

# the file changed since the run: its held-out rows cannot be rebuilt
cp noisy.csv noisy.orig
sed '17s/^0\./1./' noisy.orig >noisy.csv
check "eval --model after the data file changed" 1 "$nabla" eval --model N.st
err_has "noisy.csv has changed since N.st was trained"
err_has "200 rows"
err_has "--data FILE"
head -n 199 noisy.orig >noisy.csv
check "eval --model after a row was removed" 1 "$nabla" eval --model N.st
err_has "now 199 rows"
mv noisy.orig noisy.csv

# a checkpoint whose recorded split is damaged is refused, naming the field
LC_ALL=C sed 's/"data_test_frac":"0.25"/"data_test_frac":"2.50"/' N.st >bad.st
check "eval --model with a damaged data_test_frac" 1 "$nabla" eval --model bad.st
err_has "bad.st"
err_has "'data_test_frac' is '2.50'"
err_has "(0, 1)"

# a built-in set: the run's seed, so the test set is the one training reported on
check "train on spirals with seed 3" 0 "$nabla" train --data spirals --seed 3 --epochs 2 \
    --hidden 16 --save S.st --metrics S.jsonl --quiet
check "eval --model of the spirals run" 0 "$nabla" eval --model S.st
[ "$(acc)" = "$(last_metric S.jsonl test_acc)" ] ||
    fail "accuracy $(acc); training's last epoch reported $(last_metric S.jsonl test_acc)"
[ "$(loss)" = "$(last_metric S.jsonl test_loss)" ] ||
    fail "loss $(loss); training's last epoch reported $(last_metric S.jsonl test_loss)"

# ---------------------------------------------------------------- non-finite inputs
# f32 [3, 2]: (1, 2) (NaN, -1) (0, 0)
mknpy xnan.npy '<f4' '(3, 2)' '\000\000\200\077\000\000\000\100\000\000\300\177\000\000\200\277\000\000\000\000\000\000\000\000'
check "predict: a NaN input" 1 "$nabla" predict --model S.st --input xnan.npy --out p.npy
err_has "xnan.npy"
err_has "row 1, column 0"
err_has "nan"
[ ! -e p.npy ] || fail "p.npy was written"
# f64 [2, 2]: (1, inf) (0, 0)
mknpy xinf.npy '<f8' '(2, 2)' '\000\000\000\000\000\000\360\077\000\000\000\000\000\000\360\177\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000'
check "predict: an inf input" 1 "$nabla" predict --model S.st --input xinf.npy --out p.npy
err_has "xinf.npy"
err_has "row 0, column 1"
err_has "inf"
# f64 [1, 2]: (0, 1e300), finite but not in f32
mknpy xbig.npy '<f8' '(1, 2)' '\000\000\000\000\000\000\000\000\234\165\000\210\074\344\067\176'
check "predict: an input beyond f32" 1 "$nabla" predict --model S.st --input xbig.npy --out p.npy
err_has "xbig.npy"
err_has "row 0, column 1"
err_has "overflows f32"
[ ! -e p.npy ] || fail "p.npy was written"
mknpy y3.npy '<i4' '(3,)' '\000\000\000\000\001\000\000\000\002\000\000\000'
check "eval: a NaN feature in X.npy" 1 "$nabla" eval --model S.st --data xnan.npy,y3.npy
err_has "xnan.npy"
err_has "row 1, column 0"
printf '0.5,1.5,0\nnan,2.0,1\n' >nan.csv
check "eval: a NaN feature in a CSV" 1 "$nabla" eval --model S.st --data nan.csv
err_has "nan.csv"
err_has "line 2, column 1"
echo "test_eval_cli: all checks passed"
