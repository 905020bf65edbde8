"""A grid of a task's training images, as the networks see them (before normalisation), per class.

    python tools/show_samples.py --out docs/cluttered_digits/samples.png +task=cluttered_digits
    python tools/show_samples.py --per-class 4 --out samples.png +task=classification

Image tasks only (inputs of shape (C, H, W)); one row per class, ``--per-class``
images each, enlarged ``--scale`` times with square pixels.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools._common import load_config, run_tool  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides naming the task and its data")
    parser.add_argument("--per-class", type=int, default=8)
    parser.add_argument("--scale", type=int, default=3, help="pixels per image pixel")
    parser.add_argument("--out", type=Path, default=Path("outputs/samples.png"))
    args = parser.parse_args(argv)
    if args.per_class < 1 or args.scale < 1:
        raise SystemExit("show_samples.py: error: --per-class and --scale must be >= 1")

    import torch
    import torch.nn.functional as F
    from hydra.utils import instantiate
    from torchvision.utils import save_image

    cfg = load_config(args.overrides)
    task = instantiate(cfg.task, _convert_="all")
    data = task.load_data(seed=int(cfg.get("data_seed") or cfg.seed))
    x, y = data.train.x, data.train.y
    if x.dim() != 4 or y.dim() != 1:
        raise SystemExit(f"show_samples.py: error: the {task.name} task's inputs are not class-labelled images")
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    rows = [x[y == c][: args.per_class] * std + mean for c in range(data.num_classes)]
    grid = torch.cat([r for r in rows if len(r)]).clamp(0, 1)
    grid = F.interpolate(grid, scale_factor=args.scale, mode="nearest")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, args.out, nrow=args.per_class, padding=2, pad_value=0.5)
    print(f"wrote {args.out}: {len(grid)} training images of {len(rows)} classes, one row per class")


if __name__ == "__main__":
    run_tool(main)
