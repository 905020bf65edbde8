"""The config groups of ``conf/`` and the dirs a command line adds: what exists, what a choice may name, the help.

Read before Hydra runs (``--help``, :func:`check_group_choices`), so that a
wrong choice is one line naming the group and its options.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from rlnas.utils import conf_dir

#: Where ``config.yaml`` and the config groups are read from.
CONF_DIR = conf_dir()
#: Config groups of ``conf/`` a command line may choose from.
GROUPS = ("task", "space", "controller", "reward", "experiment", "benchmark", "trials")


def chosen_with_plus(conf_dir: Path = CONF_DIR) -> tuple[str, ...]:
    """The groups of :data:`GROUPS` that ``config.yaml``'s defaults list leaves out (chosen as ``+GROUP=NAME``)."""
    import yaml

    defaults = (yaml.safe_load((conf_dir / "config.yaml").read_text()) or {}).get("defaults") or []
    listed = {key.lstrip("+~").split("@")[0] for entry in defaults if isinstance(entry, dict) for key in entry}
    return tuple(g for g in GROUPS if g not in listed)


class ConfigError(ValueError):
    """A config value the app cannot use; the message is one line naming the key."""


def describe_option(path: Path) -> str:
    """The first sentence of a config file's leading comment (its one-line description)."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            if lines:
                break
            continue
        text = line.lstrip("#").strip()
        if text.startswith("@package"):
            continue
        lines.append(text)
    words = " ".join(lines)
    # The first sentence: a full stop before a capital, not one that ends "et al." or "eq.".
    match = re.search(r"(?<!\bal)(?<!\beq)(?<!\bsec)\.\s+(?=[A-Z])", words)
    first = words[: match.start()] if match else words.rstrip(".")
    for mark in ("; ", ": "):  # a long sentence: its first clause
        if len(first) > 110 and mark in first:
            first = first[: first.index(mark)]
    return first if len(first) <= 110 else first[:107].rstrip() + "..."


def help_text(conf_dir: Path = CONF_DIR, extra: Sequence[Path] = ()) -> str:
    """``python -m rlnas --help``: usage, every config group's options with one line each, and examples."""
    groups = [
        ("task", "+task=NAME (default: classification)"),
        ("space", "space=NAME"),
        ("controller", "controller=NAME"),
        ("reward", "reward=NAME"),
        ("benchmark", "+benchmark=NAME (tabular: no supernet, seconds)"),
        ("trials", "+trials=NAME (each candidate trained on its own, on Ray Tune)"),
        ("experiment", "+experiment=NAME"),
    ]
    out = [
        "usage: python -m rlnas [+task=NAME] [GROUP=NAME ...] [key=value ...] [-m for a sweep]",
        "",
        "Reinforcement-learning neural architecture search with weight sharing. Every setting is a Hydra",
        "override; a run writes to outputs/runs/DATE/TIME (best_arch.json, history.csv, TensorBoard).",
    ]
    for group, how in groups:
        options = group_options(group, conf_dir, extra)
        if not options:
            continue
        out += ["", f"{group} ({how}):"]
        width = max(len(o) for o in options)
        for o in options:
            # Described from the first directory that holds it (added ones first).
            path = next(
                Path(d) / group / f"{o}.yaml" for d in (*extra, conf_dir) if (Path(d) / group / f"{o}.yaml").is_file()
            )
            out.append(f"  {o:<{width}}  {describe_option(path)}")
    out += [
        "",
        "common settings (defaults in conf/config.yaml):",
        "  seed=0  device=auto|cpu|cuda  search.epochs=30  search.warmup_epochs=5  search.batch_size=128",
        "  reward.targets.params=50000  selection.rule=best|top_k|knee  resume=RUN_DIR",
        "",
        "examples:",
        "  python -m rlnas                                     default search (classification, macro, enas)",
        "  python -m rlnas +task=detection controller=maskable_ppo",
        "  python -m rlnas reward=mnas reward.targets.latency_ms=2",
        "  python -m rlnas -m controller=enas,evolution seed=0,1,2",
        "  python -m rlnas +benchmark=toy controller=enas        a tabular benchmark in seconds",
        "  python -m rlnas +task=mnist1d +trials=default        each candidate trained on its own (Ray Tune)",
        "  python -m rlnas.retrain arch=outputs/runs/DATE/TIME/best_arch.json",
        "",
        f"configs: {', '.join(str(d) for d in (conf_dir, *extra))} (add yours with --config-dir DIR); Hydra's own "
        "options: --hydra-help; the composed config: --cfg job",
    ]
    return "\n".join(out)


def search_dirs(argv: Sequence[str]) -> list[Path]:
    """Config directories a command line adds: ``--config-dir DIR`` (``-cd``) and ``hydra.searchpath=[...]``.

    Raises:
        ConfigError: For a directory that does not exist (named), a ``pkg://`` path that cannot be imported,
            or ``--config-dir`` given twice.
    """
    given: list[tuple[str, str]] = []
    args = list(argv)
    for i, arg in enumerate(args):
        for flag in ("--config-dir", "-cd"):
            if arg == flag and i + 1 < len(args):
                given.append((flag, args[i + 1]))
            elif arg.startswith(flag + "="):
                given.append((flag, arg.split("=", 1)[1]))
        key, sep, value = arg.lstrip("+~").partition("=")
        if sep and key == "hydra.searchpath":
            given += [("hydra.searchpath", v.strip().strip("'\"")) for v in value.strip("[]").split(",") if v.strip()]
    flags = [raw for source, raw in given if source != "hydra.searchpath"]
    if len(flags) > 1:  # Hydra reads the last one only: a config of the first was "Could not find", many lines
        raise ConfigError(
            f"--config-dir is given {len(flags)} times ({', '.join(flags)}); Hydra reads one: put the configs in one "
            "folder, or add folders with hydra.searchpath=[DIR1,DIR2]"
        )
    dirs = []
    for source, raw in given:
        if raw.startswith("pkg://"):
            try:
                from importlib.resources import files

                path = Path(str(files(raw[len("pkg://") :].replace("/", "."))))
            except (ModuleNotFoundError, TypeError):
                raise ConfigError(f"{source}={raw}: no such package") from None
        else:
            path = Path(raw.removeprefix("file://")).expanduser()
        if not path.is_dir():
            raise ConfigError(f"{source}={raw}: no such directory")
        dirs.append(path)
    return dirs


def group_options(group: str, conf_dir: Path = CONF_DIR, extra: Sequence[Path] = ()) -> list[str]:
    """The names ``GROUP=NAME`` accepts: the YAML files in ``conf/GROUP/`` and in the added config dirs."""
    return sorted({p.stem for d in (conf_dir, *extra) for p in (Path(d) / group).glob("*.yaml")})


def check_group_choices(overrides: Sequence[str], conf_dir: Path = CONF_DIR, extra: Sequence[Path] = ()) -> None:
    """Raises :class:`ConfigError` for a group choice (or a sweep value) with no YAML file.

    A ``glob(...)`` sweep must name a config group and match one of its
    options: Hydra would launch 0 jobs and exit as if it had run. Other sweep
    functions (``choice(...)``, ``range(...)``) are left to Hydra.
    """
    chosen: dict[str, str] = {}
    for override in overrides:
        key, sep, value = override.lstrip("+~").partition("=")
        if sep and key in GROUPS:  # Hydra: "Multiple values for task. To override a value use 'override task: ...'"
            if key in chosen:
                raise ConfigError(
                    f"{key} is chosen twice ({chosen[key]}, {override}); choose one, or sweep them with -m {key}=A,B"
                )
            chosen[key] = override
        if sep and value.strip().startswith("glob("):
            _check_glob(override, key, conf_dir, extra)
            continue
        if not sep or key not in GROUPS or "(" in value or not value:
            continue
        options = group_options(key, conf_dir, extra)
        for choice in value.split(","):
            if choice.strip() not in options:
                article = "an" if key[0] in "aeiou" else "a"
                raise ConfigError(
                    f"{key}={choice.strip()} is not {article} {key} config; allowed: {', '.join(options)}"
                )


def _check_glob(override: str, key: str, conf_dir: Path, extra: Sequence[Path]) -> None:
    """A ``KEY=glob(...)`` sweep: KEY a config group, and at least one of its options matched."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Glob
    from hydra.errors import HydraException

    try:
        value = OverridesParser.create().parse_override(override).value()
    except HydraException:
        return  # Hydra reports its own syntax errors
    if not isinstance(value, Glob) or key.startswith("hydra/"):
        return  # Hydra's own groups (hydra/launcher=glob(...)) are Hydra's to list
    if key not in GROUPS:
        raise ConfigError(
            f"{override}: glob() picks options of a config group ({', '.join(GROUPS)}); {key} is a value: "
            f"list the values ({key}=a,b) or use range()"
        )
    options = group_options(key, conf_dir, extra)
    if not value.filter(options):
        raise ConfigError(f"{override} matches no {key} config; options: {', '.join(options)}")
