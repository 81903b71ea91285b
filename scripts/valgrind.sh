#!/bin/sh
# valgrind.sh BUILD_DIR - valgrind memcheck over the core tests: zero errors and zero leaks
# (definitely or indirectly lost) or the run fails. OpenBLAS keeps its thread pool and buffers
# for the life of the process: those are "still reachable", not leaks.
set -eu
build=$(cd "$1" && pwd)
status=0
for t in test_tensor test_graph test_ops test_gradcheck test_logsoftmax test_cross_entropy \
         test_npy test_safetensors test_checkpoint test_optim test_accum test_api_args \
         test_eval_lib; do
    exe="$build/tests/$t"
    [ -x "$exe" ] || { echo "valgrind: $exe not built"; status=1; continue; }
    log="$build/valgrind-$t.log"
    if (cd "$(dirname "$0")/../tests" && OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \
        valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite,indirect \
        --error-exitcode=99 --log-file="$log" "$exe" > /dev/null 2>&1); then
        echo "valgrind $t: $(grep -E 'ERROR SUMMARY' "$log" | sed 's/^==[0-9]*== //')"
    else
        echo "valgrind $t: FAILED (see $log)"
        grep -E "ERROR SUMMARY|definitely lost|indirectly lost" "$log" || true
        status=1
    fi
done
exit $status
