"""Hydra sweeps as typed: their jobs, their size, and the sweep kinds the basic sweeper cannot run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Jobs of a sweep checked before it starts (each swept value once, see :func:`sweep_jobs`).
MAX_CHECKED_JOBS = 32


def parsed_overrides(overrides: Sequence[str]) -> list[Any] | None:
    """Hydra's parse of ``overrides``, or None where Hydra would report the line itself."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return OverridesParser.create().parse_overrides(list(overrides))
    except Exception:  # noqa: BLE001 - Hydra reports what it cannot parse
        return None


def sweep_kind_error(overrides: Sequence[str], groups: bool = True) -> str | None:
    """Why Hydra's basic sweeper cannot run ``overrides`` as typed, or None.

    ``interval()`` samples a range, which only sampling sweepers do (Hydra's traceback said so, mid-start);
    ``glob()`` picks config group options, which a command without groups (``groups=False``) has none of
    (its sweep launched 0 jobs and exited 0).
    """
    from hydra.core.override_parser.types import Glob

    for o in parsed_overrides(overrides) or []:
        if o.is_interval_sweep():
            return (
                f"{o.input_line}: the sweeper sweeps lists, range(), choice() and glob(); interval() is for "
                "sweepers that sample a range (Optuna, Ax plugins), which are not installed"
            )
        if not groups and isinstance(o.value(), Glob):
            return f"{o.input_line}: glob() picks options of a config group, and there are none here; list the values"
    return None


def sweep_size(overrides: Sequence[str]) -> int | None:
    """The number of jobs a ``-m`` sweep of ``overrides`` runs, or None where Hydra alone can tell (``glob()``)."""
    from hydra.core.override_parser.types import Glob

    size = 1
    for o in parsed_overrides(overrides) or []:
        if o.is_sweep_override():
            if isinstance(o.value(), Glob):  # its values are config names only Hydra's loader knows
                return None
            try:
                size *= sum(1 for _ in o.sweep_string_iterator())
            except Exception:  # noqa: BLE001 - a sweep Hydra expands otherwise
                return None
    return size


def sweep_jobs(overrides: Sequence[str]) -> list[list[tuple[str, Any]]]:
    """The jobs of a sweep checked before it starts, each as ``(override, typed value)`` pairs: the first
    job (each swept key at its first value), then, for each swept key, the first job with that key at
    each of its other values.

    Each value is checked once (``a,b x c,d`` gives 3 jobs, not 4), up to :data:`MAX_CHECKED_JOBS`
    jobs, a key's values of another type than its first value's first; a value bad only beside another
    key's value is left to the sweep. Empty when the sweep cannot be expanded here (``glob(...)`` needs
    Hydra's config loader, another sweeper's syntax).
    """
    parsed = parsed_overrides(overrides)
    if parsed is None:
        return []
    try:
        values = [
            [
                (f"{o.get_key_element()}={text}", value)
                for text, value in zip(o.sweep_string_iterator(), o.sweep_iterator(), strict=True)
            ]
            if o.is_sweep_override()
            else [(o.input_line, o.value())]
            for o in parsed
        ]
    except Exception:  # noqa: BLE001 - Hydra reports what it cannot expand itself
        return []
    if any(not options for options in values):  # an empty sweep (seed=range(0)) runs no job
        return []
    first = [options[0] for options in values]
    jobs = [first]
    for i, options in enumerate(values):
        # Values of another type than the first's go first: seed=range(1000),abc checks abc in the cap.
        for option in sorted(options[1:], key=lambda o: type(o[1]) is type(options[0][1])):
            if len(jobs) == MAX_CHECKED_JOBS:
                return jobs
            jobs.append([*first[:i], option, *first[i + 1 :]])
    return jobs


def job_changes(job: Sequence[tuple[str, Any]], first: Sequence[str]) -> list[tuple[str, Any]]:
    """The ``(override, value)`` pairs of a :func:`sweep_jobs` job that differ from the first job's overrides."""
    return [(o, v) for (o, v), f in zip(job, first, strict=True) if o != f]


def job_place(changed: Sequence[tuple[str, Any]]) -> str:
    """Where in a sweep an error was found, as its message ends: the first job, or the job with ``changed``."""
    return f"in the sweep's job with {', '.join(o for o, _ in changed)}" if changed else "in the sweep's first job"
