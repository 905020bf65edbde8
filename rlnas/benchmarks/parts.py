"""A ``benchmark:`` config node as a space and an evaluator (a table, or the toy's hidden target).

Below the environments and the budget loop, which both build their benchmark here.
"""

from __future__ import annotations

from typing import Any

from rlnas.benchmarks.tabular import HiddenTargetBenchmark, TabularBenchmark
from rlnas.spaces.categorical import CategoricalSpace
from rlnas.spaces.seams import Evaluator
from rlnas.utils import MAX_SEED, is_seed


def benchmark_parts(bench: dict[str, Any], seed: int = 0) -> tuple[Any, Evaluator]:
    """The categorical space and the evaluator of a ``benchmark:`` config node (a table or the hidden target).

    ``seed`` seeds a noisy table's draws among its seed columns.

    Raises:
        ValueError: Naming an unknown or missing ``benchmark.*`` key.
    """
    known = {
        "name",
        "kind",
        "path",
        "env_var",
        "key_column",
        "key_template",
        "metric",
        "metric_scale",
        "costs",
        "decisions",
        "evaluations",
        "archs_per_step",
        "target_seed",
        "metric_columns",
        "report",
        "requery",
        "missing",
        "missing_reward",
    }
    unknown = sorted(set(bench) - known)
    if unknown:
        raise ValueError(f"benchmark.{unknown[0]} is not a setting; allowed: {sorted(known)}")
    space = CategoricalSpace(bench.get("decisions") or {})
    kind = bench.get("kind", "table")
    evaluator: Evaluator
    if kind == "hidden_target":
        table_only = sorted(set(bench) - {"name", "kind", "decisions", "evaluations", "archs_per_step", "target_seed"})
        if table_only:  # a setting of a table, here read by nothing: say so rather than ignore it
            raise ValueError(
                f"benchmark.{table_only[0]} is a table's setting; benchmark.kind=hidden_target reads no table"
            )
        target_seed = bench.get("target_seed", 0)
        if not is_seed(target_seed):  # NumPy's own words were "expected non-negative integer"
            raise ValueError(
                f"benchmark.target_seed must be a whole number in 0..{MAX_SEED} (2**32 - 1), got {target_seed!r}"
            )
        evaluator = HiddenTargetBenchmark(space, int(target_seed), bench.get("name", "hidden_target"), seed)
    elif kind == "table":
        if "target_seed" in bench:
            raise ValueError("benchmark.target_seed is the hidden target's setting; a table has no hidden target")
        for key in ("path", "key_template", "metric"):
            if not bench.get(key):
                raise ValueError(f"benchmark.{key} must be set for a table benchmark")
        evaluator = TabularBenchmark(
            space,
            bench["path"],
            bench["key_template"],
            bench["metric"],
            bench.get("key_column", "arch"),
            bench.get("costs"),
            bench.get("metric_scale", 1.0),
            bench.get("env_var"),
            bench.get("name", "tabular"),
            bench.get("metric_columns"),
            bench.get("report"),
            seed,
            str(bench.get("missing") or "error"),
            bench.get("missing_reward"),
        )
    else:
        raise ValueError(f"benchmark.kind={kind!r} is unknown; allowed: ['table', 'hidden_target']")
    return space, evaluator
