#!/bin/sh
# test_resume.sh NABLA WORK - crash-safe checkpoints: a training run killed with SIGKILL at
# random moments (also during saves) and resumed from its last checkpoint each time ends with
# weights and optimiser state bitwise identical to an uninterrupted run with the same seed; the
# checkpoint at the path is always loadable; the metrics file holds each epoch once.
set -eu
nabla=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
cd "$work"
E=150
opts="--data spirals --epochs $E --batch 32 --hidden 64,64 --seed 5 --quiet"

"$nabla" train $opts --save ref.st --metrics ref.jsonl
# the configuration, E epochs, the test figures
[ "$(wc -l < ref.jsonl)" -eq $((E + 2)) ] || { echo "FAIL: reference metrics"; exit 1; }

kills=0
attempt=0
rm -f run.st run.jsonl
while [ $kills -lt 3 ] && [ $attempt -lt 20 ]; do
    attempt=$((attempt + 1))
    resume=""
    [ -f run.st ] && resume="--resume run.st"
    "$nabla" train $opts --save run.st --save-every 3 --metrics run.jsonl $resume &
    pid=$!
    # a pseudo-random moment in the first ~0.5 s (the whole run takes a few seconds)
    delay=$(awk -v s="$attempt" 'BEGIN { srand(s * 7919); printf "%.3f", 0.02 + rand() * 0.5 }')
    sleep "$delay"
    if kill -9 $pid 2>/dev/null; then
        wait $pid 2>/dev/null || true
        kills=$((kills + 1))
        echo "killed after ${delay}s (kill $kills)"
        if [ -f run.st ]; then
            # never a corrupt checkpoint at the path, whatever the moment of the kill
            "$nabla" eval --model run.st --data spirals > /dev/null ||
                { echo "FAIL: checkpoint unreadable after kill"; exit 1; }
        fi
    else
        wait $pid || { echo "FAIL: run exited with an error"; exit 1; }
        echo "run finished before the kill: starting over"
        rm -f run.st run.jsonl
        kills=0
    fi
done
[ $kills -ge 1 ] || { echo "FAIL: never managed to kill the run"; exit 1; }
if [ -f run.st ]; then
    "$nabla" train $opts --save run.st --save-every 3 --metrics run.jsonl --resume run.st
else
    "$nabla" train $opts --save run.st --save-every 3 --metrics run.jsonl
fi
# bitwise: weights and optimiser state
"$nabla" diff ref.st run.st --tol 0 ||
    { echo "FAIL: resumed run differs from the uninterrupted one"; exit 1; }
# each epoch reported exactly once
n=$(wc -l < run.jsonl)
[ "$n" -eq $((E + 2)) ] || { echo "FAIL: metrics has $n lines, expected $((E + 2))"; cat run.jsonl; exit 1; }
[ "$(grep -c '^{"config": ' run.jsonl)" -eq 1 ] && head -n 1 run.jsonl | grep -q '^{"config": ' ||
    { echo "FAIL: the configuration is not line 1, once"; cat run.jsonl; exit 1; }
for e in $(seq 1 $E); do
    c=$(grep -c "^{\"epoch\": $e," run.jsonl || true)
    [ "$c" -eq 1 ] || { echo "FAIL: epoch $e appears $c times in the metrics"; exit 1; }
done
# resuming with another batch size is refused, naming the difference
if "$nabla" train --data spirals --epochs $E --batch 64 --hidden 64,64 --seed 5 --quiet \
    --resume run.st 2> err.txt; then
    echo "FAIL: resume with another batch size accepted"; exit 1
fi
grep -q "\--batch 64 differs from the checkpoint's 32" err.txt || { echo "FAIL: message"; cat err.txt; exit 1; }
echo "ok: $kills kills, resumed run bitwise identical"
