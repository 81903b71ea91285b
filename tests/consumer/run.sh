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
    $(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs nabla) -lm
LD_LIBRARY_PATH="$libdir" "$work/consumer_pc"
echo "consumer: find_package(nabla) and pkg-config both work"
