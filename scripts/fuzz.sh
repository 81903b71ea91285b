#!/bin/sh
# fuzz.sh SECONDS [NAME...] - build the libFuzzer harnesses (fuzz/) with clang and run each one.
#
# NAME is any of: npy idx csv safetensors image (default: all five, one after the other).
# Installs nothing: clang and its libFuzzer runtime must be there (Debian: clang
# libclang-rt-14-dev, which `sh scripts/install-deps.sh fuzz` installs; `make fuzz` does that).
#
# The build goes to $FUZZ_BUILD (default build-fuzz), configured with clang and -DNABLA_FUZZ=ON
# (-O1 -g, asserts on). Each harness runs for SECONDS on its own copy of the committed seeds,
# $FUZZ_BUILD/corpus/NAME (new inputs the fuzzer finds go there, never into fuzz/corpus/), plus
# fuzz/regressions/NAME read-only, with the tokens of fuzz/dict/NAME.dict. Crashing inputs are
# written to $FUZZ_BUILD/crashes/NAME/ and the full log to $FUZZ_BUILD/logs/NAME.log. Prints one
# line per harness: executions and verdict.
# Exit status: 0 when no harness crashed, 1 on any crash (or a harness that did not run), 2 on bad
# arguments.
set -eu
cd "$(dirname "$0")/.."

usage() {
    echo "usage: sh scripts/fuzz.sh SECONDS [npy|idx|csv|safetensors|image ...]" >&2
    exit 2
}

[ $# -ge 1 ] || usage
secs=$1
shift
case "$secs" in
'' | *[!0-9]*) usage ;;
esac
[ "$secs" -ge 1 ] || usage
names=${*:-npy idx csv safetensors image}
for n in $names; do
    case "$n" in
    npy | idx | csv | safetensors | image) ;;
    *) echo "fuzz.sh: unknown harness '$n'" >&2; usage ;;
    esac
done

build=${FUZZ_BUILD:-build-fuzz}
cc=${FUZZ_CC:-clang}

# ---- the tools: clang, and a libFuzzer runtime it can link ----
if ! command -v "$cc" >/dev/null 2>&1; then
    echo "fuzz.sh: '$cc' not found. Fuzzing needs clang and its libFuzzer runtime; on Debian:" >&2
    echo "  sudo apt-get install -y clang libclang-rt-14-dev" >&2
    echo "(or, as root: sh scripts/install-deps.sh fuzz)" >&2
    exit 1
fi
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '%s\n' 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)' \
    '{ (void)d; (void)n; return 0; }' >"$probe/probe.c"
if ! "$cc" -fsanitize=fuzzer,address,undefined "$probe/probe.c" -o "$probe/probe" \
    >"$probe/log" 2>&1; then
    echo "fuzz.sh: '$cc' cannot link a libFuzzer program (-fsanitize=fuzzer,address,undefined):" >&2
    sed 's/^/  /' "$probe/log" | head -n 5 >&2
    echo "The libFuzzer/sanitizer runtime is missing; on Debian:" >&2
    echo "  sudo apt-get install -y libclang-rt-14-dev" >&2
    echo "(or, as root: sh scripts/install-deps.sh fuzz)" >&2
    exit 1
fi

# ---- build ----
CC=$cc cmake -S . -B "$build" -DNABLA_FUZZ=ON -DNABLA_BUILD_TESTS=OFF \
    -DNABLA_BUILD_EXAMPLES=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" >"$probe/configure.log" 2>&1 || {
    cat "$probe/configure.log" >&2
    echo "fuzz.sh: configuring $build failed" >&2
    exit 1
}
targets=""
for n in $names; do
    targets="$targets fuzz_$n"
done
# shellcheck disable=SC2086 # one word per target
cmake --build "$build" -j "${JOBS:-2}" --target $targets

# ---- run ----
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
mkdir -p "$build/logs"
failed=0
for n in $names; do
    corpus="$build/corpus/$n"
    crashes="$build/crashes/$n"
    log="$build/logs/$n.log"
    mkdir -p "$corpus" "$crashes"
    cp fuzz/corpus/"$n"/* "$corpus"/
    extra=""
    if [ -d "fuzz/regressions/$n" ] && [ -n "$(ls "fuzz/regressions/$n")" ]; then
        extra="fuzz/regressions/$n"
    fi
    dict=""
    if [ -f "fuzz/dict/$n.dict" ]; then
        dict="-dict=fuzz/dict/$n.dict"
    fi
    if [ ! -x "$build/fuzz_$n" ]; then
        echo "fuzz_$n: $build/fuzz_$n was not built" >&2
        failed=1
        continue
    fi
    echo "fuzz_$n: running for $secs s on $corpus ${extra:+and $extra }..."
    rc=0
    # shellcheck disable=SC2086 # dict and extra are empty or one word without spaces
    "$build/fuzz_$n" -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$crashes/" $dict "$corpus" $extra >"$log" 2>&1 ||
        rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    if [ "$rc" -eq 0 ]; then
        echo "fuzz_$n: ${execs:-?} executions, no crash"
    else
        failed=1
        echo "fuzz_$n: ${execs:-?} executions, CRASH (exit status $rc)"
        # the report (sanitizer, libFuzzer or the harness's own check), up to its SUMMARY line
        awk '/ERROR: |runtime error:|contract broken|ALARM: / {on = 1}
             on {print} on && /^SUMMARY: / {exit}' "$log" | head -n 60 | sed 's/^/  | /'
        if [ -n "$artifact" ]; then
            echo "fuzz_$n: crashing input: $artifact"
            echo "  reproduce: $build/fuzz_$n $artifact"
        else
            echo "fuzz_$n: it stopped without saving a crashing input; see $log"
        fi
    fi
done
if [ "$failed" -ne 0 ]; then
    echo "fuzz.sh: a harness crashed (inputs under $build/crashes/; logs under $build/logs/)" >&2
    exit 1
fi
echo "fuzz.sh: no crashes"
