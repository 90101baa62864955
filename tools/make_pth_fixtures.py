"""Writes the golden fixtures of the .pth reader (tests/pth_test.ts, tests/infer_arch_test.ts).

Run from the repository root with the system Python that has PyTorch:

    /usr/bin/python3 tools/make_pth_fixtures.py

Writes under tests/fixtures/pth/:
  - expected.json: per shared teacher and per synthetic checkpoint, every tensor's shape, dtype,
    float64 sum, sum of squares and first values (not the weights themselves), plus the full
    values of the small view/dtype tensors, in the format of tools/fixture_io.py.
  - small checkpoints written by real torch.save: a seeded resnet8 (10 classes) in each wrapper
    shape, a file of views and odd dtypes, a legacy (pre-1.6) file and a TorchScript archive.
  - pickles.json: plain pickles of Python values at protocols 0 to 5 with their expected values in
    a canonical JSON form (tests/pickle_test.ts), and hostile ones that call os.system.
"""
import base64
import io
import json
import os
import pickle
import sys
import types
import zipfile
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cifar_models  # noqa: E402
from fixture_io import write_fixture  # noqa: E402

ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "tests", "fixtures", "pth")
TEACHERS = os.path.join(ROOT, "..", "shared", "teachers")
FIRST = 6


def stats(sd):
    out = OrderedDict()
    for k, t in sd.items():
        flat = t.detach().reshape(-1)
        # The reader yields float32 for floating tensors: compare with float32-rounded values.
        as_f64 = flat.float().double() if t.is_floating_point() else flat.to(torch.float64)
        out[k] = {
            "shape": list(t.shape),
            "dtype": str(t.dtype).replace("torch.", ""),
            "sum": float(as_f64.sum()),
            "sumsq": float((as_f64 * as_f64).sum()),
            "first": as_f64[:FIRST].tolist(),
        }
    return out


def teacher_stats():
    cifar_models.install_as_models_package()
    result = OrderedDict()
    for ds in ["cifar100", "cifar10"]:
        for arch in ["resnet20", "resnet32", "resnet56"]:
            obj = torch.load(os.path.join(TEACHERS, ds, arch + ".pth"), map_location="cpu")
            sd = obj.state_dict() if isinstance(obj, nn.Module) else obj
            result[f"{ds}/{arch}"] = stats(sd)
    return result


def seeded_resnet8():
    torch.manual_seed(0)
    m = cifar_models.build("resnet8", num_classes=10)
    # Non-trivial BatchNorm statistics so every tensor kind is checked.
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.weight.normal_(1, 0.1)
                mod.bias.normal_(0, 0.1)
                mod.running_mean.normal_(0, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
                mod.num_batches_tracked.fill_(7)
    return m.eval()


def views_and_dtypes():
    torch.manual_seed(1)
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) * 0.37 - 2
    return OrderedDict(
        [
            ("base", base),
            ("transposed", base.t()),
            ("strided_slice", base[1:, ::2]),
            ("row_view", base[2]),
            ("expanded", torch.tensor([1.5, -2.25, 3.0]).expand(2, 3)),
            ("channels_last", torch.randn(2, 3, 2, 2).to(memory_format=torch.channels_last)),
            ("double", torch.randn(3, 2, dtype=torch.float64)),
            ("half", torch.randn(5).half()),
            ("bfloat16", torch.randn(4).bfloat16()),
            ("long", torch.tensor([3, -5, 2**40])),
            ("scalar", torch.tensor(2.5)),
            ("empty", torch.zeros(0, 3)),
        ]
    )


class Thing:
    """A plain class instance: the unpickler must keep it as an inert record."""

    def __init__(self):
        self.name = "thing"
        self.sizes = [1, 2]


class Evil:
    """Unpickling this runs os.system in Python; the reader must refuse it."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def pickle_values():
    shared = [7, 8]
    return OrderedDict(
        [
            ("none", None),
            ("bools", [True, False]),
            ("ints", [0, 1, -1, 255, 256, 65535, 65536, -(2**31), 2**31, 2**53 - 1, 2**63, -(2**70)]),
            ("floats", [0.5, -1e300, 3.141592653589793, 1e-310]),
            ("text", "h\u00e9llo \u2713 \\ \n end"),
            ("long_text", "x" * 300),
            ("bytes", b"\x00\xffab"),
            ("tuple", (1, (2, 3), ())),
            ("nested", {"a": [1, {"b": None}], 3: "int key"}),
            ("set", {1, 2, 3}),
            ("frozenset", frozenset({4})),
            ("odict", OrderedDict([("x", 1), ("y", 2)])),
            ("shared", [shared, shared]),
            ("big_list", list(range(1500))),
            ("thing", Thing()),
            ("np_float", np.float64(0.875)),
            ("np_int", np.int64(-7)),
        ]
    )


def canon(v):
    """The canonical JSON form tests/pickle_test.ts builds from the unpickled value."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, (np.floating, np.integer)):
        return canon(v.item())
    if isinstance(v, int):
        return v if abs(v) <= 2**53 - 1 else {"int": str(v)}
    if isinstance(v, float):
        return v
    if isinstance(v, bytes):
        return {"bytes": list(v)}
    if isinstance(v, (list, tuple)):
        return [canon(x) for x in v]
    if isinstance(v, dict):
        return {"dict": [[canon(k), canon(x)] for k, x in v.items()]}
    if isinstance(v, (set, frozenset)):
        return {"set": sorted(canon(x) for x in v)}
    cls = type(v)
    return {"object": f"{cls.__module__}.{cls.__name__}", "state": canon(v.__dict__)}


def pickle_cases():
    toy = types.ModuleType("toy")
    toy.Thing = Thing
    toy.Evil = Evil
    Thing.__module__ = Evil.__module__ = "toy"
    sys.modules["toy"] = toy
    values = pickle_values()
    cases = []
    for protocol in range(0, 6):
        data = pickle.dumps(values, protocol=protocol)
        cases.append({"protocol": protocol, "b64": base64.b64encode(data).decode()})
    hostile = []
    for protocol in range(0, 6):
        data = pickle.dumps({"weights": [1.0], "payload": Evil()}, protocol=protocol)
        hostile.append({"protocol": protocol, "b64": base64.b64encode(data).decode(), "global": f"{os.name == 'nt' and 'nt' or 'posix'}.system"})
    return {"expected": canon(values), "cases": cases, "hostile": hostile}


def save_scripted(path):
    """A TorchScript archive without its debug entries (they record this machine's source paths)."""
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(nn.Linear(2, 2)), buf)
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            if not info.filename.endswith(".debug_pkl"):
                dst.writestr(info, src.read(info.filename))


def main():
    os.makedirs(OUT, exist_ok=True)
    meta = OrderedDict()
    meta["teachers"] = teacher_stats()

    m = seeded_resnet8()
    sd = m.state_dict()
    meta["resnet8"] = stats(sd)
    opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)

    # RepDistiller-style wrapper, default protocol 2.
    torch.save({"model": sd, "epoch": 3, "best_acc": torch.tensor(91.25), "optimizer": opt.state_dict()},
               os.path.join(OUT, "resnet8_wrapped_model.pth"))
    # DataParallel key prefixes under 'state_dict', pickle protocol 4.
    dp = OrderedDict(("module." + k, v) for k, v in sd.items())
    torch.save({"state_dict": dp, "arch": "resnet8"}, os.path.join(OUT, "resnet8_dataparallel_p4.pth"),
               pickle_protocol=4)
    # A whole pickled nn.Module.
    torch.save(m, os.path.join(OUT, "resnet8_module.pth"))
    # A whole DataParallel module under 'net', with a numpy scalar beside it.
    torch.save({"net": nn.DataParallel(m), "acc": np.float64(0.875), "epoch": 12},
               os.path.join(OUT, "resnet8_net_dataparallel_module.pth"))

    views = views_and_dtypes()
    torch.save(views, os.path.join(OUT, "views_dtypes.pth"))
    expected_views = OrderedDict(
        ("views_dtypes/" + k, v.contiguous() if v.dtype == torch.int64 else v.float().contiguous())
        for k, v in views.items()
    )

    torch.save({"w": torch.ones(2)}, os.path.join(OUT, "legacy.pth"), _use_new_zipfile_serialization=False)
    save_scripted(os.path.join(OUT, "scripted.pt"))

    # fixture_io stores 0-d arrays as 1-d; keep the true shapes beside them.
    meta["view_shapes"] = OrderedDict((k, list(v.shape)) for k, v in views.items())
    write_fixture(os.path.join(OUT, "expected.json"), expected_views, meta)
    with open(os.path.join(OUT, "pickles.json"), "w") as f:
        json.dump(pickle_cases(), f, separators=(",", ":"))
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total / 1e6:.2f} MB, under {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
