"""Does weight sharing cost anything? Supernet path vs standalone child, side by side.

1. Overhead: for >= 20 random architectures, forward+backward time of the arch
   through the supernet divided by the same arch as a standalone child with
   identical weights, on the same batch (timings interleaved, medians).
2. Loop overhead: a real search (the configured one, ``--loop-epochs``
   epochs) with compute accounting on: the share of wall time spent outside
   child forward/backward/optimiser steps and evaluation forwards.
3. Throughput: images/s of supernet training (a new random arch every step, as
   in a search) vs a plain training loop of one fixed child, both drawing
   batches from the same device-resident tensors.

    .venv/bin/python tools/bench_supernet.py                 # classification, CPU
    .venv/bin/python tools/bench_supernet.py --device cuda +task=detection
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import build_parts, check_out_file, run_tool, seed_arg  # noqa: E402

from rlnas.tasks import Network  # noqa: E402
from rlnas.utils import write_text_atomic


def fwd_bwd(model, x, y, task, *arch) -> float:
    start = time.perf_counter()
    loss = task.loss(model(x, *arch), y)
    loss.backward()
    if x.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measured_batch(asked: int, split: int) -> int:
    """The batch size measured: ``asked``, or the training split's size when it holds fewer (said on stderr).

    A batch is drawn without repeats, so it holds the whole split at most; the throughput counted the asked
    size (``--batch 100000000`` "measured" 99,625,624 img/s on 1,079 digits).
    """
    if asked <= split:
        return asked
    print(
        f"bench_supernet.py: --batch {asked} is more than the training split's {split} samples; measured with {split}",
        file=sys.stderr,
    )
    return split


def train_images_per_s(model, task, data, archs, batch, steps, generator) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    start = time.perf_counter()
    for step in range(steps):
        x, y = data.train.batch(batch, generator)
        loss = task.loss(model(x, *archs[step % len(archs)]), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if data.train.x.device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - start)


def loop_overhead(cfg, device: torch.device, epochs: int) -> dict:
    """Runs a search with compute accounting; returns wall time and the overhead share."""
    import tempfile

    from omegaconf import open_dict

    from rlnas.search.builder import build_search

    with open_dict(cfg):
        cfg.device = str(device)
        cfg.search.epochs = epochs
        cfg.search.warmup_epochs = min(cfg.search.warmup_epochs, epochs - 1)
        cfg.search.random_baseline = 0
    with tempfile.TemporaryDirectory() as run_dir:
        search = build_search(cfg, run_dir, progress=False)
        search.timer.enabled = True
        start = time.perf_counter()
        search.run()
        wall = time.perf_counter() - start
    return {
        "epochs": epochs,
        "wall_s": wall,
        "compute_s": search.timer.seconds,
        "overhead_share": 1 - search.timer.seconds / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. +task=detection")
    parser.add_argument("--archs", type=int, default=20)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--steps", type=int, default=60, help="training steps per throughput measurement")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=seed_arg, default=0)
    parser.add_argument("--loop-epochs", type=int, default=10, help="epochs of the search timed for 2.")
    parser.add_argument("--out", default="outputs/bench_supernet.json")
    args = parser.parse_args()
    for flag in ("archs", "batch", "repeats", "steps", "loop_epochs"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    check_out_file(Path(args.out), "--out", ("device", "median_ratio", "rows"))
    cfg, device, space, task, data, supernet = build_parts(args.overrides, args.device, args.seed)
    backbone = supernet.backbone
    args.batch = measured_batch(args.batch, len(data.train))
    gen = torch.Generator(device).manual_seed(args.seed)
    x, y = data.train.batch(args.batch, gen)
    rng = np.random.default_rng(args.seed)
    archs = [space.sample(rng) for _ in range(args.archs)]

    rows = []
    print(f"{'arch':<62} {'supernet ms':>11} {'child ms':>9} {'ratio':>6}")
    for arch in archs:
        child = Network(backbone.extract_child(arch), supernet.head).to(device)
        for _ in range(2):  # warm-up
            fwd_bwd(supernet, x, y, task, arch)
            fwd_bwd(child, x, y, task)
        sup, chi = [], []
        for _ in range(args.repeats):  # interleaved so drift hits both alike
            sup.append(fwd_bwd(supernet, x, y, task, arch))
            chi.append(fwd_bwd(child, x, y, task))
        s, c = statistics.median(sup) * 1e3, statistics.median(chi) * 1e3
        rows.append({"arch": list(arch), "supernet_ms": s, "child_ms": c, "ratio": s / c})
        print(f"{space.describe(arch)[:62]:<62} {s:11.2f} {c:9.2f} {s / c:6.3f}")
    ratios = [r["ratio"] for r in rows]
    median_ratio = statistics.median(ratios)

    fixed = archs[0]
    child = Network(backbone.extract_child(fixed, copy_weights=True), supernet.head).to(device)
    sup_ips, child_ips = [], []
    for _ in range(3):  # alternate the two loops
        sup_ips.append(train_images_per_s(supernet, task, data, [(a,) for a in archs], args.batch, args.steps, gen))
        child_ips.append(train_images_per_s(child, task, data, [()], args.batch, args.steps, gen))
    s_ips, c_ips = statistics.median(sup_ips), statistics.median(child_ips)

    loop = loop_overhead(cfg, device, args.loop_epochs)

    print(
        f"\n1. overhead on {device}: median supernet/child fwd+bwd ratio {median_ratio:.3f} "
        f"(min {min(ratios):.3f}, max {max(ratios):.3f}) over {len(rows)} archs, batch {args.batch}"
    )
    print(
        f"2. loop overhead: {100 * loop['overhead_share']:.1f}% of {loop['wall_s']:.1f} s search wall time outside "
        f"child compute ({loop['epochs']} epochs, controller {cfg.controller._target_.rsplit('.', 1)[-1]})"
    )
    print(
        f"3. throughput: supernet training {s_ips:,.0f} img/s (random arch per step) vs one fixed child "
        f"{c_ips:,.0f} img/s (ratio {s_ips / c_ips:.3f}; archs differ in cost, so this also reflects the mix)"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(
        out,
        json.dumps(
            {
                "device": str(device),
                "batch": args.batch,
                "median_ratio": median_ratio,
                "rows": rows,
                "supernet_images_per_s": s_ips,
                "child_images_per_s": c_ips,
                "loop": loop,
            },
            indent=2,
        ),
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    run_tool(main)
