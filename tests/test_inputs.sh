#!/bin/sh
# test_inputs.sh NABLA WORK_DIR DATA_DIR - every input a `nabla` command reads terminates fast on
# hostile files (issue 10, "Readers"): a FIFO or a device given as any input (.npy, CSV, IDX,
# checkpoints, the plot's metrics) is refused at once, naming the file and its kind; `nabla plot`
# caps line length and file size; CSV header detection is explicit (--header yes|no|auto) and a
# bad value on line 1 is an error naming line and column, never a silently dropped "header";
# CR-only and BOM CSV files are read; a sparse huge label cannot make millions of classes.
# Every command runs under `timeout 10`, so a reader that blocks fails (exit 124) instead of
# hanging. No Python. Stops at the first failed check, naming it.
set -eu
nabla=$1
work=$2
data=$(cd "$3" && pwd)
case $nabla in /*) ;; */*) nabla=$(pwd)/$nabla ;; esac
rm -rf "$work"
mkdir -p "$work"
cd "$work"

current=""
fail() {
    echo "test_inputs: FAIL [$current]: $*" >&2
    if [ -s out ]; then
        echo "--- stdout:" >&2
        head -n 20 out >&2
    fi
    if [ -s err ]; then
        echo "--- stderr:" >&2
        head -n 20 err >&2
    fi
    exit 1
}

# check NAME STATUS CMD ARGS...: runs the command under `timeout 10` (stdin from /dev/null,
# stdout to ./out, stderr to ./err) and fails unless it exits with STATUS.
check() {
    current=$1
    want=$2
    shift 2
    echo "check: $current"
    set +e
    timeout 10 "$@" </dev/null >out 2>err
    rc=$?
    set -e
    [ "$rc" -ne 124 ] || fail "timed out after 10 s: the command blocked (command: $*)"
    [ "$rc" -eq "$want" ] || fail "exit status $rc, expected $want (command: $*)"
}
err_has() { grep -qF -- "$1" err || fail "stderr does not mention '$1'"; }
out_has() { grep -qF -- "$1" out || fail "stdout does not mention '$1'"; }

L=$data/xent_default_logits.npy  # f8 [6, 5]
T=$data/xent_default_targets.npy # i8 [6]

# ---------------------------------------------------------------- FIFOs and devices as inputs
mkfifo fifo
fifo=$(pwd)/fifo
FIFO="is a FIFO (named pipe), not a regular file"

check "xent --logits FIFO" 1 "$nabla" xent --logits "$fifo" --targets "$T"
err_has "'$fifo' $FIFO"
check "xent --targets FIFO" 1 "$nabla" xent --logits "$L" --targets "$fifo"
err_has "'$fifo' $FIFO"
check "xent --weight FIFO" 1 "$nabla" xent --logits "$L" --targets "$T" --weight "$fifo"
err_has "'$fifo' $FIFO"
check "xent --mask FIFO" 1 "$nabla" xent --logits "$L" --targets "$T" --mask "$fifo"
err_has "'$fifo' $FIFO"
check "xent --logits /dev/zero" 1 "$nabla" xent --logits /dev/zero --targets "$T"
err_has "'/dev/zero' is a character device, not a regular file"
check "xent --logits /dev/stdin (a FIFO here)" 1 sh -c "echo x | '$nabla' xent --logits /dev/stdin --targets '$T'"
err_has "'/dev/stdin' $FIFO"
check "xent --logits DIR" 1 "$nabla" xent --logits . --targets "$T"
err_has "'.' is a directory, not a regular file"

mkfifo "$fifo.csv"
check "train --data FIFO.csv" 1 "$nabla" train --data "$fifo.csv" --epochs 1 --quiet
err_has "csv: '$fifo.csv' $FIFO"
check "train --data FIFO,y.npy" 1 "$nabla" train --data "$fifo,$T" --epochs 1 --quiet
err_has "npy: '$fifo' $FIFO"
mkdir -p idx
mkfifo idx/train-images-idx3-ubyte idx/train-labels-idx1-ubyte
check "train --data mnist with FIFO IDX files" 1 "$nabla" train --data mnist --data-dir idx --epochs 1 --quiet
err_has "idx: '"
err_has "$FIFO"
check "train --resume FIFO" 1 "$nabla" train --data spirals --epochs 1 --quiet --resume "$fifo"
err_has "'$fifo' $FIFO"
check "eval --model FIFO" 1 "$nabla" eval --model "$fifo"
err_has "'$fifo' $FIFO"
check "predict --model FIFO" 1 "$nabla" predict --model "$fifo" --input "$L" --out p.npy
err_has "'$fifo' $FIFO"
check "diff FIFO FIFO" 1 "$nabla" diff "$fifo" "$fifo"
err_has "'$fifo' $FIFO"
check "train a small model" 0 "$nabla" train --data spirals --epochs 1 --hidden 8 --quiet --save M.safetensors
check "predict --input FIFO" 1 "$nabla" predict --model M.safetensors --input "$fifo" --out p.npy
err_has "'$fifo' $FIFO"
[ ! -e p.npy ] || fail "p.npy was written"

# ---------------------------------------------------------------- nabla plot: bounded reading
if "$nabla" plot --help 2>/dev/null | grep -q "no PLplot support"; then
    echo "test_inputs: plot checks skipped (no PLplot in this build)"
else
    check "plot FIFO" 1 "$nabla" plot "$fifo" -o p.png
    err_has "'$fifo' $FIFO"
    check "plot /dev/zero" 1 "$nabla" plot /dev/zero -o p.png
    err_has "'/dev/zero' is a character device, not a regular file"
    # 100 KB without a newline: the line cap, not unbounded growth
    head -c 100000 /dev/zero | tr '\000' '{' >longline.jsonl
    check "plot: a line longer than the cap" 1 "$nabla" plot longline.jsonl -o p.png
    err_has "longline.jsonl:1: line 1 longer than 65536 bytes"
    # a sparse file larger than the cap (no disk used)
    : >huge.jsonl
    truncate -s 300000000 huge.jsonl
    check "plot: a file larger than the cap" 1 "$nabla" plot huge.jsonl -o p.png
    err_has "'huge.jsonl': file is 300.0 MB, limit 256.0 MB"
    [ ! -e p.png ] || fail "p.png was written"
fi

# ---------------------------------------------------------------- CSV: explicit header
mkcsv() { # mkcsv FILE FIRST_LINE: FIRST_LINE then 40 good rows of 2 classes
    f=$1
    printf '%s\n' "$2" >"$f"
    i=0
    while [ $i -lt 40 ]; do
        printf '%s.5,%s,%s\n' $((i % 7)) $((i % 3)) $((i % 2)) >>"$f"
        i=$((i + 1))
    done
}
# train_rows NAME STATUS FILE [OPTIONS]: one epoch on FILE with a quarter held out (41 rows:
# "31 train / 0 validation / 10 test", 40 rows: "30 train / 0 validation / 10 test")
train_rows() {
    name=$1
    st=$2
    f=$3
    shift 3
    check "$name" "$st" "$nabla" train --data "$f" --epochs 1 --hidden 8 --test-frac 0.25 --val-frac 0 "$@"
}
for case in "O.3,1,0|'O.3' is not a number" "0.3,1,-1|label '-1' is not a non-negative integer" \
    "1e39,1,0|'1e39' is out of the f32 range" "nan,1,0|'nan' is not a finite number" \
    "0.3,1,2.5|label '2.5' is not a non-negative integer"; do
    line=${case%%|*}
    msg=${case#*|}
    mkcsv bad.csv "$line"
    check "CSV line 1 '$line' is an error, not a header" 1 "$nabla" train --data bad.csv --epochs 1 --hidden 8 --quiet
    err_has "bad.csv"
    err_has "line 1, column"
    err_has "$msg"
done
# a BOM before the first number is not part of it
mkcsv bom.csv "0.25,1,1"
printf '\357\273\277' >bom2.csv
cat bom.csv >>bom2.csv
train_rows "CSV with a UTF-8 BOM trains on every row" 0 bom2.csv
out_has "31 train / 0 validation / 10 test"
# a real header (every field a name) is skipped in auto mode; --header no makes it an error
mkcsv head.csv "x1,x2,label"
train_rows "CSV with a header (auto)" 0 head.csv
out_has "30 train / 0 validation / 10 test"
train_rows "--header no: line 1 is data" 1 head.csv --header no
err_has "line 1, column 1: 'x1' is not a number"
train_rows "--header yes skips a numeric line 1" 0 bom.csv --header yes
out_has "30 train / 0 validation / 10 test"
train_rows "--header auto keeps a numeric line 1" 0 bom.csv --header auto
out_has "31 train / 0 validation / 10 test"
check "--header maybe is bad usage" 2 "$nabla" train --data bom.csv --header maybe --epochs 1 --quiet
err_has "--header 'maybe': expected yes, no or auto"
check "eval --header maybe is bad usage" 2 "$nabla" eval --model M.safetensors --header maybe
err_has "--header 'maybe': expected yes, no or auto"
# CR-only line ends (old Mac) and CRLF
tr '\n' '\r' <bom.csv >cr.csv
train_rows "CSV with CR-only line ends" 0 cr.csv
out_has "31 train / 0 validation / 10 test"
sed 's/$/\r/' bom.csv >crlf.csv
train_rows "CSV with CRLF line ends" 0 crlf.csv
out_has "31 train / 0 validation / 10 test"

# ---------------------------------------------------------------- class count from the data
printf '0.1,0.2,0\n0.3,0.4,1\n0.5,0.6,16777215\n0.7,0.8,1\n' >sparse.csv
check "a 4-line CSV with label 16777215 does not build 16.7M classes" 1 \
    "$nabla" train --data sparse.csv --epochs 1 --hidden 8 --quiet --save S.safetensors
err_has "sparse.csv"
err_has "line 3, column 3: label 16777215 implies 16777216 classes but only 3 distinct labels occur"
[ ! -e S.safetensors ] || fail "S.safetensors was written"

echo "test_inputs: all checks passed"
