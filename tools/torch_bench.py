"""PyTorch CPU reference for `deno task bench` (bench/bench.ts): the cases of bench/engine_bench.ts, same semantics.

Run with Debian's PyTorch:  /usr/bin/python3 tools/torch_bench.py [--batch 64] [--threads 2]
                                                [--case NAME] [--quick] [--memory-format contiguous|channels_last]
--memory-format contiguous (NCHW, as the paper's code; default) or channels_last (oneDNN's
faster layout on x86 CPUs); `deno task bench` runs both, alternating with ours round by round.
Without --case every case runs in its own subprocess (so peak memory is per case) and the table
is printed as one JSON object; with --case only that case runs and prints its JSON row.

Cases (random CIFAR-shaped data, 100 classes, seeded):
  kd_step*      oracle of the teacher (x* = x - gamma*|x|*dCE/dx, gamma 0.5, rec_num 1, mean)
                then one SGD step of the student on ce_weight*CE + alpha*T^2*KL (0.5, 1, T=2)
  oracle        the oracle alone (resnet56)
  train_step    one plain CE step of resnet20
  eval_*        eval-mode forward
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cifar_models  # noqa: E402

# The step settings of bench/step_workload.ts (STEP_ORACLE, STEP_LOSS, STEP_LR, STEP_SGD): change both.
GAMMA, REC_NUM = 0.5, 1
CE_WEIGHT, ALPHA, T = 0.5, 1.0, 2.0
LR, MOMENTUM, WD = 0.05, 0.9, 5e-4


def cases(batch):
    """Name -> (kind, teacher, student, batch); mirrors CASES in bench/engine_bench.ts (a case of ours
    without its own entry here names the one it is compared with there, e.g. kd_step)."""
    return {
        "kd_step": ("kd", "resnet56", "resnet20", batch),
        "oracle": ("oracle", "resnet56", None, batch),
        "train_step": ("train", None, "resnet20", batch),
        "eval_resnet56": ("eval", "resnet56", None, batch),
        "eval_resnet20": ("eval", "resnet20", None, batch),
        "kd_step_b16": ("kd", "resnet56", "resnet20", 16),
        "kd_step_b256": ("kd", "resnet56", "resnet20", 256),
        "kd_step_t20": ("kd", "resnet20", "resnet20", batch),
        "kd_step_t110": ("kd", "resnet110", "resnet20", batch),
    }


def oracle(teacher, x, y):
    for _ in range(REC_NUM):
        x = x.detach().requires_grad_(True)
        loss = F.cross_entropy(teacher(x), y)
        (g,) = torch.autograd.grad(loss, x)
        x = x.detach() - GAMMA * torch.abs(x.detach()) * g
    with torch.no_grad():
        return teacher(x)


def run_case(name, batch, min_seconds, max_iters, memory_format=torch.contiguous_format):
    torch.manual_seed(0)
    kind, t_arch, s_arch, n = cases(batch)[name]
    x = torch.randn(n, 3, 32, 32).to(memory_format=memory_format)
    y = torch.randint(0, 100, (n,))
    teacher = student = opt = None
    if t_arch:
        teacher = cifar_models.build(t_arch, 100).eval().to(memory_format=memory_format)
        for p in teacher.parameters():
            p.requires_grad_(False)
    if s_arch:
        student = cifar_models.build(s_arch, 100).train().to(memory_format=memory_format)
        opt = torch.optim.SGD(student.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)

    def step():
        if kind == "eval":
            with torch.no_grad():
                teacher(x)
            return
        if kind == "oracle":
            oracle(teacher, x, y)
            return
        t = oracle(teacher, x, y) if kind == "kd" else None
        s = student(x)
        ce = F.cross_entropy(s, y)
        loss = CE_WEIGHT * ce
        if t is not None:
            kd = F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t / T, dim=1), reduction="sum") / n
            loss = loss + ALPHA * T * T * kd
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    times = []
    start = time.perf_counter()
    while len(times) < max_iters and (len(times) < 5 or time.perf_counter() - start < min_seconds):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    med = times[len(times) // 2]
    return {
        "case": name,
        "memory_format": "channels_last" if memory_format == torch.channels_last else "contiguous",
        "batch": n,
        "iters": len(times),
        "ms_median": round(med, 2),
        "ms_min": round(times[0], 2),
        "images_per_s": round(n / med * 1000, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--case", choices=sorted(cases(64)))
    ap.add_argument("--quick", action="store_true", help="fewer iterations (1 s per case)")
    ap.add_argument("--memory-format", choices=["contiguous", "channels_last"], default="contiguous",
                    help="NCHW as the paper's code (default), or channels_last (oneDNN's faster layout here)")
    args = ap.parse_args()
    fmt = torch.channels_last if args.memory_format == "channels_last" else torch.contiguous_format
    torch.set_num_threads(args.threads)
    min_seconds, max_iters = (1.0, 10) if args.quick else (3.0, 30)
    if args.case:
        print(json.dumps(run_case(args.case, args.batch, min_seconds, max_iters, fmt)))
        return
    rows = []
    for name in cases(args.batch):
        cmd = [sys.executable, os.path.abspath(__file__), "--case", name, "--batch", str(args.batch),
               "--threads", str(args.threads), "--memory-format", args.memory_format] + (["--quick"] if args.quick else [])
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    print(json.dumps({"engine": f"torch-{torch.__version__}-cpu-{args.memory_format}", "threads": args.threads,
                      "cases": rows}))


if __name__ == "__main__":
    main()
