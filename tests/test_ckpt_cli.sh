#!/bin/sh
# test_ckpt_cli.sh NABLA WORK_DIR [HAVE_PLOT] - checkpoints as the command line reads them:
#   - `train --resume`, `eval --model` and `predict --model` refuse a crafted checkpoint (one
#     metadata value or one tensor element changed in a good one) with exit 1 and a message
#     naming the file, the field, the value and the limit; the untouched checkpoint is accepted;
#   - a long --data path (300 and 1100 bytes) is stored whole in the checkpoint (dataset and
#     run_config), and a resume with another --seed is refused (the recorded options used to be
#     cut at 1023 bytes, which dropped the seed from the comparison);
#   - `nabla diff` counts a tensor only one file has, and a dtype difference, as differences;
#   - `train --plot` and `nabla plot` exit 0 with leak detection on (under the sanitizer build,
#     LeakSanitizer must not fail them on fontconfig's allocations: tests/lsan.supp).
# Crafted files are made here without Python: the safetensors JSON header is rewritten with sed
# and its 8-byte length recomputed, tensor bytes are overwritten with dd.
set -eu
nabla=$1
work=$2
have_plot=${3:-0} # 1 when nabla was built with PLplot
case $nabla in /*) ;; */*) nabla=$(pwd)/$nabla ;; esac
rm -rf "$work"
mkdir -p "$work"
cd "$work"
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1"
export ASAN_OPTIONS

current=""
fail() {
    echo "test_ckpt_cli: FAIL [$current]: $*" >&2
    for f in out err; do
        if [ -s $f ]; then
            echo "--- $f:" >&2
            head -n 20 $f >&2
        fi
    done
    exit 1
}
# check NAME STATUS CMD ARGS...: runs the command (stdout to ./out, stderr to ./err), bounded in
# time, and fails unless it exits with STATUS.
check() {
    current=$1
    want=$2
    shift 2
    echo "check: $current"
    set +e
    timeout 120 "$@" >out 2>err
    rc=$?
    set -e
    [ "$rc" -eq "$want" ] || fail "exit status $rc, expected $want (command: $*)"
}
err_has() { grep -qF -- "$1" err || fail "stderr does not mention '$1'"; }

# ---- safetensors editing in sh ----
# header FILE: the JSON header.
header() {
    n=$(od -An -tu8 -N8 "$1" | tr -d ' ')
    tail -c +9 "$1" | head -c "$n"
}
# le64 N: N as 8 little-endian bytes.
le64() {
    v=$1
    i=0
    while [ $i -lt 8 ]; do
        printf "\\$(printf '%03o' $((v % 256)))"
        v=$((v / 256))
        i=$((i + 1))
    done
}
# st_sed IN OUT SED_SCRIPT: OUT is IN with its header rewritten by sed (data unchanged).
st_sed() {
    n=$(od -An -tu8 -N8 "$1" | tr -d ' ')
    header "$1" | sed "$3" >"$2.hdr"
    len=$(wc -c <"$2.hdr" | tr -d ' ')
    {
        le64 "$len"
        cat "$2.hdr"
        tail -c +$((9 + n)) "$1"
    } >"$2"
    rm -f "$2.hdr"
}
# st_meta IN OUT KEY VALUE: metadata KEY set to VALUE.
st_meta() { st_sed "$1" "$2" "s/\"$3\":\"[^\"]*\"/\"$3\":\"$4\"/"; }
# st_f32 IN OUT TENSOR INDEX BYTES: element INDEX of an f32 tensor set to 4 raw bytes
# (little-endian, given as printf octal escapes).
st_f32() {
    cp "$1" "$2"
    n=$(od -An -tu8 -N8 "$1" | tr -d ' ')
    begin=$(header "$1" | sed -n "s/.*\"$3\":{[^}]*\"data_offsets\":\[\([0-9]*\),.*/\1/p")
    [ -n "$begin" ] || fail "no tensor $3 in $1"
    printf "$5" | dd of="$2" bs=1 seek=$((8 + n + begin + 4 * $4)) conv=notrunc 2>/dev/null
}
meta_of() { header "$1" | sed -n "s/.*\"$2\":\"\([^\"]*\)\".*/\1/p"; }

# ---- a good run to start from ----
opts="--data spirals --hidden 8 --epochs 2 --batch 64 --quiet"
check "train a good checkpoint" 0 "$nabla" train $opts --save good.st
[ "$(meta_of good.st run_epoch)" = 3 ] || fail "good.st: run_epoch is '$(meta_of good.st run_epoch)'"
# mid.st: the same, positioned 10 batches into epoch 2 (a state a --save-every checkpoint holds)
st_meta good.st mid1.st run_epoch 2
st_meta mid1.st mid2.st run_batcher_epoch 1
st_meta mid2.st mid3.st run_batcher_pos 640
st_meta mid3.st mid4.st run_weight_sum 640
st_meta mid4.st mid5.st run_correct 300
st_meta mid5.st mid.st run_loss_sum 512.5
# an input for predict: f32 [3, 2] as a version 1.0 .npy (preamble + header = 128 bytes)
dict="{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }"
{
    printf '\223NUMPY\001\000\166\000%s' "$dict"
    printf '%*s\n' $((118 - ${#dict} - 1)) ''
    printf '\000\000\200\077\000\000\000\100\000\000\100\100\000\000\200\100\000\000\240\100\000\000\300\100'
} >X.npy
# a resumed run continues in its checkpoint unless --save says otherwise: resume copies
cp good.st goodr.st
cp mid.st midr.st
check "resume the good checkpoint" 0 "$nabla" train $opts --resume goodr.st
check "resume the mid-epoch checkpoint" 0 "$nabla" train $opts --resume midr.st
[ "$(meta_of midr.st run_epoch)" = 3 ] || fail "the resumed run did not continue in midr.st"
check "eval the good checkpoint" 0 "$nabla" eval --model good.st
check "predict with the good checkpoint" 0 "$nabla" predict --model good.st --input X.npy --out p.npy

# ---- crafted run state: train --resume refuses, naming the field, the value, the limit ----
# resume_refused FILE PHRASE...: `train --resume FILE` exits 1 and stderr names FILE and each phrase
resume_refused() {
    f=$1
    shift
    check "resume $f" 1 "$nabla" train $opts --resume "$f"
    err_has "$f"
    for p in "$@"; do err_has "$p"; done
}
st_meta good.st e1.st run_epoch -5
resume_refused e1.st "'run_epoch'" "'-5'" "[1, 3]"
st_meta good.st e2.st run_epoch 1e300
resume_refused e2.st "'run_epoch'" "'1e300'"
st_meta good.st e3.st run_epoch 4
resume_refused e3.st "'run_epoch'" "'4'" "a run of 2 epochs cannot continue it (give at least 3)"
st_meta good.st s1.st optim_step 1e300
resume_refused s1.st "'optim_step'" "'1e300'" "[0, 9007199254740992]"
st_meta good.st s2.st optim_step -3
resume_refused s2.st "'optim_step'" "'-3'"
st_meta good.st l1.st run_loss_sum nan
resume_refused l1.st "'run_loss_sum'" "'nan'" "finite"
st_meta good.st l2.st run_loss_sum inf
resume_refused l2.st "'run_loss_sum'" "'inf'"
st_meta good.st l4.st run_loss_sum 3.5
resume_refused l4.st "'run_loss_sum'" "[0, 0]"
st_meta mid.st l3.st run_loss_sum -1
resume_refused l3.st "'run_loss_sum'" "'-1'" ">= 0"
st_meta mid.st w1.st run_weight_sum 1e300
resume_refused w1.st "'run_weight_sum'" "'1e300'"
st_meta mid.st w2.st run_weight_sum 2.5
resume_refused w2.st "'run_weight_sum'" "'2.5'" "integer"
st_meta mid.st c1.st run_correct 100000
resume_refused c1.st "'run_correct'" "'100000'"
st_meta good.st b1.st run_batcher_epoch 7
resume_refused b1.st "'run_batcher_epoch'" "'7'" "run_epoch 3"
st_meta mid.st p1.st run_batcher_pos 99999999
resume_refused p1.st "'run_batcher_pos'" "'99999999'"
st_meta mid.st p2.st run_batcher_pos 5
resume_refused p2.st "'run_batcher_pos'" "'5'" "multiple of the batch 64"
st_meta good.st r1.st run_batcher_rng 0000000000000000,0000000000000000,0000000000000000,0000000000000000
resume_refused r1.st "'run_batcher_rng'" "all zero"
st_meta good.st r2.st run_dropout_rng "1,2,3"
resume_refused r2.st "'run_dropout_rng'" "'1,2,3'" "16 hex digits"
st_meta good.st r3.st run_batcher_rng " 1,2,3,4"
resume_refused r3.st "'run_batcher_rng'"
# tensors: a NaN weight, a negative second moment, a NaN first moment
st_f32 good.st t1.st layers.0.weight 3 '\000\000\300\177'
resume_refused t1.st "'layers.0.weight'" "element 3" "nan"
st_f32 good.st t2.st optim.exp_avg_sq.0 1 '\000\000\200\277'
resume_refused t2.st "'exp_avg_sq.0'" "element 1" "-1" ">= 0"
st_f32 good.st t3.st optim.exp_avg.2 0 '\000\000\300\377'
resume_refused t3.st "'exp_avg.2'" "element 0" "nan"
# nothing was trained on: no metrics, and the refused files are unchanged
[ "$(meta_of t1.st run_epoch)" = 3 ] || fail "t1.st was rewritten"

# ---- eval --model and predict --model read the same library checks ----
st_meta good.st m1.st epoch 1e300
check "eval epoch 1e300" 1 "$nabla" eval --model m1.st
err_has "m1.st"
err_has "'epoch'"
err_has "'1e300'"
check "predict epoch 1e300" 1 "$nabla" predict --model m1.st --input X.npy --out p1.npy
err_has "'epoch'"
[ ! -e p1.npy ] || fail "p1.npy written from a refused model"
check "eval NaN weight" 1 "$nabla" eval --model t1.st
err_has "t1.st"
err_has "'layers.0.weight'"
check "predict NaN weight" 1 "$nabla" predict --model t1.st --input X.npy --out p2.npy
err_has "'layers.0.weight'"
st_meta good.st m2.st input_scale nan
check "predict input_scale nan" 1 "$nabla" predict --model m2.st --input X.npy --out p3.npy
err_has "'input_scale'"
err_has "'nan'"
st_meta good.st m3.st dropout 2
check "eval dropout 2" 1 "$nabla" eval --model m3.st
err_has "'dropout'"
err_has "[0, 1)"

# ---- a long --data path is stored whole ----
# make_csv FILE: 120 rows of 2 features and a label in {0, 1, 2}
make_csv() {
    i=0
    while [ $i -lt 120 ]; do
        echo "$((i % 7)).$((i % 10)),$((i % 5)).$((i % 3)),$((i % 3))"
        i=$((i + 1))
    done >"$1"
}
seg=$(printf '%0100d' 0 | tr 0 d)
long="$work/$seg/$seg/$seg"
mkdir -p "$long"
make_csv "$long/data.csv"
spec="$long/data.csv"
[ ${#spec} -gt 300 ] || fail "the long path is only ${#spec} bytes"
lopts="--hidden 8 --epochs 2 --batch 16 --quiet"
check "train on a ${#spec}-byte path" 0 "$nabla" train --data "$spec" $lopts --save long.st
[ "$(meta_of long.st dataset)" = "$spec" ] || fail "dataset is '$(meta_of long.st dataset)', expected the whole path"
header long.st | grep -qF "data=$spec hidden=8" || fail "run_config does not hold the whole path"
check "resume on the long path" 0 "$nabla" train --data "$spec" $lopts --resume long.st
check "resume with another seed (long path)" 1 "$nabla" train --data "$spec" $lopts --seed 2 --resume long.st
err_has "--seed 2 differs from the checkpoint's 1"
# past 1023 bytes of options: the seed and split are at the end of the recorded options
seg2=$(printf '%0220d' 0 | tr 0 e)
longer="$work/$seg2/$seg2/$seg2/$seg2/$seg2"
mkdir -p "$longer"
make_csv "$longer/data.csv"
spec2="$longer/data.csv"
[ ${#spec2} -gt 1023 ] || fail "the longer path is only ${#spec2} bytes"
check "train on a ${#spec2}-byte path" 0 "$nabla" train --data "$spec2" $lopts --save longer.st
[ "$(meta_of longer.st dataset)" = "$spec2" ] || fail "dataset is not the whole ${#spec2}-byte path"
header longer.st | grep -qF "seed=1 val=0.10000000000000001" || fail "run_config was cut before the seed"
check "resume with another seed (1100-byte path)" 1 "$nabla" train --data "$spec2" $lopts --seed 2 --resume longer.st
err_has "--seed 2 differs from the checkpoint's 1"
err_has "fixed for a run"
check "resume with another split (1100-byte path)" 1 "$nabla" train --data "$spec2" $lopts --val-frac 0.3 --resume longer.st
err_has "--val-frac 0.3 differs from the checkpoint's 0.1"
check "resume with another held-out share (1100-byte path)" 1 "$nabla" train --data "$spec2" $lopts --test-frac 0.2 --resume longer.st
err_has "--test-frac 0.2 differs from the checkpoint's 0.1"

# ---- nabla diff: a tensor only one file has, or another dtype, is a difference ----
# short.st: good.st without its last tensor (by offset), the file cut to match
lastname=$(header good.st | sed -n 's/.*,"\([^"]*\)":{"dtype":"F32","shape":\[[0-9,]*\],"data_offsets":\[[0-9]*,[0-9]*\]}} *$/\1/p')
lastb=$(header good.st | sed -n 's/.*"data_offsets":\[\([0-9]*\),[0-9]*\]}} *$/\1/p')
laste=$(header good.st | sed -n 's/.*"data_offsets":\[[0-9]*,\([0-9]*\)\]}} *$/\1/p')
[ -n "$lastname" ] || fail "cannot find the last tensor of good.st"
st_sed good.st short0.st "s/,\"$lastname\":{[^}]*}} *\$/}/"
size=$(wc -c <short0.st | tr -d ' ')
head -c $((size - (laste - lastb))) short0.st >short.st
check "diff: file with itself" 0 "$nabla" diff good.st good.st
check "diff: the second file has an extra tensor" 1 "$nabla" diff short.st good.st
err_has "'$lastname'"
err_has "good.st"
check "diff: the first file has an extra tensor" 1 "$nabla" diff good.st short.st
err_has "'$lastname'"
# the same bytes (all zero) as f32 in one file and i32 in the other
zb=$(header good.st | sed -n 's/.*"layers.1.bias":{[^}]*"data_offsets":\[\([0-9]*\),\([0-9]*\)\].*/\1 \2/p')
set -- $zb
hn=$(od -An -tu8 -N8 good.st | tr -d ' ')
cp good.st z32.st
dd if=/dev/zero of=z32.st bs=1 seek=$((8 + hn + $1)) count=$(($2 - $1)) conv=notrunc 2>/dev/null
st_sed z32.st zi32.st 's/"layers.1.bias":{"dtype":"F32"/"layers.1.bias":{"dtype":"I32"/'
check "diff: same values, other dtype" 1 "$nabla" diff z32.st zi32.st
err_has "'layers.1.bias'"
err_has "dtype"

# ---- plots with leak detection on (when nabla was built with PLplot and its cairo driver) ----
if [ "$have_plot" = 1 ]; then
    set +e
    "$nabla" train $opts --plot curves.png >out 2>err
    rc=$?
    set -e
    if [ $rc -ne 0 ] && grep -q "no pngcairo device" err; then
        echo "test_ckpt_cli: plots skipped: PLplot's cairo driver is not installed"
    else
        current="train --plot"
        [ $rc -eq 0 ] || fail "exit status $rc, expected 0"
        sig=$(od -An -tx1 -N8 curves.png | tr -d ' \n')
        [ "$sig" = "89504e470d0a1a0a" ] || fail "curves.png is not a PNG ($sig)"
        check "nabla plot" 0 "$nabla" plot curves.png.metrics.jsonl -o again.png
        [ -s again.png ] || fail "again.png is missing"
        # the metrics file --plot writes for itself is named after the whole plot path
        check "train --plot into a ${#longer}-byte directory" 0 "$nabla" train $opts --plot "$longer/c.png"
        [ -s "$longer/c.png.metrics.jsonl" ] || fail "no $longer/c.png.metrics.jsonl"
    fi
fi

echo "test_ckpt_cli: ok"
