"""Helpers shared by the tools: compose the project's Hydra config outside the app, run and stop them."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]


def _worker_signals() -> None:
    """A pool worker ignores Ctrl-C and ends quietly on SIGTERM (a forked one inherits :func:`run_tool`'s handler)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def quiet_invalid_state() -> None:
    """Drops ``InvalidStateError`` raised in threads (a stopped process pool's race), keeping every other report."""
    import threading
    from concurrent.futures import InvalidStateError

    report = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if not issubclass(args.exc_type, InvalidStateError):
            report(args)

    threading.excepthook = hook


@contextmanager
def job_map(jobs: int) -> Iterator[Callable]:
    """``map`` over ``jobs`` worker processes, results in order (one job: in this process, no worker started).

    The function and its items must pickle (a module-level function, plain data).
    """
    cores = os.cpu_count() or 1
    if jobs > cores:
        # The pool forks every worker at once: --jobs 1000 made 1000 processes of a torch-sized parent.
        print(
            f"{Path(sys.argv[0]).name}: --jobs {jobs}: this machine has {cores} CPU(s); running {cores} at once",
            file=sys.stderr,
        )
        jobs = cores
    if jobs <= 1:
        yield map
        return
    from concurrent.futures import ProcessPoolExecutor

    # Workers ignore Ctrl-C while idle (a search installs its own handler while it runs), so a stop
    # reaches the tool once, as the interrupted search's exception, not as one traceback per worker.
    pool = ProcessPoolExecutor(max_workers=jobs, initializer=_worker_signals)
    try:
        yield pool.map
    except BaseException:
        # Queued jobs are dropped and running ones killed (their searches resume from their checkpoints):
        # the pool's own exit would wait for all of them.
        # map's own cleanup cancels the queued jobs while the pool's manager thread, seeing its workers
        # killed, marks the same jobs broken: on Python 3.11 that race ends in an InvalidStateError
        # traceback from the thread (fixed in later versions). The stop is deliberate; that error is dropped.
        quiet_invalid_state()
        for process in list((pool._processes or {}).values()):
            process.kill()
        pool.shutdown(wait=True)
        raise
    pool.shutdown()


def run_tool(main: Callable[[], object]) -> None:
    """Runs a tool's ``main``; Ctrl-C or SIGTERM ends it with one line and exit code 130, not a traceback.

    What the tool finished (its runs, each search's checkpoint) stays on disk.
    """
    from rlnas.search.checkpoint import SearchInterrupted
    from rlnas.utils.errors import environment_error, tolerant_stdout

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    tool = Path(sys.argv[0]).name
    tolerant_stdout(tool)
    message = environment_error()
    if message is not None:
        print(f"{tool}: error: {message}", file=sys.stderr)
        sys.exit(2)
    try:
        code = main()
    except (KeyboardInterrupt, SearchInterrupted):
        print(f"{tool}: interrupted; the runs it finished are kept", file=sys.stderr)
        sys.exit(130)
    except SystemExit as err:
        if not isinstance(err.code, str):
            raise
        # A tool's own refusal (raise SystemExit("--archs must be >= 1")): exit code 1 and no tool name
        # otherwise; every refusal is "TOOL: error: ..." and exit code 2, as a bad argument is.
        message = err.code
        for name in (tool, Path(tool).stem):
            for prefix in (f"{name}: error: ", f"{name}: "):
                message = message.removeprefix(prefix)
        print(f"{tool}: error: {message}", file=sys.stderr)
        sys.exit(2)
    except OSError as err:
        if err.filename is None:
            raise
        # An output path that is a file, a folder that cannot be written: the path and the reason, in one line.
        reason = "exists and is not a folder" if isinstance(err, FileExistsError) else err.strerror
        print(f"{tool}: error: {err.filename}: {reason}", file=sys.stderr)
        sys.exit(2)
    except Exception as err:  # noqa: BLE001 - a config or data error in the overrides is one line, as in a search
        message = config_error_message(err)
        if message is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"{tool}: error: {message}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


def config_error_message(err: BaseException) -> str | None:
    """The one line of a configuration or data error (a bad override, a space value, a data file), else ``None``.

    The search's own message (:func:`rlnas.utils.errors.user_error_message`), and Hydra's composition errors
    (an unknown key), which a tool meets when it composes the config itself.
    """
    from hydra.errors import HydraException

    from rlnas.utils.errors import one_line, user_error_message

    message = user_error_message(err)
    if message is None and isinstance(err, HydraException):
        message = one_line(err)
    return message


def seed_arg(text: str) -> int:
    """An argparse type for ``--seed``: a whole number NumPy and torch take (NumPy's own words for -1
    were "expected non-negative integer", naming no flag)."""
    import argparse

    from rlnas.utils import MAX_SEED, is_seed

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if not is_seed(value):
        raise argparse.ArgumentTypeError(f"must be a whole number in 0..{MAX_SEED} (2**32 - 1), got {value}")
    return value


def read_json(path: Path, default: Any = None) -> Any:
    """A tool's cache or stored result: its JSON, ``default`` when the file is absent.

    Raises:
        SystemExit: Naming the file, when it is not JSON (a truncated or foreign file is left as it is).
    """
    import json

    from rlnas.utils import parse_json

    if not path.is_file():
        return default
    try:
        return parse_json(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SystemExit(
            f"{Path(sys.argv[0]).name}: error: {path}: not a JSON file this tool wrote ({err}); move it away "
            "or name another file"
        ) from None


def refuse_keys_of_options(overrides: Sequence[str], options: dict[str, str]) -> None:
    """Refuses an override of a setting the tool gives each run from one of its own options.

    Appended after the tool's own value, the user's won for every run: ``-- seed=5`` made every seed of a
    comparison the same search (a std of 0), ``-- benchmark.evaluations=20`` a "budget 50" row of 20
    evaluations; put first, it lost to the tool's with only Hydra's "given twice" warning.

    Args:
        overrides: The user's overrides for every run.
        options: Setting -> the option that sets it (``{"seed": "--seeds"}``), or what else does.

    Raises:
        SystemExit: One line naming the override and the option.
    """
    for item in overrides:
        key = item.partition("=")[0].lstrip("+~")
        if key in options:
            tool = Path(sys.argv[0]).name
            advice = "use that" if options[key].startswith("--") else "leave it out"
            raise SystemExit(f"{tool}: error: {item}: {key} is set by {options[key]} for each run; {advice}")


def load_config(overrides: list[str], needs_task: bool = False, check: bool = False) -> DictConfig:
    """The app's config for ``overrides`` (``+task=classification`` added when no task is given).

    Config dirs of the user's own come in as ``hydra.searchpath=[file://DIR]``;
    a group choice found nowhere stops the tool with one line, and so does a
    ``+benchmark`` given to a tool that trains on a task's data (``needs_task``). ``check``: the commands'
    own checks of the config too (a tool that builds from it; tests compose configs the builders refuse).
    """
    import sys

    from rlnas.__main__ import with_default_task
    from rlnas.config import CONF_DIR, ConfigError, check_group_choices, search_dirs, validate_config

    tool = Path(sys.argv[0]).name
    try:
        check_group_choices(overrides, extra=search_dirs(overrides))
    except ConfigError as err:
        raise SystemExit(f"{tool}: error: {err}") from None
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=with_default_task(list(overrides)))
    if needs_task and cfg.get("task") is None:  # with_default_task adds none beside +benchmark
        raise SystemExit(
            f"{tool}: error: +benchmark looks architectures up in a table and has no task data; "
            "name a task instead (+task=NAME)"
        )
    # Before anything is built from it: a tool's `space.num_layers=abc` said only "invalid literal for
    # int()", and an unknown task.data key was a TypeError's traceback.
    if check:
        try:
            validate_config(cfg)
        except ConfigError as err:
            raise SystemExit(f"{tool}: error: {err}") from None
    return cfg


def standalone_recipe_of(cfg: DictConfig, epochs: int) -> dict[str, Any]:
    """The training recipe standalone runs of ``cfg`` take (its nulls filled from ``search:``), as JSON values:
    what stored standalone results and trial searches are checked against when a default changes."""
    import json
    from dataclasses import asdict

    from rlnas.evaluators.standalone import standalone_recipe

    return json.loads(json.dumps(asdict(standalone_recipe(cfg, epochs)), default=str))


def check_stored_config(
    run_dir: Path, cfg: DictConfig, view: Callable[[DictConfig], dict[str, Any]] | None = None
) -> None:
    """Refuses a stored run whose ``config.yaml`` differs from ``cfg``, the config a study composes for it now.

    Studies reuse finished runs; a default changed since a run was made (a
    task's supernet steps, a controller's learning rate) is in no override, yet
    the run is not the study's any more. Settings added since the run was made
    are passed over (their defaults keep the earlier behaviour), and so are
    those a resume may change (threads, checkpoints). ``view`` turns a config
    into the tree compared, for a study whose runs read only part of it.

    Raises:
        ValueError: Naming the run dir and the first setting that differs.
    """
    import json

    from rlnas.search.checkpoint import config_fingerprint, first_difference
    from rlnas.utils.trust import load_run_config

    path = run_dir / "config.yaml"
    if not path.is_file():
        raise ValueError(f"{path}: missing; the run cannot be checked against this study's settings (move it away)")
    if view is None:
        view = lambda c: json.loads(config_fingerprint(c))  # noqa: E731
    found = first_difference(view(load_run_config(path)), view(cfg), added_keys=False)
    if found:
        setting, was, now = found
        raise ValueError(
            f"{run_dir} was made with {setting}={was!r}, this study now composes {now!r} (a default "
            "changed since); move it away or give another --out to run it again"
        )


def build_parts(overrides: list[str], device_name: str, seed: int):
    """Config, device, space, task, device-resident data and the supernet with its head.

    Returns:
        ``(cfg, device, space, task, data, model)`` where ``model`` is a
        :class:`~rlnas.tasks.Network` around the supernet, on ``device``.
    """
    import torch
    from hydra.utils import instantiate

    from rlnas.supernet import build_supernet
    from rlnas.tasks import Network
    from rlnas.utils import resolve_device

    torch.manual_seed(seed)
    cfg = load_config(overrides, needs_task=True, check=True)
    device = resolve_device(device_name)
    space = instantiate(cfg.space, _convert_="all")
    task = instantiate(cfg.task, _convert_="all")
    data = task.load_data(seed=seed).to(device)
    backbone = build_supernet(space, data.in_channels)
    model = Network(backbone, task.build_head(backbone.out_channels, data)).to(device)
    return cfg, device, space, task, data, model


def check_supernet_run(run_dir: str | Path) -> None:
    """Refuses, before any work, a ``--run-dir`` that holds no finished weight-sharing search's supernet.

    Raises:
        SystemExit: Naming the run dir and what it lacks (a trial search's has no supernet at all).
    """
    run_dir = Path(run_dir)
    if (run_dir / "trials.jsonl").is_file():
        raise SystemExit(
            f"--run-dir {run_dir}: a trial search's run dir; its candidates were trained on their own, with no "
            "supernet to score them on (their scores are in trials.csv)"
        )
    for name in ("config.yaml", "supernet.pt"):
        if not (run_dir / name).is_file():
            raise SystemExit(f"--run-dir {run_dir}: no {name} there (a finished search run writes it)")


def load_run(run_dir: str | Path, scratch_dir: str | Path):
    """The :class:`~rlnas.search.loop.Search` of a finished run, its supernet weights loaded.

    Built from the run's own ``config.yaml`` (reusing its latency table) in
    ``scratch_dir``, so nothing in ``run_dir`` is touched.
    """

    from rlnas.search.builder import build_search
    from rlnas.utils.trust import load_run_config, load_tensor_file

    run_dir = Path(run_dir)
    check_supernet_run(run_dir)
    try:  # a run dir is data: its config may name only rlnas's own classes, its weights load as tensors only
        cfg = load_run_config(run_dir / "config.yaml")
        weights = load_tensor_file(run_dir / "supernet.pt", "supernet.pt")
    except Exception as err:  # noqa: BLE001 - a crafted or truncated file raises many types
        raise SystemExit(
            f"--run-dir {run_dir}: {str(err).splitlines()[0] if str(err) else type(err).__name__}"
        ) from None
    cfg.costs.latency_table = str(run_dir / "latency_lut.json")
    search = build_search(cfg, scratch_dir, progress=False)
    try:
        search.model.load_state_dict(weights)
    except (RuntimeError, TypeError) as err:  # another search's supernet.pt beside this config
        lines = [line.strip() for line in str(err).splitlines() if line.strip()] or [type(err).__name__]
        detail = lines[min(1, len(lines) - 1)][:200]  # torch's first line only says "Error(s) in loading"
        message = f"--run-dir {run_dir}: supernet.pt does not fit the supernet its config.yaml builds ({detail})"
        raise SystemExit(message) from None
    return search


def check_out_file(path: Path, flag: str, keys: tuple[str, ...] | None, inputs: tuple[Path, ...] = ()) -> None:
    """Refuses an output file that would overwrite what the tool reads or a file it did not write, before any work.

    Args:
        path: The file the tool will write.
        flag: Its option, as the error names it (``--out``).
        keys: Top-level keys of the JSON the tool writes: an existing file
            without them is not the tool's own and is kept; ``None``: not JSON.
        inputs: Files the tool reads.

    Raises:
        SystemExit: One line naming the option and the path.
    """
    import json

    tool = Path(sys.argv[0]).name
    target = Path(path).expanduser()
    if target.resolve() in {Path(p).expanduser().resolve() for p in inputs}:
        raise SystemExit(f"{tool}: error: {flag} {path} is one of this tool's inputs; name another file")
    if target.is_dir():
        raise SystemExit(f"{tool}: error: {flag} {path} is a directory; name a file")
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise SystemExit(f"{tool}: error: {flag} {path}: {parent} is a file, not a folder")
            break
    if keys is None or not target.exists():
        return
    try:
        written = json.loads(target.read_text())
        ours = isinstance(written, dict) and set(keys) <= set(written)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        ours = False
    if not ours:
        raise SystemExit(
            f"{tool}: error: {flag} {path} exists and is not a file this tool wrote; move it away or name another file"
        )
