#!/bin/sh
# check_sizes.sh [ROOT] - fails (exit 1) listing every source file over 600 lines (src/, include/)
# and every library function over 80 lines (src/ except src/cli/). A function is counted from
# its opening "{" alone on a line at column 0 to its closing "}" at column 0 (the repository's
# .clang-format puts both there), body lines only.
set -eu
root=${1:-$(dirname "$0")/..}
cd "$root"
max_file=600
max_fn=80
status=0
for f in $(find src include -name '*.c' -o -name '*.h' | sort); do
    n=$(wc -l <"$f")
    if [ "$n" -gt "$max_file" ]; then
        echo "file $f: $n lines (limit $max_file)"
        status=1
    fi
done
for f in $(find src -name '*.c' ! -path 'src/cli/*' | sort); do
    awk -v file="$f" -v max="$max_fn" '
        /^[A-Za-z_].*\(/ { sig = $0; sigline = NR }
        /^\{$/ { start = NR; name = sig; next }
        /^\}/ && start { len = NR - start - 1;
                         if (len > max) { sub(/\(.*/, "", name); n = split(name, w, /[ *]+/);
                                          printf "function %s:%d %s: %d lines (limit %d)\n", file, start, w[n], len, max; bad = 1 }
                         start = 0 }
        END { exit bad }' "$f" || status=1
done
[ "$status" -eq 0 ] && echo "check_sizes: every file <= $max_file lines, every library function <= $max_fn lines"
exit $status
