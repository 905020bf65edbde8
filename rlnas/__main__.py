"""Command line: ``python -m rlnas [+task=NAME] [controller=NAME] [key=value ...]``.

A bare ``python -m rlnas`` runs the classification task: when no ``task``
override is given, ``+task=classification`` is added (``task`` cannot sit in the
defaults list, or ``+task=detection`` would clash with it). Configuration and
data errors print one line and exit with code 2; ``HYDRA_FULL_ERROR=1`` shows
the whole traceback instead.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, ListConfig, OmegaConf

from rlnas.config import CONF_DIR, check_overrides, validate_config
from rlnas.sweep.jobs import lock_run_dir, parallel_jobs, threads_per_job, write_status
from rlnas.utils.distributed import Comm, DistributedError, DistributedSettings, init_from_env, launched, shutdown
from rlnas.utils.errors import one_line_errors, user_error_message
from rlnas.utils.trust import load_run_config

log = logging.getLogger("rlnas")
DEFAULT_TASK = "classification"
#: This process's place among the ranks of a ``torchrun`` launch (one process: rank 0 of 1).
COMM = Comm()


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def run(cfg: DictConfig) -> float:  # noqa: C901 - see the docstring
    """Runs one search; returns the best architecture's reward (for Hydra sweepers).

    Above the complexity limit on purpose: it is the one place that maps each
    way a run can end (finished, interrupted, numeric fault, user error, in a
    sweep or not, on which rank) to its exit code and run status, and reads
    best top to bottom.
    """
    from rlnas.search.budget import build_budget_search
    from rlnas.search.builder import RUN_FILES, build_search
    from rlnas.search.checkpoint import SearchInterrupted
    from rlnas.search.faults import NumericFaultError

    started = time.time()
    comm = COMM
    prog = "rlnas" if comm.is_main else f"rlnas[rank {comm.rank}]"
    hydra_cfg = HydraConfig.get()
    run_dir = hydra_cfg.runtime.output_dir
    if hydra_cfg.mode != RunMode.MULTIRUN and not str(hydra_cfg.run.dir).strip():
        print("rlnas: error: hydra.run.dir is empty; name a directory for the run's files", file=sys.stderr)
        sys.exit(2)
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    owns_dir = False  # set once known: a run never writes its status into another run's dir

    def status(state: str, **fields: object) -> None:
        if owns_dir and comm.is_main:
            try:
                write_status(run_dir, state, started, **fields)
            except OSError as err:  # the disk that failed the run may fail this too: say so, don't mask the error
                print(f"rlnas: status.json not updated to {state!r} ({err.strerror or err})", file=sys.stderr)

    try:
        with one_line_errors(prog, also=(NumericFaultError, DistributedError), exit_on_error=not in_sweep):
            try:
                resume = cfg.get("resume")
                if resume:
                    if comm.is_main and not Path(str(resume)).expanduser().is_dir():
                        raise FileNotFoundError(f"resume={resume}: not a directory (pass a search's run directory)")
                    # Several ranks: rank 0 reads the run's config and sends it (one shared view of the run).
                    cfg = comm.broadcast_object(
                        resumed_config(str(resume), list(hydra_cfg.overrides.task)) if comm.is_main else None
                    )
                    run_dir = str(Path(resume).expanduser())
                # One writer per run dir, for the whole run (a second start or resume is refused).
                if comm.is_main:
                    lock_run_dir(run_dir)
                if comm.active and cfg.get("benchmark") is not None:
                    raise ValueError("+benchmark runs take seconds in one process; start them without torchrun")
                validate_config(cfg)
                # A refused resume of a finished run, or a start into another run's dir, leaves its status alone.
                owns_dir = (bool(resume) and not (Path(run_dir) / "best_arch.json").exists()) or not any(
                    (Path(run_dir) / name).exists() for name in RUN_FILES
                )
                jobs = parallel_jobs()
                if jobs > 1 and cfg.get("threads") is None:
                    # Parallel jobs on one machine share its cores instead of each taking all of them.
                    cfg.threads = threads_per_job(jobs)
                    log.info("%d parallel jobs: %d torch threads each", jobs, cfg.threads)
                status("running")
                if cfg.get("benchmark") is not None:
                    bench = build_budget_search(cfg, run_dir)
                    outcome = bench.run()
                else:
                    with stops_before_the_first_epoch(run_dir, bool(resume)):
                        search = build_search(cfg, run_dir, resume=bool(resume), comm=comm)
                    result = search.run()
            except SearchInterrupted:
                raise
            except Exception as err:
                message = user_error_message(err) or f"{type(err).__name__}: {err}".splitlines()[0]
                status("failed", error=message)
                raise
    except SearchInterrupted as stop:
        status("interrupted", error=str(stop))
        if comm.is_main:
            print(f"rlnas: {stop}", file=sys.stderr)
        sys.exit(130)
    if not comm.is_main:  # rank 0 reports
        return float("nan") if cfg.get("benchmark") is not None else result.best.reward
    if cfg.get("benchmark") is not None:
        metrics = ", ".join(f"{k}={v:.4f}" for k, v in outcome.best_evaluation.metrics.items())
        print(
            f"best: {bench.space.describe(outcome.best_arch)} | {metrics} | {len(outcome.rewards)} evaluated in "
            f"{outcome.seconds:.2f} s | run dir: {run_dir}"
        )
        status("completed", best_reward=outcome.best_reward)
        return outcome.best_reward
    best = result.best
    faults = {"skipped_steps": search.faults.loss, "skipped_rewards": search.faults.reward}
    if any(faults.values()):
        log.warning(
            "completed with %d skipped supernet steps and %d skipped rewards (non-finite); see TensorBoard faults/*",
            faults["skipped_steps"],
            faults["skipped_rewards"],
        )
    status("completed", best_reward=best.reward, faults=faults)
    metrics = ", ".join(
        [f"val_{k}={v:.4f}" for k, v in best.evaluation.metrics.items()]
        + [f"{k}={v:.2f}" for k, v in best.proxy.items()]
    )
    costs = ", ".join(f"{k}={v:,.0f}" if k == "params" else f"{k}={v:.3g}" for k, v in best.evaluation.costs.items())
    log.info(
        "mean reward: controller %.4f in its last epoch; on the final supernet controller %.4f vs uniform random %.4f",
        result.last_epoch_mean_reward,
        result.controller_mean_reward,
        result.random_mean_reward,
    )
    print(f"best: {search.space.describe(best.arch)} | {metrics} | {costs} | run dir: {run_dir}")
    truth = cfg.get("ground_truth")
    if truth is not None and int(truth.random) > 0:
        print(ground_truth_line(cfg, search, best.arch, run_dir))
    return best.reward


def ground_truth_line(cfg: DictConfig, search: Any, arch: Any, run_dir: str) -> str:
    """Trains the pick and ``ground_truth.random`` uniform draws standalone; the line that compares them.

    Written to ``ground_truth.json`` in the run dir too.
    """
    from rlnas.evaluators.standalone import compare_with_random
    from rlnas.utils import write_json_atomic

    truth = cfg.ground_truth
    randoms = search.uniform.propose(int(truth.random))
    log.info(
        "ground truth: training the found architecture (%d seed(s)) and %d random ones standalone, %d epochs each",
        int(truth.seeds),
        len(randoms),
        int(truth.epochs),
    )
    result = compare_with_random(cfg, arch, randoms, int(truth.seeds), int(truth.epochs), str(cfg.device))
    write_json_atomic(Path(run_dir) / "ground_truth.json", result)
    pick, metric = result["pick"], result["metric"]
    found = f"{pick['mean']:.4f}" + (f" ± {pick['std']:.4f}" if len(pick["values"]) > 1 else "")
    return (
        f"ground truth (standalone, {result['epochs']} epochs, test split the search never saw): found "
        f"{metric} {found} vs {len(randoms)} random architectures {result['random_mean']:.4f} "
        f"(best of them {result['random_best']:.4f})"
    )


@contextmanager
def stops_before_the_first_epoch(run_dir: str, resume: bool) -> Iterator[None]:
    """SIGINT/SIGTERM while the search is built (data, latency table) stop at once, in one line.

    Nothing is lost then: no epoch has run (a resumed run's checkpoint is
    untouched). The search's own handlers take over from its first epoch.
    """
    from rlnas.search.checkpoint import SearchInterrupted

    def stop(signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if resume:
            raise SearchInterrupted(
                0, Path(run_dir), f"stopped by {name} while preparing the resume; the checkpoint is unchanged; {{hint}}"
            )
        raise SearchInterrupted(
            0,
            Path(run_dir),
            f"stopped by {name} before the first epoch; nothing to resume and nothing lost: start the run again",
        )

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, stop)
        except ValueError:  # not the main thread (a sweep job): no handlers
            pass
    try:
        yield
    except SearchInterrupted:
        raise
    except Exception as err:
        # The signal may land inside a library call that wraps what it raises
        # (Hydra's instantiate does): the stop is still a stop, not an error.
        cause: BaseException | None = err
        while cause is not None and not isinstance(cause, SearchInterrupted):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            raise
        raise cause from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


#: Overrides a resumed run accepts even when they differ from its config.
RESUME_FREE = ("resume", "threads", "checkpoint.", "hydra.")
CONFIG_GROUPS = ("task", "experiment", "space", "controller", "reward", "benchmark")


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
        if key.startswith(RESUME_FREE):
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
_HYDRA_SPECIAL = set("=,[]{}()'\" \\")


def quote_paths(argv: list[str]) -> list[str]:
    """``resume=DIR`` and the other path settings, quoted for Hydra when the path holds ``=``, ``,``, spaces...

    Sweep job dirs are named after their overrides (``0_controller=enas,seed=0``),
    which Hydra's override grammar would otherwise read as more overrides or a sweep.
    A multirun command line is left as typed: there a comma may mean a sweep.
    """
    if any(a in ("-m", "--multirun") for a in argv):
        return list(argv)
    out = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and key.lstrip("+~") in PATH_KEYS and value[:1] not in ("'", '"') and _HYDRA_SPECIAL & set(value):
            arg = f"{key}='" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        out.append(arg)
    return out


def _unquote(value: str) -> str:
    """A path value as typed, from the Hydra-quoted form :func:`quote_paths` gives it (unquoted: as is)."""
    if value[:1] in ("'", '"') and value[-1:] == value[:1]:
        return value[1:-1].replace("\\'", "'").replace("\\\\", "\\")
    return value


def with_default_task(argv: list[str]) -> list[str]:
    """Adds ``+task=classification`` unless the command line chooses a task.

    Experiment presets are moved after the task, so their budgets win over a
    task's defaults whatever order they were typed in.
    """
    if any(a.startswith("resume=") for a in argv):
        # The run's own config applies; its directory is the run dir and
        # Hydra's .hydra/ files of the first start are left as they are.
        # Quoted for Hydra: unquoted here, quote_paths quotes it again.
        run_dir = _unquote(next(a for a in argv if a.startswith("resume="))[len("resume=") :])
        extra = [] if any(a.startswith("hydra.run.dir=") for a in argv) else [f"hydra.run.dir={run_dir}"]
        return [*argv, *extra, "hydra.output_subdir=null"]
    if not any(re.match(r"^[+~]{0,2}task(@[\w.]+)?=", a) for a in argv) and not any(
        a.startswith("+benchmark=") for a in argv
    ):
        argv = [*argv, f"+task={DEFAULT_TASK}"]
    presets = [a for a in argv if a.startswith("+experiment=")]
    return [a for a in argv if not a.startswith("+experiment=")] + presets


def planned_run_dir(overrides: list[str]) -> str:
    """The ``hydra.run.dir`` these overrides give, resolved now (its ``${now:...}`` included)."""
    from hydra import compose, initialize_config_dir

    from rlnas.config import search_dirs

    dirs = search_dirs(overrides)
    plain = [a for a in overrides if not a.startswith("-") and not any(a == str(d) for d in dirs)]
    if dirs:
        plain.append("hydra.searchpath=[" + ",".join(f"file://{d}" for d in dirs) + "]")
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=plain, return_hydra_config=True)
    return str(OmegaConf.select(cfg, "hydra.run.dir"))


def join_ranks(argv: list[str]) -> list[str]:
    """Under ``torchrun``: joins the process group and gives every rank rank 0's run dir.

    The other ranks write nothing: no ``.hydra/`` files, no log (rank 0 logs).
    """
    global COMM
    if any(a in ("-m", "--multirun") for a in argv):
        raise ValueError(
            "torchrun starts one search; sweep with -m without torchrun "
            "(a launcher such as submitit can start each job with several processes)"
        )
    given = dict(a.lstrip("+").partition("=")[::2] for a in argv if "=" in a)
    settings = DistributedSettings(
        backend=given.get("distributed.backend", "auto"),
        timeout_s=float(given.get("distributed.timeout_s", 600)),
    )
    COMM = init_from_env(settings, given.get("device", "auto"))
    if "hydra.run.dir" not in given:
        run_dir = COMM.broadcast_object(planned_run_dir(argv) if COMM.is_main else None)
        argv = quote_paths([*argv, f"hydra.run.dir={run_dir}"])
    if not COMM.is_main:
        argv = [*argv, "hydra.output_subdir=null", "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]
    return argv


def check_resume_dir(argv: list[str]) -> None:
    """Refuses ``resume=A hydra.run.dir=B``: a resumed run writes into its own dir, and only there.

    Raises:
        ValueError: Naming both directories.
    """
    given = {}
    for arg in argv:
        key, sep, value = arg.lstrip("+").partition("=")
        if sep and key in ("resume", "hydra.run.dir"):
            given[key] = _unquote(value)
    if "resume" in given and "hydra.run.dir" in given:
        resume, run_dir = (Path(given[k]).expanduser().resolve() for k in ("resume", "hydra.run.dir"))
        if resume != run_dir:
            raise ValueError(
                f"resume={given['resume']} continues in its own directory; drop hydra.run.dir={given['hydra.run.dir']} "
                "(a resumed run's files and log stay together)"
            )


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
    for folder in (root, hydra_dir):
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir()):
            if entry.is_symlink():
                raise ValueError(
                    f"{entry} is a symlink (to {os.readlink(entry)}); a run dir holds only the files a run writes, "
                    "so it is not used (remove the link or choose another hydra.run.dir)"
                )


def main() -> None:
    """Console entry point."""
    if any(a in ("-h", "--help") for a in sys.argv[1:]):
        from rlnas.config import help_text, search_dirs

        with one_line_errors("rlnas"):
            print(help_text(extra=search_dirs(sys.argv[1:])))
        return
    sys.argv = [sys.argv[0], *quote_paths(with_default_task(sys.argv[1:]))]
    try:
        with one_line_errors("rlnas", also=(DistributedError,)):
            check_overrides(sys.argv[1:])
            if launched():
                sys.argv = [sys.argv[0], *join_ranks(sys.argv[1:])]
            # An explicit run dir is locked before Hydra writes its own files (.hydra/, the log) into it.
            if not any(a in ("-m", "--multirun") for a in sys.argv[1:]) and COMM.is_main:
                check_resume_dir(sys.argv[1:])
                for arg in sys.argv[1:]:
                    key, sep, value = arg.lstrip("+").partition("=")
                    value = _unquote(value)
                    if key == "hydra.run.dir" and sep and not value.strip():
                        raise ValueError("hydra.run.dir is empty; name a directory for the run's files")
                    if (
                        sep
                        and value
                        and (key == "hydra.run.dir" or (key == "resume" and Path(value).expanduser().is_dir()))
                    ):
                        refuse_planted_links(value)
                        lock_run_dir(value)
        run()
    finally:
        shutdown()


if __name__ == "__main__":
    main()
