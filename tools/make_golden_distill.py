"""Golden fixtures for the oracle inputs and the distillation step (issue: distill parity).

Run with Debian's PyTorch:  /usr/bin/python3 tools/make_golden_distill.py
Writes tests/fixtures/oracle_golden.json and tests/fixtures/sgd_golden.json.

The definitions mirror the paper's code: x* = x - gamma * |x| * dCE(teacher(x), y)/dx with the
teacher in eval mode and CE reduced by the batch mean (or sum), repeated rec_num times; the
student loss is ce_weight * CE + alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) / batch with
torch.optim.SGD.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import cifar_models  # noqa: E402
from fixture_io import write_fixture  # noqa: E402

SHARED = os.path.join(ROOT, "..", "shared")
FIX = os.path.join(ROOT, "tests", "fixtures")
CIFAR100_MEAN = [0.5071, 0.4867, 0.4408]
CIFAR100_STD = [0.2675, 0.2565, 0.2761]

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)


def cifar100_real(n):
    raw = np.fromfile(os.path.join(SHARED, "data", "cifar-100-binary", "test.first20.bin"), dtype=np.uint8)
    rec = raw.reshape(-1, 3074)[:n]
    labels = rec[:, 1].astype(np.int64)
    img = rec[:, 2:].reshape(n, 3, 32, 32).astype(np.float32) / 255.0
    mean = np.array(CIFAR100_MEAN, np.float32).reshape(1, 3, 1, 1)
    std = np.array(CIFAR100_STD, np.float32).reshape(1, 3, 1, 1)
    return torch.from_numpy((img - mean) / std), torch.from_numpy(labels)


def oracle(teacher, x, y, gamma, rec_num, reduction):
    for _ in range(rec_num):
        x = x.detach().requires_grad_(True)
        loss = F.cross_entropy(teacher(x), y, reduction=reduction)
        (g,) = torch.autograd.grad(loss, x)
        x = x - gamma * torch.abs(x.detach()) * g
    with torch.no_grad():
        return x.detach(), teacher(x)


def make_oracle():
    teacher = cifar_models.build("resnet56", 100)
    teacher.load_state_dict(torch.load(os.path.join(SHARED, "teachers", "cifar100", "resnet56.pth"), map_location="cpu"))
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    x, y = cifar100_real(16)
    tensors = {"x": x, "y": y.to(torch.int32)}
    with torch.no_grad():
        tensors["logits_plain"] = teacher(x)
    cases = [("g0.5_r1_mean", 0.5, 1, "mean"), ("g0.5_r2_mean", 0.5, 2, "mean"), ("g0.1_r1_sum", 0.1, 1, "sum")]
    for name, gamma, rec, red in cases:
        xs, logits = oracle(teacher, x, y, gamma, rec, red)
        tensors[f"xstar_{name}"] = xs
        tensors[f"logits_{name}"] = logits
    # Batch-size dependence of the mean reduction: the first 8 samples alone.
    xs8, logits8 = oracle(teacher, x[:8], y[:8], 0.5, 1, "mean")
    tensors["xstar_g0.5_r1_mean_first8"] = xs8
    tensors["logits_g0.5_r1_mean_first8"] = logits8
    meta = {
        "teacher": "cifar100/resnet56.pth",
        "cases": [{"name": c[0], "gamma": c[1], "rec_num": c[2], "reduction": c[3]} for c in cases],
        "torch": torch.__version__,
    }
    write_fixture(os.path.join(FIX, "oracle_golden.json"), tensors, meta)


def kd_loss(s, t, y, ce_weight, alpha, T):
    ce = F.cross_entropy(s, y)
    kd = F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t / T, dim=1), reduction="sum") / s.shape[0]
    return ce_weight * ce + alpha * T * T * kd, ce, kd


def make_sgd():
    torch.manual_seed(0)
    classes, n = 10, 8
    hp = dict(lr=0.05, momentum=0.9, weight_decay=2.5e-4, T=2.0, alpha=1.0, ce_weight=0.5)
    tensors = {}
    for variant, nesterov in (("plain", False), ("nesterov", True)):
        torch.manual_seed(0)
        student = cifar_models.build("resnet8", classes)
        with torch.no_grad():  # non-trivial affine BatchNorm parameters
            for m in student.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.2, 0.2)
        if variant == "plain":
            for k, v in student.state_dict().items():
                tensors[f"init.{k}"] = v.clone()
        opt = torch.optim.SGD(student.parameters(), lr=hp["lr"], momentum=hp["momentum"],
                              weight_decay=hp["weight_decay"], nesterov=nesterov)
        student.train()
        gen = torch.Generator().manual_seed(1)
        for step in (1, 2):
            x = torch.randn(n, 3, 32, 32, generator=gen)
            y = torch.randint(0, classes, (n,), generator=gen)
            t = 3 * torch.randn(n, classes, generator=gen)
            if variant == "plain":
                tensors[f"x{step}"], tensors[f"y{step}"], tensors[f"t{step}"] = x, y.to(torch.int32), t
            s = student(x)
            loss, ce, kd = kd_loss(s, t, y, hp["ce_weight"], hp["alpha"], hp["T"])
            opt.zero_grad()
            loss.backward()
            opt.step()
            tensors[f"{variant}.loss{step}"] = torch.tensor([loss.item(), ce.item(), kd.item()])
            for k, v in student.state_dict().items():
                tensors[f"{variant}.step{step}.{k}"] = v.clone()
    write_fixture(os.path.join(FIX, "sgd_golden.json"), tensors,
                  {"arch": "resnet8", "classes": classes, "batch": n, **hp, "torch": torch.__version__})


if __name__ == "__main__":
    os.makedirs(FIX, exist_ok=True)
    make_oracle()
    make_sgd()
    print("wrote oracle_golden.json, sgd_golden.json")
