"""Command line: ``python -m rlnas [+task=NAME] [controller=NAME] [key=value ...]``.

A bare ``python -m rlnas`` runs the classification task: when no ``task``
override is given, ``+task=classification`` is added (``task`` cannot sit in the
defaults list, or ``+task=detection`` would clash with it). Configuration and
data errors print one line and exit with code 2; ``HYDRA_FULL_ERROR=1`` shows
the whole traceback instead.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from rlnas.cli import (  # noqa: F401 - re-exported: the command line's helpers, as tests and tools name them
    CONFIG_GROUPS,
    DEFAULT_TASK,
    PATH_KEYS,
    check_resume_dir,
    claim_new_run_dir,
    launch_relative_paths,
    planned_run_dir,
    quote_paths,
    refuse_earlier_run,
    refuse_planted_links,
    resume_error,
    resumed_config,
    unquote_path,
    with_default_task,
)
from rlnas.config import CONF_DIR, check_overrides, check_unread_overrides, validate_config
from rlnas.sweep.jobs import lock_run_dir, parallel_jobs, threads_per_job, write_status
from rlnas.utils.distributed import Comm, DistributedError, DistributedSettings, init_from_env, launched, shutdown
from rlnas.utils.errors import (
    USER_ERRORS,
    JobFailed,
    environment_error,
    flag_error,
    one_line_errors,
    tolerant_stdout,
    user_error_message,
)
from rlnas.utils.rundir import explicit_run_dir, flags_first, hydra_overrides, refuse_earlier_sweep, say_repeated_keys
from rlnas.utils.sweeps import sweep_size

log = logging.getLogger("rlnas")
#: This process's place among the ranks of a ``torchrun`` launch (one process: rank 0 of 1).
COMM = Comm()
#: Hydra's launcher that runs a sweep's jobs one after another in this process.
BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
#: The sweep jobs of this process that failed, each as "#NUM OVERRIDES: error".
FAILED_JOBS: list[str] = []


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def run(cfg: DictConfig) -> float:  # noqa: C901 - see the docstring
    """Runs one search; returns the best architecture's reward (for Hydra sweepers).

    Above the complexity limit on purpose: it is the one place that maps each
    way a run can end (finished, interrupted, numeric fault, user error, in a
    sweep or not, on which rank) to its exit code and run status, and reads
    best top to bottom.
    """
    from rlnas.search.budget import build_budget_search
    from rlnas.search.builder import build_search, taken_files
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
    written: list[str] = []  # the states status.json was given, in order

    def status(state: str, **fields: object) -> None:
        if owns_dir and comm.is_main:
            try:
                write_status(run_dir, state, started, **fields)
                written.append(state)
            except OSError as err:  # the disk that failed the run may fail this too: say so, don't mask the error
                print(f"rlnas: status.json not updated to {state!r} ({err.strerror or err})", file=sys.stderr)

    def stopped_by_the_launcher() -> None:
        if written[-1:] == ["running"]:  # a run that ended on its own keeps its final state
            status("interrupted", error="torchrun stopped this process (another process of the run ended)")

    global _RECORD_LAUNCHER_STOP
    _RECORD_LAUNCHER_STOP = stopped_by_the_launcher

    try:
        with one_line_errors(prog, also=(NumericFaultError, DistributedError), exit_on_error=not in_sweep):
            try:
                if hydra_cfg.job.chdir:
                    launch_relative_paths(cfg, PATH_KEYS)
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
                if comm.active and cfg.get("trials") is not None:
                    raise ValueError("+trials runs spread trials over Ray's workers; start them without torchrun")
                validate_config(cfg)
                if not resume:
                    check_unread_overrides(cfg, list(hydra_cfg.overrides.task), torchrun=launched())
                # A refused resume of a finished run, or a start into another run's dir, leaves its status alone.
                owns_dir = (bool(resume) and not (Path(run_dir) / "best_arch.json").exists()) or not taken_files(
                    Path(run_dir)
                )
                jobs = parallel_jobs()
                if jobs > 1 and cfg.get("threads") is None:
                    # Parallel jobs on one machine share its cores instead of each taking all of them.
                    cfg.threads = threads_per_job(jobs)
                    log.info("%d parallel jobs: %d torch threads each", jobs, cfg.threads)
                if cfg.get("benchmark") is not None:
                    status("running")
                    bench = build_budget_search(cfg, run_dir)
                    outcome = bench.run()
                elif cfg.get("trials") is not None:
                    from rlnas.trials.planner import status_counts
                    from rlnas.trials.run import run_trials

                    status("running")
                    # Up to "completed": a stop while Ray starts or the outputs are written is a clean stop too.
                    with stops_the_trial_search(run_dir):
                        trials = run_trials(cfg, run_dir, resume=bool(resume))
                        status("completed", best_reward=trials.best.reward, trials=status_counts(trials.outcomes))
                else:
                    # The handlers first: a stop signalled once status.json says "running" is a clean stop.
                    with stops_before_the_first_epoch(run_dir, bool(resume)):
                        status("running")
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
    except JobFailed as failed:
        if hydra_cfg.launcher.get("_target_") != BASIC_LAUNCHER:
            raise  # jobs in other processes: Hydra names the first failure at the sweep's end
        # In this process: the sweep's end names every failed job in one line (main), instead of Hydra's
        # "Error executing job with overrides" about the first and its advice to set HYDRA_FULL_ERROR.
        FAILED_JOBS.append(f"#{hydra_cfg.job.num} {' '.join(hydra_cfg.overrides.task)}: {failed}")
        return float("nan")
    if not comm.is_main:  # rank 0 reports
        return float("nan") if cfg.get("benchmark") is not None else result.best.reward
    if cfg.get("trials") is not None:
        return trials_report(cfg, trials, run_dir)
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
        say_ground_truth(cfg, search.uniform, best.arch, run_dir)
    return best.reward


def trials_report(cfg: DictConfig, trials: Any, run_dir: str) -> float:
    """The last lines of a trial search: its pick, the trials' tally and, when asked for, the ground truth."""
    from rlnas.controllers.base import RandomController
    from rlnas.trials.planner import status_counts

    best, outcomes = trials.best, trials.outcomes
    counts = status_counts(outcomes)
    metrics = ", ".join(f"val_{k}={v:.4f}" for k, v in best.metrics.items())
    print(
        f"best: {trials.space.describe(best.arch)} | {metrics} | trial {best.index} of {len(outcomes)} "
        f"({counts['completed']} trained fully, {counts['stopped']} stopped early, {counts['failed']} failed) "
        f"in {trials.seconds:.0f} s | run dir: {run_dir}"
    )
    truth = cfg.get("ground_truth")
    if truth is not None and int(truth.random) > 0:
        # Random search in a joint space draws training settings too: so do its draws here.
        uniform = RandomController(trials.space, seed=int(cfg.seed) + 1)
        say_ground_truth(cfg, uniform, best.arch, run_dir, trials.space)
    return best.reward


def say_ground_truth(cfg: DictConfig, uniform: Any, arch: Any, run_dir: str, space: Any = None) -> None:
    """Prints :func:`ground_truth_line`; an error there (a standalone training that diverges, data it cannot
    use) is one line too, after a complete search: exit code 1, or in a sweep, the next job."""
    try:
        print(ground_truth_line(cfg, uniform, arch, run_dir, space))
    except (FloatingPointError, *USER_ERRORS, OSError) as err:
        message = user_error_message(err) or f"{type(err).__name__}: {err}".splitlines()[0]
        found = Path(run_dir) / "best_arch.json"
        print(
            f"rlnas: error: in the ground-truth comparison: {message}; the search is complete ({found}), its "
            "comparison with random architectures is left out",
            file=sys.stderr,
        )
        if HydraConfig.get().mode != RunMode.MULTIRUN:
            sys.exit(1)


def ground_truth_line(cfg: DictConfig, uniform: Any, arch: Any, run_dir: str, space: Any = None) -> str:
    """Trains the pick and ``ground_truth.random`` draws of ``uniform`` standalone; the line that compares them.

    Written to ``ground_truth.json`` in the run dir too. With a joint space
    (:class:`~rlnas.spaces.training.TrainingSpace`) ``arch`` and the draws carry
    training decisions, and each is trained with its own settings.
    """
    from rlnas.evaluators.standalone import compare_with_random
    from rlnas.spaces.training import TrainingSpace
    from rlnas.utils import write_json_atomic
    from rlnas.utils.timing import elapsed_and_eta

    truth = cfg.ground_truth
    randoms = uniform.propose(int(truth.random))
    settings = None
    if isinstance(space, TrainingSpace):
        pairs = [space.split(a) for a in [arch, *randoms]]
        arch, randoms, settings = pairs[0][0], [a for a, _ in pairs[1:]], [extra for _, extra in pairs]
    log.info(
        "ground truth: training the found architecture (%d seed(s)) and %d random ones standalone, %d epochs each",
        int(truth.seeds),
        len(randoms),
        int(truth.epochs),
    )
    started = time.perf_counter()

    def trained(done: int, total: int) -> None:  # a line per training: minutes of work where stderr is a log
        elapsed, eta = elapsed_and_eta(started, done, total - done)
        log.info("ground truth: %d/%d trainings done, %s elapsed, ETA %s", done, total, elapsed, eta)

    with stops_the_comparison(run_dir):
        result = compare_with_random(
            cfg,
            arch,
            randoms,
            int(truth.seeds),
            int(truth.epochs),
            str(cfg.device),
            settings=settings,
            on_trained=trained,
        )
    write_json_atomic(Path(run_dir) / "ground_truth.json", result)
    pick, metric = result["pick"], result["metric"]
    drawn = "random architectures" if settings is None else "random candidates (architecture and training settings)"
    found = f"{pick['mean']:.4f}" + (f" ± {pick['std']:.4f}" if len(pick["values"]) > 1 else "")
    return (
        f"ground truth (standalone, {result['epochs']} epochs, test split the search never saw): found "
        f"{metric} {found} vs {len(randoms)} {drawn} {result['random_mean']:.4f} "
        f"(best of them {result['random_best']:.4f})"
    )


@contextmanager
def _handling_stops(stop: Any) -> Iterator[None]:
    """``stop`` handles SIGINT and SIGTERM inside the block; the handlers from before come back after it."""
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, stop)
        except ValueError:  # not the main thread (a sweep job): no handlers
            pass
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _interrupt(signum: int, frame: object) -> None:
    """A stop handler: SIGTERM too ends the block as Ctrl-C does."""
    raise KeyboardInterrupt


@contextmanager
def stops_the_comparison(run_dir: str) -> Iterator[None]:
    """SIGINT/SIGTERM during the ground-truth trainings end the run in one line, exit code 130.

    The search is complete by then (``best_arch.json`` and its outputs are
    written, ``status.json`` says completed); only the comparison is left out,
    and ``tools/compare_controllers.py`` or a retrain measures the pick later.
    """

    try:
        with _handling_stops(_interrupt):
            yield
    except KeyboardInterrupt:
        found = Path(run_dir) / "best_arch.json"
        print(
            f"rlnas: stopped during the ground-truth comparison; the search is complete ({found}), its comparison "
            "with random architectures is left out (ground_truth.random=0 skips it)",
            file=sys.stderr,
        )
        sys.exit(130)


@contextmanager
def stops_the_trial_search(run_dir: str) -> Iterator[None]:
    """SIGINT/SIGTERM outside Tune's experiment (Ray starting or stopping, the outputs) stop the run in one line.

    Inside the experiment Tune ends the trials in flight itself
    (:func:`rlnas.trials.run.sigterm_as_sigint`); finished trials are on disk
    either way, and a resume writes whatever outputs were cut short.
    """
    from rlnas.search.checkpoint import SearchInterrupted

    try:
        with _handling_stops(_interrupt):
            yield
    except KeyboardInterrupt:
        if (Path(run_dir) / "config.yaml").is_file():
            raise SearchInterrupted(0, Path(run_dir), "stopped; finished trials are kept; {hint}") from None
        raise SearchInterrupted(0, Path(run_dir), "stopped before the first trial; start the run again") from None


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

    try:
        with _handling_stops(stop):
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


#: Overrides a resumed run accepts even when they differ from its config.
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
        argv = quote_paths([*argv, f"hydra.run.dir={run_dir}"], PATH_KEYS)
    if not COMM.is_main:
        argv = [*argv, "hydra.output_subdir=null", "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]
    return argv


#: Records a stop by torchrun in the run's status.json (set by :func:`run` once it knows its run dir).
_RECORD_LAUNCHER_STOP: Callable[[], None] | None = None


def _stopped_by_the_launcher(signum: int, frame: Any) -> None:
    """SIGTERM outside the search's own handlers under torchrun: the launcher ends the run's other processes.

    When one rank dies, ``torchrun`` sends SIGTERM to the others at once; a rank that was itself
    leaving with its error (the lost peer) could be killed before saying so, with no line at all,
    and before its status.json left "running".
    """
    print("rlnas: interrupted: torchrun stopped this process (another process of the run ended)", file=sys.stderr)
    if _RECORD_LAUNCHER_STOP is not None:
        try:
            _RECORD_LAUNCHER_STOP()
        except Exception:  # noqa: BLE001 - the exit below matters more than the record
            pass
    raise SystemExit(130)


def main() -> None:
    """Console entry point."""
    tolerant_stdout()
    if any(a in ("-h", "--help") for a in sys.argv[1:]):
        from rlnas.config import help_text, search_dirs

        with one_line_errors("rlnas"):
            print(help_text(extra=search_dirs(sys.argv[1:])))
        return
    # resume=null is the default (no resume), not a run dir named null.
    sys.argv = [a for a in sys.argv if a.lstrip("+") != "resume=null"]
    instead = "; add your configs with --config-dir DIR instead (they join conf/: DIR/task/mine.yaml is +task=mine)"
    message = flag_error(sys.argv[1:], instead=instead) or environment_error() or resume_error(sys.argv[1:])
    if message is not None:
        print(f"rlnas: error: {message}", file=sys.stderr)
        sys.exit(2)
    sys.argv = [sys.argv[0], *quote_paths(with_default_task(flags_first(sys.argv[1:])), PATH_KEYS)]
    if launched():
        signal.signal(signal.SIGTERM, _stopped_by_the_launcher)
    try:
        with one_line_errors("rlnas", also=(DistributedError,)):
            check_overrides(sys.argv[1:])
            say_repeated_keys("rlnas", sys.argv[1:], say=COMM.is_main)  # seed=1 ... seed=2 ran seed 2 unsaid
            if launched():
                sys.argv = [sys.argv[0], *join_ranks(sys.argv[1:])]
            if any(a in ("-m", "--multirun") for a in sys.argv[1:]) and COMM.is_main:
                say_sweep_start(sys.argv[1:])
                given_sweep_dir = explicit_run_dir(sys.argv[1:], "hydra.sweep.dir")
                refuse_earlier_sweep(given_sweep_dir or "")
                if given_sweep_dir is None:
                    # As for a single run: a sweep started in the same second gets its own folder.
                    claimed = claim_new_run_dir(sys.argv[1:], "sweep")
                    if claimed is not None:
                        sys.argv = [*sys.argv, *quote_paths([f"hydra.sweep.dir={claimed}"], PATH_KEYS)]
            # An explicit run dir is locked before Hydra writes its own files (.hydra/, the log) into it.
            if not any(a in ("-m", "--multirun") for a in sys.argv[1:]) and COMM.is_main:
                check_resume_dir(sys.argv[1:])
                flags = [
                    a for a in sys.argv[1:] if a.startswith("-") and a.split("=", 1)[0] not in ("--config-dir", "-cd")
                ]
                if not launched() and not flags and explicit_run_dir(sys.argv[1:]) is None:
                    # Time-stamped default: claimed here, so a start in the same second gets its own dir.
                    claimed = claim_new_run_dir(sys.argv[1:])
                    if claimed is not None:
                        sys.argv = [*sys.argv, *quote_paths([f"hydra.run.dir={claimed}"], PATH_KEYS)]
                resuming = any(a.lstrip("+").startswith("resume=") and a.partition("=")[2] for a in sys.argv[1:])
                for arg in sys.argv[1:]:
                    key, sep, value = arg.lstrip("+").partition("=")
                    value = unquote_path(value)
                    if key == "hydra.run.dir" and sep and not value.strip():
                        raise ValueError("hydra.run.dir is empty; name a directory for the run's files")
                    if (
                        sep
                        and value
                        and (key == "hydra.run.dir" or (key == "resume" and Path(value).expanduser().is_dir()))
                    ):
                        refuse_planted_links(value)
                        if key == "hydra.run.dir" and not resuming:
                            refuse_earlier_run(value)
                        lock_run_dir(value)
        run()
        shutdown(wait_for_others=True)
        report_failed_jobs()
    finally:
        shutdown()


#: Jobs of a sweep from which its start is announced: Hydra's sweeper composes every job's config
#: before the first one starts (about 0.1 s each on a CPU; 100,000 jobs were hours of silence).
SAY_SWEEP_JOBS = 200


def say_sweep_start(argv: list[str]) -> None:
    """Says, for a large sweep launched in one batch, why its first job waits and how to start it sooner."""
    overrides = hydra_overrides(argv)
    if any(o.lstrip("+").startswith("hydra.sweeper.max_batch_size=") for o in overrides):
        return
    jobs = sweep_size(overrides)
    if jobs is not None and jobs >= SAY_SWEEP_JOBS:
        print(
            f"rlnas: a sweep of {jobs:,} jobs: Hydra composes each job's config before the first starts "
            "(about 0.1 s each); hydra.sweeper.max_batch_size=N launches them N at a time instead",
            file=sys.stderr,
        )


def report_failed_jobs() -> None:
    """Ends a sweep whose jobs ran in this process with one line naming each failed job, exit code 1."""
    if FAILED_JOBS:
        listed = "; ".join(FAILED_JOBS)
        print(f"rlnas: {len(FAILED_JOBS)} sweep job(s) failed, the others finished: {listed}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
