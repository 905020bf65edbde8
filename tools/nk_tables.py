"""NK landscapes as tabular benchmarks: tables the shipped ones do not resemble, to check controllers on.

The shipped tables (NAS-Bench-201, the toy table) are a few landscapes that a
controller's defaults can fit by accident. An NK landscape (Kauffman &
Weinberger, J. Theor. Biol. 1989) is a tunable family of them: ``N`` decisions
of ``A`` choices each, and each decision's contribution depends on its own
choice and on the choices of the ``K`` decisions after it (cyclically), drawn
uniformly at random per combination::

    f(x) = 1/N * sum_i  F_i(x_i, x_{i+1}, ..., x_{i+K})

``K = 0`` is additive (each decision can be set on its own, as in the toy
table); larger ``K`` couples decisions, so the landscape gets more local optima
and a choice's value depends on its neighbours' (epistasis, as between the
edges of a NAS cell). Values are scaled to ``60..95`` so they read like
accuracies in percent (``metric_scale: 0.01``), and ``--noise`` adds one
Gaussian draw per training seed as the noisy NB201 table does (reward: one
seed's column per evaluation; report: the noise-free value).

Usage::

    python tools/nk_tables.py --out outputs/nk --decisions 8 --choices 4 --k 2 --seed 1
    python tools/compare_controllers.py --config-dir outputs/nk --benchmark nk8x4k2s1_noisy --seeds 40

writes ``outputs/nk/NAME.csv`` and the configs ``outputs/nk/benchmark/NAME.yaml``
and ``NAME_noisy.yaml`` (``NAME`` is ``nk{N}x{A}k{K}s{seed}`` unless ``--name``
says otherwise). The same arguments write the same table on every machine.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools._common import run_tool, seed_arg  # noqa: E402

#: Largest table written (rows): a table is read whole into memory by every run.
MAX_ROWS = 2_000_000
#: Training seeds of the noisy table (NB201's: 2 or 3).
NOISY_SEEDS = 3


def nk_landscape(decisions: int, choices: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Every architecture of an NK landscape and its value in ``60..95``.

    Args:
        decisions: ``N``, the decisions of an architecture.
        choices: ``A``, the choices of each decision.
        k: ``K``, how many following decisions each decision's contribution also depends on.
        seed: Seed of the contribution tables.

    Returns:
        ``(archs, values)``: an ``(A**N, N)`` array of choices in lexicographic order and their values.
    """
    rng = np.random.default_rng(seed)
    contributions = rng.random((decisions, choices ** (k + 1)))
    archs = np.indices((choices,) * decisions).reshape(decisions, -1).T
    total = np.zeros(len(archs))
    for i in range(decisions):
        index = np.zeros(len(archs), dtype=np.int64)
        for j in range(k + 1):
            index = index * choices + archs[:, (i + j) % decisions]
        total += contributions[i, index]
    low, high = total.min(), total.max()
    values = 60 + 35 * (total - low) / (high - low) if high > low else np.full(len(total), 95.0)
    return archs, values


def write_tables(
    out: Path, name: str, decisions: int, choices: int, k: int, seed: int, noise: float, evaluations: int
) -> list[Path]:
    """Writes ``out/NAME.csv`` and the noise-free and noisy benchmark configs; returns their paths."""
    from rlnas.utils import write_text_atomic

    archs, values = nk_landscape(decisions, choices, k, seed)
    rng = np.random.default_rng([seed, 1])  # the noise has its own stream: --noise leaves the landscape alone
    sd = noise * float(values.std())
    noisy = values[:, None] + rng.normal(0.0, sd, (len(values), NOISY_SEEDS)) if sd > 0 else values[:, None]
    table = out / f"{name}.csv"
    seed_columns = [f"acc_s{s}" for s in range(noisy.shape[1])]
    rows = [",".join(["arch", "acc", *seed_columns]) + "\n"]
    for arch, value, draws in zip(archs, values, noisy, strict=True):
        key = "-".join(f"c{a}" for a in arch)  # the decisions' labels, as key_template writes them
        rows.append(f"{key},{value:.4f}," + ",".join(f"{d:.4f}" for d in draws) + "\n")
    options = "[" + ", ".join(f"c{c}" for c in range(choices)) + "]"
    decision_lines = "".join(f"    d{i}: {options}\n" for i in range(decisions))
    template = "-".join(f"{{d{i}}}" for i in range(decisions))
    files = {table: "".join(rows)}
    for suffix, metric in (("", "  metric: acc\n"), ("_noisy", "")):
        if suffix:
            metric = (
                "  metric: acc_noisy  # one training seed's value per evaluation\n"
                f"  metric_columns: [{', '.join(seed_columns)}]\n  report: acc\n  requery: false\n"
            )
        files[out / "benchmark" / f"{name}{suffix}.yaml"] = (
            f"# @package _global_\n# NK landscape N={decisions} A={choices} K={k}, seed {seed}, noise {noise} x std "
            f"(tools/nk_tables.py)\nbenchmark:\n  name: {name}{suffix}\n  path: {table.resolve()}\n"
            f'  key_column: arch\n  key_template: "{template}"\n{metric}  metric_scale: 0.01\n  costs: {{}}\n'
            f"  missing: error\n  missing_reward: null\n  decisions:\n{decision_lines}"
            f"  evaluations: {evaluations}\n  archs_per_step: 10\n"
        )
    for path, text in files.items():
        # Another table of this name (other --noise or --evaluations, or a config of the user's own such
        # as --out conf --name toy) is never written over; the same arguments rewrite the same files.
        if path.is_symlink() or (path.exists() and (not path.is_file() or path.read_bytes() != text.encode())):
            raise SystemExit(f"{path}: exists and differs from this table's; choose another --name or --out")
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmark").mkdir(exist_ok=True)
    for path, text in files.items():
        write_text_atomic(path, text)
    return list(files)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="config dir to write (NAME.csv, benchmark/NAME*.yaml)")
    parser.add_argument("--decisions", type=int, default=8, help="N: decisions per architecture (default 8)")
    parser.add_argument("--choices", type=int, default=4, help="A: choices per decision (default 4)")
    parser.add_argument("--k", type=int, default=2, help="K: decisions each contribution also depends on (default 2)")
    parser.add_argument("--seed", type=seed_arg, default=0, help="seed of the landscape (default 0)")
    parser.add_argument(
        "--noise", type=float, default=0.25, help="per-seed noise of the noisy table, x the values' std (default 0.25)"
    )
    parser.add_argument("--evaluations", type=int, default=300, help="the configs' evaluation budget (default 300)")
    parser.add_argument("--name", help="table name (default nk{N}x{A}k{K}s{seed})")
    args = parser.parse_args(argv)
    if args.decisions < 1 or args.choices < 2:
        raise SystemExit(f"--decisions must be >= 1 and --choices >= 2, got {args.decisions} and {args.choices}")
    if not 0 <= args.k < args.decisions:
        raise SystemExit(f"--k must be in 0..{args.decisions - 1} (below --decisions), got {args.k}")
    if not (np.isfinite(args.noise) and args.noise >= 0):
        raise SystemExit(f"--noise must be a finite number >= 0, got {args.noise}")
    if args.evaluations < 1:
        raise SystemExit(f"--evaluations must be >= 1, got {args.evaluations}")
    if args.decisions * np.log(args.choices) > np.log(MAX_ROWS):
        rows = (
            f"{args.choices**args.decisions:,}"
            if args.decisions < 64
            else f"about 10**{args.decisions * np.log10(args.choices):.0f}"
        )
        raise SystemExit(
            f"--choices {args.choices} ** --decisions {args.decisions} = {rows} architectures; "
            f"at most {MAX_ROWS:,} (a run reads the whole table)"
        )
    name = args.name or f"nk{args.decisions}x{args.choices}k{args.k}s{args.seed}"
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):
        raise SystemExit(f"--name {name!r}: letters, digits and _ only (it names a config)")
    for path in write_tables(
        args.out, name, args.decisions, args.choices, args.k, args.seed, args.noise, args.evaluations
    ):
        print(f"wrote {path}")


if __name__ == "__main__":
    run_tool(main)
