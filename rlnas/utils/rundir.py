"""Checks of a run dir named on the command line, made before Hydra writes its own files there.

Hydra opens its log and writes ``.hydra/config.yaml``, ``hydra.yaml`` and
``overrides.yaml`` as a job starts, before the job's own code can look at the
directory. Those files are the record of an earlier job's settings (the sweep
summary and a reader of the run take them as such), so the checks here run
first, on the path the user gave.
"""

from __future__ import annotations

import errno
import os
import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: What a start that failed before its first result leaves besides Hydra's ``.hydra/`` record: its log,
#: its lock, the search's config and status. Another start there replaces them.
RESTARTABLE = frozenset({".hydra", ".rlnas.lock", "__main__.log", "retrain.log", "config.yaml", "status.json"})


def refuse_planted_links(run_dir: str | Path) -> None:
    """Refuses a run dir holding symlinks: Hydra's own files (``.hydra/``, the log) would be written through them.

    rlnas writes its own files without following links (:func:`rlnas.utils.atomic_file`); Hydra
    opens its log and config copies in place, so a planted link there would send them elsewhere.

    Raises:
        ValueError: Naming the first link.
    """
    root = Path(run_dir).expanduser()  # itself may be a link (a run dir on another disk): its entries may not
    hydra_dir = root / ".hydra"
    if hydra_dir.is_symlink():
        raise ValueError(f"{hydra_dir} is a symlink; a run dir holds only the files a run writes")
    # Hydra opens these itself: a folder for its log, or a file for its record, ends in its traceback.
    for name, folder in (("__main__.log", False), ("retrain.log", False), (".hydra", True)):
        entry = root / name
        if entry.exists() and entry.is_dir() != folder:
            raise ValueError(
                f"{entry} is {'a file' if folder else 'a folder'}, where Hydra writes "
                f"{'its record of the run' if folder else 'the run log'}; move it away or choose another hydra.run.dir"
            )
    for folder in (root, hydra_dir):
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir()):
            if entry.is_symlink():
                raise ValueError(
                    f"{entry} is a symlink (to {os.readlink(entry)}); a run dir holds only the files a run writes, "
                    "so it is not used (remove the link or choose another hydra.run.dir)"
                )


def earlier_job_files(run_dir: str | Path) -> list[str]:
    """Names in ``run_dir`` that an earlier Hydra job left and a new job there would sit beside.

    Empty unless the directory holds a ``.hydra/`` record (a directory of the user's own files is
    for the job to judge, and Hydra replaces nothing there), and empty when the earlier job left
    only what a failed start leaves (:data:`RESTARTABLE`).
    """
    root = Path(run_dir).expanduser()
    if not (root / ".hydra").is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.name not in RESTARTABLE)


def continue_hint(run_dir: str | Path, names: list[str], resumable_by: tuple[str, ...]) -> str:
    """`` or continue it with resume=DIR`` where ``names`` (a dir's files) show an unfinished run ``resume=`` takes.

    A run is resumable when it left a file of ``resumable_by`` (its checkpoint, its trial log) and no
    ``best_arch.json`` (a finished run, which ``resume=`` refuses); otherwise the hint is empty.
    """
    if any(n in names for n in resumable_by) and "best_arch.json" not in names:
        return f" or continue it with {shlex.quote(f'resume={run_dir}')}"
    return ""


def writable_dir(path: str | Path, setting: str, what: str = "the run's files") -> None:
    """Creates ``path`` (and its parents) and checks it can be written, before anything is written there.

    Raises:
        ValueError: ``SETTING: cannot write WHAT there (reason)``: a read-only disk, no permission, a file
            on the way.
    """
    folder = Path(path).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise PermissionError(errno.EROFS, "not writable")
    except OSError as err:
        raise ValueError(f"{setting}: cannot write {what} there ({err.strerror or type(err).__name__})") from None


#: Hydra's flags that take a value (``--config-dir DIR``); ``--info`` takes one only from its list.
_VALUE_FLAGS = frozenset(
    {
        "--cfg",
        "-c",
        "--package",
        "-p",
        "--config-path",
        "-cp",
        "--config-name",
        "-cn",
        "--config-dir",
        "-cd",
        "--experimental-rerun",
    }
)
_INFO_FLAGS = frozenset({"--info", "-i"})
_INFO_CHOICES = frozenset({"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"})


def _split_flags(argv: list[str]) -> tuple[list[str], list[str], list[str]]:
    """Hydra's flags with their values, the overrides, and a bare ``--info`` (in a list of its own)."""
    flags: list[str] = []
    overrides: list[str] = []
    tail: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in _VALUE_FLAGS and i + 1 < len(argv):
            flags += argv[i : i + 2]
            i += 2
            continue
        if arg in _INFO_FLAGS:
            if i + 1 < len(argv) and argv[i + 1] in _INFO_CHOICES:
                flags += argv[i : i + 2]
                i += 2
            else:
                tail.append(arg)  # a bare --info takes no value: last, so no override is read as one
                i += 1
            continue
        if arg.lstrip("+") == "hydra.mode=MULTIRUN":
            arg = "-m"
        (flags if arg.startswith("-") else overrides).append(arg)
        i += 1
    return flags, overrides, tail


def flags_first(argv: list[str]) -> list[str]:
    """Hydra's flags (with their values) before the overrides, a bare ``--info`` last, as Hydra's parser needs.

    Hydra reads overrides as one positional list: ``+benchmark=toy -m seed=0,1`` fails there with
    "unrecognized arguments: seed=0,1"; ``-m +benchmark=toy seed=0,1`` is the same command. Hydra's
    other spelling of ``-m``, the override ``hydra.mode=MULTIRUN``, becomes ``-m``, so that every check
    of a sweep's command line sees a sweep.
    """
    flags, overrides, tail = _split_flags(argv)
    return [*flags, *overrides, *tail]


def hydra_overrides(argv: list[str]) -> list[str]:
    """The overrides of a command line: what is left of it without Hydra's flags and their values."""
    return _split_flags(argv)[1]


def repeated_keys(argv: list[str]) -> list[str]:
    """A warning for each key set more than once on a command line (``seed=1 ... seed=2``).

    Hydra uses the last value without a word. That is how a wrapper overrides its own defaults
    (``make run ARGS=trials.budget=20``), so it is said, not refused: a typed command line that
    sets a key twice by mistake then shows which value the run took.
    """
    given: dict[str, list[str]] = {}
    for override in hydra_overrides(argv):
        key, sep, _ = override.lstrip("+~").partition("=")
        if sep:
            given.setdefault(key, []).append(override)
    return [
        f"{key} is given {len(values)} times ({', '.join(values)}); the last one is used"
        for key, values in given.items()
        if len(values) > 1
    ]


def say_repeated_keys(program: str, argv: list[str], say: bool = True) -> None:
    """Prints :func:`repeated_keys`'s warnings as ``PROGRAM: warning: ...`` lines on stderr (when ``say``)."""
    for warning in repeated_keys(argv) if say else []:
        print(f"{program}: warning: {warning}", file=sys.stderr)


def bare_word(argv: list[str]) -> str | None:
    """The first argument that is not ``key=value``, ``~key``, one of Hydra's flags or their values (or ``None``).

    Hydra reports such a word with its grammar ("missing EQUAL at '<EOF>'"); the commands name it instead.
    """
    # ~key deletes a key: Hydra's own grammar.
    return next((a for a in hydra_overrides(argv) if not a.startswith("~") and "=" not in a), None)


def refuse_earlier_job(run_dir: str | Path, resumable_by: tuple[str, ...] = ()) -> None:
    """Refuses a ``hydra.run.dir`` holding an earlier job's results (:func:`earlier_job_files`).

    Args:
        run_dir: The directory named on the command line.
        resumable_by: Files of an unfinished run that ``resume=`` continues (the refusal then says
            so, unless the run finished: ``best_arch.json``).

    Raises:
        RunDirBusy: When a run still writing there holds its lock (named as such, before "holds an earlier run").
        ValueError: Naming the directory and the first such file.
    """
    taken = earlier_job_files(run_dir)
    if not taken:
        return
    if (Path(run_dir).expanduser() / LOCK_FILE).exists():
        lock_run_dir(run_dir)  # raises while another process holds it
    raise ValueError(
        f"hydra.run.dir={run_dir} already holds an earlier run ({taken[0]}, beside its .hydra/ record); "
        "choose another directory" + continue_hint(run_dir, taken, resumable_by)
    )


def refuse_earlier_sweep(sweep_dir: str | Path | None) -> None:
    """Refuses a ``hydra.sweep.dir`` that holds an earlier sweep, before Hydra rewrites its record there.

    Hydra replaces the sweep's ``multirun.yaml`` and each job's ``.hydra/`` record as the sweep
    starts: in the folder of an earlier sweep, its record and the settings beside its jobs' results
    would be lost or mixed with the new sweep's. A folder without them (new, empty, the user's own) is used.

    Raises:
        ValueError: Naming the folder and the first earlier file.
    """
    root = Path(sweep_dir).expanduser() if sweep_dir else None
    if root is None or not root.is_dir():
        return
    taken = ["multirun.yaml"] if (root / "multirun.yaml").exists() else []
    for job in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        taken += [f"{job.name}/{name}" for name in earlier_job_files(job)]
    if taken:
        raise ValueError(
            f"hydra.sweep.dir={sweep_dir} already holds an earlier sweep ({taken[0]}); choose another directory"
        )


#: What Hydra's override grammar reads unquoted as a plain string; a path with anything else (a space, a comma,
#: ``~``, ``#``, ``&``, an accented letter) is quoted for it.
_HYDRA_PLAIN = re.compile(r"[A-Za-z0-9_/.:@%+-]*")


def _plain_string(value: str) -> bool:
    """Whether Hydra's override grammar reads ``value`` unquoted as this very string.

    A number, ``true``, ``null`` or ``inf`` is read typed: ``hydra.run.dir=1e3`` put Hydra's own files
    in ``1e3/`` and the run's in ``1000.0/``.
    """
    if not _HYDRA_PLAIN.fullmatch(value):
        return False
    if value.lower().lstrip("+-") in ("true", "false", "null", "inf", "nan"):
        return False
    try:
        float(value.replace("_", ""))
    except ValueError:
        return True
    return False


def quote_paths(argv: list[str], keys: Sequence[str]) -> list[str]:
    """The path settings ``keys`` (``resume=DIR``, ``arch=FILE``), quoted for Hydra when the path holds ``=``,
    ``,``, ``é``, spaces...

    Sweep job dirs are named after their overrides (``0_controller=enas,seed=0``),
    which Hydra's override grammar would otherwise read as more overrides or a sweep.
    On a multirun command line a comma or a sweep function (``glob(...)``) may mean a sweep, so such
    a value is left as typed; ``hydra.sweep.dir``, one for the whole sweep, is always one path.
    """
    multirun = any(a in ("-m", "--multirun") for a in argv)
    out = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        name = key.lstrip("+~")
        if multirun and name != "hydra.sweep.dir" and ("," in value or re.match(r"\w+\(", value)):
            out.append(arg)
            continue
        if value == "null" and not name.startswith("hydra."):
            out.append(arg)  # these settings are null by default: null means "none", not a file named null
            continue
        if sep and name in keys and value[:1] not in ("'", '"') and not _plain_string(value):
            arg = f"{key}='" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        out.append(arg)
    return out


def unquote_path(value: str) -> str:
    """A path value as typed, from the Hydra-quoted form :func:`quote_paths` gives it (unquoted: as is)."""
    if value[:1] in ("'", '"') and value[-1:] == value[:1]:
        return value[1:-1].replace("\\'", "'").replace("\\\\", "\\")
    return value


def explicit_run_dir(argv: list[str], key: str = "hydra.run.dir") -> str | None:
    """The value of ``key`` (``hydra.run.dir``, ``hydra.sweep.dir``) among command-line overrides.

    The last one given, as Hydra takes it, unquoted (:func:`quote_paths` may have quoted it); ``None`` when
    none is.
    """
    found = None
    for arg in argv:
        name, sep, value = arg.lstrip("+").partition("=")
        if name == key and sep:
            found = unquote_path(value)
    return found


def check_launcher_jobs(argv: list[str]) -> None:
    """Refuses a ``hydra.launcher.n_jobs`` that joblib cannot take (it fails with a traceback before any job).

    Raises:
        ValueError: Naming the override; negative counts keep joblib's meaning (-1: one job per core).
    """
    for arg in argv:
        key, sep, value = arg.lstrip("+").partition("=")
        if key == "hydra.launcher.n_jobs" and sep and not re.fullmatch(r"-?0*[1-9][0-9]*|null", value.strip()):
            raise ValueError(
                f"hydra.launcher.n_jobs={value} must be a whole number other than 0 (-1: one job per core)"
            )


def new_run_dir(conf_dir: str | Path, config_name: str, overrides: list[str], mode: str = "run") -> str | None:
    """A new, empty run dir claimed for a start whose ``hydra.run.dir`` is the time-stamped default.

    Two starts in the same second (a shell loop, a job array) resolved the same
    ``outputs/runs/DATE/TIME``: the second one, refused there, had already let Hydra replace the
    first one's ``.hydra/`` record with its own settings. The directory is created here, atomically;
    a taken one gets a suffix (``TIME_2``, ``TIME_3``, ...).

    Args:
        conf_dir: The primary config directory.
        config_name: ``config`` (a search) or ``retrain``.
        overrides: The command line's overrides, as Hydra will compose them.
        mode: ``run`` (``hydra.run.dir``) or ``sweep`` (``hydra.sweep.dir``, for ``-m``: two sweeps
            started in one second shared it the same way).

    Returns:
        The directory (to pass as ``hydra.run.dir``), or ``None`` when the run dir is not
        time-stamped (a fixed one from a config: it is judged where it is used).

    Raises:
        ValueError: When the folder cannot be made, naming it (and a file in its way).
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    overrides = [a for a in overrides if not a.startswith("-")]
    if mode == "sweep":  # one composition cannot take seed=0,1; the sweep dir is one for all its jobs
        parsed = OverridesParser.create().parse_overrides(overrides)
        overrides = [o.input_line for o in parsed if not o.is_sweep_override()]
    with initialize_config_dir(str(Path(conf_dir).resolve()), version_base="1.3"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    pattern = OmegaConf.to_container(cfg.hydra[mode], resolve=False).get("dir")
    if not isinstance(pattern, str) or "${now:" not in pattern:
        return None
    base = Path(str(OmegaConf.select(cfg, f"hydra.{mode}.dir"))).expanduser()
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
        for k in range(1, 10_000):
            candidate = base if k == 1 else base.with_name(f"{base.name}_{k}")
            try:
                candidate.mkdir()
            except FileExistsError:
                continue
            return str(candidate)
    except OSError as err:  # a file named outputs where the folder goes, a read-only disk
        blocker = next((p for p in reversed(base.parents) if p.exists() and not p.is_dir()), None)
        reason = f"{blocker} is a file, where that folder goes" if blocker is not None else err.strerror
        raise ValueError(f"cannot make the run dir {base} ({reason}); move it away or set hydra.{mode}.dir=") from None
    return None


def launch_relative_paths(cfg: Any, keys: tuple[str, ...]) -> None:
    """Makes the config's relative paths at ``keys`` absolute from where the command was typed.

    Under ``hydra.job.chdir=true`` a job runs inside its run dir, where a relative
    ``task.data.root=../data`` would name another folder than the one typed.
    """
    from hydra.utils import to_absolute_path
    from omegaconf import OmegaConf

    for key in keys:
        value = None if key.startswith("hydra.") else OmegaConf.select(cfg, key, default=None)
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            OmegaConf.update(cfg, key, to_absolute_path(value), merge=False)


#: The lock file every run holds in its run dir for as long as it runs.
LOCK_FILE = ".rlnas.lock"
_held: dict[Path, int] = {}


class RunDirBusy(ValueError):
    """Another process holds the run dir; the message names its pid."""


def lock_run_dir(run_dir: str | Path) -> None:
    """Takes the run dir's exclusive lock for the rest of this process (one writer per run dir).

    The lock is an ``flock`` on ``.rlnas.lock``, released by the operating
    system when the process ends however it ends, so a killed run leaves no
    stale lock. Taking a lock this process already holds does nothing.

    Raises:
        RunDirBusy: When another process holds it (its pid named).
        ValueError: When the directory cannot be created or written.
    """
    path = Path(run_dir).expanduser().resolve()
    if path in _held:
        return
    if path.exists() and not path.is_dir():
        raise RunDirBusy(f"{path} is a file, not a run directory")
    try:
        import fcntl
    except ImportError:  # no flock on this platform: run unguarded
        return
    writable_dir(path, str(path))  # read-only, a file on the way, no permission
    try:
        fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:  # a full disk; a folder where the lock file goes
        if (path / LOCK_FILE).is_dir():
            raise ValueError(
                f"{path / LOCK_FILE} is a directory where the run's lock file goes; move it away"
            ) from None
        raise ValueError(f"{path}: cannot write the run's files there ({err.strerror or type(err).__name__})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RunDirBusy(
            f"{path} is in use by another rlnas run (pid {holder}); wait for it to end or choose another directory"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    _held[path] = fd
