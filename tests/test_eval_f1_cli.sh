#!/bin/sh
# test_eval_f1_cli.sh NABLA WORK_DIR - `nabla eval`'s per-class precision, recall and F1 and its
# macro F1, checked against figures computed here without nabla's evaluation: `nabla predict`
# writes the logits of every row, od reads them as f32, and awk takes each row's argmax, builds
# the confusion matrix against the CSV's labels and works out precision = tp / predicted,
# recall = tp / support, F1 = 2 P R / (P + R) and their mean over the classes present.
# Also: eval's confusion matrix equals awk's, and predict --probs rows are the softmax of the
# logits. POSIX sh, awk and od; no Python.
set -eu
nabla=$1
work=$2
case $nabla in /*) ;; */*) nabla=$(pwd)/$nabla ;; esac
CHECK_TIMEOUT=${CHECK_TIMEOUT:-120}
test_name=test_eval_f1_cli
. "$(dirname "$0")/lib.sh" # check, fail, mknpy
rm -rf "$work"
mkdir -p "$work"
cd "$work"

# npy_f32 FILE: the f32 values of a version 1.0 .npy, one a line
npy_f32() {
    hl=$(od -A n -t u1 -j 8 -N 2 "$1" | awk '{ print $1 + 256 * $2 }')
    od -A n -v -t f4 -j $((10 + hl)) "$1" | tr -s ' \t' '\n\n' | sed '/^$/d'
}

# 3 overlapping classes on integer features (so the same rows can go to predict as uint8): the
# model gets some wrong, so precision, recall and F1 differ per class.
awk 'BEGIN { for (i = 0; i < 150; i++) { c = i % 3;
    printf "%d,%d,%d\n", (50 * c + (i * 37) % 90) % 256, (i * 11) % 100, c } }' >f.csv
esc=$(awk -F, '{ printf "\\%03o\\%03o", $1, $2 }' f.csv)
mknpy X.npy '|u1' '(150, 2)' "$esc"

check "train on f.csv" 0 "$nabla" train --data f.csv --epochs 20 --batch 16 --lr 0.01 --hidden 16 \
    --warmup 0 --label-smoothing 0 --save M.st --quiet
check "eval: every row of f.csv" 0 "$nabla" eval --model M.st --data f.csv
cp out eval.txt
check "predict: logits of every row" 0 "$nabla" predict --model M.st --input X.npy --out L.npy
check "predict --probs" 0 "$nabla" predict --model M.st --input X.npy --out P.npy --probs
npy_f32 L.npy >logits.txt
npy_f32 P.npy >probs.txt
[ "$(wc -l <logits.txt | tr -d ' ')" = 450 ] || fail "L.npy holds $(wc -l <logits.txt) values, expected 150 x 3"

# awk's figures: argmax (first maximum), confusion, P, R, F1, macro F1
awk -F, -v K=3 '
    NR == FNR { z[int((FNR - 1) / K), (FNR - 1) % K] = $1 + 0; next }
    { r = FNR - 1; best = 0
      for (k = 1; k < K; k++) if (z[r, k] > z[r, best]) best = k
      c[$3, best]++; sup[$3]++; pred[best]++ }
    END {
      for (i = 0; i < K; i++) {
          line = ""
          for (j = 0; j < K; j++) line = line sprintf("%6d", c[i, j] + 0)
          printf "conf %6d%s\n", i, line
      }
      present = 0; macro = 0
      for (k = 0; k < K; k++) {
          tp = c[k, k] + 0
          p = pred[k] ? tp / pred[k] : 0; r = sup[k] ? tp / sup[k] : 0
          f = p + r > 0 ? 2 * p * r / (p + r) : 0
          printf "  class %2d: precision %.4f  recall %.4f  F1 %.4f\n", k, p, r, f
          if (sup[k]) { present++; macro += f }
      }
      printf "macro F1 %.4f (mean over the %d classes present)\n", macro / present, present
    }' logits.txt f.csv >want.txt

current="eval's precision, recall and F1 lines equal awk's"
grep '^  class .*precision' eval.txt >got_f1.txt || fail "eval printed no precision lines"
grep '^  class .*precision' want.txt >want_f1.txt
cmp -s got_f1.txt want_f1.txt || {
    cat want_f1.txt got_f1.txt >&2
    fail "per-class lines differ (above: awk's, then eval's)"
}
grep -qxF "$(grep '^macro F1' want.txt)" eval.txt ||
    fail "eval's '$(grep '^macro F1' eval.txt)' is not awk's '$(grep '^macro F1' want.txt)'"
current="eval's confusion matrix equals awk's"
awk '/^confusion/ { m = 1; getline; next } m { print "conf " $0 }' eval.txt >got_conf.txt
grep '^conf ' want.txt >want_conf.txt
cmp -s got_conf.txt want_conf.txt || {
    cat want_conf.txt got_conf.txt >&2
    fail "confusion matrices differ"
}
# the case is not trivial: some rows are wrong, so F1 is neither 0 nor 1 for every class
awk '/F1/ && $NF + 0 > 0 && $NF + 0 < 1 { n++ } END { exit !(n >= 2) }' got_f1.txt ||
    fail "degenerate case: F1 is 0 or 1 for most classes"

current="predict --probs rows are the softmax of the logits"
paste logits.txt probs.txt | awk -v K=3 '
    { z[(NR - 1) % K] = $1; p[(NR - 1) % K] = $2
      if (NR % K) next
      m = z[0]; for (k = 1; k < K; k++) if (z[k] > m) m = z[k]
      s = 0; for (k = 0; k < K; k++) s += exp(z[k] - m)
      for (k = 0; k < K; k++) { d = p[k] - exp(z[k] - m) / s; if (d < 0) d = -d
          if (d > 1e-6) { printf "row %d class %d: %g vs %g\n", NR / K - 1, k, p[k], exp(z[k] - m) / s; bad = 1 } } }
    END { exit bad }' >err || fail "probabilities are not softmax(logits)"

echo "test_eval_f1_cli: all checks passed"
