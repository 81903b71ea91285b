#!/bin/sh
# test_images.sh NABLA WORK_DIR - `--data images:DIR`, a folder with one subfolder per class, as a
# user has it: 8 x 8 images of three patterns (a horizontal bar in row 3 or 4, a vertical bar in
# column 3 or 4, a diagonal; 36 each, with noise), mixed PGM P5, PGM P2, gray PNG and RGB PNG files.
#   - nabla train learns it (test accuracy >= 0.9) and nabla eval rebuilds the run's held-out
#     rows from the checkpoint and scores them with the same accuracy, naming the classes by
#     their folders;
#   - eval --data images:DIR scores every image;
#   - refusals name what is wrong: an image of another size (naming it, the first image and both
#     sizes), an empty class folder, a stray file beside the class folders, a folder inside a class
#     folder, a file that is not .png/.pgm, a symlink loop, a FIFO named like an image (refused at
#     once, not waited on), an image over the size limit, a missing folder.
# The images are written with python3's standard library (zlib, struct); without python3: skip.
set -eu
nabla=$1
work=$2
test_name=test_images
case $nabla in /*) ;; */*) nabla=$(pwd)/$nabla ;; esac
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
command -v python3 >/dev/null 2>&1 || { echo "test_images: no python3, skipped"; exit 77; }
rm -rf "$work"
mkdir -p "$work"
cd "$work"

python3 - <<'PY'
import os, random, struct, zlib
def png(path, w, h, color, rows):
    raw = b''.join(b'\x00' + bytes(r) for r in rows)
    def chunk(t, d):
        return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
    hdr = struct.pack('>IIBBBBB', w, h, 8, 2 if color else 0, 0, 0, 0)
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', hdr) + chunk(b'IDAT', zlib.compress(raw))
                + chunk(b'IEND', b''))
rnd = random.Random(5)
def image(kind):
    g = [[rnd.randrange(0, 60) for _ in range(8)] for _ in range(8)]
    k = rnd.randrange(3, 5)
    for i in range(8):
        r, c = {'bar_h': (k, i), 'bar_v': (i, k), 'diag': (i, i)}[kind]
        g[r][c] = rnd.randrange(200, 256)
    return g
for kind in ('bar_h', 'bar_v', 'diag'):
    os.makedirs('imgs/' + kind)
    for n in range(36):
        g = image(kind)
        base = 'imgs/%s/%02d' % (kind, n)
        if n % 4 == 0:
            open(base + '.pgm', 'wb').write(b'P5\n8 8\n255\n' + bytes(sum(g, [])))
        elif n % 4 == 1:
            open(base + '.pgm', 'w').write('P2\n# plain\n8 8\n255\n' +
                                           '\n'.join(' '.join(map(str, r)) for r in g) + '\n')
        elif n % 4 == 2:
            png(base + '.png', 8, 8, False, g)
        else:  # gray as RGB: (v, v, v) reads back as v
            png(base + '.PNG', 8, 8, True, [sum(([v, v, v] for v in r), []) for r in g])
# one 9 x 8 image, for the size check
open('wide.pgm', 'wb').write(b'P5 9 8 255\n' + bytes(72))
PY
echo "hidden" >imgs/.DS_Store # dot-names are skipped

check "train on images:DIR" 0 "$nabla" train --data images:imgs --epochs 30 --hidden 32 \
    --threads 1 --warmup 10 --batch 16 --save m.safetensors
tacc=$(awk '/^test / { for (i = 1; i <= NF; i++) if ($i == "acc") print $(i + 1) }' out | tail -1)
[ -n "$tacc" ] || fail "train printed no test accuracy"
awk -v a="$tacc" 'BEGIN { exit !(a >= 0.9) }' || fail "test accuracy $tacc below 0.9"

check "eval rebuilds the held-out images" 0 "$nabla" eval --model m.safetensors
out_has "held-out rows of images:/"
out_has "/imgs (the run's split"
# the class names are the folder names, recorded in the checkpoint and shown by eval
out_has "bar_h"
out_has "bar_v"
out_has "diag"
eacc=$(awk '/^loss .* accuracy/ { print $4 }' out)
[ "$eacc" = "$tacc" ] || fail "eval accuracy $eacc, train's test accuracy $tacc"

check "eval --data images:DIR scores every image" 0 "$nabla" eval --model m.safetensors \
    --data images:imgs
out_has "108 samples"

mkdir bad
cp -r imgs bad/size && cp wide.pgm bad/size/bar_v/05.pgm
check "an image of another size" 1 "$nabla" train --data images:bad/size --epochs 1
err_has "'bad/size/bar_v/05.pgm' is 9 x 8 (width x height) but 'bad/size/bar_h/00.pgm', the first image, is 8 x 8"

cp -r imgs bad/empty && mkdir bad/empty/zzz
check "an empty class folder" 1 "$nabla" train --data images:bad/empty --epochs 1
err_has "the class folder 'bad/empty/zzz' has no images"

cp -r imgs bad/stray && echo x >bad/stray/labels.txt
check "a file beside the class folders" 1 "$nabla" train --data images:bad/stray --epochs 1
err_has "'bad/stray/labels.txt' is a regular file; 'bad/stray' must hold only class folders"

cp -r imgs bad/nested && mkdir bad/nested/diag/more
check "a folder inside a class folder" 1 "$nabla" train --data images:bad/nested --epochs 1
err_has "'bad/nested/diag/more' is a folder inside the class folder 'bad/nested/diag'"

cp -r imgs bad/ext && echo x >bad/ext/diag/notes.txt
check "not an image name" 1 "$nabla" train --data images:bad/ext --epochs 1
err_has "'bad/ext/diag/notes.txt': not a .png or .pgm file name"

cp -r imgs bad/loop && ln -s loop.png bad/loop/diag/loop.png
check "a symlink loop" 1 "$nabla" train --data images:bad/loop --epochs 1
err_has "'bad/loop/diag/loop.png': a loop of symbolic links"

cp -r imgs bad/fifo && mkfifo bad/fifo/diag/zz.pgm
check "a FIFO named like an image" 1 "$nabla" train --data images:bad/fifo --epochs 1
err_has "'bad/fifo/diag/zz.pgm' is a FIFO (named pipe), not a regular file"

cp -r imgs bad/huge && printf 'P5 20000 20000 255\n' >bad/huge/diag/zz.pgm
check "an image over the size limit" 1 "$nabla" train --data images:bad/huge --epochs 1
err_has "image: 'bad/huge/diag/zz.pgm': width 20000 is not in 1..16384"

check "a missing folder" 1 "$nabla" train --data images:nowhere --epochs 1
err_has "images: cannot open the folder 'nowhere'"

echo "test_images: all checks passed (test accuracy $tacc, eval $eacc)"
