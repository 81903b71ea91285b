#!/bin/sh
# test_bench_xent.sh NABLA WORK_DIR - `nabla bench xent`: the graph rows (issue 13) beside the raw
# ones, with the same JSON keys in the same order: impl graph (fwd: evaluation, fwd_bwd: the one
# pass) and graph-2pass (fwd_bwd with opts.two_pass), f32 only (no op outputs half logits).
set -eu
nabla=$1
work=$2
here=$(cd "$(dirname "$0")" && pwd)
test_name=test_bench_xent
rm -rf "$work" && mkdir -p "$work" && cd "$work"
. "$here/lib.sh"

check "bench xent --impl all --json" 0 "$nabla" bench xent --n 64 --v 1000 --repeat 2 --impl all --json
[ "$(wc -l <out)" -eq 7 ] || fail "expected 7 JSON lines (fused 2, graph 3, unfused 2)"
for row in '"impl": "fused", .*"mode": "fwd"' '"impl": "fused", .*"mode": "fwd_bwd"' \
    '"impl": "graph", .*"mode": "fwd"' '"impl": "graph", .*"mode": "fwd_bwd"' \
    '"impl": "graph-2pass", .*"mode": "fwd_bwd"' '"impl": "unfused", .*"mode": "fwd_bwd"'; do
    grep -q "$row" out || fail "no row matching $row"
done
# the keys of every row, in order, are the raw fused rows'
keys() { sed 's/"\([a-z_]*\)": [^,}]*/\1/g; s/[{} ]//g' "$1"; }
keys out | sort -u >keys
[ "$(wc -l <keys)" -eq 1 ] || fail "rows with different keys: $(cat keys)"
grep -qx 'bench,impl,n,v,threads,variant,dtype,mode,ms_min,ms_median,ms_max,gbps' keys ||
    fail "keys changed: $(cat keys)"
check "bench xent --impl graph" 0 "$nabla" bench xent --n 64 --v 1000 --repeat 1 --impl graph
[ "$(wc -l <out)" -eq 3 ] || fail "expected 3 text lines for --impl graph"
out_has "graph-2pass fwd_bwd"
check "bench xent --impl graph --dtype f16" 0 "$nabla" bench xent --n 64 --v 1000 --repeat 1 \
    --impl graph --dtype f16
[ ! -s out ] || fail "graph rows for f16 logits"
err_has "runs f32 logits only"
check "bench xent bad impl" 2 "$nabla" bench xent --impl nope
err_has "bad value for --impl"
echo "test_bench_xent: ok"
