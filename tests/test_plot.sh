#!/bin/sh
# test_plot.sh NABLA WORK_DIR - `nabla plot` end to end: a 3-epoch metrics file gives a real PNG
# (signature, > 5 KB) and exit 0; a corrupt file gives exit 1, names the bad line, and leaves no
# PNG (nor a temporary file) behind. Exit 77 (skipped) when PLplot has no pngcairo device.
set -u
nabla=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
# Under AddressSanitizer, ctest gives every test tests/lsan.supp (fontconfig's and libltdl's
# process-lifetime allocations); leaks anywhere else fail the test.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1"
export ASAN_OPTIONS
fail() {
    echo "test_plot: FAIL: $*" >&2
    exit 1
}

# --- a good file: exit 0, a PNG over 5 KB ---
cat >"$work/metrics.jsonl" <<'EOF'
{"epoch": 1, "train_loss": 0.612345, "train_acc": 0.781200, "test_loss": 0.498765, "test_acc": 0.822100, "train_seconds": 1.2345, "lr": 0.002}
{"epoch": 2, "train_loss": 0.421000, "train_acc": 0.851000, "test_loss": 0.431000, "test_acc": 0.845500, "train_seconds": 1.1990, "lr": 0.00146}
{"epoch": 3, "train_loss": 0.365000, "train_acc": 0.869800, "test_loss": 0.402000, "test_acc": 0.856300, "train_seconds": 1.2011, "lr": 0.0005}
EOF
"$nabla" plot "$work/metrics.jsonl" -o "$work/out.png" >"$work/good.out" 2>"$work/good.err"
rc=$?
if [ $rc -eq 1 ] && grep -q "no pngcairo device" "$work/good.err"; then
    cat "$work/good.err" >&2
    echo "test_plot: skipped: PLplot's cairo driver is not installed (plplot-driver-cairo)"
    exit 77
fi
[ $rc -eq 0 ] || { cat "$work/good.err" >&2; fail "good metrics file: exit $rc, expected 0"; }
[ -f "$work/out.png" ] || fail "no out.png written"
sig=$(od -An -tx1 -N8 "$work/out.png" | tr -d ' \n')
[ "$sig" = "89504e470d0a1a0a" ] || fail "out.png does not start with the PNG signature ($sig)"
size=$(wc -c <"$work/out.png" | tr -d ' ')
[ "$size" -gt 5120 ] || fail "out.png is only $size bytes (expected > 5 KB)"
ls "$work" | grep -q '\.tmp\.' && fail "a temporary file was left behind: $(ls "$work")"

# --- a corrupt file (line 2 is not JSON): exit 1, the message names line 2, no PNG ---
{
    sed -n 1p "$work/metrics.jsonl"
    echo '{"epoch": 2, "train_loss": 0.42, "train_acc": oops}'
    sed -n 3p "$work/metrics.jsonl"
} >"$work/bad.jsonl"
"$nabla" plot "$work/bad.jsonl" -o "$work/bad.png" >"$work/bad.out" 2>"$work/bad.err"
rc=$?
[ $rc -eq 1 ] || { cat "$work/bad.err" >&2; fail "corrupt metrics file: exit $rc, expected 1"; }
grep -q "bad.jsonl:2:" "$work/bad.err" || { cat "$work/bad.err" >&2; fail "message does not name bad.jsonl:2"; }
[ ! -e "$work/bad.png" ] || fail "bad.png was written for a corrupt metrics file"
ls "$work" | grep -q '\.tmp\.' && fail "a temporary file was left behind: $(ls "$work")"

# --- a missing key is reported with its name and line ---
sed '3s/, "test_acc": 0.856300//' "$work/metrics.jsonl" >"$work/nokey.jsonl"
"$nabla" plot "$work/nokey.jsonl" -o "$work/nokey.png" >/dev/null 2>"$work/nokey.err"
rc=$?
[ $rc -eq 1 ] || fail "missing key: exit $rc, expected 1"
grep -q 'nokey.jsonl:3: missing key "test_acc"' "$work/nokey.err" || { cat "$work/nokey.err" >&2; fail "missing key message"; }
[ ! -e "$work/nokey.png" ] || fail "nokey.png was written"

# --- usage errors exit 2 ---
"$nabla" plot "$work/metrics.jsonl" >/dev/null 2>&1
rc=$?
[ $rc -eq 2 ] || fail "no -o: exit $rc, expected 2"

echo "test_plot: ok (out.png $size bytes; corrupt and incomplete files rejected)"
exit 0
