#!/usr/bin/env python3
"""Writes the .npy fixtures used by tests/test_npy.c into tests/data/npy_*.npy.

Run from anywhere:  python3 scripts/gen_npy_fixtures.py
Needs NumPy (the committed fixtures were made with NumPy 1.24). The values are simple formulas or
literal lists so tests/test_npy.c can rebuild them independently; keep the two in sync.

Files nabla must read:
  npy_f32.npy         float32 (2, 3), v[i] = 0.5 * i - 1.25
  npy_f64.npy         float64 (5,), [0.0, -0.0, 1e300, inf, nan]
  npy_f16.npy         float16 (4,), [1.0, -2.0, 0.5, 65504.0]
  npy_i32.npy         int32 (3, 2), [INT32_MIN, INT32_MAX, 0, 1, -1, 42]
  npy_i64.npy         int64 (2, 2), [INT64_MIN, INT64_MAX, -1, 7]
  npy_u8.npy          uint8 (2, 2, 2), v[i] = (37 * i) % 256
  npy_bool.npy        bool (5,), [T, F, T, T, F]
  npy_0d.npy          float64 (), 3.25
  npy_empty.npy       float32 (0, 3)
  npy_4d.npy          float32 (2, 3, 4, 5), v[i] = 0.25 * i
  npy_v2.npy          as npy_f32 but format version 2.0
  npy_v3.npy          as npy_f32 but format version 3.0
Files nabla must reject with a message:
  npy_fortran.npy     float32 (3, 2) in Fortran order
  npy_bigendian.npy   '>f4' (3,)
  npy_object.npy      object array (pickled)
  npy_structured.npy  structured dtype [('a', '<f4'), ('b', '<i4')]
  npy_5d.npy          float32 (1, 1, 1, 1, 2): more than 4 dimensions
  npy_i1.npy          int8 (3,): '|i1' is not a supported descr
"""
import os

import numpy as np
from numpy.lib import format as npformat

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "data")


def path(name):
    return os.path.join(OUT, "npy_" + name + ".npy")


def save(name, a, **kw):
    np.save(path(name), a, **kw)


def save_version(name, a, version):
    with open(path(name), "wb") as f:
        npformat.write_array(f, a, version=version)


def main():
    os.makedirs(OUT, exist_ok=True)
    f32 = (0.5 * np.arange(6) - 1.25).astype(np.float32).reshape(2, 3)

    save("f32", f32)
    save("f64", np.array([0.0, -0.0, 1e300, np.inf, np.nan], dtype=np.float64))
    save("f16", np.array([1.0, -2.0, 0.5, 65504.0], dtype=np.float16))
    i32 = np.iinfo(np.int32)
    save("i32", np.array([i32.min, i32.max, 0, 1, -1, 42], dtype=np.int32).reshape(3, 2))
    i64 = np.iinfo(np.int64)
    save("i64", np.array([i64.min, i64.max, -1, 7], dtype=np.int64).reshape(2, 2))
    save("u8", ((37 * np.arange(8)) % 256).astype(np.uint8).reshape(2, 2, 2))
    save("bool", np.array([True, False, True, True, False]))
    save("0d", np.array(3.25, dtype=np.float64))
    save("empty", np.zeros((0, 3), dtype=np.float32))
    save("4d", (0.25 * np.arange(120)).astype(np.float32).reshape(2, 3, 4, 5))
    save_version("v2", f32, (2, 0))
    save_version("v3", f32, (3, 0))

    fortran = np.asfortranarray(np.arange(6, dtype=np.float32).reshape(3, 2))
    assert fortran.flags.f_contiguous and not fortran.flags.c_contiguous
    save("fortran", fortran)
    save("bigendian", np.array([1.0, 2.0, 3.0], dtype=">f4"))
    save("object", np.array([1, "two", None], dtype=object), allow_pickle=True)
    save("structured", np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]))
    save("5d", np.zeros((1, 1, 1, 1, 2), dtype=np.float32))
    save("i1", np.array([-1, 0, 1], dtype=np.int8))


if __name__ == "__main__":
    main()
