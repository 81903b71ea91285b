#!/bin/sh
# test_csv_cli.sh NABLA WORK_DIR - CSV files as users have them, through `nabla train` and
# `nabla eval`:
#   - scikit-learn's wine_data.csv form (first line "178,13,class_0,class_1,class_2": row and
#     feature counts, then class names; label last): written here with 178 rows of 13 features on
#     very different scales, it trains with --standardize (the count line read, not refused) and
#     eval rebuilds the held-out rows with the same accuracy, naming the classes class_0..2;
#   - a count line that does not match the data is refused naming line 1 and --skip-rows 1;
#   - --skip-rows on eval: a file with two comment lines first scores as the plain one;
#   - --label-col on eval by index and by header name: the same rows with the label in column 0
#     score as the label-last file; a bad name is refused naming the header.
# POSIX sh and awk.
set -eu
nabla=$1
work=$2
test_name=test_csv_cli
case $nabla in /*) ;; */*) nabla=$(pwd)/$nabla ;; esac
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
rm -rf "$work"
mkdir -p "$work"
cd "$work"

# 178 rows (59, 71, 48 per class as the real set), 13 features: class-dependent means on scales
# from 0.1 to 1000, plus noise
awk 'BEGIN { srand(7); print "178,13,class_0,class_1,class_2"
    for (i = 0; i < 178; i++) { c = i < 59 ? 0 : i < 130 ? 1 : 2; line = ""
        for (j = 0; j < 13; j++) { s = 10 ^ (j % 5 - 1)
            v = s * (1 + 0.6 * ((c + j) % 3) + 2.5 * rand()); line = line sprintf("%.4f,", v) }
        print line c } }' >wine.csv

check "train on the wine form" 0 "$nabla" train --data wine.csv --standardize --epochs 40 \
    --hidden 16 --threads 1 --warmup 10 --batch 16 --save w.safetensors
tacc=$(awk '/^test / { for (i = 1; i <= NF; i++) if ($i == "acc") print $(i + 1) }' out | tail -1)
[ -n "$tacc" ] || fail "train printed no test accuracy"
awk -v a="$tacc" 'BEGIN { exit !(a >= 0.7) }' || fail "test accuracy $tacc below 0.7"
check "eval rebuilds the wine held-out rows" 0 "$nabla" eval --model w.safetensors
eacc=$(awk '/^loss .* accuracy/ { print $4 }' out)
[ "$eacc" = "$tacc" ] || fail "eval accuracy $eacc, train's test accuracy $tacc"
# the count line's class names, recorded in the checkpoint and shown by eval
out_has "class_0"
out_has "class_2"

sed '1s/^178,/177,/' wine.csv >bad.csv
check "a count line that does not match" 1 "$nabla" train --data bad.csv --epochs 1
err_has "line 1 reads as a count line (177 rows, 13 features, then class names) but 178 rows of 13 features follow; if line 1 is not data, skip it (--skip-rows 1"

# the plain rows, with a header; the same with two comment lines before; label first
sed '1s/.*/f1,f2,f3,f4,f5,f6,f7,f8,f9,f10,f11,f12,f13,kind/' wine.csv >plain.csv
{ echo "# exported by hand"; echo "# 178 wines"; cat plain.csv; } >comments.csv
awk -F, -v OFS=, '{ l = $14; $14 = ""; sub(/,$/, ""); print l, $0 }' plain.csv >first.csv
check "eval the plain file" 0 "$nabla" eval --model w.safetensors --data plain.csv
pacc=$(awk '/^loss .* accuracy/ { print $4 }' out)
check "eval --skip-rows 2" 0 "$nabla" eval --model w.safetensors --data comments.csv --skip-rows 2
[ "$(awk '/^loss .* accuracy/ { print $4 }' out)" = "$pacc" ] || fail "not the plain file's $pacc"
check "comments without --skip-rows" 1 "$nabla" eval --model w.safetensors --data comments.csv
check "eval --label-col 0" 0 "$nabla" eval --model w.safetensors --data first.csv --label-col 0
[ "$(awk '/^loss .* accuracy/ { print $4 }' out)" = "$pacc" ] || fail "not the plain file's $pacc"
check "eval --label-col kind" 0 "$nabla" eval --model w.safetensors --data first.csv \
    --label-col kind
[ "$(awk '/^loss .* accuracy/ { print $4 }' out)" = "$pacc" ] || fail "not the plain file's $pacc"
check "eval --label-col with a name not in the header" 1 "$nabla" eval --model w.safetensors \
    --data first.csv --label-col Kind
err_has "no column is named 'Kind' (the header: 'kind,f1,f2,"
check "eval --skip-rows x" 2 "$nabla" eval --model w.safetensors --skip-rows x
err_has "--skip-rows 'x': expected a line count"
echo "test_csv_cli: all checks passed (wine test accuracy $tacc, eval $eacc, whole file $pacc)"
