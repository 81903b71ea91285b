#!/bin/sh
# test_plot_val.sh NABLA WORK_DIR - `nabla plot` on the metrics format with a validation set:
# train and val curves plus the end record's test figure as one "test (end)" point; the old
# format (per-epoch test_*) still plots a "test" curve; a run without validation plots train
# only. Mixed or garbage files exit 1 naming FILE:LINE, write no PNG, leave an existing PNG
# as it was and leave no temporary file. Exit 77 (skipped) when PLplot has no pngcairo device.
set -u
nabla=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1"
export ASAN_OPTIONS
# PLplot's temporary file goes to $TMPDIR: keep it in $work so a left-over one is seen
TMPDIR=$work
export TMPDIR
fail() {
    echo "test_plot_val: FAIL: $*" >&2
    exit 1
}

config='{"config": {"data": "spirals", "hidden": "16"}, "nabla": "0.3.0", "openblas_core": "Haswell", "threads": 2, "world_size": 1}'
e1='{"epoch": 1, "train_loss": 0.61, "train_acc": 0.78, "val_loss": 0.50, "val_acc": 0.82, "grad_norm": 1.5, "train_seconds": 0.8, "lr": 0.002}'
e2='{"epoch": 2, "train_loss": 0.45, "train_acc": 0.84, "val_loss": 0.44, "val_acc": 0.845, "grad_norm": 1.3, "train_seconds": 0.8, "lr": 0.0018}'
e3='{"epoch": 3, "train_loss": 0.40, "train_acc": 0.86, "val_loss": 0.41, "val_acc": 0.855, "grad_norm": 1.2, "train_seconds": 0.8, "lr": 0.0015}'
end='{"end": true, "epochs_done": 3, "best_epoch": 3, "test_loss": 0.42, "test_acc": 0.851}'
old1='{"epoch": 1, "train_loss": 0.612345, "train_acc": 0.781200, "test_loss": 0.498765, "test_acc": 0.822100, "train_seconds": 1.2345, "lr": 0.002}'
old2='{"epoch": 2, "train_loss": 0.421000, "train_acc": 0.851000, "test_loss": 0.431000, "test_acc": 0.845500, "train_seconds": 1.1990, "lr": 0.00146}'

no_tmp() {
    ls -A "$work" | grep -q 'tmp' && fail "a temporary file was left behind: $(ls "$work")"
    return 0
}

# good NAME EXPECTED: NAME.jsonl plots, exit 0, a real PNG, and stdout says EXPECTED
good() {
    "$nabla" plot "$work/$1.jsonl" -o "$work/$1.png" >"$work/$1.out" 2>"$work/$1.err"
    rc=$?
    if [ $rc -eq 1 ] && grep -q "no pngcairo device" "$work/$1.err"; then
        echo "test_plot_val: skipped: PLplot's cairo driver is not installed"
        exit 77
    fi
    [ $rc -eq 0 ] || { cat "$work/$1.err" >&2; fail "$1: exit $rc, expected 0"; }
    sig=$(od -An -tx1 -N8 "$work/$1.png" | tr -d ' \n')
    [ "$sig" = "89504e470d0a1a0a" ] || fail "$1.png does not start with the PNG signature"
    size=$(wc -c <"$work/$1.png" | tr -d ' ')
    [ "$size" -gt 5120 ] || fail "$1.png is only $size bytes"
    grep -qF "plotted $work/$1.png ($2)" "$work/$1.out" ||
        fail "$1: stdout '$(cat "$work/$1.out")', expected '($2)'"
    no_tmp
}

# bad NAME WHERE NEEDLE: NAME.jsonl exits 1 with "NAME.jsonl:WHERE" and NEEDLE on stderr; the
# PNG already at the target is untouched
bad() {
    printf 'not a png' >"$work/$1.png"
    "$nabla" plot "$work/$1.jsonl" -o "$work/$1.png" >"$work/$1.out" 2>"$work/$1.err"
    rc=$?
    [ $rc -eq 1 ] || { cat "$work/$1.err" >&2; fail "$1: exit $rc, expected 1"; }
    grep -qF "$1.jsonl:$2" "$work/$1.err" || fail "$1: stderr '$(cat "$work/$1.err")' lacks '$1.jsonl:$2'"
    grep -qF "$3" "$work/$1.err" || fail "$1: stderr '$(cat "$work/$1.err")' lacks '$3'"
    [ "$(cat "$work/$1.png")" = "not a png" ] || fail "$1: the existing $1.png was replaced"
    no_tmp
}

# --- the current format: config, epochs with val, end record with test ---
printf '%s\n' "$config" "$e1" "$e2" "$e3" "$end" >"$work/val.jsonl"
good val "3 epochs: train and val curves, test (end) point"

# --- an unfinished run (no end record): no test point ---
printf '%s\n' "$config" "$e1" "$e2" >"$work/unfinished.jsonl"
good unfinished "2 epochs: train and val curves"
grep -q "test (end)" "$work/unfinished.out" && fail "unfinished: a test point without an end record"

# --- no validation set: train curves and the test point ---
printf '%s\n' "$config" "$e1" "$e2" "$e3" "$end" | sed 's/, "val_loss": [0-9.]*, "val_acc": [0-9.]*//' \
    >"$work/trainonly.jsonl"
grep -q val_ "$work/trainonly.jsonl" && fail "trainonly.jsonl still has val_ keys"
good trainonly "3 epochs: train curves, test (end) point"

# --- unknown keys and record kinds are skipped ---
printf '%s\n' "$config" '{"checkpoint": "m.st", "step": 100}' "$e1" '{"note": [1, {"a": null}]}' \
    "$(echo "$e2" | sed 's/}$/, "future": {"x": [1, 2]}}/')" "$end" >"$work/unknown.jsonl"
good unknown "2 epochs: train and val curves, test (end) point"

# --- the old format (per-epoch test_*, no config, no end record): a "test" curve ---
printf '%s\n' "$old1" "$old2" >"$work/old.jsonl"
good old "2 epochs: train and test curves"

# --- refused: mixed formats, garbage, two runs in one file, a bad end record ---
printf '%s\n' "$e1" "$e2" "$old2" | sed '3s/"epoch": 2/"epoch": 3/' >"$work/mixed.jsonl"
bad mixed "3:" "has test_loss and test_acc, but the first epoch (line 1) has val_loss and val_acc"
printf '%s\n' "$e1" "$old2" | sed '2s/"test_acc": [0-9.]*, //' >"$work/halfold.jsonl"
bad halfold "2:" "missing key \"test_acc\""
{ printf '%s\n' "$config" "$e1"; printf '\001\002\377garbage\n'; printf '%s\n' "$e3"; } >"$work/garbage.jsonl"
bad garbage "3:" "not valid JSON"
printf '%s\n' "$e1" "$e2" "$end" "$e1" "$e2" "$end" >"$work/tworuns.jsonl"
bad tworuns "4:" "after the end record of line 3"
printf '%s\n' "$e1" "$e2" '{"end": true, "test_loss": 0.4, "test_acc": "high"}' >"$work/badend.jsonl"
bad badend "3:" "\"test_acc\" is not a number"

echo "test_plot_val: ok (val, unfinished, train-only, unknown-key and old files plotted; mixed, garbage, two-run and bad-end files refused)"
exit 0
