#!/bin/sh
# test_bench_ops.sh NABLA WORK_DIR - `nabla bench ops --threads T`: the header names the thread
# count, every op line gives its % of memcpy, and --json gives threads and pct_memcpy on each of
# the 12 lines (pct_memcpy = 100 gbps / memcpy_gbps to the printed precision).
set -u
nabla=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
fail() {
    echo "test_bench_ops: FAIL: $*" >&2
    exit 1
}
timeout 60 "$nabla" bench ops --n 4096 --repeat 2 --threads 2 >"$work/t2.txt" 2>&1 ||
    fail "bench ops --threads 2: exit $?"
grep -q "min of 2 runs .*, 2 threads, BLAS core" "$work/t2.txt" || fail "header: $(head -1 "$work/t2.txt")"
[ "$(grep -c '^[a-z]* *\(fwd\|bwd\) .*[0-9]%$' "$work/t2.txt")" -eq 12 ] || fail "not 12 op lines with a %"
timeout 60 "$nabla" bench ops --n 4096 --repeat 1 --threads 1 --json >"$work/t1.json" 2>&1 ||
    fail "bench ops --json: exit $?"
[ "$(grep -c '"threads": 1, ' "$work/t1.json")" -eq 12 ] || fail "--json: not 12 lines with threads 1"
awk -F'[:,}]' '{
    for (i = 1; i < NF; i++) {
        if ($i ~ /"gbps"/) g = $(i + 1);
        if ($i ~ /"memcpy_gbps"/) m = $(i + 1);
        if ($i ~ /"pct_memcpy"/) p = $(i + 1);
    }
    want = 100 * g / m;
    if (p == "" || p - want > 0.2 || want - p > 0.2) { print "line " NR ": pct_memcpy " p ", want " want; bad = 1 }
} END { exit bad }' "$work/t1.json" || fail "--json pct_memcpy does not match gbps / memcpy_gbps"
"$nabla" bench ops --threads 0 >/dev/null 2>&1 && fail "--threads 0 accepted"
echo "test_bench_ops: ok"
exit 0
