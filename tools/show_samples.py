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
    if args.out.exists() and not _ours(args.out):
        raise SystemExit(
            f"show_samples.py: error: --out {args.out} exists and is not a grid this tool drew; "
            "move it away or name another file"
        )

    import torch
    import torch.nn.functional as F
    from hydra.utils import instantiate
    from PIL import Image
    from torchvision.utils import make_grid

    cfg = load_config(args.overrides, needs_task=True, check=True)
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
    pixels = len(grid) * grid.shape[2] * grid.shape[3] * args.scale**2
    if pixels > MAX_PIXELS:  # --scale 100000 asked the allocator for 200 TB
        raise SystemExit(
            f"show_samples.py: error: --scale {args.scale} would draw {pixels:,} pixels (at most {MAX_PIXELS:,}); "
            "choose a smaller --scale or --per-class"
        )
    grid = F.interpolate(grid, scale_factor=args.scale, mode="nearest")
    image = make_grid(grid, nrow=per, padding=2, pad_value=0.5).mul(255).round().byte().permute(1, 2, 0).numpy()
    _save_marked(Image.fromarray(image), args.out)
    print(f"wrote {args.out}: {len(grid)} training images of {len(rows)} classes, one row per class")


#: Largest grid drawn, in pixels (a 10,000 x 10,000 image).
MAX_PIXELS = 10**8
#: What this tool writes into its images' metadata, so that a rerun replaces its own grid and nothing else.
MARK = "rlnas tools/show_samples.py"


def _ours(path: Path) -> bool:
    """Whether ``path`` is an image this tool wrote (its metadata carries :data:`MARK`)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            comment = img.info.get("comment", b"")
            comment = comment.decode("latin-1") if isinstance(comment, bytes) else comment
            return MARK in (img.info.get("Software"), comment)
    except (OSError, UnidentifiedImageError):
        return False


def _save_marked(image, out: Path) -> None:
    """Saves a PIL image with :data:`MARK` in its metadata (a PNG text chunk or a JPEG comment)."""
    from PIL.PngImagePlugin import PngInfo

    if out.suffix.lower() == ".png":
        info = PngInfo()
        info.add_text("Software", MARK)
        image.save(out, pnginfo=info)
    else:
        image.save(out, comment=MARK)


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
    if out.suffix.lower() == ".png":
        fig.savefig(out, dpi=120, metadata={"Software": MARK})
    else:
        fig.savefig(out, dpi=120, pil_kwargs={"comment": MARK})
    plt.close(fig)


if __name__ == "__main__":
    run_tool(main)
