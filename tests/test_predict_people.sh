#!/bin/sh
# test_predict_people.sh NABLA WORK_DIR - `nabla predict` for people and class names (issue 14):
#  - a tiny Fashion-MNIST-like IDX set made here (no real data needed) trains a model whose
#    checkpoint records the ten Fashion-MNIST names; eval shows them (per-class lines, confusion
#    matrix labels), --data mnist on the same files shows digits, eval --plot writes a PNG;
#  - predict reads a PGM (P5 and P2), a PNG (committed fixtures, tests/data/predict), a directory
#    of them, a single [28, 28] .npy image, IDX, CSV; the same pixels give the same line whatever
#    the format; [0, 1] floats are multiplied by 255 with a note and predict the same; values that
#    could be either, or neither, are refused saying how to convert;
#  - --top 3's line format; --out - (standard output, no file named '-'), .csv, .json, .npy;
#  - corrupt PNG and PGM files, a wrong image size and a FIFO are refused with messages.
# Stops at the first failed check.
set -eu
nabla=$1
work=$2
case $nabla in /*) ;; */*) nabla=$(pwd)/$nabla ;; esac
fixtures=$(cd "$(dirname "$0")" && pwd)/data/predict
test_name=test_predict_people
. "$(dirname "$0")/lib.sh"
rm -rf "$work"
mkdir -p "$work"
cd "$work"

# pixels N0 N1: the printf format (octal escapes) of images N0..N1-1, pixel i of image n being
# (n * 53 + i * 7 + int(i / 28) * 11) % 256 (the formula of the committed PNG fixtures)
pixels() {
    awk -v a="$1" -v b="$2" 'BEGIN { for (n = a; n < b; n++) for (i = 0; i < 784; i++)
        printf "\\%03o", (n * 53 + i * 7 + int(i / 28) * 11) % 256 }'
}
# be32 V: the printf format of a big-endian u32
be32() { printf '\\%03o\\%03o\\%03o\\%03o' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)); }
# idx_set DIR PREFIX N: images [N, 28, 28] and labels n % 10
idx_set() {
    printf "\\000\\000\\010\\003$(be32 $3)$(be32 28)$(be32 28)$(pixels 0 $3)" >"$1/$2-images-idx3-ubyte"
    printf "\\000\\000\\010\\001$(be32 $3)$(awk -v n=$3 'BEGIN { for (i = 0; i < n; i++) printf "\\%03o", i % 10 }')" \
        >"$1/$2-labels-idx1-ubyte"
}
mkdir fm
idx_set fm train 60
idx_set fm t10k 20
# image n as PGM P5 and P2, as a CSV row (0..255, and / 255), and as a uint8 .npy [28, 28]
pgm5() { { printf 'P5\n# a comment\n28 28\n255\n'; printf "$(pixels $1 $(($1 + 1)))"; } >"$2"; }
pgm2() {
    { printf 'P2\n28 28\n255\n'; awk -v n=$1 'BEGIN { for (i = 0; i < 784; i++)
        printf "%d%s", (n * 53 + i * 7 + int(i / 28) * 11) % 256, i % 28 == 27 ? "\n" : " " }'; } >"$2"
}
csvrow() {
    awk -v n=$1 -v d=$2 'BEGIN { for (i = 0; i < 784; i++)
        printf "%.9g%s", ((n * 53 + i * 7 + int(i / 28) * 11) % 256) / d, i < 783 ? "," : "\n" }'
}

# ---------------------------------------------------------------- names in training and eval
check "train on the Fashion-MNIST-like set" 0 "$nabla" train --data fashion-mnist --data-dir fm \
    --epochs 2 --hidden 16 --threads 1 --save m.st --quiet
check "train with --save-best" 0 "$nabla" train --data fashion-mnist --data-dir fm --epochs 2 \
    --hidden 16 --threads 1 --save b.st --save-best --quiet
check "the best-model checkpoint records the names too" 0 "$nabla" predict --model b.best.st \
    --input fm/t10k-images-idx3-ubyte --top 10
grep '^row 0: ' out | grep -F 'T-shirt/top (0) ' | grep -qF 'Ankle boot (9) ' || fail "no names in b.best.st's predictions"
check "eval shows the Fashion-MNIST names" 0 "$nabla" eval --model m.st --data fashion-mnist \
    --data-dir fm
out_has "  class  0 T-shirt/top: "
out_has "  class  9 Ankle boot:  precision "
grep -q '^ *T-shir\. *Trouser *Pullov\. *Dress *Coat *Sandal *Shirt *Sneaker *Bag *Ankle\.$' out ||
    fail "the confusion matrix's columns are not the abbreviated names"
grep -qE '^  9 Ankle boot( +[0-9]+){10}$' out || fail "no confusion row labelled '  9 Ankle boot'"
check "eval --data mnist on the same files: the data's names are digits, the checkpoint's win" 0 \
    "$nabla" eval --model m.st --data mnist --data-dir fm
out_has "  class  3 Dress: "
# a model without names (a CSV run) shows indices exactly as before
awk 'BEGIN { for (i = 0; i < 60; i++) printf "%d,%d,%d\n", i % 3, (i * 7) % 5, i % 3 }' >t.csv
check "train a CSV model (no names)" 0 "$nabla" train --data t.csv --epochs 1 --hidden 8 \
    --threads 1 --save c.st --quiet
check "eval without names: indices" 0 "$nabla" eval --model c.st --data t.csv
out_has "  class  0: "
grep -qE '^ +2( +[0-9]+){3}$' out || fail "no index-labelled confusion row"
if "$nabla" eval --model m.st --data fashion-mnist --data-dir fm --plot cm.png >out 2>err; then
    head -c 8 cm.png | od -c | grep -q 'P   N   G' || fail "eval --plot wrote no PNG"
    check "eval --plot onto the model is refused" 1 "$nabla" eval --model m.st --plot m.st \
        --data fashion-mnist --data-dir fm
    err_has "is the same file as 'm.st'"
    mkdir pdir
    check "eval --plot onto a directory is refused" 1 "$nabla" eval --model m.st --plot pdir
    err_has "pdir"
else
    grep -q "no PLplot support" err || fail "eval --plot failed: $(cat err)"
    echo "test_predict_people: no PLplot in this build; eval --plot not drawn"
fi

# ---------------------------------------------------------------- predict: formats agree
pgm5 0 img0.pgm
pgm2 0 img0_p2.pgm
check "predict a PGM P5" 0 "$nabla" predict --model m.st --input img0.pgm
grep -qE '^img0\.pgm: [A-Za-z/ -]+ \([0-9]\) [0-9]+\.[0-9]{2}%$' out || fail "not 'FILE: NAME (k) P%'"
ref=$(sed 's/^[^:]*://' out)
check "predict a PGM P2" 0 "$nabla" predict --model m.st --input img0_p2.pgm
[ "$(sed 's/^[^:]*://' out)" = "$ref" ] || fail "P2 predicts '$(cat out)', P5 '$ref'"
check "predict the PNG of the same pixels" 0 "$nabla" predict --model m.st \
    --input "$fixtures/img0_gray.png"
[ "$(sed 's/^[^:]*://' out)" = "$ref" ] || fail "PNG predicts '$(cat out)', PGM '$ref'"
mknpy one.npy '|u1' '(28, 28)' "$(pixels 0 1)"
check "predict a single [28, 28] .npy image" 0 "$nabla" predict --model m.st --input one.npy
[ "$(sed 's/^[^:]*://' out)" = "$ref" ] || fail ".npy [28,28] predicts '$(cat out)', PGM '$ref'"
csvrow 0 1 >px.csv
csvrow 1 1 >>px.csv
csvrow 0 255 >unit.csv
csvrow 1 255 >>unit.csv
check "predict CSV rows of pixels 0..255" 0 "$nabla" predict --model m.st --input px.csv
[ "$(sed -n '1s/^row 0://p' out)" = "$ref" ] || fail "CSV row 0 predicts '$(head -1 out)'"
cp out px.txt
check "[0, 1] floats: converted with a note, same predictions" 0 "$nabla" predict --model m.st \
    --input unit.csv
err_has "note: --input unit.csv holds values in [0, 1]"
err_has "multiplied by 255"
cmp -s out px.txt || fail "[0,1] floats predict '$(cat out)', pixels '$(cat px.txt)'"
check "IDX input: one line per image" 0 "$nabla" predict --model m.st --input fm/t10k-images-idx3-ubyte
[ "$(wc -l <out)" -eq 20 ] || fail "$(wc -l <out) lines for 20 IDX images"
[ "$(sed -n '1s/^row 0://p' out)" = "$ref" ] || fail "IDX image 0 predicts '$(head -1 out)'"

# ---------------------------------------------------------------- --top, directories, --out
check "--top 3" 0 "$nabla" predict --model m.st --input img0.pgm --top 3
p='[A-Za-z/ -]+ \([0-9]\) [0-9]+\.[0-9]{2}%'
grep -qE "^img0\.pgm: $p \| $p \| $p\$" out || fail "--top 3 line is '$(cat out)'"
mkdir imgs
cp img0.pgm imgs/b_first.pgm
cp "$fixtures/img1_rgb.png" imgs/c_rgb.png
cp "$fixtures/img0_gray.png" imgs/a_gray.png
echo "not an image" >imgs/notes.txt
check "a directory: its PNG and PGM files in name order" 0 "$nabla" predict --model m.st \
    --input imgs --top 2
[ "$(cut -d: -f1 out | tr '\n' ' ')" = "a_gray.png b_first.pgm c_rgb.png " ] ||
    fail "lines for '$(cut -d: -f1 out | tr '\n' ' ')'"
check "--out - writes CSV to standard output" 0 "$nabla" predict --model m.st --input imgs --out -
[ ! -e ./- ] || fail "a file named '-' was created"
[ "$(head -n 1 out)" = "input,predicted,T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot" ] ||
    fail "CSV header '$(head -n 1 out)'"
[ "$(wc -l <out)" -eq 4 ] || fail "not a header and 3 rows"
grep -qE '^a_gray\.png,[0-9](,-?[0-9.e+-]+){10}$' out || fail "no CSV row for a_gray.png"
check "--out FILE.csv --probs" 0 "$nabla" predict --model m.st --input imgs --out p.csv --probs
awk -F, 'NR > 1 { s = 0; for (k = 3; k <= NF; k++) s += $k; if (s < 0.9999 || s > 1.0001) exit 1 }' p.csv ||
    fail "probability rows of p.csv do not sum to 1"
check "--out FILE.json" 0 "$nabla" predict --model m.st --input imgs --out p.json
grep -q '"classes":.*"T-shirt/top"' p.json || fail "no class names in p.json"
[ "$(grep -c '"input":' p.json)" -eq 3 ] || fail "not 3 rows in p.json"
grep -q '"values":.*"logits"' p.json || fail "p.json does not say it holds logits"
check "--out FILE.npy" 0 "$nabla" predict --model m.st --input imgs --out p.npy
head -c 6 p.npy | od -c | grep -q 'N   U   M   P   Y' || fail "p.npy is not a .npy"
grep -q "'shape': (3, 10)" p.npy || fail "p.npy is not [3, 10]"
check "--out with another extension writes .npy" 0 "$nabla" predict --model m.st --input imgs \
    --out p.dat
cmp -s p.dat p.npy || fail "p.dat differs from p.npy"
check "--format json to standard output" 0 "$nabla" predict --model m.st --input img0.pgm \
    --out - --format json
out_has '"name":'
check "--out onto the input is refused" 1 "$nabla" predict --model m.st --input px.csv --out px.csv
err_has "same file as --input"

# ---------------------------------------------------------------- ranges refused
awk 'BEGIN { for (i = 0; i < 784; i++) printf "%d%s", i % 2, i < 783 ? "," : "\n" }' >bin.csv
check "only 0 and 1: ambiguous, refused" 1 "$nabla" predict --model m.st --input bin.csv
err_has "could be [0, 1] floats or nearly black 0..255 pixels"
err_has "--input-range 0-255"
check "--input-range 0-1 settles it" 0 "$nabla" predict --model m.st --input bin.csv \
    --input-range 0-1
awk 'BEGIN { for (i = 0; i < 784; i++) printf "%.3f%s", i / 200 - 1, i < 783 ? "," : "\n" }' >norm.csv
check "normalised values: refused with how to convert" 1 "$nabla" predict --model m.st --input norm.csv
err_has "neither pixels 0..255 nor [0, 1]"
err_has "undo it (x * std + mean)"
check "--input-range 0-1 with values above 1 is refused" 1 "$nabla" predict --model m.st \
    --input px.csv --input-range 0-1
err_has "outside the 0..1 of --input-range 0-1"
# a model trained on [0, 1] floats from a CSV (input_scale 1): images need --input-range
for n in 0 1 2 3 4 5 6 7 8 9 10 11; do csvrow $n 255 | sed "s/\$/,$((n % 3))/"; done >f784.csv
check "train on [0, 1] float features" 0 "$nabla" train --data f784.csv --epochs 1 --hidden 8 \
    --threads 1 --test-frac 0.2 --val-frac 0.2 --save u.st --quiet
check "images to a model not trained on pixels are refused" 1 "$nabla" predict --model u.st \
    --input img0.pgm
err_has "was not trained on 0..255 pixels"
err_has "add --input-range 0-255 to feed them divided by 255"
check "--input-range 0-255: pixels divided by 255, as the CSV rows / 255" 0 "$nabla" predict \
    --model u.st --input img0.pgm --input-range 0-255
ref=$(sed 's/^[^:]*://' out)
check "the same image as [0, 1] floats" 0 "$nabla" predict --model u.st --input unit.csv
[ "$(sed -n '1s/^row 0://p' out)" = "$ref" ] || fail "CSV / 255 predicts '$(head -1 out)', PGM '$ref'"

# ---------------------------------------------------------------- bad files refused
head -c 100 "$fixtures/img0_gray.png" >trunc.png
check "a truncated PNG" 1 "$nabla" predict --model m.st --input trunc.png
err_has "image: 'trunc.png': PNG:"
{ printf 'P5\n28 x\n255\n'; printf "$(pixels 0 1)"; } >badhdr.pgm
check "a PGM with a bad header" 1 "$nabla" predict --model m.st --input badhdr.pgm
err_has "the height is not a number"
head -c 500 img0.pgm >short.pgm
check "a PGM with missing pixels" 1 "$nabla" predict --model m.st --input short.pgm
err_has "28 x 28 pixels need 784 bytes"
printf 'P5\n100000 100000\n255\n' >huge.pgm
check "a PGM too large" 1 "$nabla" predict --model m.st --input huge.pgm
err_has "width 100000 is not in 1..16384"
printf 'P2\n28 28\n255\n1 2 300\n' >over.pgm
check "a P2 pixel above maxval" 1 "$nabla" predict --model m.st --input over.pgm
err_has "above maxval 255"
{ printf 'P5\n27 28\n255\n'; printf "$(pixels 0 1)" | head -c 756; } >small.pgm
check "an image of the wrong size" 1 "$nabla" predict --model m.st --input small.pgm
err_has "27x28 = 756 pixels; the model takes 784 inputs"
echo "hello" >what.bin
check "an unknown kind of file" 1 "$nabla" predict --model m.st --input what.bin
err_has "not a .npy, IDX, PNG or PGM file"
mkfifo fifo.pgm
check "a FIFO is refused without blocking" 1 "$nabla" predict --model m.st --input fifo.pgm
err_has "FIFO"
mkdir empty
check "a directory without images" 1 "$nabla" predict --model m.st --input empty
err_has "holds no .png, .pgm or .pnm files"
echo "test_predict_people: all checks passed"
