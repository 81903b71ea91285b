#!/bin/sh
# bench.sh NABLA OUT_DIR - the benchmarks behind `make bench`: memory copy, the fused loss on the
# three reference shapes (1 and 2 threads; unfused baseline; variants; f16), a training step, the
# same shapes in PyTorch when Debian's python3-torch is installed, and the epoch of `nabla train`'s
# default recipe against PyTorch's at 1 and 2 threads. Writes OUT_DIR/nabla.jsonl,
# OUT_DIR/epochs-t{1,2}.jsonl (and OUT_DIR/torch.jsonl) and prints the tables with ratios.
set -eu
nabla=$1
out=$2
mkdir -p "$out"
: > "$out/nabla.jsonl"
run() { "$nabla" bench "$@" --json | tee -a "$out/nabla.jsonl"; }
for t in 1 2; do run memcpy --threads $t; done
for shape in "2048 32768" "512 50257" "8192 1000"; do
    set -- $shape
    run xent --n $1 --v $2 --threads 1 --impl all --repeat 10
    run xent --n $1 --v $2 --threads 2 --impl fused --repeat 10
done
run xent --n 2048 --v 32768 --variant ignore25 --impl fused --repeat 10
run xent --n 2048 --v 32768 --variant smooth01 --impl fused --repeat 10
run xent --n 2048 --v 32768 --dtype f16 --impl fused --repeat 10
for t in 1 2; do run train --threads $t --steps 300; done
# the fused linear + cross-entropy head against Linear + nb_cross_entropy: time and measured peak
# extra memory of a training step, with the fused/unfused ratios (text, not in nabla.jsonl)
for shape in "2048 256 32768" "512 512 50257"; do
    set -- $shape
    for t in 1 2; do "$nabla" bench lce --n $1 --d $2 --v $3 --threads $t --impl all --repeat 5; done
done
# An epoch of the default recipe (nabla train: Fashion-MNIST, MLP 256,128, batch 128, AdamW,
# smoothing 0.1, cosine), 3 epochs at 1 and 2 threads: train_seconds of each epoch (its training
# steps; the validation after it is not counted) in OUT_DIR/epochs-tT.jsonl, and PyTorch's epoch
# of the same work below.
here=$(dirname "$0")/..
epochs=""
if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    for t in 1 2; do
        "$nabla" train --epochs 3 --threads $t --quiet --metrics "$out/epochs-t$t.jsonl" >/dev/null
        epochs="$epochs $out/epochs-t$t.jsonl"
    done
else
    echo "(Fashion-MNIST not installed: no epoch times; apt-get install dataset-fashion-mnist)"
fi
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    echo "PyTorch: $(/usr/bin/python3 -c 'import torch; print(torch.__version__)')"
    /usr/bin/python3 "$here/bench/torch_bench.py" --threads 1 | tee "$out/torch.jsonl"
    if [ -n "$epochs" ]; then
        # the same work at 1 thread; at 2 threads with 1 and 2 inter-op threads; each with
        # glibc's malloc as it comes and tuned to keep the step's buffers (the table takes the
        # fastest); the bare loop (no accuracy, no norm) for reference
        tuned="MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824"
        for a in "1 1" "2 1" "2 2" "1 1 --bare" "2 1 --bare"; do
            set -- $a
            for m in "" "$tuned"; do
                env $m /usr/bin/python3 "$here/bench/torch_epoch.py" --threads $1 --interop $2 \
                    ${3:-} | tee -a "$out/torch.jsonl"
            done
        done
    fi
    /usr/bin/python3 "$here/bench/compare.py" "$out/nabla.jsonl" "$out/torch.jsonl" $epochs
else
    echo "(python3-torch not installed: no PyTorch comparison; apt-get install python3-torch)"
    if [ -x /usr/bin/python3 ]; then
        /usr/bin/python3 "$here/bench/compare.py" "$out/nabla.jsonl" $epochs
    fi
fi
