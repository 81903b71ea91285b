#!/bin/sh
# test_cli.sh NABLA WORK_DIR DATA_DIR - the `nabla` command as a user meets it: xent, gradcheck,
# train, eval, predict and every --help. Each check runs one command and looks at its exit status
# (0 ok, 1 bad input, 2 bad usage), a key phrase of its message, and, for failures, that no output
# file (nor a temporary file) is left behind. Reference values come from the committed golden
# files in DATA_DIR (PyTorch, see xent_cases.txt); bad inputs are made here with printf and head.
# No Python. Stops at the first failed check, naming it.
set -eu
nabla=$1
work=$2
data=$(cd "$3" && pwd) # absolute: the checks run inside WORK_DIR
case $nabla in /*) ;; */*) nabla=$(pwd)/$nabla ;; esac
test_name=test_cli
. "$(dirname "$0")/lib.sh" # check, fail, err_has, out_has, mknpy
rm -rf "$work"
mkdir -p "$work"
cd "$work"


# absent FILE...: none of the files exists, and no temporary file is lying around.
absent() {
    for f in "$@"; do
        [ ! -e "$f" ] || fail "$f was left behind"
    done
    if ls -a . | grep -q '\.tmp\.'; then fail "a temporary file was left behind: $(ls -a . | grep '\.tmp\.')"; fi
}
# is_npy FILE: exists, non-empty, starts with the magic \x93NUMPY.
is_npy() {
    [ -s "$1" ] || fail "$1 is missing or empty"
    magic=$(od -An -tx1 -N6 "$1" | tr -d ' \n')
    [ "$magic" = "934e554d5059" ] || fail "$1 does not start with \\x93NUMPY (got $magic)"
}
# npy_header FILE: the header dict of a version 1.0 .npy file.
npy_header() { head -c 256 "$1" | tr -d '\000-\011\013-\037\177-\377' | head -n 1 | sed -n 's/^[^{]*\({.*}\).*$/\1/p'; }
header_has() { npy_header "$1" | grep -qF -- "$2" || fail "$1 header '$(npy_header "$1")' lacks $2"; }
# npy_values FILE TYPE: the data of a version 1.0 .npy as one number per line (TYPE f4 or f8).
npy_values() {
    hl=$(od -An -tu2 -j8 -N2 "$1" | tr -d ' \n')
    od -An -t"$2" -v -j$((10 + hl)) "$1" | tr -s ' ' '\n' | sed '/^$/d'
}
# close A B TOL: |A - B| <= TOL (1 + |B|).
close() {
    awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN {
        d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b;
        exit !(d <= t * (1 + m)) }'
}
# same_values FILE GOLDEN TYPE TOL: element-wise close, same count.
same_values() {
    npy_values "$1" "$3" >vals.a
    npy_values "$2" f8 >vals.b
    [ "$(wc -l <vals.a)" -eq "$(wc -l <vals.b)" ] ||
        fail "$1 has $(wc -l <vals.a | tr -d ' ') values, $2 has $(wc -l <vals.b | tr -d ' ')"
    paste vals.a vals.b | while read -r a b; do
        close "$a" "$b" "$4" || { echo "$a vs $b" >mismatch; break; }
    done
    if [ -e mismatch ]; then fail "$1 differs from $2: $(cat mismatch)"; fi
    rm -f vals.a vals.b
}

L=$data/xent_default_logits.npy # f8 [6, 5]
T=$data/xent_default_targets.npy # i8 [6], classes in [0, 5)

# ---------------------------------------------------------------- nabla xent: the happy paths
check "xent prints the loss and token count" 0 "$nabla" xent --logits "$L" --targets "$T"
out_has "loss (mean)"
out_has "tokens 6 real of 6"
golden=$(npy_values "$data/xent_default_loss.npy" f8)
got=$(sed -n 's/^loss (mean) //p' out)
close "$got" "$golden" 1e-8 || fail "printed loss $got, PyTorch's is $golden"

check "xent --loss-out --grad-out write .npy files" 0 \
    "$nabla" xent --logits "$L" --targets "$T" --loss-out loss.npy --grad-out grad.npy
is_npy loss.npy
is_npy grad.npy
header_has grad.npy "'shape': (6, 5)"
header_has grad.npy "'descr': '<f8'"
header_has loss.npy "'shape': ()"
same_values loss.npy "$data/xent_default_loss.npy" f8 1e-12
same_values grad.npy "$data/xent_default_grad.npy" f8 1e-12
absent

check "xent --reduction none with a mask" 0 "$nabla" xent --logits "$data/xent_none_pad_logits.npy" \
    --targets "$data/xent_none_pad_targets.npy" --mask "$data/xent_none_pad_mask.npy" \
    --reduction none --loss-out none.npy
is_npy none.npy
header_has none.npy "'shape': (3, 5)"
same_values none.npy "$data/xent_none_pad_loss.npy" f8 1e-12
check "xent --reduction none prints the sum" 0 "$nabla" xent --logits "$L" --targets "$T" --reduction none
out_has "loss (sum of per-token losses)"

check "xent --naive flags the f32 huge-logits rows" 0 "$nabla" xent \
    --logits "$data/xent_f32_huge_logits.npy" --targets "$data/xent_f32_huge_targets.npy" --naive
out_has "<- naive is not finite"
flagged=$(sed -n 's/^naive rows not finite: //p' out)
[ "${flagged:-0}" -ge 1 ] || fail "no row flagged (naive rows not finite: '$flagged')"
golden=$(npy_values "$data/xent_f32_huge_loss.npy" f8)
got=$(sed -n 's/^loss (mean) //p' out)
close "$got" "$golden" 1e-6 || fail "fused loss $got on huge logits, PyTorch's is $golden"

# ---------------------------------------------------------------- nabla xent: bad input
# targets [6] i8 = 0 1 9 2 3 4: class 9 with V = 5
mknpy t9.npy '<i8' '(6,)' '\000\000\000\000\000\000\000\000\001\000\000\000\000\000\000\000\011\000\000\000\000\000\000\000\002\000\000\000\000\000\000\000\003\000\000\000\000\000\000\000\004\000\000\000\000\000\000\000'
check "xent: target out of range" 1 "$nabla" xent --logits "$L" --targets t9.npy --loss-out o.npy --grad-out g.npy
err_has "target 9 out of range [0, 5)"
err_has "row 2"
absent o.npy g.npy

check "xent: default targets with the V=1 logits" 1 \
    "$nabla" xent --logits "$data/xent_v1_logits.npy" --targets "$T" --loss-out o.npy
err_has "targets [6]"
err_has "[5, 1]"
absent o.npy

check "xent: --label-smoothing 1.5" 2 "$nabla" xent --logits "$L" --targets "$T" --label-smoothing 1.5 --loss-out o.npy
err_has "--label-smoothing 1.5 outside [0, 1)"
absent o.npy

check "xent: unknown --reduction" 2 "$nabla" xent --logits "$L" --targets "$T" --reduction avg --loss-out o.npy
err_has "--reduction 'avg'"
absent o.npy

check "xent: unknown option" 2 "$nabla" xent --logits "$L" --targets "$T" --frobnicate 1
err_has "unknown option '--frobnicate'"
check "xent: --targets missing" 2 "$nabla" xent --logits "$L"
err_has "--targets"

check "xent: missing logits file" 1 "$nabla" xent --logits nosuch.npy --targets "$T" --loss-out o.npy
err_has "nosuch.npy"
err_has "No such file"
absent o.npy

head -c 150 "$L" >trunc.npy
check "xent: truncated .npy" 1 "$nabla" xent --logits trunc.npy --targets "$T" --loss-out o.npy
err_has "trunc.npy"
err_has "truncated"
absent o.npy

check "xent: Fortran-order logits" 1 "$nabla" xent --logits "$data/npy_fortran.npy" --targets "$T" --loss-out o.npy
err_has "fortran_order"
absent o.npy

check "xent: big-endian logits" 1 "$nabla" xent --logits "$data/npy_bigendian.npy" --targets "$T" --loss-out o.npy
err_has "big-endian"
absent o.npy

check "xent: integer logits" 1 "$nabla" xent --logits "$data/npy_i32.npy" --targets "$T" --loss-out o.npy
err_has "logits must be f16, bf16, f32 or f64, got i32"
absent o.npy

check "xent: float targets of the wrong shape" 1 \
    "$nabla" xent --logits "$L" --targets "$data/xent_soft_f32_logits.npy" --loss-out o.npy --grad-out g.npy
err_has "probability targets [5, 6]"
err_has "[6, 5]"
absent o.npy g.npy

check "xent: mask of the wrong shape" 1 \
    "$nabla" xent --logits "$L" --targets "$T" --mask "$data/xent_mask_u8_mask.npy" --loss-out o.npy
err_has "mask [3, 5]"
absent o.npy

check "xent: --grad-out in a missing directory" 1 \
    "$nabla" xent --logits "$L" --targets "$T" --loss-out o.npy --grad-out nodir/g.npy
err_has "nodir/g.npy"
err_has "No such file or directory"
absent o.npy nodir

check "xent: --loss-out in a missing directory" 1 \
    "$nabla" xent --logits "$L" --targets "$T" --loss-out nodir/o.npy --grad-out g.npy
err_has "nodir/o.npy"
absent g.npy nodir

# a failed run must not destroy what was already at an output path
printf 'keep me\n' >old_loss.npy
check "xent: a failed --grad-out keeps an existing --loss-out file" 1 \
    "$nabla" xent --logits "$L" --targets "$T" --loss-out old_loss.npy --grad-out nodir/g.npy
[ "$(cat old_loss.npy 2>/dev/null)" = "keep me" ] || fail "old_loss.npy was removed or overwritten"
absent nodir
rm -f old_loss.npy

# ---------------------------------------------------------------- nabla gradcheck
check "gradcheck: every case ok" 0 "$nabla" gradcheck
cases=$(sed '1d;$d' out)
[ -n "$cases" ] || fail "no cases listed"
bad=$(printf '%s\n' "$cases" | grep -v ' ok$' || true)
[ -z "$bad" ] || fail "lines not ending in ok: $bad"
n=$(printf '%s\n' "$cases" | wc -l | tr -d ' ')
tail -n 1 out | grep -q "^$n cases checked, 0 failed" || fail "summary '$(tail -n 1 out)' does not say $n cases, 0 failed"
for op in matmul linear cross_entropy cross_entropy_soft log_softmax dropout; do
    printf '%s\n' "$cases" | grep -q "^$op " || fail "op $op is not checked"
done

check "gradcheck --op cross_entropy" 0 "$nabla" gradcheck --op cross_entropy
cases=$(sed '1d;$d' out)
[ -n "$cases" ] || fail "no cases listed"
other=$(printf '%s\n' "$cases" | grep -v '^cross_entropy ' || true)
[ -z "$other" ] || fail "other ops listed: $other"
bad=$(printf '%s\n' "$cases" | grep -v ' ok$' || true)
[ -z "$bad" ] || fail "lines not ending in ok: $bad"

check "gradcheck --op nosuchop" 2 "$nabla" gradcheck --op nosuchop
err_has "no op named 'nosuchop'"
err_has "cross_entropy"

# ---------------------------------------------------------------- nabla train / eval / predict
check "train on spirals, 2 epochs" 0 \
    "$nabla" train --data spirals --epochs 2 --hidden 16 --save M.safetensors --metrics J.jsonl --quiet
[ -s M.safetensors ] || fail "M.safetensors not written"
[ -s J.jsonl ] || fail "J.jsonl not written"
# the run's configuration, two epochs, the test figures at the end
[ "$(wc -l <J.jsonl | tr -d ' ')" -eq 4 ] || fail "J.jsonl has $(wc -l <J.jsonl | tr -d ' ') lines, expected 4"
for k in epoch train_loss train_acc val_loss val_acc grad_norm train_seconds lr; do
    [ "$(grep '^{"epoch": ' J.jsonl | grep -c "\"$k\": ")" -eq 2 ] || fail "key $k is not on both epoch lines of J.jsonl"
done
head -n 1 J.jsonl | grep -q '^{"config": {"run-id": "[0-9a-f]*", "data": "spirals", .*"hidden": "16", .*}, "nabla": "[0-9.]*", "openblas_core": "[^"]*", "threads": [0-9]*, "world_size": 1}$' ||
    fail "line 1 of J.jsonl is not the run's configuration: $(head -n 1 J.jsonl)"
sed -n 2p J.jsonl | grep -q '^{"epoch": 1,' && sed -n 3p J.jsonl | grep -q '^{"epoch": 2,' ||
    fail "epochs 1 and 2 are not lines 2 and 3 of J.jsonl"
tail -n 1 J.jsonl | grep -q '^{"end": true, "epochs_done": 2, .*"test_loss": [0-9.]*, "test_acc": [0-9.]*}$' ||
    fail "the last line of J.jsonl is not the test figures: $(tail -n 1 J.jsonl)"
head -n 3 J.jsonl | grep -q '"test_' && fail "an epoch line has test figures"
absent M.safetensors.tmp

check "eval the trained model" 0 "$nabla" eval --model M.safetensors --data spirals
out_has "accuracy"
out_has "confusion matrix"
acc=$(sed -n 's/.*  accuracy \([0-9.]*\)$/\1/p' out)
awk -v a="${acc:-x}" 'BEGIN { exit !(a + 0 == a && a >= 0 && a <= 1) }' || fail "accuracy '$acc' is not in [0, 1]"
[ "$(grep -cE '^ +[0-2]( +[0-9]+){3}$' out)" -eq 3 ] || fail "no 3 x 3 confusion matrix"

# 3 inputs of 2 features, f32: (1, 2) (0.5, -1) (0, 0)
mknpy x.npy '<f4' '(3, 2)' '\000\000\200\077\000\000\000\100\000\000\000\077\000\000\200\277\000\000\000\000\000\000\000\000'
check "predict writes logits" 0 "$nabla" predict --model M.safetensors --input x.npy --out logits.npy
is_npy logits.npy
header_has logits.npy "'descr': '<f4'"
header_has logits.npy "'shape': (3, 3)"
[ "$(npy_values logits.npy f4 | wc -l | tr -d ' ')" -eq 9 ] || fail "logits.npy does not hold 9 values"

check "predict --probs rows sum to 1" 0 "$nabla" predict --model M.safetensors --input x.npy --out probs.npy --probs
is_npy probs.npy
npy_values probs.npy f4 | awk '{ s += $1; if ($1 < 0 || $1 > 1) bad = 1 } NR % 3 == 0 {
    if (s < 0.99999 || s > 1.00001) bad = 1; s = 0 } END { exit bad || NR != 9 }' ||
    fail "probabilities out of [0, 1] or rows not summing to 1: $(npy_values probs.npy f4 | tr '\n' ' ')"

for bad in "--lr -1" "--epochs 0" "--hidden 12,x" "--optim foo"; do
    opt=${bad%% *}
    # shellcheck disable=SC2086
    check "train: bad value $bad" 2 "$nabla" train --data spirals --epochs 1 --quiet --save bad.safetensors $bad
    err_has "$opt"
    err_has "${bad#* }"
    absent bad.safetensors
done
check "train: unknown option" 2 "$nabla" train --data spirals --quiet --frobnicate 3
err_has "unknown option '--frobnicate'"

check "train: --data nosuch.csv" 1 "$nabla" train --data nosuch.csv --epochs 1 --quiet --save bad.safetensors
err_has "nosuch.csv"
absent bad.safetensors

printf '0.5,1.5,0\n1.0,2.0,1\n2.5,oops,1\n3.0,0.5,0\n' >badrow.csv
check "train: CSV with a bad row" 1 "$nabla" train --data badrow.csv --epochs 1 --quiet --save bad.safetensors
err_has "badrow.csv"
err_has "line 3"
err_has "'oops'"
absent bad.safetensors

printf 'this is not a model\n' >notmodel.safetensors
check "eval: not a safetensors file" 1 "$nabla" eval --model notmodel.safetensors --data spirals
err_has "notmodel.safetensors"
err_has "header length"

head -c 1000 M.safetensors >trunc.safetensors
check "eval: truncated model (header)" 1 "$nabla" eval --model trunc.safetensors --data spirals
err_has "trunc.safetensors"
err_has "beyond the end of the file"
size=$(wc -c <M.safetensors | tr -d ' ')
head -c $((size / 2)) M.safetensors >half.safetensors
check "eval: truncated model (data)" 1 "$nabla" eval --model half.safetensors --data spirals
err_has "half.safetensors"
err_has "beyond"
check "eval: missing model" 1 "$nabla" eval --model nosuch.safetensors
err_has "nosuch.safetensors"
check "eval: --model missing" 2 "$nabla" eval --data spirals
err_has "--model"

printf '0.5,1.5,2.5,0\n1.0,2.0,3.0,1\n2.5,0.5,1.0,2\n3.0,0.5,1.5,0\n1.5,1.5,0.5,1\n' >three.csv
check "eval: data with the wrong feature count" 1 "$nabla" eval --model M.safetensors --data three.csv --split train
err_has "3 features"
err_has "expects 2"

mknpy x3.npy '<f4' '(2, 3)' '\000\000\200\077\000\000\000\100\000\000\000\077\000\000\200\277\000\000\000\000\000\000\000\000'
check "predict: inputs with 3 features for a 2-feature model" 1 \
    "$nabla" predict --model M.safetensors --input x3.npy --out p3.npy
err_has "[2, 3]"
err_has "[N, 2]"
absent p3.npy

check "predict: --out in a missing directory" 1 "$nabla" predict --model M.safetensors --input x.npy --out nodir/p.npy
err_has "nodir/p.npy"
absent nodir

check "predict: model that is not a checkpoint" 1 "$nabla" predict --model notmodel.safetensors --input x.npy --out p.npy
err_has "notmodel.safetensors"
absent p.npy

check "predict without --out: one line per input (issue 14; --out was required)" 0 \
    "$nabla" predict --model M.safetensors --input x.npy
grep -qE '^row 0: class [0-9]+ [0-9]+\.[0-9]{2}%$' out || fail "no 'row 0: class k P%' line"
check "predict: --input missing" 2 "$nabla" predict --model M.safetensors --out p.npy
err_has "--input"

# ---------------------------------------------------------------- a run that diverges
# lr 1e30: the first step makes the weights huge, the next forward overflows. The run stops with
# a message, exit 1, and the checkpoint written before it (--save-every 1) stays loadable.
check "train: diverging run stops" 1 "$nabla" train --data spirals --optim sgd --lr 1e30 \
    --epochs 2 --quiet --save nan.safetensors --save-every 1
err_has "loss became"
err_has "last checkpoint"
check "eval of the checkpoint kept after divergence" 0 "$nabla" eval --model nan.safetensors \
    --data spirals
check "train --detect-anomaly names the op" 1 "$nabla" train --data spirals --optim sgd \
    --lr 1e30 --epochs 1 --quiet --detect-anomaly
err_has "anomaly: op 'linear_relu'"

# ---------------------------------------------------------------- --help everywhere
for cmd in xent gradcheck train eval predict demo bench diff plot; do
    check "$cmd --help" 0 "$nabla" "$cmd" --help
    out_has "usage: nabla $cmd"
done
check "nabla --help" 0 "$nabla" --help
out_has "usage: nabla COMMAND"
check "nabla with an unknown command" 2 "$nabla" frobnicate
err_has "unknown command 'frobnicate'"

rm -f out err
echo "test_cli: ok"
