#!/bin/sh
# install-deps.sh GROUP... - make sure the Debian packages nabla needs are installed.
#
# Groups: build (compiler, CMake, OpenBLAS and its OpenMP build, cmocka, zlib, cJSON, libpng),
#         plot (PLplot + its cairo PNG driver, for `nabla plot` and `train --plot`),
#         data (Fashion-MNIST),
#         mpi (Open MPI, for mpirun -np P nabla train and its test),
#         sanitize (valgrind), fuzz (clang + its libFuzzer runtime, for
#         `make fuzz`), tsan (clang, its ThreadSanitizer runtime, LLVM's OpenMP runtime and
#         its TSan tool libarcher, for `make tsan`), python (only for regenerating golden data),
#         bench (PyTorch, the comparison of `make bench`).
# As root: installs what is missing with apt-get (running `apt-get update` first when needed).
# Otherwise: prints the exact apt-get line and exits 1. Optional groups (data, bench) never fail.
set -eu

pkgs_for() {
    case "$1" in
    build) echo "gcc make cmake pkg-config libopenblas-dev libopenblas-openmp-dev libcmocka-dev zlib1g-dev libcjson-dev libpng-dev" ;;
    plot) echo "libplplot-dev plplot-driver-cairo" ;;
    mpi) echo "openmpi-bin libopenmpi-dev" ;;
    data) echo "dataset-fashion-mnist" ;;
    sanitize) echo "valgrind" ;;
    fuzz) echo "clang libclang-rt-14-dev" ;;
    tsan) echo "clang libclang-rt-14-dev libomp-dev" ;;
    python) echo "python3-torch python3-scipy python3-numpy" ;;
    bench) echo "python3-torch" ;;
    *) echo "install-deps.sh: unknown group '$1'" >&2; exit 2 ;;
    esac
}

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

[ $# -gt 0 ] || set -- build
required=""
optional=""
for group in "$@"; do
    for p in $(pkgs_for "$group"); do
        installed "$p" && continue
        case "$group" in
        data | bench) optional="$optional $p" ;;
        *) required="$required $p" ;;
        esac
    done
done
[ -n "$required$optional" ] || exit 0
if [ "$(id -u)" -ne 0 ]; then
    if [ -n "$required" ]; then
        echo "install-deps: missing Debian packages. Run:" >&2
        echo "  sudo apt-get update && sudo apt-get install -y$required$optional" >&2
        exit 1
    fi
    echo "install-deps: optional packages missing (going on without them); to install run:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y$optional" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
# a new machine has no (or stale) package lists: update once, then install
echo "install-deps: installing$required$optional"
apt-get update || true
status=0
if [ -n "$required" ] && ! apt-get install -y --no-install-recommends $required; then
    echo "install-deps: could not install$required" >&2
    status=1
fi
if [ -n "$optional" ] && ! apt-get install -y --no-install-recommends $optional; then
    echo "install-deps: could not install$optional; continuing without them" >&2
fi
exit $status
