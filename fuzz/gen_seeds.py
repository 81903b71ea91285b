#!/usr/bin/python3
"""gen_seeds.py - writes the fuzzing seed corpora under fuzz/corpus/ (run once; the output is
committed, and nothing at build or test time needs Python).

    /usr/bin/python3 fuzz/gen_seeds.py

Small valid files of every supported kind plus a few edge cases each reader must reject cleanly.
The npy seeds are copies of tests/data/npy_*.npy (made by NumPy, scripts/gen_npy_fixtures.py).
"""
import gzip
import json
import os
import shutil
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def put(kind, name, data):
    d = os.path.join(CORPUS, kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- npy: NumPy-written fixtures, valid and rejected kinds ----
for n in ["0d", "4d", "5d", "bigendian", "bool", "empty", "f16", "f32", "f64", "fortran", "i1",
          "i32", "i64", "structured", "u8", "v2", "v3"]:
    d = os.path.join(CORPUS, "npy")
    os.makedirs(d, exist_ok=True)
    shutil.copyfile(os.path.join(ROOT, "tests", "data", "npy_%s.npy" % n),
                    os.path.join(d, "%s.npy" % n))


# ---- idx: magic 00 00 TYPE NDIM, big-endian u32 dims, big-endian data ----
def idx(type_byte, dims, payload):
    return bytes([0, 0, type_byte, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


labels = idx(0x08, [6], bytes([0, 1, 2, 9, 3, 7]))
images = idx(0x08, [2, 3, 3], bytes(range(0, 252, 14)))
put("idx", "u8_labels.idx1", labels)
put("idx", "u8_images.idx3", images)
put("idx", "i8.idx", idx(0x09, [4], bytes([0, 127, 128, 255])))
put("idx", "i16.idx", idx(0x0B, [2, 2], struct.pack(">4h", 0, 1, -1, -32768)))
put("idx", "i32.idx", idx(0x0C, [3], struct.pack(">3i", 7, -2147483648, 2147483647)))
put("idx", "f32.idx", idx(0x0D, [1, 1, 1, 3], struct.pack(">3f", 1.5, -0.0, float("inf"))))
put("idx", "f64.idx", idx(0x0E, [2], struct.pack(">2d", 3.25, float("nan"))))
put("idx", "empty.idx", idx(0x08, [0, 28, 28], b""))
put("idx", "truncated.idx", images[:-3])
put("idx", "trailing.idx", labels + b"\x00")
put("idx", "u8_images.idx3.gz", gzip.compress(images, mtime=0))
put("idx", "two_members.idx.gz", gzip.compress(labels[:7], mtime=0) + gzip.compress(labels[7:], mtime=0))
put("idx", "truncated.idx.gz", gzip.compress(labels, mtime=0)[:-5])


# ---- csv: first byte = options (bit 0: label column 0, else -1; bit 1: header) ----
def csv(label_first, header, text):
    return bytes([(1 if label_first else 0) | (2 if header else 0)]) + text.encode()


put("csv", "last_label", csv(False, False, "0.5,1.0,2\n-1e-3,3.25,0\n4,5,1\n"))
put("csv", "first_label_header", csv(True, True, "label,a,b\n1,0.1,0.2\n0,0.3,0.4\n"))
put("csv", "crlf_blank_tail", csv(False, True, "x,y,label\r\n1,2,3\r\n4,5,6\r\n\r\n  \n"))
put("csv", "spaces_tabs_noeol", csv(True, False, " 2 ,\t1.5e2 , -7\n3.0, 0x1p3 ,4"))
put("csv", "ragged", csv(False, False, "1,2,3\n4,5\n"))
put("csv", "bad_label", csv(True, False, "1.5,2,3\n-1,2,3\n"))
put("csv", "header_only", csv(True, True, "a,b,c\n"))


# ---- safetensors: u64 header length, JSON header, data buffer ----
def st(entries, meta=None, pad=True):
    """entries: list of (name, dtype, shape, bytes), laid out in order."""
    h, data = {}, b""
    if meta is not None:
        h["__metadata__"] = meta
    for name, dt, shape, raw in entries:
        h[name] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(h, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


put("safetensors", "f32_2x3.safetensors",
    st([("w", "F32", [2, 3], struct.pack("<6f", 1, 2, 3, 4, 5, 6))]))
put("safetensors", "all_dtypes.safetensors",
    st([("f64", "F64", [2], struct.pack("<2d", 1.0, -2.5)),
        ("i64", "I64", [1, 2], struct.pack("<2q", -1, 1 << 40)),
        ("f32", "F32", [], struct.pack("<f", 0.25)),
        ("i32", "I32", [2, 1, 1, 1], struct.pack("<2i", 5, -5)),
        ("f16", "F16", [2], struct.pack("<2H", 0x3C00, 0x7C00)),
        ("bf16", "BF16", [2], struct.pack("<2H", 0x3F80, 0xFFC0)),
        ("u8", "U8", [3], bytes([0, 128, 255])),
        ("b", "BOOL", [2], bytes([0, 1]))],
       meta={"format": "pt", "note": "caf\u00e9"}))
put("safetensors", "empty_tensor.safetensors", st([("e", "F32", [0, 4], b"")]))
put("safetensors", "no_tensors_meta.safetensors", st([], meta={"k": "v"}))
put("safetensors", "empty.safetensors", bytes([8, 0, 0, 0, 0, 0, 0, 0]) + b"{}      ")
put("safetensors", "unpadded.safetensors",
    st([("a", "I32", [2, 2], struct.pack("<4i", 0, 1, 2, 3))], pad=False))
put("safetensors", "gap.safetensors",  # offsets leave a hole: must be rejected
    struct.pack("<Q", 56) + b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}   '
    + b"\x00\x01")
put("safetensors", "bad_dtype.safetensors",
    st([("x", "F8_E4M3", [1], b"\x00")]))
