"""The command line's argument handling: default task, quoting of paths, resume checks, run-dir checks.

Pure functions over the arguments (and the files they name), apart from the
Hydra app in :mod:`rlnas.__main__` that runs the search.
"""

from __future__ import annotations

import re
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from rlnas.config import CONF_DIR, GROUPS
from rlnas.config_groups import chosen_with_plus
from rlnas.search.checkpoint import CHECKPOINT, resume_may_change
from rlnas.utils.rundir import (  # noqa: F401 - re-exported
    launch_relative_paths,
    new_run_dir,
    quote_paths,
    refuse_earlier_job,
    refuse_planted_links,
    unquote_path,
)
from rlnas.utils.trust import load_run_config

DEFAULT_TASK = "classification"

#: The config groups a command line chooses from (a resumed run keeps its own).
CONFIG_GROUPS = GROUPS
#: Settings that are open mappings (``{}`` by default, any of their generator's names): ``KEY={a: 1}``
#: is taken as Hydra's ``++KEY=...``, since Hydra's plain form refuses every name the default leaves out
#: ("Key 'a' is not in struct"); the names are checked against the generator's own list afterwards.
OPEN_MAPPINGS = ("task.data.generator",)
_OPEN_PREFIXES = tuple(f"{m}." for m in OPEN_MAPPINGS)  # the mapping itself and each of its names


def resumed_config(run_dir: str, overrides: list[str]) -> DictConfig:
    """The config saved in ``run_dir``, after checking that ``overrides`` agree with it.

    Raises:
        FileNotFoundError: When ``run_dir`` holds no ``config.yaml``.
        ValueError: Naming the first override that changes the saved config.
    """
    path = Path(run_dir).expanduser() / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"resume={run_dir}: no config.yaml there (pass a search's run directory)")
    saved = load_run_config(path)
    if saved.get("benchmark") is not None:
        raise ValueError(f"resume={run_dir}: tabular-benchmark runs take seconds; start them again instead")
    # A drill's stop_after applies to the start it was given to, not to the resume.
    if "checkpoint" in saved:
        saved.checkpoint.stop_after = None
    applied = []
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        if resume_may_change(key):
            if key.startswith(("threads", "checkpoint.")):
                applied.append(f"{key}={value}")
            continue
        if key in CONFIG_GROUPS or "/" in key:
            raise ValueError(f"resume: {override} would swap a config group; a resumed run keeps its own config")
        try:
            wanted = OmegaConf.to_container(OmegaConf.from_dotlist([f"{key}={value}"]), resolve=True)
        except Exception:  # noqa: BLE001 - an unparsable override cannot match the saved value
            wanted = {key: value}
        node: object = wanted
        for part in key.split("."):
            node = node[part] if isinstance(node, dict) else None
        old = OmegaConf.select(saved, key, default=None)
        old = OmegaConf.to_container(old, resolve=True) if isinstance(old, (DictConfig, ListConfig)) else old
        if node != old:
            raise ValueError(
                f"resume: {key}={value} conflicts with the run's {key}={old}; resume takes the run's config"
            )
    return OmegaConf.merge(saved, OmegaConf.from_dotlist(applied)) if applied else saved


#: Settings that hold a path: their values are quoted for Hydra's parser when they need it.
PATH_KEYS = (
    "resume",
    "hydra.run.dir",
    "hydra.sweep.dir",
    "controller.init_from",
    "costs.latency_table",
    "task.data.root",
    "task.data.images",
    "task.data.annotations",
    "task.data.path",
    "benchmark.path",
)


def _as_hydra_chooses(arg: str, added: tuple[str, ...]) -> str:
    """A group choice spelled as Hydra takes it: ``+GROUP=`` for a group the defaults list leaves out, plain
    ``GROUP=`` for one it holds.

    task (like experiment, trials, benchmark) is no default of the config, so that ``+task=NAME`` can
    choose one: ``task=NAME``, as the other groups are chosen, means the same (Hydra said "No match in the
    defaults list"); ``+controller=NAME`` means ``controller=NAME`` (Hydra said "Multiple values for
    controller. To override a value use 'override controller: NAME'").
    """
    group = arg.lstrip("+").partition("=")[0]
    if "=" not in arg or group not in GROUPS or arg.startswith("++"):
        return arg
    return f"+{arg.lstrip('+')}" if group in added else arg.lstrip("+")


def _started_job_name(run_dir: str) -> str | None:
    """The ``hydra.job.name`` the run was first started with (its log is ``NAME.log``), if it can be read.

    Only a plain file name is taken: the name comes from a file in the run dir (data), and a
    name such as ``../x`` would put the resumed run's log outside it.
    """
    from rlnas.utils import parse_yaml

    try:  # parse_yaml: a file from others (no aliases, no deep nesting)
        saved = parse_yaml((Path(run_dir).expanduser() / ".hydra" / "hydra.yaml").read_text())
        name = saved["hydra"]["job"]["name"]
    except Exception:  # noqa: BLE001 - a missing or tampered file: Hydra's own default name
        return None
    return name if isinstance(name, str) and re.fullmatch(r"\w[\w.-]*", name) else None


def with_default_task(argv: list[str]) -> list[str]:
    """Adds ``+task=classification`` unless the command line chooses a task.

    Experiment presets are moved after the task, so their budgets win over a
    task's defaults whatever order they were typed in.
    """
    if any(a.startswith("resume=") for a in argv):
        # The run's own config applies; its directory is the run dir and
        # Hydra's .hydra/ files of the first start are left as they are.
        # Quoted for Hydra: unquoted here, quote_paths quotes it again.
        run_dir = unquote_path(next(a for a in argv if a.startswith("resume="))[len("resume=") :])
        extra = [] if any(a.startswith("hydra.run.dir=") for a in argv) else [f"hydra.run.dir={run_dir}"]
        job_name = None if any(a.startswith("hydra.job.name=") for a in argv) else _started_job_name(run_dir)
        # Hydra names the log after the job: the resume appends to the first start's log.
        extra += [f"hydra.job.name={job_name}"] if job_name else []
        # A run's own keys (trials.budget, task.data.*) may be missing from the bare config the
        # command line is first composed on: forced, they reach resumed_config, which names a
        # change to the run's value instead of Hydra's "Key 'trials' is not in struct".
        argv = [
            f"++{a}" if "=" in a and "." in a.partition("=")[0] and not a.startswith(("+", "~", "hydra.")) else a
            for a in argv
        ]
        return [*argv, *extra, "hydra.output_subdir=null"]
    added = chosen_with_plus()
    argv = [_as_hydra_chooses(a, added) for a in argv]
    argv = [f"++{a}" if f"{a.partition('=')[0]}.".startswith(_OPEN_PREFIXES) else a for a in argv]
    # A trailing --info takes an optional value: what is added goes before it, not into it.
    tail = argv[-1:] if argv[-1:] in (["--info"], ["-i"]) else []
    argv = argv[: len(argv) - len(tail)]
    if not any(re.match(r"^[+~]{0,2}task(@[\w.]+)?=", a) for a in argv) and not any(
        a.startswith("+benchmark=") for a in argv
    ):
        argv = [*argv, f"+task={DEFAULT_TASK}"]
    presets = [a for a in argv if a.startswith("+experiment=")]
    return [a for a in argv if not a.startswith("+experiment=")] + presets + tail


def _composable(overrides: list[str]) -> list[str]:
    """The overrides as :func:`hydra.compose` takes them: flags dropped, ``--config-dir`` as a search path."""
    from rlnas.config import search_dirs

    dirs = search_dirs(overrides)
    plain = [a for a in overrides if not a.startswith("-") and not any(a == str(d) for d in dirs)]
    if dirs:
        plain.append("hydra.searchpath=[" + ",".join(f"file://{d}" for d in dirs) + "]")
    return plain


def claim_new_run_dir(overrides: list[str], mode: str = "run") -> str | None:
    """A new run (or sweep) dir for a search that names none (:func:`rlnas.utils.rundir.new_run_dir`).

    For a sweep the swept overrides (``seed=0,1``) are left out: one composition cannot take
    them, and the sweep dir is one for all of the sweep's jobs.
    """
    return new_run_dir(CONF_DIR, "config", _composable(overrides), mode)


def planned_run_dir(overrides: list[str]) -> str:
    """The ``hydra.run.dir`` these overrides give, resolved now (its ``${now:...}`` included)."""
    from hydra import compose, initialize_config_dir

    plain = _composable(overrides)
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=plain, return_hydra_config=True)
    return str(OmegaConf.select(cfg, "hydra.run.dir"))


def resume_error(argv: list[str]) -> str | None:
    """What is wrong with the command line's ``resume=`` (empty, or given twice), or None.

    Checked before the run dir is derived from it: ``resume=`` was named as an empty ``hydra.run.dir``,
    and ``resume=A resume=B`` as ``resume=B continues in its own directory; drop hydra.run.dir=A``.
    """
    given = [unquote_path(a.partition("=")[2]) for a in argv if a.lstrip("+").startswith("resume=")]
    if len(given) > 1:
        return f"resume is given {len(given)} times ({', '.join(given)}); name the one run dir to continue"
    if given and not given[0].strip():
        return "resume= is empty; name the run dir of the search to continue"
    typed = next((a.partition("=")[2] for a in argv if a.lstrip("+").startswith("resume=")), "")
    swept = "," in typed or re.match(r"\s*(glob|range|choice|interval)\(", typed)
    if given and swept and any(a in ("-m", "--multirun") for a in argv) and typed[:1] not in ("'", '"'):
        # Hydra failed on the run dir it derives ("Sweeping over Hydra's configuration is not supported").
        return (
            f"resume={typed} sweeps over run dirs; a sweep cannot resume several runs: resume each with its own "
            "command (python -m rlnas resume=RUN_DIR)"
        )
    return None


def check_resume_dir(argv: list[str]) -> None:
    """Refuses ``resume=A hydra.run.dir=B``: a resumed run writes into its own dir, and only there.

    Raises:
        ValueError: Naming both directories.
    """
    given = {}
    for arg in argv:
        key, sep, value = arg.lstrip("+").partition("=")
        if sep and key in ("resume", "hydra.run.dir"):
            given[key] = unquote_path(value)
    if "resume" in given and "hydra.run.dir" in given:
        resume, run_dir = (Path(given[k]).expanduser().resolve() for k in ("resume", "hydra.run.dir"))
        if resume != run_dir:
            raise ValueError(
                f"resume={given['resume']} continues in its own directory; drop hydra.run.dir={given['hydra.run.dir']} "
                "(a resumed run's files and log stay together)"
            )


def refuse_earlier_run(run_dir: str) -> None:
    """Refuses a search's ``hydra.run.dir`` that holds an earlier job's results, before Hydra replaces its record.

    The search's own claim of its run dir (:func:`rlnas.search.builder.claim_run_dir`) comes after
    Hydra has rewritten ``.hydra/`` there, so a refused start would still replace the earlier run's settings.
    """
    refuse_earlier_job(run_dir, resumable_by=(CHECKPOINT, "trials.jsonl"))
