#!/bin/sh
# test_cli_suggest.sh NABLA - a mistyped option gets the nearest real one, in every subcommand
# that has options; options are matched whole (a prefix is refused with the suggestion).
set -eu
nabla=$1
fails=0
expect() { # expect "SUGGESTION" ARGS...: exit 2 and stderr names the suggestion
    want=$1
    shift
    if "$nabla" "$@" >/dev/null 2>err.txt; then
        echo "FAIL: nabla $* succeeded"; fails=1; return
    fi
    grep -qF -- "$want" err.txt || { echo "FAIL: nabla $*: no '$want' in: $(cat err.txt)"; fails=1; }
}
expect "did you mean --epochs?" train --epoch 3
expect "did you mean --label-smoothing?" train --label-smothing 0.1
expect "did you mean --top?" predict --tops 3
expect "did you mean --logits?" xent --logit a.npy
expect "did you mean --threads?" bench --thread 2
expect "did you mean --patience?" train --patienc 3
expect "(see nabla train --help)" train --zzzzzz 1
expect "did you mean --epochs?" train --epoch 3 --data spirals
expect "did you mean --model?" eval --modl m.st
expect "did you mean --format?" export --fromat npz
rm -f err.txt
[ $fails -eq 0 ] && echo ok
exit $fails
