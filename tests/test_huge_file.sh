#!/bin/sh
# test_huge_file.sh NABLA WORK_DIR - an input file larger than half the machine's memory (a
# sparse file of zeros: no disk used) is refused at once: the CSV reader, which loads a file
# whole, names its size and the limit instead of reading it into memory first (20 GB of zeros
# took minutes and 20 GB of memory before failing); a model and a predict input, whose headers
# are read first, fail there, within the check's 20 s.
set -eu
nabla=$1
work=$2
case $nabla in /*) ;; */*) nabla=$(pwd)/$nabla ;; esac
test_name=test_huge_file
. "$(dirname "$0")/lib.sh"
rm -rf "$work"
mkdir -p "$work"
cd "$work"
CHECK_TIMEOUT=20
kb=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
bytes=$((kb * 1024 / 2 + 268435456)) # 0.27 GB over: the message's sizes differ visibly
if ! truncate -s "$bytes" big.csv 2>/dev/null; then
    echo "test_huge_file: skipped (cannot make a sparse file of $bytes bytes here)"
    exit 0
fi
ln big.csv big.npy
ln big.csv big.st
check "train --data csv: of more than half the memory" 1 "$nabla" train --data csv:big.csv \
    --epochs 1 --quiet --save m.st
err_has "big.csv"
err_has "more than half"
err_has "of memory"
[ ! -e m.st ] || fail "a model was written"
check "eval --model of more than half the memory" 1 "$nabla" eval --model big.st
err_has "big.st" # its header is read first (bounded): all zeros, refused there
"$nabla" train --data spirals --epochs 1 --quiet --save small.st >/dev/null
check "predict --input of more than half the memory" 1 "$nabla" predict --model small.st \
    --input big.npy
err_has "big.npy"
rm -f big.csv big.npy big.st
echo "test_huge_file: ok"
