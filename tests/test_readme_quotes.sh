#!/bin/sh
# test_readme_quotes.sh NABLA README - the command outputs README.md quotes are regenerated and
# compared with the quotes, so they cannot drift: the `nabla xent --naive` example (every line
# exactly, except the fused f32 kernel's values, whose last digits depend on the SIMD kernel the
# CPU gets: within 1e-6 relative), and rows of the "what bad input gets" table.
set -eu
nabla=$1
readme=$2
here=$(cd "$(dirname "$0")" && pwd)
work=${3:-readme-quotes-work}
rm -rf "$work"
mkdir -p "$work"
cd "$work"
test_name=test_readme_quotes
. "$here/lib.sh"
# z = [[-100, -101, -102], [1000, 1001, 1002], [1, 2, 3]] (f32), targets [0, 2, 1] (i64)
mknpy z.npy '<f4' '(3, 3)' '\000\000\310\302\000\000\312\302\000\000\314\302\000\000\172\104\000\100\172\104\000\200\172\104\000\000\200\077\000\000\000\100\000\000\100\100'
mknpy t.npy '<i8' '(3,)' '\000\000\000\000\000\000\000\000\002\000\000\000\000\000\000\000\001\000\000\000\000\000\000\000'

# ---- the --naive example: the lines after the "$ nabla xent ... --naive" line, to the fence
"$nabla" xent --logits z.npy --targets t.npy --naive >got.txt || fail "nabla xent --naive failed"
sed -n '/^\$ nabla xent --logits z.npy --targets t.npy --naive/,/^```$/p' "$readme" | sed '1d;$d' >want.txt
[ -s want.txt ] || fail "README has no '\$ nabla xent --logits z.npy --targets t.npy --naive' block"
[ "$(wc -l <want.txt)" -eq "$(wc -l <got.txt)" ] ||
    fail "the example has $(wc -l <got.txt) lines, the README quotes $(wc -l <want.txt)"
# kernel-dependent: the fused column (field 3 of the row lines), the kernel's rel err, the mean
paste -d '\n' want.txt got.txt | awk '
    function close_(a, b) { return (a == b) || (a - b < 1e-6 * (a < 0 ? -a : a) && b - a < 1e-6 * (a < 0 ? -a : a)) }
    NR % 2 == 1 { w = $0; next }
    {
        g = $0; n = split(w, a, " "); m = split(g, b, " ");
        if (w == g) next;
        if (n == m && a[1] ~ /^[0-9]+$/) {            # a row: only the fused column may differ
            for (i = 1; i <= n; i++) if (i != 3 && a[i] != b[i]) { print "row differs: " w " / " g; bad = 1 }
            if (!close_(a[3], b[3])) { print "fused value differs: " w " / " g; bad = 1 }
            next
        }
        if (n == m && (w ~ /^fused kernel/ || w ~ /^loss \(mean\)/ || w ~ /^largest \|grad fused/)) {
            d = b[n] - a[n]; if (d < 0) d = -d;            # printed to 6 digits: 1e-5 relative
            if (!(w ~ /^fused kernel/) && d > 1e-5 * (a[n] < 0 ? -a[n] : a[n])) { print "differs: " w " / " g; bad = 1 }
            next
        }
        print "line differs: [" w "] / [" g "]"; bad = 1
    }
    END { exit bad }' || fail "the --naive example in the README does not match what nabla prints"

# ---- rows of the bad-input table: each quoted message (pieces between "...") appears in stderr
# quote ROW_START N CMD...: the N-th backticked message of the README row starting ROW_START
quote() {
    row=$1
    k=$2
    shift 2
    line=$(grep -F -- "| $row |" "$readme" | head -n 1)
    [ -n "$line" ] || fail "README has no row '$row'"
    msg=$(printf '%s\n' "$line" | awk -F'`' -v k="$k" '{ print $(2 * k) }')
    [ -n "$msg" ] || fail "row '$row' has no message $k"
    set +e
    "$@" >out.txt 2>err.txt
    set -e
    printf '%s\n' "$msg" | sed 's/\\|/|/g; s/\.\.\./\n/g' | while IFS= read -r piece; do
        [ -z "$piece" ] && continue
        grep -qF -- "$piece" err.txt || fail "row '$row': nabla $* printed [$(cat err.txt)], not [$piece]"
    done
    echo "ok: $row"
}
quote "smoothing outside [0, 1)" 1 "$nabla" xent --logits z.npy --targets t.npy --label-smoothing 1.5
quote "bad option values" 1 "$nabla" train --lr -1
quote "bad option values" 2 "$nabla" train --hidden 12,x
quote "a mistyped option" 1 "$nabla" train --epoch 3
"$nabla" train --data spirals --epochs 1 --hidden 8 --seed 3 --save run.st --quiet ||
    fail "training run.st failed"
quote "resuming with another data split, model, seed, batch or optimiser" 1 \
    "$nabla" train --resume run.st --seed 4
quote "resuming with another learning rate, epoch count, patience..." 1 \
    "$nabla" train --resume run.st --lr 0.001 --save run2.st --quiet
echo "test_readme_quotes: every quote checked"
