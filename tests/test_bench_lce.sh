#!/bin/sh
# test_bench_lce.sh NABLA WORK_DIR - `nabla bench lce`: its JSON keys, and the memory the fused
# head saves, measured (the arena's use at the end of a step): at N = 2048, V = 8192 the unfused
# step holds the logits and their gradient (>= 2 N V 4 bytes = 128 MiB), the fused recompute path
# and the one pass into the leaves at most 1/16 of that; the saved one pass holds a block of
# logits plus the saved gradient of W.
set -eu
nabla=$1
work=$2
here=$(cd "$(dirname "$0")" && pwd)
test_name=test_bench_lce
rm -rf "$work" && mkdir -p "$work" && cd "$work"
. "$here/lib.sh"

check "bench lce --json" 0 "$nabla" bench lce --n 2048 --d 8 --v 8192 --impl all --repeat 1 --json
[ "$(wc -l <out)" -eq 4 ] || fail "expected 4 JSON lines"
for key in '"bench": "lce"' '"impl": "fused"' '"impl": "fused-saved"' '"impl": "unfused"' \
    '"n": 2048' '"d": 8' '"v": 8192' '"threads": 1' '"ms_min"' '"ms_median"' '"ms_max"' \
    '"peak_extra_bytes"'; do
    out_has "$key"
done
fused=$(json_num out 1 peak_extra_bytes)
saved=$(json_num out 2 peak_extra_bytes)
recompute=$(json_num out 3 peak_extra_bytes)
unfused=$(json_num out 4 peak_extra_bytes)
[ "$unfused" -ge $((2 * 2048 * 8192 * 4)) ] || fail "unfused peak extra $unfused < 2 N V 4"
[ $((recompute * 16)) -le "$unfused" ] || fail "recompute peak extra $recompute > 1/16 of $unfused"
# the one pass into the leaves: a block of at most N / 8 rows of logits (1/16 of the unfused
# path's two N x V arrays) plus O(N) row statistics (4 doubles a row, a 48-byte state per row
# of the block) and headers
[ "$fused" -le $((unfused / 16 + 2048 * 80 + 16384)) ] ||
    fail "one pass in leaves: peak extra $fused > 1/16 of $unfused + O(N)"
# the saved one pass holds W's gradient (V x D floats) on top
[ "$saved" -ge $((fused + 8192 * 8 * 4)) ] || fail "saved one pass $saved: no V x D buffer?"
[ "$saved" -lt "$unfused" ] || fail "one-pass peak extra $saved >= unfused $unfused"
check "bench lce text ratios" 0 "$nabla" bench lce --n 64 --d 8 --v 512 --impl all --repeat 1
out_has "fused-recompute / unfused: time"
check "bench lce bad impl" 2 "$nabla" bench lce --impl nope
err_has "bad value for --impl"
echo "test_bench_lce: ok"
