"""Writes the golden fixtures of the ONNX converter tests (run with Debian's /usr/bin/python3).

    /usr/bin/python3 tools/make_onnx_fixtures.py [--shared ../shared] [--out tests/fixtures]

Outputs (format of tools/fixture_io.py):
  teacher_logits.json  eval-mode logits of the six shared teachers on 8 seeded N(0,1) inputs and
                       on the real CIFAR test images in <shared>/data (normalised as the paper's
                       code does), the inputs and labels themselves, and each teacher's input
                       gradient dCE(mean)/dx on the seeded inputs with seeded labels.
  onnx/*.onnx          files written by torch.onnx.export in the shapes users bring: BatchNorm
                       folded (default eval export) and kept (training=PRESERVE), opsets 11..17,
                       the pooling / flatten / classifier spellings PyTorch code uses, static and
                       dynamic batch, unusual input/output names, a weight shared by two convs.
  onnx_logits.json     PyTorch's logits of every onnx/*.onnx model on the seeded inputs, and
                       which export settings each file exercises (meta).
"""
import argparse
import io
import os
import sys
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cifar_models  # noqa: E402
from fixture_io import write_fixture  # noqa: E402

DATASETS = {
    "cifar100": {
        "mean": [0.5071, 0.4867, 0.4408],
        "std": [0.2675, 0.2565, 0.2761],
        "classes": 100,
        "images": "data/cifar-100-binary/test.first20.bin",
        "label_bytes": 2,  # coarse, fine: the fine label is the class
    },
    "cifar10": {
        "mean": [0.4914, 0.4822, 0.4465],
        "std": [0.2470, 0.2435, 0.2616],
        "classes": 10,
        "images": "data/cifar-10-batches-bin/test_batch.first100.bin",
        "label_bytes": 1,
    },
}
TEACHERS = ["resnet20", "resnet32", "resnet56"]
SEED = 0
SEEDED_BATCH = 8


def load_teacher(shared, dataset, arch):
    """cifar100: plain state dicts; cifar10: whole pickled nn.Module objects (models.resnet.ResNet)."""
    path = os.path.join(shared, "teachers", dataset, arch + ".pth")
    obj = torch.load(path, map_location="cpu")
    if isinstance(obj, nn.Module):
        return obj.eval()
    net = cifar_models.build(arch, DATASETS[dataset]["classes"])
    net.load_state_dict(obj)
    return net.eval()


def load_images(shared, dataset):
    """The binary records: label byte(s), then 3072 bytes (R, G, B planes of 32x32).
    Normalised like ToTensor() + Normalize(mean, std): float32 throughout."""
    d = DATASETS[dataset]
    raw = np.fromfile(os.path.join(shared, d["images"]), dtype=np.uint8)
    rec = d["label_bytes"] + 3072
    raw = raw.reshape(-1, rec)
    labels = raw[:, d["label_bytes"] - 1].astype(np.int64)
    x = torch.from_numpy(raw[:, d["label_bytes"]:].reshape(-1, 3, 32, 32).copy()).float().div(255)
    mean = torch.tensor(d["mean"], dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(d["std"], dtype=torch.float32).view(1, 3, 1, 1)
    return (x - mean) / std, torch.from_numpy(labels)


def seeded_inputs():
    g = torch.Generator().manual_seed(SEED)
    x = torch.randn(SEEDED_BATCH, 3, 32, 32, generator=g)
    labels = {name: torch.randint(0, d["classes"], (SEEDED_BATCH,), generator=g) for name, d in DATASETS.items()}
    return x, labels


def input_gradient(net, x, y):
    x = x.clone().requires_grad_(True)
    loss = F.cross_entropy(net(x), y, reduction="mean")
    (g,) = torch.autograd.grad(loss, x)
    return g


def teacher_fixture(shared, out):
    x, seeded_labels = seeded_inputs()
    tensors = {"seeded_input": x}
    meta = {"seed": SEED, "teachers": [], "datasets": {}}
    for dataset, d in DATASETS.items():
        images, labels = load_images(shared, dataset)
        tensors[f"{dataset}/images"] = images
        tensors[f"{dataset}/labels"] = labels
        tensors[f"{dataset}/seeded_labels"] = seeded_labels[dataset]
        meta["datasets"][dataset] = {"mean": d["mean"], "std": d["std"], "num_classes": d["classes"], "images": len(labels)}
        for arch in TEACHERS:
            net = load_teacher(shared, dataset, arch)
            key = f"{dataset}/{arch}"
            with torch.no_grad():
                tensors[f"{key}/seeded_logits"] = net(x)
                tensors[f"{key}/image_logits"] = net(images)
            tensors[f"{key}/seeded_input_grad"] = input_gradient(net, x, seeded_labels[dataset])
            meta["teachers"].append(key)
    meta["input_grad"] = "d mean-reduced cross-entropy(logits(x), seeded_labels) / dx, NCHW"
    write_fixture(os.path.join(out, "teacher_logits.json"), tensors, meta)


class ResNetVariant(nn.Module):
    """A zoo ResNet whose head is spelled the ways user code spells it (what the exporter sees)."""

    def __init__(self, net, pool, flatten, head):
        super().__init__()
        self.net, self.pool, self.flatten, self.head = net, pool, flatten, head

    def forward(self, x):
        n = self.net
        x = F.relu(n.bn1(n.conv1(x)))
        x = n.layer3(n.layer2(n.layer1(x)))
        if self.pool == "adaptive":  # GlobalAveragePool
            x = F.adaptive_avg_pool2d(x, 1)
        elif self.pool == "avgpool":  # Pad(0) + AveragePool(kernel = spatial size)
            x = F.avg_pool2d(x, 8)  # the 8x8 final stage of a 32x32 input
        elif self.pool == "mean":  # ReduceMean keepdims=0
            x = x.mean((2, 3))
        elif self.pool == "mean_keep":  # ReduceMean keepdims=1
            x = x.mean((2, 3), keepdim=True)
        if self.flatten == "flatten":  # Flatten
            x = torch.flatten(x, 1)
        elif self.flatten == "view":  # Shape/Gather/Unsqueeze/Concat/Reshape (dynamic batch)
            x = x.view(x.size(0), -1)
        if self.head == "linear":  # Gemm
            return n.fc(x)
        return x @ n.fc.weight.t() + n.fc.bias  # MatMul + Add


def randomise_batchnorm(net, gen):
    """Non-trivial BatchNorm affine parameters and running statistics, so folding is tested."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(0.5 + torch.rand(c, generator=gen))
                m.bias.copy_(0.2 * torch.randn(c, generator=gen))
                m.running_mean.copy_(0.2 * torch.randn(c, generator=gen))
                m.running_var.copy_(0.5 + 1.5 * torch.rand(c, generator=gen))


# file name -> how it is exported. `names`: (input, output); `bn`: fold or keep; `batch`: dynamic
# or static; `fold`: torch's do_constant_folding.
RESNET8_EXPORTS = {
    "resnet8_opset11.onnx": dict(opset=11, pool="avgpool", flatten="view", head="linear", bn="fold", batch="dynamic"),
    "resnet8_opset12.onnx": dict(opset=12, pool="mean", flatten="view", head="matmul", bn="keep", batch="dynamic"),
    "resnet8_opset13.onnx": dict(opset=13, pool="adaptive", flatten="view", head="linear", bn="fold", batch="dynamic"),
    "resnet8_opset14.onnx": dict(opset=14, pool="avgpool", flatten="flatten", head="matmul", bn="keep", batch="static"),
    "resnet8_opset15.onnx": dict(opset=15, pool="mean_keep", flatten="view", head="linear", bn="fold", batch="dynamic", fold=False),
    # Unusual names and one weight shared by two convolutions (layer1.0.conv2 reuses conv1's).
    "resnet8_opset16.onnx": dict(opset=16, pool="adaptive", flatten="flatten", head="linear", bn="keep", batch="dynamic",
                                 names=("image.nchw:0", "scores/out"), tied=True),
    "resnet8_opset17.onnx": dict(opset=17, pool="mean_keep", flatten="view", head="matmul", bn="fold", batch="static"),
}


def export(model, x, path, opset, bn, batch, names=("input", "logits"), fold=True):
    buf = io.BytesIO()
    dyn = {names[0]: {0: "batch"}, names[1]: {0: "batch"}} if batch == "dynamic" else None
    training = torch.onnx.TrainingMode.PRESERVE if bn == "keep" else torch.onnx.TrainingMode.EVAL
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), x, buf, input_names=[names[0]], output_names=[names[1]], dynamic_axes=dyn,
                          opset_version=opset, training=training, do_constant_folding=fold)
    with open(path, "wb") as f:
        f.write(buf.getvalue())


def onnx_fixtures(shared, out):
    onnx_dir = os.path.join(out, "onnx")
    os.makedirs(onnx_dir, exist_ok=True)
    x, _ = seeded_inputs()
    tensors = {"seeded_input": x}
    files = {}

    def add(name, model, **settings):
        export(model, x, os.path.join(onnx_dir, name), **{k: v for k, v in settings.items() if k in ("opset", "bn", "batch", "names", "fold")})
        with torch.no_grad():
            tensors[name] = model.eval()(x)
        files[name] = {k: v for k, v in settings.items()}

    teacher = load_teacher(shared, "cifar100", "resnet20")
    add("resnet20_cifar100_folded.onnx", teacher, opset=13, bn="fold", batch="dynamic", arch="resnet20")
    add("resnet20_cifar100_bn.onnx", teacher, opset=13, bn="keep", batch="dynamic", arch="resnet20")

    gen = torch.Generator().manual_seed(SEED + 1)
    torch.manual_seed(SEED + 1)
    wrn = cifar_models.build("wrn_16_1", 10)
    randomise_batchnorm(wrn, gen)
    wrn.train()
    with torch.no_grad():  # a few train-mode passes move the running statistics off their init
        for _ in range(3):
            wrn(0.5 + 2 * torch.randn(16, 3, 32, 32, generator=gen))
    add("wrn_16_1_folded.onnx", wrn, opset=14, bn="fold", batch="dynamic", arch="wrn_16_1")
    add("wrn_16_1_bn.onnx", wrn, opset=15, bn="keep", batch="dynamic", arch="wrn_16_1")

    for name, s in RESNET8_EXPORTS.items():
        torch.manual_seed(SEED + s["opset"])
        net = cifar_models.build("resnet8", 10)
        randomise_batchnorm(net, torch.Generator().manual_seed(SEED + s["opset"]))
        if s.get("tied"):
            net.layer1[0].conv2.weight = net.layer1[0].conv1.weight
        add(name, ResNetVariant(net, s["pool"], s["flatten"], s["head"]), arch="resnet8", **s)

    write_fixture(os.path.join(out, "onnx_logits.json"), tensors, {"seed": SEED, "files": files})


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", default=os.path.join(here, "..", "..", "shared"))
    p.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures"))
    a = p.parse_args()
    cifar_models.install_as_models_package()
    torch.set_num_threads(2)
    os.makedirs(a.out, exist_ok=True)
    teacher_fixture(a.shared, a.out)
    onnx_fixtures(a.shared, a.out)


if __name__ == "__main__":
    main()
