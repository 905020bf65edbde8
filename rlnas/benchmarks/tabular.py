"""Tabular benchmarks: an architecture's metric is looked up, not trained.

A benchmark is configuration: a :class:`~rlnas.spaces.CategoricalSpace`, a
key template turning the chosen choice names into the table's row key, a table
file (CSV with a key column, or JSON mapping each key to an object of fields),
the metric field and optional cost fields. NAS-Bench-201 (Dong & Yang, 2020)
is ``conf/benchmark/nb201_cifar10.yaml``.

A *noisy* table names several reward columns, one per training seed
(``metric_columns``): each evaluation draws one of an architecture's seeds, as
one training run returns one validation accuracy, not their mean; a separate
``report`` column (e.g. test accuracy) says what the pick is worth
(``conf/benchmark/nb201_cifar10_noisy.yaml``).

A *sparse* table holds only some of its space's architectures (a sample of
a larger space, a space with invalid graphs). By default a proposal it lacks
stops the search with one line naming the key (most often a key template
that does not match the table); with ``missing: skip`` such a proposal is
*absent*: nothing is trained for it, so it costs and counts nothing, the
controller is told ``missing_reward`` for it (by default the table's lowest
reward value) so that it learns to avoid it, and it is never the pick.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from rlnas.data.base import DataError
from rlnas.spaces.base import Arch, SearchSpace
from rlnas.spaces.seams import Evaluation
from rlnas.utils import csv_number, csv_separator, parse_json

log = logging.getLogger(__name__)

#: What a proposal the table lacks does: ``error`` stops the search, ``skip`` makes it absent.
MISSING = ("error", "skip")

#: Relative table paths are tried against the working directory, then the project root.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class MissingRecord(KeyError):
    """An architecture the table holds no record of."""


class AbsentRecord(MissingRecord):
    """An architecture a sparse table lacks, with ``missing: skip``: absent, not an error."""


def resolve_table_path(path: str | os.PathLike, env_var: str | None = None) -> Path:
    """The table file: ``$env_var`` when set, else ``path`` (relative: cwd, then project root)."""
    raw = os.environ.get(env_var) if env_var and os.environ.get(env_var) else path
    if raw is None or str(raw) == "":
        raise DataError(f"benchmark.path is not set{f' (nor ${env_var})' if env_var else ''}")
    candidate = Path(str(raw)).expanduser()
    if not candidate.is_absolute() and not candidate.exists() and (PROJECT_ROOT / candidate).exists():
        candidate = PROJECT_ROOT / candidate
    return candidate


def _not_a_file(path: Path) -> str:
    """Why ``path``, which is no regular file, cannot be a table."""
    if path.is_dir():
        return "is a directory, not a table file"
    if path.exists():
        return "is not a regular file (a device or pipe is never read)"
    return "not found"


def _number(value: object, separator: str | None) -> float:
    """A table field as a float: a CSV's text (decimal commas where a semicolon or tab separates), a JSON number."""
    return csv_number(value, separator) if isinstance(value, str) else float(value)  # type: ignore[arg-type]


class TabularBenchmark:
    """Evaluator answering from a published table.

    Args:
        space: The benchmark's space (its choice names fill the key template).
        path: Table file (``.csv`` or ``.json``); see :func:`resolve_table_path`.
        key_template: Python format string over the decision names, e.g.
            ``"|{e0}~0|+|{e1}~0|{e2}~1|"``.
        metric: Field holding the metric (the reward metric).
        key_column: CSV column holding the key (ignored for JSON).
        costs: Cost name -> field (e.g. ``{"params": "params_m"}``).
        metric_scale: Factor applied to the metric (e.g. 0.01 for percentages; negative for a
            lower-is-better column such as an error or a loss, -0.01 for errors in percent).
        env_var: Environment variable that overrides ``path`` when set.
        name: Name used in outputs.
        metric_columns: Fields holding one training seed's value each: an
            evaluation draws one of the non-empty ones and reports it as
            ``metric`` (which then names the reward metric, not a field).
        report: Field reported for the pick (``None``: the metric itself).
        seed: Seed of the draws among ``metric_columns``.
        missing: ``error``: a proposal the table lacks stops the search;
            ``skip``: it is absent (see the module docstring).
        missing_reward: The reward an absent proposal hands the controller
            (``None``: the table's lowest reward value, scaled).
    """

    def __init__(
        self,
        space: SearchSpace,
        path: str | os.PathLike,
        key_template: str,
        metric: str,
        key_column: str = "arch",
        costs: Mapping[str, str] | None = None,
        metric_scale: float = 1.0,
        env_var: str | None = None,
        name: str = "tabular",
        metric_columns: Sequence[str] | None = None,
        report: str | None = None,
        seed: int = 0,
        missing: str = "error",
        missing_reward: float | None = None,
    ) -> None:
        if missing not in MISSING:
            raise ValueError(f"benchmark.missing={missing!r} is unknown; allowed: {list(MISSING)}")
        number = isinstance(metric_scale, (int, float)) and not isinstance(metric_scale, bool)
        if not (number and math.isfinite(metric_scale) and metric_scale != 0):
            raise ValueError(f"benchmark.metric_scale must be a finite non-zero number, got {metric_scale!r}")
        self.space = space
        self.metric_columns = [str(c) for c in metric_columns or []]
        #: Whether an evaluation is a draw (repeats may differ).
        self.noisy = len(self.metric_columns) > 0
        self.report_metric = str(report) if report else metric
        self.rng = np.random.default_rng(seed)
        self.name = name
        self.key_template = key_template
        self.metric = metric
        self.reward_metric = metric
        self.cost_fields = dict(costs or {})
        # A negative scale turns a lower-is-better column (an error, a loss) into a reward to maximise.
        self.metric_scale = float(metric_scale)
        self.path = resolve_table_path(path, env_var)
        self.env_var = env_var
        fields = set(_template_fields(key_template))
        unknown = sorted(fields - {d.name for d in space.decisions})
        if unknown:
            raise ValueError(
                f"benchmark.key_template names {unknown}, which are not decisions; "
                f"decisions: {[d.name for d in space.decisions]}"
            )
        left_out = [d.name for d in space.decisions if d.name not in fields]
        if left_out:  # architectures that differ only there would read one row: the decision would do nothing
            raise ValueError(
                f"benchmark.key_template={key_template!r} leaves out decisions {left_out}; name every decision "
                "as {NAME} (or drop it from benchmark.decisions)"
            )
        self.rows = self._load(key_column)
        #: Keys of the table that no architecture of the space spells (rows the search can never read).
        self.unmatched = _unmatched_keys(space, key_template, self.rows)
        if self.unmatched:
            log.warning(
                "%d of the %d records of %s match no architecture of benchmark.decisions (e.g. %r); no search "
                "reads them: check benchmark.key_template and the choice names",
                len(self.unmatched),
                len(self.rows),
                self.path,
                self.unmatched[0],
            )
        #: Whether a proposal the table lacks is absent (``True``) or an error.
        self.skip_missing = missing == "skip"
        reward_fields = self.metric_columns or [self.metric]
        values = [row[f] * self.metric_scale for row in self.rows.values() for f in reward_fields]
        if any(math.isinf(v) for v in values):  # finite values times a finite scale, past the float range
            raise ValueError(
                f"benchmark.metric_scale={metric_scale!r} takes values of {self.path} past the float range (inf)"
            )
        #: The lowest reward value the table holds (scaled).
        self.lowest_reward = min(v for v in values if math.isfinite(v))
        #: The highest (a hard limit's penalty must stay below it).
        self.highest_reward = max(v for v in values if math.isfinite(v))
        if missing_reward is None:
            missing_reward = self.lowest_reward
        elif isinstance(missing_reward, bool) or not isinstance(missing_reward, (int, float)):
            raise ValueError(f"benchmark.missing_reward must be a number or null, got {missing_reward!r}")
        if not math.isfinite(missing_reward):
            raise ValueError(f"benchmark.missing_reward must be finite, got {missing_reward}")
        #: The reward an absent proposal hands the controller.
        self.missing_reward = float(missing_reward)
        self._cache: dict[Arch, tuple[Evaluation, list[float]]] = {}
        self.calls = 0

    def _load(self, key_column: str) -> dict[str, dict[str, float]]:
        reward_fields = self.metric_columns or [self.metric]
        extra = [self.report_metric] if self.report_metric != self.metric else []
        fields = list(dict.fromkeys([*reward_fields, *extra, *self.cost_fields.values()]))
        need = (
            f"a CSV with columns {[key_column, *fields]} or a JSON object mapping each key "
            f"(like {self.key_template!r}) to an object with fields {fields}"
        )
        if not self.path.is_file():
            hint = f" (set benchmark.path= or ${self.env_var} to your copy)" if self.env_var else ""
            raise DataError(f"benchmark table {self.path} {_not_a_file(self.path)}{hint}; it must be {need}")
        rows: dict[str, dict[str, float]] = {}
        separator: str | None = None  # a CSV's; a JSON file holds numbers
        try:
            if self.path.suffix.lower() == ".json":
                data = parse_json(self.path.read_text())
                if not isinstance(data, dict):
                    raise DataError(f"{self.path}: expected a JSON object (key -> fields); it must be {need}")
                items = list(data.items())
            else:
                # utf-8-sig: spreadsheets write "CSV UTF-8" with a byte-order mark before the first column's name.
                with self.path.open(newline="", encoding="utf-8-sig") as f:
                    header = f.readline()
                    f.seek(0)
                    # Spreadsheets of locales with a decimal comma separate fields with semicolons.
                    separator = csv_separator(header) or ","
                    reader = csv.DictReader(f, delimiter=separator)
                    names = [str(n).strip() for n in reader.fieldnames or []]
                    reader.fieldnames = names
                    twice = next((c for c in [key_column, *fields] if names.count(c) > 1), None)
                    if twice is not None:  # the last one would win, unseen
                        raise DataError(f"{self.path}: column {twice!r} appears twice in its header; which one holds?")
                    missing = [c for c in [key_column, *fields] if c not in names]
                    if missing:
                        raise DataError(
                            f"{self.path}: no column {missing[0]!r} (its header: {names}); it must be {need}"
                        )
                    items = [(str(row[key_column]).strip(), row) for row in reader]
        except (json.JSONDecodeError, UnicodeDecodeError, csv.Error) as err:
            raise DataError(f"{self.path}: unreadable ({err}); it must be {need}") from None
        for line, (key, record) in enumerate(items, start=2):
            try:
                # A seed column may be empty (a cell trained with fewer seeds); every other field is a number.
                row = {
                    f: _number(record[f], separator)
                    if f not in self.metric_columns or str(record[f]).strip()
                    else math.nan
                    for f in fields
                }
            except (KeyError, TypeError, ValueError):
                shown = {f: record.get(f) for f in fields} if isinstance(record, dict) else record
                raise DataError(
                    f"{self.path}: record {key!r} (row {line}) lacks a number in one of {fields} (has {shown})"
                ) from None
            if self.metric_columns and not any(math.isfinite(row[f]) for f in self.metric_columns):
                raise DataError(
                    f"{self.path}: record {key!r} (row {line}) has no number in any of "
                    f"benchmark.metric_columns {self.metric_columns}"
                )
            bad = next((f for f, v in row.items() if not math.isfinite(v) and f not in self.metric_columns), None)
            if bad is None:
                bad = next((f for f in self.metric_columns if math.isinf(row[f])), None)
            if bad is not None:
                raise DataError(
                    f"{self.path}: record {key!r} (row {line}) has {bad}={row[bad]}; a table's values "
                    "must be finite numbers"
                )
            negative = next((f for f in self.cost_fields.values() if row[f] < 0), None)
            if negative is not None:  # MnasNet's (cost / target) ** w has no real value there
                raise DataError(
                    f"{self.path}: record {key!r} (row {line}) has {negative}={row[negative]:g}; a cost column "
                    "(benchmark.costs) holds numbers >= 0"
                )
            if str(key) in rows:
                raise DataError(f"{self.path}: record {key!r} appears twice (again at row {line}); which one holds?")
            rows[str(key)] = row
        if not rows:
            raise DataError(f"{self.path} holds no records; it must be {need}")
        return rows

    def key(self, arch: Sequence[int]) -> str:
        """The table key of ``arch``."""
        return self.key_template.format(**self.space.decode(arch))

    def evaluate(self, arch: Sequence[int]) -> Evaluation:
        self.calls += 1
        arch = tuple(arch)
        hit = self._cache.get(arch)
        if hit is None:
            key = self.key(arch)
            row = self.rows.get(key)
            if row is None:
                message = f"{self.path} has no record {key!r} ({self.space.describe(arch)})"
                if self.skip_missing:
                    raise AbsentRecord(message)
                raise MissingRecord(f"{message} (a sparse table: benchmark.missing=skip skips what it lacks)")
            # The reward's values: one per seed the cell has (empty seed columns left out), or the metric.
            values = [row[f] * self.metric_scale for f in self.metric_columns or [self.metric]]
            hit = (
                Evaluation(
                    {self.report_metric: row[self.report_metric] * self.metric_scale},
                    {cost: row[field] for cost, field in self.cost_fields.items()},
                ),
                [v for v in values if math.isfinite(v)] if self.noisy else values,
            )
            self._cache[arch] = hit
        base, values = hit
        value = values[int(self.rng.integers(len(values)))] if self.noisy else values[0]
        return Evaluation({**base.metrics, self.metric: float(value)}, dict(base.costs))

    def evaluate_batch(self, archs: Sequence[Sequence[int]]) -> list[Evaluation]:
        return [self.evaluate(a) for a in archs]

    def optimum(self) -> float:
        """The best reported metric over the space's architectures (scaled: a negative scale prefers the lowest)."""
        keys = {self.key_template.format(**_names(self.space, a)) for a in _all_archs(self.space)}
        values = [self.rows[k][self.report_metric] * self.metric_scale for k in keys if k in self.rows]
        return max(values) if values else math.nan


class HiddenTargetBenchmark:
    """Toy benchmark: the metric is the fraction of decisions equal to a hidden target.

    Its optimum (1.0) is one architecture of the whole space, so how fast a
    controller finds it measures how well it learns from rewards.

    The target comes from a stream of its own, keyed by ``target_seed`` and the
    run's seed: it differs from run to run and from anything a controller
    seeded alike draws (a target equal to a controller's first sample would
    hand it the optimum at its first evaluation).

    Args:
        space: The search space.
        target_seed: Seed drawing the hidden target.
        name: Name used in outputs.
        seed: The run's seed (each run has its own target).
    """

    reward_metric = "match"
    #: Salt of the target's stream (any constant; no controller seeds with it).
    STREAM = 0x70F7A26E

    def __init__(self, space: SearchSpace, target_seed: int = 0, name: str = "hidden_target", seed: int = 0) -> None:
        self.space = space
        self.name = name
        stream = np.random.SeedSequence([self.STREAM, int(target_seed), int(seed)])
        self.target = np.asarray(space.sample(np.random.default_rng(stream)))
        self.calls = 0

    def evaluate(self, arch: Sequence[int]) -> Evaluation:
        self.calls += 1
        return Evaluation({"match": float(np.mean(np.asarray(arch) == self.target))})

    def evaluate_batch(self, archs: Sequence[Sequence[int]]) -> list[Evaluation]:
        return [self.evaluate(a) for a in archs]

    def optimum(self) -> float:
        return 1.0


def _template_fields(template: str) -> list[str]:
    """The decision names ``{NAME}`` in ``benchmark.key_template``.

    Raises:
        ValueError: Naming the setting, for a template Python's format cannot read (``{e0``) or one with a
            conversion or format spec (``{e0:>999999999}`` would make each key a GB).
    """
    import string

    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as err:
        raise ValueError(f"benchmark.key_template={template!r}: {err} (write decisions as {{NAME}})") from None
    for _, field, spec, conversion in parts:
        if field is not None and (spec or conversion):
            raise ValueError(
                f"benchmark.key_template={template!r}: {{{field}}} takes no conversion or format; "
                "write decisions as {NAME}"
            )
    return [f for _, f, _, _ in parts if f is not None]


def _unmatched_keys(space: SearchSpace, template: str, keys: Iterable[str]) -> list[str]:
    """The keys that no architecture of ``space`` spells through ``template``, in table order.

    A key matches when the template's literal text is there and each ``{NAME}`` holds one of that
    decision's choices (a regular expression: the space may be too large to spell every key).
    """
    import string

    choices = {d.name: d.choices for d in space.decisions}
    pattern = ""
    for literal, field, _, _ in string.Formatter().parse(template):
        pattern += re.escape(literal)
        if field is not None:  # longest first: "conv3x3" before "conv3"
            names = sorted(choices[field], key=len, reverse=True)
            pattern += "(?:" + "|".join(re.escape(c) for c in names) + ")"
    spelled = re.compile(pattern, re.DOTALL)
    return [k for k in keys if spelled.fullmatch(k) is None]


def _names(space: SearchSpace, arch: Arch) -> dict[str, str]:
    return {d.name: d.choices[a] for d, a in zip(space.decisions, arch)}


def _all_archs(space: SearchSpace):
    import itertools

    if space.size > 10**7:
        raise ValueError(f"the space has {space.size} architectures; too many to enumerate")
    return itertools.product(*(range(int(n)) for n in space.num_choices))
