"""Golden state-dict layout of every zoo architecture, from PyTorch (tools/cifar_models.py).

Run: /usr/bin/python3 tools/make_zoo_fixture.py  -> tests/fixtures/zoo_layout.json
Per architecture and (classes, in_channels): ordered state-dict keys with shapes and dtypes,
and sum(p.numel() for p in model.parameters()).
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cifar_models  # noqa: E402

ARCHS = ["resnet8", "resnet14", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
         "resnet8x4", "resnet32x4", "wrn_16_1", "wrn_16_2", "wrn_40_1", "wrn_40_2"]

out = {}
for arch in ARCHS:
    for classes, cin in ((100, 3), (10, 1)):
        m = cifar_models.build(arch, classes, cin)
        out[f"{arch}/{classes}/{cin}"] = {
            "params": sum(p.numel() for p in m.parameters()),
            "state": [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in m.state_dict().items()],
        }
path = os.path.join(os.path.dirname(HERE), "tests", "fixtures", "zoo_layout.json")
with open(path, "w") as f:
    json.dump(out, f, separators=(",", ":"))
print("wrote", path)
