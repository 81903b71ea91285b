#!/bin/sh
# test_outputs.sh NABLA WORK_DIR DATA_DIR - every file nabla writes (--save, --save-every,
# --metrics, --plot, predict --out, xent --loss-out/--grad-out), as a user and as an attacker
# meet them: devices and FIFOs written in place (private device nodes made with mknod, so a
# broken nabla cannot damage the machine's /dev/null), symlinks followed and kept, "-" as
# standard output, same-file and input-clobbering outputs refused, every path checked before any
# work, nothing truncated before its replacement is ready, disk full and file-size limits
# reported with exit 1, SIGINT/SIGTERM during training, the one-writer lock and the sweep of stale
# temporary files. Every wait is bounded with `timeout`. Stops at the first failed check.
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
    echo "test_outputs: FAIL [$current]: $*" >&2
    for f in out err; do
        if [ -s $f ]; then
            echo "--- $f:" >&2
            head -c 2000 $f | head -n 20 >&2
        fi
    done
    # KEEP_GOING=1: report every failed check (to see what an old nabla gets wrong), exit 1 at end
    if [ -n "${KEEP_GOING:-}" ]; then
        failed=1
        return 0
    fi
    exit 1
}
failed=0
# check NAME STATUS CMD ARGS...: runs the command with a time limit (stdout to ./out, stderr to
# ./err) and fails unless it exits with STATUS.
check() {
    current=$1
    want=$2
    shift 2
    echo "check: $current"
    set +e
    timeout 60 "$@" >out 2>err
    rc=$?
    set -e
    [ "$rc" -eq "$want" ] || fail "exit status $rc, expected $want (command: $*)"
}
err_has() { grep -qF -- "$1" err || fail "stderr does not mention '$1'"; }
# no temporary or lock file of any naming left in the current directory
no_leftovers() {
    left=$(ls -a . | grep -E '\.tmp\.|nabla-lock|\.partial\.|\.probe\.' || true)
    [ -z "$left" ] || fail "left behind: $left"
}
is_npy() {
    [ -s "$1" ] || fail "$1 is missing or empty"
    magic=$(od -An -tx1 -N6 "$1" | tr -d ' \n')
    [ "$magic" = "934e554d5059" ] || fail "$1 does not start with \\x93NUMPY (got $magic)"
}
is_chr() { [ -c "$1" ] || fail "$1 is no longer a character device: $(ls -l "$1")"; }

L=$data/xent_default_logits.npy # f8 [6, 5]
T=$data/xent_default_targets.npy
"$nabla" xent --logits "$L" --targets "$T" --grad-out ref_grad.npy --loss-out ref_loss.npy
is_npy ref_grad.npy

# ---------------------------------------------------------------- devices, FIFOs, symlinks, -
if mknod null c 1 3 2>/dev/null && mknod full c 1 7 2>/dev/null; then
    check "xent: --grad-out to a device (a copy of /dev/null)" 0 \
        "$nabla" xent --logits "$L" --targets "$T" --grad-out null
    is_chr null
    check "xent: --loss-out and --grad-out both to the null device" 0 \
        "$nabla" xent --logits "$L" --targets "$T" --loss-out null --grad-out null
    is_chr null
    check "xent: --grad-out to a full device (a copy of /dev/full)" 1 \
        "$nabla" xent --logits "$L" --targets "$T" --grad-out full
    err_has "'full': writing failed: No space left on device"
    is_chr full
    check "train: --metrics to a full device" 1 \
        "$nabla" train --data spirals --epochs 1 --hidden 8 --quiet --metrics full
    err_has "'full': writing failed: No space left on device"
    is_chr full
    no_leftovers
else
    echo "test_outputs: no mknod here; device checks skipped"
fi

ln -s real_grad.npy link_grad.npy
ln -s link_grad.npy link2_grad.npy
check "xent: --grad-out through a chain of symlinks" 0 \
    "$nabla" xent --logits "$L" --targets "$T" --grad-out link2_grad.npy
[ -L link_grad.npy ] && [ -L link2_grad.npy ] || fail "a symlink was replaced"
cmp -s real_grad.npy ref_grad.npy || fail "the symlink's target does not hold the gradient"
no_leftovers

mkfifo pipe
exec 3<>pipe # a reader (and writer) that never blocks: the pipe buffer holds the small output
check "xent: --grad-out to a FIFO with a reader" 0 \
    "$nabla" xent --logits "$L" --targets "$T" --grad-out pipe
size=$(wc -c <ref_grad.npy | tr -d ' ')
timeout 10 head -c "$size" <&3 >from_pipe || fail "nothing came through the FIFO"
exec 3<&-
cmp -s from_pipe ref_grad.npy || fail "the FIFO did not carry the gradient"
[ -p pipe ] || fail "the FIFO was replaced"

mkfifo lonely
check "xent: --grad-out to a FIFO nobody reads fails at once" 1 \
    "$nabla" xent --logits "$L" --targets "$T" --grad-out lonely
err_has "'lonely'"
err_has "no process is reading it"
[ -p lonely ] || fail "the FIFO was replaced"
no_leftovers

check "xent: --grad-out - writes the .npy to standard output" 0 \
    "$nabla" xent --logits "$L" --targets "$T" --grad-out -
cmp -s out ref_grad.npy || fail "standard output is not the gradient .npy"
check "xent: --loss-out -" 0 "$nabla" xent --logits "$L" --targets "$T" --loss-out -
cmp -s out ref_loss.npy || fail "standard output is not the loss .npy"

# ---------------------------------------------------------------- plot (when PLplot is built in)
"$nabla" train --data spirals --epochs 2 --hidden 8 --quiet --metrics p.jsonl
if "$nabla" plot p.jsonl -o probe.png >/dev/null 2>&1; then
    ln -s p_real.png p_link.png
    check "plot: -o a symlink" 0 "$nabla" plot p.jsonl -o p_link.png
    [ -L p_link.png ] || fail "the symlink was replaced"
    cmp -s p_real.png probe.png || fail "the symlink's target does not hold the PNG"
    check "plot: -o - writes the PNG to standard output" 0 "$nabla" plot p.jsonl -o -
    cmp -s out probe.png || fail "standard output is not the PNG"
    cp p.jsonl p_before.jsonl
    check "plot: -o the metrics file" 1 "$nabla" plot p.jsonl -o p.jsonl
    err_has "is the same file as the metrics file"
    cmp -s p.jsonl p_before.jsonl || fail "the metrics file was changed"
    rm -f p_before.jsonl
    no_leftovers
fi

# ---------------------------------------------------------------- same file, inputs, up front
check "xent: --loss-out and --grad-out the same path" 1 \
    "$nabla" xent --logits "$L" --targets "$T" --loss-out same.npy --grad-out same.npy
err_has "--loss-out 'same.npy' and --grad-out 'same.npy' name the same file"
[ ! -e same.npy ] || fail "same.npy was written"
ln -s same.npy same_link.npy
check "xent: --loss-out and --grad-out the same file through a symlink" 1 \
    "$nabla" xent --logits "$L" --targets "$T" --loss-out same.npy --grad-out same_link.npy
err_has "name the same file"
check "xent: --loss-out and --grad-out the same file through .." 1 \
    "$nabla" xent --logits "$L" --targets "$T" --loss-out ./same.npy --grad-out ../$(basename "$work")/same.npy
err_has "name the same file"
cp "$L" logits_copy.npy
check "xent: --grad-out onto the logits" 1 \
    "$nabla" xent --logits logits_copy.npy --targets "$T" --grad-out logits_copy.npy
err_has "--grad-out 'logits_copy.npy' is the same file as --logits"
cmp -s logits_copy.npy "$L" || fail "the logits were overwritten"
mkdir adir
check "xent: --grad-out a directory, refused before any work" 1 \
    "$nabla" xent --logits "$L" --targets "$T" --loss-out lo.npy --grad-out adir
err_has "'adir': is a directory"
[ ! -e lo.npy ] || fail "lo.npy was written although --grad-out was refused"

"$nabla" train --data spirals --epochs 2 --hidden 8 --quiet --save m2.st
cp "$L" x_in.npy
check "predict: --out onto the --model" 1 "$nabla" predict --model m2.st --input x_in.npy --out m2.st
err_has "is the same file as --model"
"$nabla" eval --model m2.st --data spirals >/dev/null 2>&1 || fail "the model was damaged"
check "predict: --out a directory" 1 "$nabla" predict --model m2.st --input x_in.npy --out adir
err_has "'adir': is a directory"

printf '{"epoch": 1, "old": "keep me"}\n' >keep.jsonl
check "train: --save DIR fails before the first epoch" 1 \
    "$nabla" train --data spirals --epochs 1 --hidden 8 --save adir --metrics keep.jsonl
err_has "--save: 'adir': is a directory"
if grep -q "^epoch" out; then fail "an epoch ran before --save was checked"; fi
grep -q "keep me" keep.jsonl || fail "--metrics was truncated by a run that failed up front"
check "train: --plot DIR fails before the first epoch" 1 \
    "$nabla" train --data spirals --epochs 1 --hidden 8 --plot adir --metrics keep.jsonl
err_has "--plot: 'adir': is a directory"
grep -q "keep me" keep.jsonl || fail "--metrics was truncated by a run that failed up front"
check "train: --save and --metrics the same file" 1 \
    "$nabla" train --data spirals --epochs 1 --hidden 8 --save keep.jsonl --metrics keep.jsonl
err_has "name the same file"
grep -q "keep me" keep.jsonl || fail "keep.jsonl was changed"
check "train: --metrics in a missing directory" 1 \
    "$nabla" train --data spirals --epochs 1 --hidden 8 --metrics nodir/m.jsonl
err_has "nodir/m.jsonl"
err_has "No such file or directory"
check "train: a run that fails in epoch 1 keeps the old --metrics" 1 \
    "$nabla" train --data spirals --epochs 2 --hidden 8 --lr 1e30 --quiet --metrics keep.jsonl
err_has "loss became"
grep -q "keep me" keep.jsonl || fail "--metrics was truncated before there was anything to replace it with"
no_leftovers

# ---------------------------------------------------------------- file size limit (EFBIG)
current="train: --metrics past the file size limit"
echo "check: $current"
set +e
(
    ulimit -f 3 # 1536 bytes: the configuration line and a few epochs fit, not six
    trap '' XFSZ
    exec timeout 60 "$nabla" train --data spirals --epochs 6 --hidden 8 --quiet --metrics big.jsonl
) >out 2>err
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "exit status $rc, expected 1"
err_has "'big.jsonl': writing failed: File too large"
[ "$(wc -l <big.jsonl | tr -d ' ')" -ge 2 ] || fail "the epochs that fitted were lost"
tail -c 1 big.jsonl | od -An -c | grep -q '\\n' || fail "big.jsonl was cut mid-line"
no_leftovers

# ---------------------------------------------------------------- resume of a finished run
opts="--data spirals --epochs 2 --hidden 8 --quiet"
"$nabla" train $opts --save fin.st --metrics fin.jsonl
check "train: --resume of a finished run with --save NEW writes NEW" 0 \
    "$nabla" train $opts --resume fin.st --save new.st --metrics fin.jsonl
[ -s new.st ] || fail "new.st was not written"
"$nabla" eval --model new.st --data spirals >/dev/null 2>&1 || fail "new.st does not load"
grep -q "saved new.st" out && fail "--quiet printed 'saved'"
[ "$(grep -c "^{\"epoch\": " fin.jsonl)" -eq 2 ] || fail "fin.jsonl lost the finished run's epochs"

# ---------------------------------------------------------------- stale temporary files
dead=$(sh -c 'echo $$')
: >".st.st.nabla.tmp.$dead.Ab3dE9"
: >"st.st.tmp.$dead"
: >".st.st.nabla.tmp.$$.Zz9zZ9" # this shell is alive: kept
check "train: stale temporary files of dead processes are swept" 0 "$nabla" train $opts --save st.st
[ ! -e ".st.st.nabla.tmp.$dead.Ab3dE9" ] && [ ! -e "st.st.tmp.$dead" ] || fail "stale files kept: $(ls -a | grep tmp)"
[ -e ".st.st.nabla.tmp.$$.Zz9zZ9" ] || fail "a live process's temporary file was removed"
rm -f ".st.st.nabla.tmp.$$.Zz9zZ9"

# ---------------------------------------------------------------- one writer per target
long="--data spirals --epochs 200 --hidden 64,64 --quiet"
"$nabla" train $long --save lk.st --save-every 1 >/dev/null 2>lk1.err &
first=$!
timeout 60 sh -c "while [ ! -e lk.st ]; do sleep 0.02; done" || fail "the first run wrote no checkpoint"
check "train: a second writer of the same --save is refused" 1 \
    "$nabla" train --data spirals --epochs 1 --hidden 8 --quiet --save lk.st
err_has "another nabla process (pid $first) is writing it"
kill -s TERM "$first"
set +e
wait "$first"
set -e
no_leftovers

# ---------------------------------------------------------------- SIGINT / SIGTERM
# A script's background jobs start with SIGINT ignored (and nabla keeps an ignored signal
# ignored, as a background job must): `env --default-signal` gives them the terminal's default.
if env --default-signal=INT true 2>/dev/null; then
    sigs="INT TERM"
    deflt="env --default-signal=INT"
else
    echo "test_outputs: env has no --default-signal; SIGINT checks skipped"
    sigs=TERM
    deflt=""
fi
sigopts="--data spirals --epochs 200 --hidden 64,64 --quiet --save ck.st --save-every 1 --metrics ck.jsonl"
for sig in $sigs; do
    for delay in 0 0.3 1; do
        current="train: SIG$sig after ${delay}s"
        echo "check: $current"
        rm -f ck.st ck.jsonl
        $deflt "$nabla" train $sigopts >out 2>err &
        pid=$!
        # from the first checkpoint on (slow starts, e.g. under sanitizers, do not matter)
        timeout 60 sh -c "while [ ! -e ck.st ]; do sleep 0.02; done" || fail "no checkpoint came"
        sleep "$delay"
        kill -s "$sig" "$pid"
        set +e
        timeout 30 sh -c "while kill -0 $pid 2>/dev/null; do sleep 0.05; done"
        wait "$pid"
        rc=$?
        set -e
        want=130
        [ "$sig" = TERM ] && want=143
        [ "$rc" -eq "$want" ] || fail "exit status $rc, expected $want"
        err_has "stopped by SIG$sig"
        err_has "the last checkpoint is ck.st"
        err_has "--resume ck.st"
        no_leftovers
        "$nabla" eval --model ck.st --data spirals >/dev/null 2>&1 || fail "ck.st does not load"
    done
done
# the printed command continues the run to its end: a short run (20 epochs, so that the
# sanitizer build finishes it in seconds) stopped at its first checkpoint
current="the printed resume command"
echo "check: $current"
rm -f ck.st ck.jsonl
"$nabla" train --data spirals --epochs 20 --hidden 64,64 --quiet --save ck.st --save-every 1 \
    --metrics ck.jsonl >out 2>err &
pid=$!
timeout 60 sh -c "while [ ! -e ck.st ]; do sleep 0.02; done" || fail "no checkpoint came"
kill -s TERM "$pid" 2>/dev/null || true
set +e
wait "$pid"
rc=$?
set -e
if [ "$rc" -eq 143 ]; then
    cmd=$(sed -n 's/^  \(nabla train .*\)$/\1/p' err)
    [ -n "$cmd" ] || fail "no resume command printed"
    eval "set -- $cmd"
    shift
    timeout 300 "$nabla" "$@" >out 2>err || fail "the printed resume command failed"
else
    [ "$rc" -eq 0 ] || fail "exit status $rc, expected 143 (or 0 if the run ended first)"
fi
[ "$(grep -c '^{"epoch": ' ck.jsonl)" -eq 20 ] || fail "ck.jsonl has $(grep -c '^{"epoch": ' ck.jsonl) epoch lines, expected 20"
[ "$(wc -l <ck.jsonl | tr -d ' ')" -eq 22 ] || fail "ck.jsonl has $(wc -l <ck.jsonl) lines, expected 22 (configuration, epochs, end)"
no_leftovers

current="train: SIGTERM without --save"
echo "check: $current"
"$nabla" train --data spirals --epochs 500 --hidden 64,64 --quiet --metrics nosave.jsonl >out 2>err &
pid=$!
timeout 60 sh -c "while [ ! -e nosave.jsonl ]; do sleep 0.02; done" || fail "no epoch finished"
kill -s TERM "$pid"
set +e
wait "$pid"
rc=$?
set -e
[ "$rc" -eq 143 ] || fail "exit status $rc, expected 143"
err_has "no checkpoint"

if [ -n "$deflt" ]; then
    current="train: a SIGINT ignored by the parent stays ignored"
    echo "check: $current"
    "$nabla" train --data spirals --epochs 3 --hidden 8 --quiet --save ign.st >out 2>err &
    pid=$!
    sleep 0.2
    kill -s INT "$pid" 2>/dev/null || true
    set +e
    wait "$pid"
    rc=$?
    set -e
    [ "$rc" -eq 0 ] || fail "exit status $rc, expected 0 (SIGINT was ignored when nabla started)"
fi

[ "$failed" -eq 0 ] || exit 1
echo "test_outputs: all checks passed"
