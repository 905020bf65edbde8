"""Typed validation of the app's config: one line naming the key and what it accepts.

Three layers, each catching what the one before cannot:

1. :func:`check_overrides` (before Hydra runs): every config-group choice on the
   command line (``controller=foo``, sweeps ``controller=enas,foo`` included)
   names an existing ``conf/GROUP/NAME.yaml``, and a single run's overrides
   compose (unknown keys, bad syntax); a sweep's jobs compose and pass
   :func:`validate_config`, each swept value once, before the first job starts.
2. :data:`RlnasConfig` (a structured config): the app's own sections have
   types; :func:`validate_config` merges the composed config into it, so
   ``seed=abc`` or ``search.nesterov=maybe`` fail naming the key.
3. ``_target_`` nodes (``task``, ``space``, ``controller``, ``reward``) are checked
   against the signature of the class they instantiate: an unknown key lists the
   allowed ones, a value of the wrong type names the expected one. Plug-ins get
   this for free from their type hints.

Value checks (ranges, allowed names, impossible constraints) live with the code
that owns the value (``SearchSettings``, the spaces, the rewards) and raise
``ValueError`` naming the key.
"""

from __future__ import annotations

import inspect
import math
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from rlnas.config_groups import (  # noqa: F401 - re-exported: the config's groups, dirs and help, as callers name them
    CONF_DIR,
    GROUPS,
    ConfigError,
    check_group_choices,
    chosen_with_plus,
    describe_option,
    group_options,
    help_text,
    search_dirs,
)
from rlnas.search.selection import SelectionSettings
from rlnas.search.settings import SearchSettings
from rlnas.utils import MAX_SEED
from rlnas.utils.distributed import DistributedSettings
from rlnas.utils.rundir import bare_word, check_launcher_jobs, hydra_overrides
from rlnas.utils.sweeps import job_changes, job_place, sweep_jobs, sweep_kind_error


# OmegaConf's structured configs take typing.Optional (not ``X | None``) on Python 3.10.
@dataclass
class CheckpointConfig:
    every: int = 1
    stop_after: int | None = None  # noqa: UP007


@dataclass
class GroundTruthConfig:
    """``ground_truth:``: after the search, the pick and ``random`` uniform draws trained standalone."""

    random: int = 0
    seeds: int = 1
    epochs: int = 10

    def __post_init__(self) -> None:
        if int(self.random) < 0:
            raise ValueError(f"ground_truth.random must be >= 0, got {self.random}")
        for name in ("seeds", "epochs"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"ground_truth.{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class CostsConfig:
    track: list[str] = field(default_factory=lambda: ["params", "size_mb", "size_int8_mb", "latency_ms"])
    latency_table: str | None = None  # noqa: UP007


@dataclass
class RlnasConfig:
    """Schema of ``conf/config.yaml``: typed sections; the ``_target_`` groups are checked by signature."""

    seed: int = 0
    data_seed: int | None = None  # noqa: UP007
    device: str = "auto"
    threads: int | None = None  # noqa: UP007
    resume: str | None = None  # noqa: UP007
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    search: SearchSettings = field(default_factory=SearchSettings)
    costs: CostsConfig = field(default_factory=CostsConfig)
    ground_truth: GroundTruthConfig = field(default_factory=GroundTruthConfig)
    selection: SelectionSettings = field(default_factory=SelectionSettings)
    distributed: DistributedSettings = field(default_factory=DistributedSettings)
    task: Any = None
    space: Any = None
    controller: Any = None
    reward: Any = None
    benchmark: Any = None
    trials: Any = None


def check_overrides(argv: Sequence[str], conf_dir: Path = CONF_DIR) -> None:
    """Checks a command line's overrides before Hydra runs it.

    Group choices are checked for single runs and sweeps. The overrides of a
    single run are composed as Hydra will compose them, so an unknown key or a
    bad value fails here with one line instead of Hydra's multi-line report; a
    sweep's jobs are composed and validated too (each swept value once), so a
    bad value in a later job stops the sweep before its first job runs.

    Raises:
        ConfigError: Naming the override.
    """
    extra = search_dirs(argv)
    word = bare_word(list(argv))
    if word is not None:  # Hydra's grammar says "missing EQUAL at '<EOF>'"
        groups = [g for g in GROUPS if word in group_options(g, conf_dir, extra)]
        hint = f"; did you mean {'+' * (groups[0] in chosen_with_plus(conf_dir))}{groups[0]}={word}?" if groups else ""
        raise ConfigError(f"argument {word!r} is not key=value (a setting key=value, a config GROUP=NAME){hint}")
    overrides = hydra_overrides(list(argv))
    check_group_choices(overrides, conf_dir, extra)
    _check_table_overrides(overrides)
    _check_trial_overrides(overrides)
    deleted = next((o for o in overrides if o == "~task" or o.startswith("~task=")), None)
    if deleted is not None:  # Hydra: "Key 'task' is not in struct"
        raise ConfigError(f"{deleted}: a search needs a task; choose one with +task=NAME (classification by default)")
    settings = {f.name: f.default for f in fields(RlnasConfig) if f.default is not MISSING and f.type != "Any"}
    scalar = next((o for o in overrides if o.startswith("~") and o[1:].partition("=")[0] in settings), None)
    if scalar is not None:  # Hydra: "Key 'seed' is not in struct", or "'threads' does not exist" (it is null)
        key = scalar[1:].partition("=")[0]
        default = "null" if settings[key] is None else settings[key]
        raise ConfigError(
            f"{scalar}: {key} is a setting every run has; set it instead ({key}=VALUE, default {default})"
        )
    try:
        check_launcher_jobs(overrides)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    config_dir_flags = ("--config-dir", "-cd")
    flags = [a for a in argv if a.startswith("-") and a.split("=", 1)[0] not in config_dir_flags]
    from rlnas.utils.errors import composition_error

    searched = []
    if extra:  # --config-dir DIR: the user's configs join the search path, as Hydra will add them
        overrides = [a for a in overrides if not a.lstrip("+~").startswith("hydra.searchpath=")]
        searched = [f"hydra.searchpath=[{','.join(f'file://{d.resolve()}' for d in extra)}]"]
    if flags:
        message = sweep_kind_error(overrides)
        if message is not None:
            raise ConfigError(message)
        # Sweeps (-m) and Hydra's own flags (--cfg, --help, ...): Hydra composes each job itself, but a
        # hydra/GROUP=NAME choice (hydra/launcher=ray) is checked once here, as a single run's would be.
        chosen = [a for a in overrides if a.lstrip("+~").startswith("hydra/") and "," not in a and "(" not in a]
        message = composition_error(conf_dir, "config", [*chosen, *searched]) if chosen else None
        if message is not None:
            raise ConfigError(message)
        jobs = sweep_jobs(overrides) if {f.split("=", 1)[0] for f in flags} <= {"-m", "--multirun"} else []
        # Hydra stopped a sweep whose first job does not compose with its multi-line report (exit 1), and
        # ran the jobs before a bad value (seed=0,abc) before its "Error executing job" report: each value
        # is checked here, before the first job starts.
        message = _sweep_error(jobs, overrides, conf_dir, searched) if jobs else None
        if message is not None:
            raise ConfigError(message)
        return
    message = composition_error(conf_dir, "config", [*overrides, *searched])
    if message is not None:
        hint = _group_hint(message, overrides) or _left_out_hint(message, overrides, conf_dir, searched)
        raise ConfigError(hint or message)


def _sweep_error(
    jobs: list[list[tuple[str, Any]]], typed: Sequence[str], conf_dir: Path, searched: Sequence[str]
) -> str | None:
    """The one-line error of the first of ``jobs`` whose config is bad (composition, then types), else None.

    The first job is composed as Hydra will; a job that differs from it in one setting's value takes
    that value on a copy of the first job's config (Hydra composes in about 0.1 s, so a sweep over
    ``seed=range(32)`` would wait 3 s), a config group's or Hydra's own choice is composed. A first
    job that does not compose is named with the fix as the sweep was ``typed``.
    """
    import copy

    from hydra import compose, initialize_config_dir

    first = [o for o, _ in jobs[0]]
    # A resumed job runs on its run's own config, checked when it is read: only the first job's composition here.
    resumed = any(o.lstrip("+").startswith("resume=") for o in first)
    with initialize_config_dir(str(conf_dir), version_base="1.3"):
        base = None
        for number, job in enumerate(jobs[:1] if resumed else jobs):
            changed = job_changes(job, first)
            if number and not changed:  # a value swept twice (seed=0,0): the first job again, checked already
                continue
            where = job_place(changed)
            try:
                override = changed[0][0] if changed else ""
                key = override.lstrip("+").partition("=")[0]
                # A group choice (controller=tpe), a deletion or Hydra's own key changes what is composed.
                composed = base is None or key.startswith("~") or "/" in key or key in GROUPS
                if not (composed or key.split(".")[0] == "hydra"):
                    cfg = copy.deepcopy(base)
                    OmegaConf.update(cfg, key, changed[0][1], merge=False, force_add=True)
                else:
                    cfg = compose("config", overrides=[*(o for o, _ in job), *searched])
                    base = base if changed else copy.deepcopy(cfg)  # validated below, which resolves it in place
                if not resumed:
                    validate_config(cfg)
            except ConfigError as err:
                return f"{err} ({where})"
            except Exception as err:  # noqa: BLE001 - a composition error: Hydra's message in one line
                from rlnas.utils.errors import one_line

                failed = [o for o, _ in job], one_line(err), where
                break
        else:
            return None
    overrides, message, where = failed  # Hydra's "not in struct" as a setting to add, or the section's settings
    if overrides != first:
        return f"{_left_out_hint(message, overrides, conf_dir, searched) or message} ({where})"
    hint = _group_hint(message, first) or _left_out_hint(message, first, conf_dir, searched) or message
    for job, as_typed in zip(first, typed, strict=True):  # the fix names the sweep as typed
        hint = hint.replace(f"+{job.lstrip('+')}", f"+{as_typed.lstrip('+')}")
    return f"{hint} ({where})"


def _group_hint(message: str, overrides: Sequence[str]) -> str | None:
    """``trials.budget=5: trials.* settings come with +trials=NAME`` for Hydra's "Key 'trials' is not in struct"
    (a setting of a group the command line did not choose), else None."""
    for override in overrides:
        group = override.lstrip("+~").partition("=")[0].split(".", 1)[0]
        if group in ("trials", "benchmark") and f"Key '{group}' is not in struct" in message:
            example = "+trials=default" if group == "trials" else "+benchmark=toy"
            return f"{override}: {group}.* settings come with +{group}=NAME (e.g. {example})"
    return None


def _left_out_hint(message: str, overrides: Sequence[str], conf_dir: Path, searched: Sequence[str]) -> str | None:
    """What Hydra's "Could not override 'space.stem_stride': Key 'stem_stride' is not in struct" means.

    Either the key is a setting the chosen config leaves out (``stem_stride`` of ``space=macro``): it is
    added with ``+``; or it is no setting at all (``search.epoch``): the settings of its section are
    listed. ``None`` when the message is another one or the key cannot be judged.
    """
    from rlnas.utils.errors import struct_key

    key = struct_key(message)
    if key is None:
        return None
    override = next((o for o in overrides if o.partition("=")[0] == key), None)
    if override is None:
        return None
    from hydra import compose, initialize_config_dir

    added = [o if o is not override else f"+{o}" for o in overrides]
    try:
        with initialize_config_dir(str(conf_dir), version_base="1.3"):
            cfg = compose("config", overrides=[*added, *searched])
        validate_config(cfg)
    except ConfigError as err:
        return str(err) if f"{key} is not a setting" in str(err) else None
    except Exception:  # noqa: BLE001 - composed otherwise, it cannot be judged: Hydra's message stands
        return None
    return f"{key} is a setting the chosen config leaves out: add it with +{override}"


def _type_name(annotation: Any) -> str:
    """``int``, ``list[str]``, ``float or null``, ... as a config user reads them."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in typing.get_args(annotation) if a is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in typing.get_args(annotation) else "")
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is tuple and args and args[-1] is not Ellipsis:
        return f"a list of {len(args)} " + " and ".join(dict.fromkeys(_type_name(a) for a in args))
    if typing.get_origin(annotation) in (list, tuple, Sequence, set) and args:
        return "a list of " + _type_name(args[0])
    if args:
        return str(annotation).replace("typing.", "").replace("collections.abc.", "")
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _matches(value: Any, annotation: Any) -> bool:
    """Whether a config value fits a type hint; hints it cannot judge count as fitting."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if value is None:
        return False
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    base = origin or annotation
    if base in (list, tuple, Sequence, typing.Sequence, set):
        if not isinstance(value, (list, tuple)):
            return False
        # The elements too: space.channels=[32.5, 64] is not a list of widths.
        args = typing.get_args(annotation)
        if base is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            return len(args) == len(value) and all(_matches(v, a) for v, a in zip(value, args, strict=True))
        return not args or all(_matches(v, args[0]) for v in value)
    if base in (dict, typing.Mapping, dict):
        return isinstance(value, dict)
    return True


def check_signature(values: dict[str, Any], target: Callable, prefix: str, skip: Sequence[str] = ()) -> None:
    """Checks ``values`` (a config section) against ``target``'s parameters and their type hints.

    Raises:
        ConfigError: For a key ``target`` does not take (listing those it does) or a
            value of the wrong type (naming the expected one).
    """
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError) as err:  # a builtin such as collections.OrderedDict has none to read
        name = f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', target)}".lstrip(".")
        raise ConfigError(f"{prefix}._target_={name} is not a class rlnas can build ({err})") from None
    try:
        hints = typing.get_type_hints(target.__init__ if inspect.isclass(target) else target)
    except Exception:  # noqa: BLE001 - unresolvable hints: fall back to unchecked types
        hints = {}
    params = {n: p for n, p in signature.parameters.items() if n not in ("self", *skip)}
    takes_any = any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values())
    named = sorted(n for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL))
    for key, value in values.items():
        if (key.startswith("_") and key.endswith("_")) or key in skip:
            continue
        if key not in params:
            if takes_any:
                continue
            raise ConfigError(
                f"{prefix}.{key} is not a setting of {getattr(target, '__name__', target)}; allowed: {', '.join(named)}"
            )
        hint = hints.get(key, params[key].annotation)
        if not _matches(value, hint):
            raise ConfigError(f"{prefix}.{key}={value!r} must be {_type_name(hint)}")


def _leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted key, value)`` of every scalar in a plain config container (list items by index), ``hydra`` left out."""
    if isinstance(node, dict):
        for key, value in node.items():
            if str(key) != "hydra":
                yield from _leaves(value, f"{prefix}{key}.")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _leaves(value, f"{prefix}{i}.")
    else:
        yield prefix.rstrip("."), node


def _check_finite(node: Any) -> None:
    """Refuses NaN and infinite numbers anywhere in a config: no setting means them (``search.lr=inf``).

    Nor numbers past float32's range: the weights, the controllers and their optimisers compute in float32,
    and ``search.lr=1e308`` failed at the first step with torch's "cannot be converted ... without overflow".
    """
    from rlnas.tasks.training import FLOAT32_MAX

    for key, value in _leaves(node):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key}={value} must be a finite number")
        if isinstance(value, float) and abs(value) > FLOAT32_MAX:
            raise ConfigError(f"{key}={value} is past float32's range (3.4e38), which the search computes in")


def _resolve_in_place(cfg: DictConfig) -> dict[str, Any]:
    """Resolves the config's interpolations in place, naming the key of one that fails.

    The checks then see the values a run uses, and the run's ``config.yaml`` keeps them:
    ``seed=${now:%S}`` saved as such gave a resumed run another seed.

    Returns:
        The resolved keys and their values.
    """
    resolved = {}
    for key, value in _leaves(OmegaConf.to_container(cfg, resolve=False)):
        if isinstance(value, str) and "${" in value:
            try:
                resolved[key] = OmegaConf.select(cfg, key, throw_on_resolution_failure=True)
            except OmegaConfBaseException as err:
                detail = str(err).strip().splitlines()[0]
                raise ConfigError(f"{key}={value}: {detail}") from None
    for key, result in resolved.items():
        OmegaConf.update(cfg, key, result, merge=False)
    return resolved


def _keep_schema_types(cfg: DictConfig, typed: DictConfig, resolved: dict[str, Any]) -> None:
    """A resolved interpolation is a string ('51' from ``${now:%S}``); the schema's keys keep their type.

    ``typed`` is the config merged into the schema, so its value is the schema's conversion of the
    string ('04' is 4); keys outside the schema stay as they resolved.
    """
    for key, result in resolved.items():
        converted = OmegaConf.select(typed, key, default=result)
        if isinstance(result, str) and not isinstance(converted, str):
            OmegaConf.update(cfg, key, converted, merge=False)


def _check_ground_truth(cfg: DictConfig) -> None:
    """``ground_truth:`` values, and a test split for the comparison to run on (known before the search)."""
    truth = GroundTruthConfig(**OmegaConf.to_container(cfg.ground_truth, resolve=True))  # type: ignore[arg-type]
    if truth.random > 0 and OmegaConf.select(cfg, "task.data.test_fraction", default=None) == 0:
        raise ConfigError(
            "task.data.test_fraction=0 leaves no test split for the closing ground-truth comparison "
            f"(ground_truth.random={truth.random}); give a test_fraction > 0 or ground_truth.random=0"
        )


def validate_config(cfg: DictConfig) -> None:
    """Checks a composed config's types and keys; values are checked where they are used.

    Raises:
        ConfigError: One line naming the first bad key.
    """
    _check_sections(cfg)
    try:
        resolved = _resolve_in_place(cfg)
        _keep_schema_types(cfg, OmegaConf.merge(OmegaConf.structured(RlnasConfig), cfg), resolved)
    except ConfigKeyError as err:
        key = getattr(err, "full_key", None) or "config"
        parent = _schema_node(key.rpartition(".")[0])
        allowed = sorted(f.name for f in fields(parent)) if parent is not None else []
        raise ConfigError(f"{key} is not a setting; allowed: {', '.join(allowed)}") from None
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "config"
        try:
            value = OmegaConf.select(cfg, key, default=None) if key != "config" else None
        except OmegaConfBaseException:  # the value is the interpolation that failed
            value = None
        detail = str(getattr(err, "msg", err)).strip().splitlines()[0]
        if any(m in detail for m in ("could not be converted", "Invalid type", "Value '", "Invalid value assigned")):
            expected = _expected_type(key)
            raise ConfigError(f"{key}={value!r} must be {expected}" if expected else f"{key}: {detail}") from None
        raise ConfigError(f"{key}: {detail}") from None
    _check_finite(OmegaConf.to_container(cfg, resolve=False))
    threads = cfg.get("threads")
    if threads is not None and int(threads) < 1:
        raise ConfigError(f"threads must be >= 1 or null, got {threads}")
    _check_seeds(cfg)
    stop_after = OmegaConf.select(cfg, "checkpoint.stop_after", default=None)
    if stop_after is not None and int(stop_after) < 1:
        raise ConfigError(f"checkpoint.stop_after must be >= 1 or null, got {stop_after}")
    if isinstance(cfg.get("ground_truth"), DictConfig):
        _check_ground_truth(cfg)
    if cfg.get("benchmark") is not None:
        _check_table_run(cfg)
    if isinstance(cfg.get("trials"), DictConfig):
        from rlnas.trials.settings import trial_settings

        trial_settings(cfg)
    if isinstance(cfg.get("distributed"), DictConfig):  # checked on every run, not only under torchrun
        DistributedSettings(**OmegaConf.to_container(cfg.distributed, resolve=True))  # type: ignore[arg-type]
    from hydra.utils import get_method

    for section in ("task", "space", "controller", "reward"):
        node = cfg.get(section)
        if not isinstance(node, DictConfig) or "_target_" not in node:
            continue
        values = OmegaConf.to_container(node, resolve=True)
        assert isinstance(values, dict)
        try:
            target = get_method(str(node._target_))
        except Exception as err:  # noqa: BLE001 - a wrong _target_ is a config error
            raise ConfigError(f"{section}._target_={node._target_!r} cannot be imported ({err})") from None
        # The search passes space and seed itself; the builder takes mask_infeasible and init_from.
        check_signature(values, target, section, skip=("space", "seed", "mask_infeasible", "init_from"))
        loader = getattr(target, "data_loader", None)
        if section == "task" and loader is not None and isinstance(values.get("data"), dict):
            check_signature(values["data"], loader, "task.data", skip=("seed",))


def _check_sections(cfg: DictConfig) -> None:
    """Sections a run reads without a default must be there: ``~search`` on the command line deletes one.

    (A deleted section with defaults of its own, ``~costs``, runs with those.)

    Raises:
        ConfigError: Naming the section ("Key 'search' is not in struct" came mid-run).
    """
    needed = ["search", "controller", "reward"]
    if cfg.get("benchmark") is None:
        needed.append("space")
    for name in needed:
        if name not in cfg:
            raise ConfigError(
                f"{name}: the section was deleted (~{name}), and a run reads it; change its keys instead "
                f"({name}.KEY=VALUE)"
            )


#: Sections a ``+benchmark`` run does not read (it trains nothing and prices by its table's columns).
TABLE_IGNORES = ("space", "search", "costs", "selection", "checkpoint", "data_seed", "device")


def _keys_beside(overrides: Sequence[str], group: str) -> list[tuple[str, str]]:
    """``(override, key)`` of every override when one of them chooses ``group`` (``+benchmark=toy``), else none."""
    keys = [o.lstrip("+~").partition("=")[0] for o in overrides]
    if not any(k in (group, f"{group}@_global_") for k in keys):
        return []
    return list(zip(overrides, keys))


def _check_table_overrides(overrides: Sequence[str]) -> None:
    """Refuses settings a ``+benchmark`` run does not read: ``space=NAME`` (its table's decisions are the
    space), ``search.*``, ``costs.*``, ``selection.*``, ``checkpoint.*`` (it takes seconds and is started again,
    not resumed), ``data_seed`` and ``device``.

    Raises:
        ConfigError: Naming the override (the run went ahead without it).
    """
    for override, key in _keys_beside(overrides, "benchmark"):
        section = key.split(".", 1)[0]
        if section not in TABLE_IGNORES:
            continue
        if section == "space":
            raise ConfigError(
                f"{override}: a +benchmark run's architectures are its table's (benchmark.decisions), not a space's; "
                "drop it (or search a task with +task=NAME)"
            )
        costs = " (its costs are the table's columns, benchmark.costs)" if section == "costs" else ""
        what = {
            "data_seed": "data_seed (it has no data to split)",
            "device": "device (it trains nothing; a PPO controller's own is controller.device)",
        }.get(section, f"{section}.* settings")
        raise ConfigError(
            f"{override}: a +benchmark run looks each architecture up in its table and reads no {what}; drop it{costs}"
        )


#: ``search.*`` settings a trial search reads: the nulls of the retrain recipe it trains each trial with
#: (``conf/retrain.yaml``). Its other settings shape the weight-sharing loop a trial search does not run.
TRIAL_READS_SEARCH = ("batch_size", "optimizer", "lr", "lr_min", "momentum", "nesterov", "grad_clip")


def _check_trial_overrides(overrides: Sequence[str]) -> None:
    """Refuses settings a ``+trials`` run does not read: the weight-sharing loop's ``search.*`` (epochs,
    steps, final re-scoring ...), ``checkpoint.*`` (it keeps every finished trial instead) and
    ``selection.rule``/``selection.k`` (its pick is the best reward among the fully trained trials).

    Raises:
        ConfigError: Naming the override (the run went ahead without it).
    """
    for override, key in _keys_beside(overrides, "trials"):
        section, _, name = key.partition(".")
        if section == "search" and name and name not in TRIAL_READS_SEARCH:
            raise ConfigError(
                f"{override}: a +trials run trains each candidate with the retrain recipe and reads of search.* "
                f"only {', '.join(TRIAL_READS_SEARCH)}; set the trials' training with trials.epochs or "
                f"trials.train.{name.split('.')[0]}="
            )
        if section == "checkpoint":
            raise ConfigError(
                f"{override}: a +trials run keeps every finished trial (trials.jsonl) and resumes from them; "
                "it reads no checkpoint.* settings; drop it"
            )
        if section == "selection" and name in ("rule", "k"):
            raise ConfigError(
                f"{override}: a +trials run picks the best reward among its fully trained trials (selection.cost "
                "is only its Pareto plot's axis); drop it"
            )


def check_unread_overrides(cfg: DictConfig, overrides: Sequence[str], torchrun: bool = False) -> None:
    """Refuses command-line settings the composed run would not read.

    ``ground_truth.seeds`` or ``ground_truth.epochs`` where no comparison runs (it needs
    ``ground_truth.random > 0``, which the digits tasks leave at 0): ``ground_truth.seeds=3`` alone ran the search
    and compared nothing, without a word. ``distributed.*`` in a run not launched by torchrun (``torchrun``): the
    backend and synchronised BatchNorm apply to such a launch only.

    Raises:
        ConfigError: Naming the override.
    """
    keys = [o.lstrip("+~").partition("=")[0] for o in overrides]
    spread = next((o for o, k in zip(overrides, keys) if k.split(".")[0] == "distributed"), None)
    if spread is not None and not torchrun:
        raise ConfigError(
            f"{spread}: distributed.* settings apply to a torchrun launch and this run is one process; "
            "drop it, or start the search with torchrun --nproc_per_node=N -m rlnas ..."
        )
    given = next((o for o, k in zip(overrides, keys) if k in ("ground_truth.seeds", "ground_truth.epochs")), None)
    if given is None or int(OmegaConf.select(cfg, "ground_truth.random", default=0) or 0) > 0:
        return
    if cfg.get("benchmark") is not None:
        raise ConfigError(
            f"{given}: a benchmark run trains nothing standalone (its table is the ground truth); drop it"
        )
    raise ConfigError(
        f"{given}: the ground-truth comparison runs only with ground_truth.random > 0 (random architectures "
        "trained standalone beside the pick), which this task leaves at 0; set it too, e.g. ground_truth.random=5"
    )


def _check_table_run(cfg: DictConfig) -> None:
    """A ``+benchmark`` run trains nothing: settings that train (a task, trials, ground-truth draws) are refused.

    Raises:
        ConfigError: Naming the setting that would be ignored.
    """
    if cfg.get("trials") is not None:
        raise ConfigError("+trials trains each candidate and +benchmark looks it up in a table: choose one of them")
    if cfg.get("task") is not None:
        raise ConfigError(
            "+task and +benchmark: a benchmark run looks each architecture up in its table and trains "
            "no task; choose one of them"
        )
    random_draws = OmegaConf.select(cfg, "ground_truth.random", default=0)
    if random_draws:
        raise ConfigError(
            f"ground_truth.random={random_draws}: a benchmark run trains nothing standalone; its table's "
            "reported column is the ground truth (drop the setting)"
        )


def _check_seeds(cfg: DictConfig) -> None:
    """``seed`` and ``data_seed``: whole numbers NumPy and torch both take.

    Raises:
        ConfigError: Naming the key and the range.
    """
    for key in ("seed", "data_seed"):
        value = cfg.get(key)
        if value is not None and int(value) < 0:
            raise ConfigError(f"{key} must be >= 0{' or null' if key == 'data_seed' else ''}, got {value}")
        if value is not None and int(value) > MAX_SEED:
            raise ConfigError(f"{key} must be <= {MAX_SEED} (2**32 - 1), got {value}")


def _schema_hint(key: str) -> Any:
    """The schema's type hint at a dotted key (``""``: the root ``RlnasConfig``), or ``None``."""
    node: Any = RlnasConfig
    for part in filter(None, key.split(".")):
        node = typing.get_type_hints(node).get(part) if is_dataclass(node) else None
    return node


def _schema_node(key: str) -> Any:
    """The schema dataclass at a dotted key, or ``None``."""
    node = _schema_hint(key)
    return node if is_dataclass(node) else None


def _expected_type(key: str) -> str | None:
    """The schema's type name of a dotted key (``search.lr`` -> ``float``, ``threads`` -> ``int or null``)."""
    hint = _schema_hint(key)
    return None if hint is None else _type_name(hint)
