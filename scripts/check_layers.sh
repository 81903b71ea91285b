#!/bin/sh
# check_layers.sh [ROOT] - the layer rule of docs/architecture.md: every #include "..." in src/
# and include/nabla/ points to the same folder or to a lower layer. Layers, lowest first:
#   0 tensor   1 autograd   2 ops   3 loss   4 nn, optim, data (siblings: never each other)
#   5 io (checkpoints of models and optimisers)   6 train   7 cli
# Public headers belong to the layer of their implementation (the table below); the umbrella
# nabla.h only to cli. Fails (exit 1) naming every include that points up or sideways, and
# every public header the table does not place.
set -eu
root=${1:-$(dirname "$0")/..}
cd "$root"
awk '
function rank(l) {
    if (l == "tensor") return 0; if (l == "autograd") return 1; if (l == "ops") return 2;
    if (l == "loss") return 3; if (l == "nn" || l == "optim" || l == "data") return 4;
    if (l == "io") return 5; if (l == "train") return 6; if (l == "cli") return 7; return -1
}
function header_layer(h) {
    if (h == "status" || h == "tensor") return "tensor"
    if (h == "graph" || h == "gradcheck" || h == "custom_op") return "autograd"
    if (h == "ops") return "ops"
    if (h == "loss" || h == "lce") return "loss"
    if (h == "nn") return "nn"
    if (h == "optim") return "optim"
    if (h == "npy" || h == "dataset" || h == "data" || h == "seqdata" || h == "image") return "data"
    if (h == "safetensors" || h == "checkpoint") return "io"
    if (h == "eval" || h == "train") return "train"
    return ""
}
function layer_of_file(f,   a, n, h) {
    if (f ~ /^include\/nabla\//) { n = split(f, a, "/"); h = a[n]; sub(/\.h$/, "", h); return header_layer(h) }
    split(f, a, "/"); return a[2]
}
FNR == 1 { me = layer_of_file(FILENAME)
           if (me == "" || rank(me) < 0) { printf "%s: not placed in any layer\n", FILENAME; bad = 1 } }
/^#include "/ {
    inc = $0; sub(/^#include "/, "", inc); sub(/".*/, "", inc)
    if (inc == "nabla.h") { to = "cli" }
    else if (inc ~ /^nabla\//) { h = inc; sub(/^nabla\//, "", h); sub(/\.h$/, "", h); to = header_layer(h)
                                 if (to == "") { printf "%s:%d: public header %s is in no layer\n", FILENAME, FNR, inc; bad = 1; next } }
    else if (inc ~ /\//) { x = inc; sub(/^(\.\.\/)+/, "", x); split(x, a, "/"); to = a[1] }
    else { to = me }   # a header beside the file
    if (rank(to) < 0) { printf "%s:%d: include \"%s\" is in no layer\n", FILENAME, FNR, inc; bad = 1; next }
    if (to != me && rank(to) >= rank(me)) {
        printf "%s:%d: %s (layer %d) includes \"%s\" of %s (layer %d)\n", FILENAME, FNR, me, rank(me), inc, to, rank(to); bad = 1 }
}
END { if (!bad) print "check_layers: every include points down"; exit bad }
' $(find src include/nabla -name '*.c' -o -name '*.h' | sort)
