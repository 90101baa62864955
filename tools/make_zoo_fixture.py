"""Golden state-dict layout of every zoo architecture, from PyTorch (tools/cifar_models.py).

Run: /usr/bin/python3 tools/make_zoo_fixture.py  -> tests/fixtures/zoo_layout.json
Per architecture and (classes, in_channels): ordered state-dict keys with shapes and dtypes,
sum(p.numel() for p in model.parameters()), and the multiply-accumulates per image of every
Conv2d and Linear (forward hooks) at 32x32 and 28x28 inputs (lib/models/macs.ts).
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cifar_models  # noqa: E402
import torch  # noqa: E402


def forward_macs(model, cin, size):
    """Conv2d and Linear multiply-accumulates of one image, counted by forward hooks."""
    total = [0]

    def hook(mod, _inp, out):
        if isinstance(mod, torch.nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1]
            total[0] += out.numel() * mod.in_channels // mod.groups * k
        elif isinstance(mod, torch.nn.Linear):
            total[0] += out.numel() * mod.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model.eval()(torch.zeros(1, cin, size, size))
    for h in handles:
        h.remove()
    return total[0]


ARCHS = ["resnet8", "resnet14", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
         "resnet8x4", "resnet32x4", "wrn_16_1", "wrn_16_2", "wrn_40_1", "wrn_40_2"]

out = {}
for arch in ARCHS:
    for classes, cin in ((100, 3), (10, 1)):
        m = cifar_models.build(arch, classes, cin)
        out[f"{arch}/{classes}/{cin}"] = {
            "params": sum(p.numel() for p in m.parameters()),
            "state": [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in m.state_dict().items()],
            "macs": {str(s): forward_macs(m, cin, s) for s in (32, 28)},
        }
path = os.path.join(os.path.dirname(HERE), "tests", "fixtures", "zoo_layout.json")
with open(path, "w") as f:
    json.dump(out, f, separators=(",", ":"))
print("wrote", path)
