"""Writes golden fixtures in the format tests/fixtures.ts reads.

A fixture is one JSON file: {"meta": {...}, "tensors": {name: {"dtype", "shape", "data_b64"}}},
little-endian raw values base64-encoded. Kept deliberately simple so the TypeScript side needs
no numpy-format parser.
"""
import base64
import json

import numpy as np

_DTYPES = {"float32": np.float32, "int64": np.int64, "int32": np.int32, "uint8": np.uint8}


def encode(array):
    # np.ascontiguousarray would turn 0-d arrays into shape (1,); copy keeps the true shape.
    a = np.asarray(array).copy(order="C")
    name = str(a.dtype)
    if name not in _DTYPES:
        a = a.astype(np.float32)
        name = "float32"
    return {"dtype": name, "shape": list(a.shape), "data_b64": base64.b64encode(a.astype("<" + a.dtype.str[1:]).tobytes()).decode()}


def write_fixture(path, tensors, meta=None):
    """tensors: dict name -> numpy array or torch tensor."""
    out = {"meta": meta or {}, "tensors": {}}
    for k, v in tensors.items():
        if hasattr(v, "detach"):
            v = v.detach().cpu().numpy()
        out["tensors"][k] = encode(np.asarray(v))
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))


def write_raw_fixture(stem, tensors, raw, meta=None):
    """A fixture too large for base64 JSON: `<stem>.json` as write_fixture writes it (meta and
    the small tensors), plus `<stem>.bin` holding the `raw` tensors as little-endian float32 one
    after another; meta["raw"] lists {name: [offset_in_values, shape]} in file order."""
    meta = dict(meta or {})
    index, chunks, offset = {}, [], 0
    for k, v in raw.items():
        if hasattr(v, "detach"):
            v = v.detach().cpu().numpy()
        a = np.asarray(v, dtype="<f4").copy(order="C")
        index[k] = [offset, list(a.shape)]
        chunks.append(a.tobytes())
        offset += a.size
    meta["raw"] = index
    with open(stem + ".bin", "wb") as f:
        for c in chunks:
            f.write(c)
    write_fixture(stem + ".json", tensors, meta)
