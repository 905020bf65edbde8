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
    _check_settings(bench)
    try:
        space = CategoricalSpace(bench.get("decisions") or {})
    except ValueError as err:  # the space's words name space.decisions; here the user wrote benchmark.decisions
        raise ValueError(str(err).replace("space.decisions", "benchmark.decisions", 1)) from None
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


def _check_settings(bench: dict[str, Any]) -> None:
    """Refuses, naming the key, a setting of the wrong type (``int()``/``bool()`` would take 6.5 or ``"maybe"``)."""
    for key, default in (("evaluations", 300), ("archs_per_step", 10)):
        value = bench.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"benchmark.{key} must be a whole number >= 1, got {value!r}")
    requery = bench.get("requery", False)
    if not isinstance(requery, bool):
        raise ValueError(f"benchmark.requery must be true or false, got {requery!r}")
    decisions = bench.get("decisions")
    for name, choices in decisions.items() if isinstance(decisions, dict) else ():
        flag = next((c for c in choices if isinstance(c, bool)), None) if isinstance(choices, list) else None
        if flag is not None:  # the table's keys hold the words: YAML read on/off/yes/no as true/false
            raise ValueError(
                f"benchmark.decisions.{name}: choice {flag!r} is YAML's reading of an unquoted on/off/yes/no; "
                "quote the table's words (e.g. ['off', 'on'])"
            )
    costs = bench.get("costs")
    if costs is not None and not (isinstance(costs, dict) and all(isinstance(v, str) for v in costs.values())):
        raise ValueError(
            f"benchmark.costs must map each cost name to its column, e.g. {{params: params_m}}, got {costs!r}"
        )
    columns = bench.get("metric_columns")
    if columns is None:
        return
    if not (isinstance(columns, list) and all(isinstance(c, str) and c for c in columns)):
        raise ValueError(f"benchmark.metric_columns must be a list of column names, got {columns!r}")
    twice = next((c for c in columns if columns.count(c) > 1), None)
    if twice is not None:  # a seed listed twice would be drawn twice as often, unseen
        raise ValueError(f"benchmark.metric_columns names {twice!r} twice: {columns}")
    metric, report = bench.get("metric"), bench.get("report")
    if columns and metric in [*columns, report]:
        # With seed columns, metric names the drawn value; a table column of that name would be shadowed.
        clash = "benchmark.report" if metric == report else "one of benchmark.metric_columns"
        raise ValueError(
            f"benchmark.metric={metric!r} names the reward drawn from benchmark.metric_columns, so it must differ "
            f"from {clash} (e.g. metric: {metric}_drawn)"
        )
