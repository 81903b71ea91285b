#!/bin/sh
# test_doc_links.sh ROOT - every relative link in README.md and docs/*.md ([text](path) and
# ![alt](path)) names a file in the repository, and no document points outside it (../shared/,
# absolute paths). Fails (exit 1) listing each bad link.
set -eu
root=${1:?usage: test_doc_links.sh ROOT}
cd "$root"
bad=0
for doc in README.md docs/*.md; do
    dir=$(dirname "$doc")
    # one link target per line: the text between "](" and the next ")"
    for link in $(grep -o '](\([^)]*\))' "$doc" | sed 's/^](//; s/)$//'); do
        case $link in
        http://* | https://* | mailto:*) continue ;;
        /*) echo "$doc: absolute link $link"; bad=1; continue ;;
        esac
        path=${link%%#*}
        [ -n "$path" ] || continue # an anchor in the same document
        if [ ! -e "$dir/$path" ]; then
            echo "$doc: link $link names no file ($dir/$path)"
            bad=1
            continue
        fi
        # the target must stay inside the repository
        real=$(cd "$(dirname "$dir/$path")" && pwd -P)
        case $real in
        "$(pwd -P)" | "$(pwd -P)"/*) ;;
        *) echo "$doc: link $link leaves the repository ($real)"; bad=1 ;;
        esac
    done
    if grep -n '\.\./shared' "$doc"; then
        echo "$doc: mentions ../shared (outside the repository)"
        bad=1
    fi
done
[ "$bad" -eq 0 ] && echo "test_doc_links: every link in README.md and docs/*.md names a file in the repository"
exit $bad
