# lib.sh - what the shell tests share. Source it after setting `test_name`; it gives:
#   check NAME STATUS CMD ARGS...  run CMD (CHECK_TIMEOUT s, default 60; stdout to ./out, stderr
#                                  to ./err) and fail
#                                  unless it exits with STATUS
#   fail MESSAGE                   report the current check with out/err and exit 1
#   err_has TEXT / out_has TEXT    the last check's stderr / stdout contains TEXT
#   json_num FILE LINE KEY         the number KEY of line LINE (a sed address) of a JSON-lines file
#   mknpy FILE DESCR SHAPE BYTES   a version 1.0 .npy of BYTES (printf escapes)
current=""
fail() {
    echo "$test_name: FAIL [$current]: $*" >&2
    for f in out err; do
        if [ -s $f ]; then
            echo "--- $f:" >&2
            head -c 2000 $f | head -n 20 >&2
        fi
    done
    exit 1
}
check() {
    current=$1
    want=$2
    shift 2
    echo "check: $current"
    set +e
    timeout "${CHECK_TIMEOUT:-60}" "$@" >out 2>err
    rc=$?
    set -e
    [ "$rc" -eq "$want" ] || fail "exit status $rc, expected $want (command: $*)"
}
err_has() { grep -qF -- "$1" err || fail "stderr does not mention '$1'"; }
out_has() { grep -qF -- "$1" out || fail "stdout does not mention '$1'"; }
json_num() { sed -n "$2p" "$1" | sed -n "s/.*\"$3\": \([-0-9.eE+]*\).*/\1/p"; }
mknpy() {
    h="{'descr': '$2', 'fortran_order': False, 'shape': $3, }"
    while [ $(((10 + ${#h} + 1) % 64)) -ne 0 ]; do h="$h "; done
    n=$((${#h} + 1))
    {
        printf '\223NUMPY\001\000'
        printf "\\$(printf %03o $((n % 256)))\\$(printf %03o $((n / 256)))"
        printf '%s\n' "$h"
        printf "$4"
    } >"$1"
}
