#!/bin/sh
# run.sh BUILD_DIR WORK_DIR - install nabla from BUILD_DIR into WORK_DIR/prefix, then build the
# consumer project with find_package(nabla) and a plain compiler line with pkg-config, and run
# both. Fails on any step.
set -eu
build=$1
work=$2
src=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$src" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/cmake" >/dev/null
libdir=$(ls -d "$work/prefix"/lib*/ | head -1)
LD_LIBRARY_PATH="$libdir" "$work/cmake/consumer"
"$work/cmake/consumer_static"
# pkg-config route
PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --exists nabla
cc -std=c11 "$src/main.c" -o "$work/consumer_pc" \
    $(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs nabla)
# the .pc's run-time path: no LD_LIBRARY_PATH needed
env -u LD_LIBRARY_PATH "$work/consumer_pc"
# pkg-config --static: the archive with everything it needs (OpenMP, libm, OpenBLAS, cJSON, zlib)
cc -std=c11 "$src/main.c" -o "$work/consumer_pc_static" \
    $(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --static --cflags nabla) \
    "$libdir/libnabla.a" \
    $(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --static --libs-only-l --libs-only-other nabla | sed 's/-lnabla//')
"$work/consumer_pc_static"
echo "consumer: find_package(nabla), pkg-config and pkg-config --static all work"
