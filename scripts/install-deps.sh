#!/bin/sh
# install-deps.sh GROUP... - make sure the Debian packages nabla needs are installed.
#
# Groups: build (compiler, CMake, OpenBLAS, cmocka, zlib, cJSON), plot (PLplot + its cairo PNG
#         driver, for `nabla plot` and `train --plot`), data (Fashion-MNIST),
#         sanitize (clang's sanitizer runtime, valgrind), fuzz (clang + its libFuzzer runtime, for
#         `make fuzz`), python (only for regenerating golden data).
# As root: installs what is missing with apt-get (running `apt-get update` first when needed).
# Otherwise: prints the exact apt-get line and exits 1. Optional groups (data) never fail.
set -eu

pkgs_for() {
    case "$1" in
    build) echo "gcc make cmake pkg-config libopenblas-dev libcmocka-dev zlib1g-dev libcjson-dev" ;;
    plot) echo "libplplot-dev plplot-driver-cairo" ;;
    data) echo "dataset-fashion-mnist" ;;
    sanitize) echo "valgrind" ;;
    fuzz) echo "clang libclang-rt-14-dev" ;;
    python) echo "python3-torch python3-scipy python3-numpy" ;;
    *) echo "install-deps.sh: unknown group '$1'" >&2; exit 2 ;;
    esac
}

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

[ $# -gt 0 ] || set -- build
status=0
for group in "$@"; do
    missing=""
    for p in $(pkgs_for "$group"); do
        installed "$p" || missing="$missing $p"
    done
    [ -n "$missing" ] || continue
    if [ "$(id -u)" -eq 0 ]; then
        echo "install-deps: installing$missing"
        export DEBIAN_FRONTEND=noninteractive
        # a fresh machine has no package lists yet: update once, then install
        if ! apt-get install -y --no-install-recommends $missing; then
            apt-get update
            if ! apt-get install -y --no-install-recommends $missing; then
                if [ "$group" = data ]; then
                    echo "install-deps: could not install$missing; continuing without it" >&2
                else
                    status=1
                fi
            fi
        fi
    else
        if [ "$group" = data ]; then
            echo "install-deps: optional data package missing; to install it run:" >&2
            echo "  sudo apt-get install -y$missing" >&2
        else
            echo "install-deps: missing Debian packages for '$group'. Run:" >&2
            echo "  sudo apt-get update && sudo apt-get install -y$missing" >&2
            status=1
        fi
    fi
done
exit $status
