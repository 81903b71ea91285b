#!/bin/sh
# test_csv_example.sh EXAMPLE NABLA WORK_DIR - examples/csv_classifier.c as a user runs it, on a
# CSV written here: a header line, 300 rows, 3 classes, integer features on very different
# scales (size ~ 180..250, shape ~ 0..6, and a noise column), the label last. Unstandardised, an
# MLP trained the same way stays near 2/3 accuracy on it (`nabla train` without standardisation
# measured 0.67); standardised, the classes separate.
#   - the example exits 0, prints a test accuracy >= 0.9 on its 30 held-out rows and one
#     precision / recall / F1 line per class, and writes the best checkpoint;
#   - that checkpoint holds input.mean and input.std, and `nabla eval --model` scores the raw
#     CSV with them (accuracy >= 0.9: fed raw, the model would see values it never saw);
#   - `nabla predict` on the same raw rows (as a uint8 .npy) applies them too: its argmax agrees
#     with eval's accuracy to the row;
#   - the label column can be given (the same data with the label first, column 0);
#   - usage and a missing file fail with a message.
# POSIX sh, awk and od.
set -eu
ex=$1
nabla=$2
work=$3
here=$(cd "$(dirname "$0")" && pwd)
case $ex in /*) ;; */*) ex=$(pwd)/$ex ;; esac
case $nabla in /*) ;; */*) nabla=$(pwd)/$nabla ;; esac
rm -rf "$work"
mkdir -p "$work"
cd "$work"

test_name=test_csv_example
CHECK_TIMEOUT=120
. "$here/lib.sh"
# at_least VALUE BAR WHAT
at_least() {
    awk -v v="$1" -v b="$2" 'BEGIN { exit !(v + 0 >= b + 0) }' || fail "$3 is $1, below $2"
}

awk 'BEGIN { print "size,noise,shape,label"
    for (i = 0; i < 300; i++) { c = i % 3
        printf "%d,%d,%d,%d\n", 180 + 20 * c + (i * 37) % 25, (i * 13) % 7, 2 * c + (i * 7) % 3, c } }' >d.csv
# the same rows with the label first
awk -F, '{ print $4 "," $1 "," $2 "," $3 }' d.csv >first.csv

check "usage" 2 "$ex"
grep -q "usage:" err || fail "no usage line"
check "a missing file" 1 "$ex" missing.csv
grep -q "missing.csv" err || fail "the message does not name the file"

check "the example on d.csv" 0 "$ex" d.csv -1 best.safetensors
cp out example.txt
acc=$(awk '/^test accuracy/ { print $3 }' example.txt)
[ -n "$acc" ] || fail "no 'test accuracy' line"
at_least "$acc" 0.9 "test accuracy"
grep -q "^test accuracy .* on 30 rows" example.txt || fail "the test split is not 30 rows"
for k in 0 1 2; do
    grep -q "^class $k: precision [0-9.]*  recall [0-9.]*  F1 [0-9.]*$" example.txt ||
        fail "no F1 line for class $k"
done
[ "$(grep -c '^class ' example.txt)" -eq 3 ] || fail "expected 3 class lines"
[ -s best.safetensors ] || fail "no best checkpoint"
# the checkpoint's header names the statistics (safetensors: 8-byte length, then JSON)
head -c 4096 best.safetensors | grep -q '"input.mean"' || fail "no input.mean in the checkpoint"
head -c 4096 best.safetensors | grep -q '"input.std"' || fail "no input.std in the checkpoint"

check "nabla eval --model on the raw CSV" 0 "$nabla" eval --model best.safetensors --data d.csv
cp out eval.txt
eacc=$(awk '/^loss .* accuracy/ { print $4 }' eval.txt)
[ -n "$eacc" ] || fail "eval printed no accuracy"
at_least "$eacc" 0.9 "eval accuracy on the raw rows"

# predict on the raw rows as uint8 [300, 3]
esc=$(awk -F, 'NR > 1 { printf "\\%03o\\%03o\\%03o", $1, $2, $3 }' d.csv)
mknpy X.npy '|u1' '(300, 3)' "$esc"
check "nabla predict on the raw rows" 0 "$nabla" predict --model best.safetensors --input X.npy \
    --out L.npy
hl=$(od -A n -t u1 -j 8 -N 2 L.npy | awk '{ print $1 + 256 * $2 }')
od -A n -v -t f4 -j $((10 + hl)) L.npy | tr -s ' \t' '\n\n' | sed '/^$/d' >logits.txt
[ "$(wc -l <logits.txt | tr -d ' ')" = 900 ] || fail "L.npy holds $(wc -l <logits.txt) values"
pacc=$(awk -F, -v K=3 'NR == FNR { z[int((FNR - 1) / K), (FNR - 1) % K] = $1 + 0; next }
    FNR > 1 { r = FNR - 2; best = 0
      for (k = 1; k < K; k++) if (z[r, k] > z[r, best]) best = k
      ok += best == $4; n++ }
    END { printf "%.4f", ok / n }' logits.txt d.csv)
current="predict agrees with eval"
[ "$pacc" = "$eacc" ] || fail "predict's argmax accuracy $pacc, eval's $eacc"

check "the label column given (0)" 0 "$ex" first.csv 0 first.safetensors
facc=$(awk '/^test accuracy/ { print $3 }' out)
at_least "$facc" 0.9 "test accuracy with the label first"
[ -s first.safetensors ] || fail "no best checkpoint with the label first"

echo "test_csv_example: all checks passed (test accuracy $acc, label first $facc, eval $eacc, predict $pacc)"
