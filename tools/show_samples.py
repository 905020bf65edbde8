"""A grid of a task's training images, as the networks see them (before normalisation), per class.

    python tools/show_samples.py --out docs/cluttered_digits/samples.png +task=cluttered_digits
    python tools/show_samples.py --per-class 4 --out samples.png +task=classification
    python tools/show_samples.py --per-class 5 --out signals.png +task=mnist1d

Image tasks (inputs of shape (C, H, W)): one row per class, ``--per-class``
images each, enlarged ``--scale`` times with square pixels. Signal tasks
(``+task=mnist1d``, inputs of shape (1, 1, L)): one panel per class with its
``--per-class`` signals drawn as lines, since a 1-pixel-high image shows nothing.
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
    if args.out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise SystemExit(f"show_samples.py: error: --out {args.out}: name a .png or .jpg file")

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
    # As many per class as the rarest class has, so that each row of the grid is one class.
    per = min(args.per_class, *(int((y == c).sum()) for c in range(data.num_classes) if (y == c).any()))
    rows = [x[y == c][:per] * std + mean for c in range(data.num_classes)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if x.shape[1:3] == (1, 1):
        plot_signals(rows, data.class_names, args.out)
        print(f"wrote {args.out}: {sum(map(len, rows))} training signals of {len(rows)} classes, one panel per class")
        return
    grid = torch.cat([r for r in rows if len(r)]).clamp(0, 1)
    grid = F.interpolate(grid, scale_factor=args.scale, mode="nearest")
    save_image(grid, args.out, nrow=per, padding=2, pad_value=0.5)
    print(f"wrote {args.out}: {len(grid)} training images of {len(rows)} classes, one row per class")


def plot_signals(rows: list, class_names: list[str] | None, out: Path) -> None:
    """One panel per class, its signals overlaid as lines (raw values, as the generator gives them)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(5, len(rows))
    lines = -(-len(rows) // cols)
    fig, axes = plt.subplots(lines, cols, figsize=(2.4 * cols, 1.8 * lines), sharex=True, sharey=True, squeeze=False)
    for c, ax in enumerate(axes.flat):
        if c >= len(rows):
            ax.axis("off")
            continue
        for signal in rows[c]:
            ax.plot(signal.flatten().numpy(), linewidth=0.8, alpha=0.8)
        ax.set_title(class_names[c] if class_names else str(c), fontsize=9)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    run_tool(main)
