"""The trial search's driver: controller, Ray Tune, outputs and resume.

``python -m rlnas +task=mnist1d +trials=default`` trains each candidate the
controller proposes from scratch (the retrain recipe, ``trials.epochs``
epochs at most), scores it on the validation split and hands the reward back.
Ray Tune runs the trials, ``trials.concurrent`` at once on this machine or on
a cluster (``trials.address``), and stops the unpromising ones early
(ASHA). The controller learns from the reward each trial reached at the
fidelity it reached: a trial stopped after 5 of 20 epochs reports its
5-epoch validation score, which is lower than a finished trial's would be, so
the controller learns that it was not among the best, which is what the
scheduler decided too.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rlnas.evaluators.standalone import standalone_recipe
from rlnas.search.builder import (
    build_controller,
    build_reward,
    build_space_and_task,
    claim_run_dir,
    warn_random_start,
)
from rlnas.search.checkpoint import SearchInterrupted, check_config_unchanged, config_fingerprint
from rlnas.tasks.training import Recipe, check_recipe_numbers, with_settings
from rlnas.trials.outputs import TrialOutputs
from rlnas.trials.planner import Outcome, TrialPlanner
from rlnas.trials.records import LOG_FILE, STATE_FILE, TrialLog, load_state, save_state
from rlnas.trials.settings import TASK_HPARAMS, TrialSettings, trial_settings
from rlnas.trials.trainable import train_trial, trial_space
from rlnas.utils import atomic_file, data_seed, seed_everything

log = logging.getLogger("rlnas")

#: How to get Ray when it is missing.
INSTALL_HINT = "the trial search runs on Ray Tune, which is not installed: pip install 'rlnas[ray]' (make install does)"


@dataclass
class TrialResult:
    """The outcome of a trial search: the pick, every trial, and the wall time of this start."""

    best: Outcome
    outcomes: list[Outcome]
    seconds: float
    space: Any


def _require_ray() -> Any:
    try:
        import ray
        from ray import tune  # noqa: F401 - Tune is the part needed (the extra installs it)
    except ImportError:
        raise ValueError(INSTALL_HINT) from None
    return ray


def run_trials(cfg: DictConfig, run_dir: str | Path, resume: bool = False, progress: bool | None = None) -> TrialResult:
    """Runs (or, with ``resume``, continues) the trial search of ``cfg`` in ``run_dir``.

    Raises:
        ValueError: On a setting the trial search cannot honour (one line naming it).
        SearchInterrupted: When the search stopped before its budget was spent (resume it).
    """
    started = time.perf_counter()
    run_dir = Path(run_dir).resolve()
    settings = trial_settings(cfg)
    ray = _require_ray()
    claim_run_dir(run_dir, resume)
    seed = int(cfg.seed)
    seed_everything(seed)
    space = trial_space(cfg)
    task, recipe = check_training_settings(cfg, settings)
    reward, mask_infeasible = build_reward(cfg.reward, task.reward_metric, task.metric_max)
    if mask_infeasible:
        raise ValueError("reward.mask_infeasible=true needs a supernet's cost table; a trial search scores limits")
    # The costs every trial reports: costs.track and every cost the reward has a target for.
    targets = [name for name, limit in dict(getattr(reward, "targets", {})).items() if limit is not None]
    tracked = (cfg.get("costs") or {}).get("track")  # [] tracks nothing beyond the reward's targets
    track = list(dict.fromkeys([*(["params", "size_mb"] if tracked is None else tracked), *targets]))
    controller = build_controller(cfg.controller, space, seed)
    warn_random_start(cfg.controller, settings.budget, f"trials.budget={settings.budget}")
    if controller.differentiable:
        name = getattr(controller, "mode", None) or type(controller).__name__
        raise ValueError(f"controller={name} learns through a supernet; a trial search has none")
    data = task.load_data(seed=data_seed(cfg))
    log.info("data: %d train / %d val / %d test samples", len(data.train), len(data.val), len(data.test))

    trial_log = TrialLog(run_dir / LOG_FILE)
    fingerprint = config_fingerprint(cfg)
    planner = TrialPlanner(
        controller,
        settings.budget,
        settings.batch,
        settings.failed_reward,
        on_observe=lambda observed: save_state(run_dir / STATE_FILE, controller.state_dict(), observed, fingerprint),
    )
    if resume:
        outcomes = trial_log.read(space, settings.epochs)
        if (run_dir / STATE_FILE).exists():
            state = load_state(run_dir / STATE_FILE)
            check_config_unchanged(state, cfg, run_dir / "config.yaml")
            controller.load_state_dict(state["controller"])
            observed = state["observed"]
        else:
            observed = []
        planner.restore(outcomes, observed)
        log.info("resuming %s: %d trials finished, %d to go", run_dir, len(outcomes), settings.budget - len(outcomes))
    else:
        with atomic_file(run_dir / "config.yaml") as f:
            f.write(OmegaConf.to_yaml(cfg))
    outputs = TrialOutputs(run_dir, space, task.reward_metric, cfg, progress, total=settings.budget)
    outputs.restore(list(planner.done.values()))  # the log's order: the order they finished

    def on_outcome(outcome: Outcome) -> None:
        trial_log.append(outcome)  # on disk before the controller learns from it
        outputs.add(outcome)
        if outcome.status == "failed":
            log.warning("trial %d failed: %s", outcome.index, outcome.error)

    remaining = settings.budget - planner.started
    try:
        if remaining > 0 and not planner.exhausted:
            with _ray_session(ray, settings):
                _fit(ray, cfg, settings, planner, on_outcome, data, recipe, track, run_dir, seed)
    except KeyboardInterrupt:  # before Tune took over the signal (it ends its experiment itself)
        pass
    planner.finish()
    outputs.close_progress()
    done = sorted(planner.done.values(), key=lambda o: o.index)
    if len(done) < settings.budget and not planner.stalled:  # stopped with trials left, or still running
        raise SearchInterrupted(
            len(done),
            run_dir,
            f"stopped after {len(done)} of {settings.budget} trials (finished ones are kept in {LOG_FILE}); {{hint}}",
        )
    best = pick(done)
    outputs.finish(best, done, controller, time.perf_counter() - started, planner)
    return TrialResult(best, done, time.perf_counter() - started, space)


def check_training_settings(cfg: DictConfig, settings: TrialSettings | None = None) -> tuple[Any, Recipe]:
    """The task and the trials' recipe, each ``trials.train`` and ``trials.hparams`` value checked first.

    Loads no data and starts no Ray: tools that start trial searches call it before their first one.

    Raises:
        ValueError: Naming the ``trials.*`` key that cannot be used.
    """
    settings = settings or trial_settings(cfg)
    # A space the task cannot train failed every trial, one Ray start later, as a weight-sharing search refuses it.
    task = build_space_and_task(cfg)[1]
    unsupported = sorted((set(settings.hparams or {}) & set(TASK_HPARAMS)) - set(vars(task)))
    if unsupported:
        raise ValueError(f"trials.hparams.{unsupported[0]}: the {task.name} task has no such setting")
    return task, _recipe(cfg, settings, task)


def _recipe(cfg: DictConfig, settings: TrialSettings, task: Any) -> Recipe:
    """The trials' recipe (``conf/retrain.yaml``'s ``train:``, ``trials.train`` over it), each
    ``trials.hparams`` value checked against it and ``task`` before any trial starts.

    Raises:
        ValueError: Naming the ``trials.train`` or ``trials.hparams`` key that cannot be used.
    """
    check_recipe_numbers(dict(settings.train or {}), "trials.train")
    try:
        recipe = standalone_recipe(cfg, settings.epochs)
    except (ValueError, TypeError) as err:
        raise ValueError(f"trials.train: {err}") from None
    for name, values in dict(settings.hparams or {}).items():
        for value in values if isinstance(values, (list, tuple)) else [values]:
            try:
                with_settings(recipe, task, {name: value})
            except (ValueError, TypeError) as err:
                raise ValueError(f"trials.hparams.{name}: {value!r} cannot be used ({err})") from None
    return recipe


def pick(outcomes: list[Outcome]) -> Outcome:
    """The best reward among trials that trained every epoch (else among any that did not fail).

    Raises:
        ValueError: When every trial failed, with the first one's error line (a reward or space of the
            user's own that no trial can get past; their tracebacks stay in Ray's ``error.txt``).
    """
    full = [o for o in outcomes if o.status == "completed"]
    usable = full or [o for o in outcomes if o.status != "failed"]
    if not usable:
        first = min(outcomes, key=lambda o: o.index).error if outcomes else ""
        raise ValueError(
            f"all {len(outcomes)} trials failed ({first[:200] or 'no error recorded'}); "
            "see trials.csv and the tracebacks under ray/"
        )
    return max(usable, key=lambda o: (o.reward, -o.index))


def cluster_address(settings: TrialSettings) -> tuple[str | None, str]:
    """The Ray cluster to join, and the setting that names it: ``trials.address``, else Ray's own ``RAY_ADDRESS``.

    ``(None, ...)``: no cluster; a local Ray is started with this machine's cores.
    """
    if settings.address:
        return settings.address, "trials.address"
    return os.environ.get("RAY_ADDRESS") or None, "RAY_ADDRESS"


def _check_reachable(address: str | None, key: str = "trials.address", timeout_s: float = 10.0) -> None:
    """Refuses a ``host:port`` cluster address nobody answers at (Ray itself retries for minutes).

    Raises:
        ValueError: Naming ``key`` (``trials.address`` or ``RAY_ADDRESS``).
    """
    if not address or address == "auto":
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{key}={address!r} must be auto, HOST:PORT or ray://HOST:PORT")
    import socket

    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise ValueError(
            f"{key}={address}: no Ray cluster answers there ({err.strerror or err}); start one with "
            f"`ray start --head` on that machine, or unset {key} for a local Ray"
        ) from None


@contextmanager
def sigterm_as_sigint() -> Iterator[None]:
    """SIGTERM stops the trials as Ctrl-C does: Tune ends its experiment, finished trials stay kept; after
    the trials, Ctrl-C and SIGTERM are back to what they were.

    Without it Ray's own handler ends the driver at once, leaving ``status.json``
    "running" and no line saying how to resume. Only the main thread can set
    handlers (a sweep's job threads keep the process's).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def forward(signum: int, frame: Any) -> None:
        handler = signal.getsignal(signal.SIGINT)  # Tune's while it runs: it stops the experiment
        if callable(handler):
            handler(signal.SIGINT, frame)
        else:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, forward)
    previous_int = signal.getsignal(signal.SIGINT)
    try:
        yield
    finally:
        # None: a handler set outside Python (Ray's); the default is restored, and Ray is shut down next.
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
        # Tune leaves its own Ctrl-C handler behind, which would swallow a Ctrl-C after the trials (during
        # the ground-truth trainings, say): the one from before is put back.
        signal.signal(signal.SIGINT, previous_int if previous_int is not None else signal.default_int_handler)


@contextmanager
def _stderr_kept_on_failure(active: bool) -> Iterator[None]:
    """Holds back what is written to the process's stderr (file descriptor 2) during the block; it is
    written out when the block succeeds and dropped when it raises.

    Ray's C++ client retries a cluster address that answers but is no Ray (a dashboard port, a proxy) for
    about 20 s with one warning line a second ("Failed to get cluster ID from GCS server") before its
    error; the one-line error that follows names the address. Only for joining a cluster: a local start
    spawns Ray's own processes, which would inherit the held descriptor.
    """
    if not active:
        yield
        return
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:  # on an error, what was held is dropped with the file
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        held.seek(0)
        text = held.read()
    if text:
        os.write(2, text)


@contextmanager
def _ray_session(ray: Any, settings: TrialSettings) -> Iterator[None]:
    """Ray for the block: the one that runs, or a local one (or ``trials.address``'s) started and shut down here.

    ``ray.init`` installs its own SIGTERM handler, which exits without a word
    and stays after ``ray.shutdown``; the driver's own comes back with the
    shutdown, so a SIGTERM while the outputs are written still ends the run
    as a stop (status "interrupted", the resume line).
    """
    # Ray's plain progress lines, which honour verbose=0 (its newer console output prints a box regardless).
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # A local search sends nothing anywhere: Ray reports usage statistics unless told not to (set it to 1 to allow).
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        yield
        return
    address, key = cluster_address(settings)
    _check_reachable(address, key)
    if address is None:
        # A new local cluster starts with token authentication, Ray's default, and Ray says so in a WARNING on
        # every start (a newcomer's first `make run` printed it); the setting is Ray's and stays as it is.
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    main = threading.current_thread() is threading.main_thread()
    own = signal.getsignal(signal.SIGTERM) if main else None
    if address is not None:  # Ray may take 20 s to give up on an address that answers but is no Ray
        log.info("joining the Ray cluster at %s (%s)", address, key)
    try:
        with _stderr_kept_on_failure(address is not None):
            ray.init(
                address=address,
                num_cpus=None if address else os.cpu_count(),
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = f"{key}={address}" if address else "a local Ray"
        raise ValueError(f"{where} could not be started or reached: {str(err).splitlines()[0]}") from None
    try:
        yield
    finally:
        if main:
            signal.signal(signal.SIGTERM, own if own is not None else signal.SIG_DFL)
        ray.shutdown()


def _trial_name(trial: Any) -> str:
    """``trial_7``: the trial's index in the run (Ray's default names carry the whole architecture)."""
    return f"trial_{trial.config['index']}"


def _fit(
    ray: Any,
    cfg: DictConfig,
    settings: TrialSettings,
    planner: TrialPlanner,
    on_outcome: Any,
    data: Any,
    recipe: Any,
    track: list[str],
    run_dir: Path,
    seed: int,
) -> None:
    """One Ray Tune experiment over the trials still to run, on a Ray that runs."""
    import torch
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from rlnas.trials.ray_searcher import ControllerSearcher, FailureReader

    gpus = settings.gpus_per_trial
    if gpus is None:
        gpus = 1.0 if torch.cuda.is_available() else 0.0
    resources = ray.cluster_resources()
    cpus = float(resources.get("CPU", os.cpu_count() or 1))
    where = "cluster" if cluster_address(settings)[0] else "machine"
    for key, want, have in (
        ("cpus_per_trial", settings.cpus_per_trial, cpus),
        ("gpus_per_trial", gpus, float(resources.get("GPU", 0))),
    ):
        if want > have:  # Ray would hold every trial pending, forever
            raise ValueError(f"trials.{key}={want:g} but the {where} has {have:g}; no trial could ever start")
    concurrent = settings.concurrent or max(1, int(cpus // settings.cpus_per_trial))
    setup = {
        "key": f"{run_dir}:{time.time()}",
        "config": OmegaConf.to_container(cfg, resolve=True),
        "data": data,
        "recipe": dataclasses.asdict(recipe),
        "seed": seed,
        "threads": settings.cpus_per_trial,
        "gpus": gpus,
        "track": track,
    }
    scheduler = (
        ASHAScheduler(
            time_attr="training_iteration",
            max_t=settings.epochs,
            grace_period=settings.grace_period,
            reduction_factor=settings.reduction_factor,
        )
        if settings.scheduler == "asha"
        else FIFOScheduler()
    )
    searcher = ControllerSearcher(planner, settings.epochs, on_outcome)
    trainable = tune.with_resources(
        tune.with_parameters(train_trial, setup=setup), {"cpu": settings.cpus_per_trial, "gpu": gpus}
    )
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            metric="reward",
            mode="max",
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=settings.budget - planner.started,
            max_concurrent_trials=concurrent,
            reuse_actors=True,
            trial_name_creator=_trial_name,
            trial_dirname_creator=_trial_name,
        ),
        run_config=tune.RunConfig(
            storage_path=str(run_dir / "ray"),
            name=f"trials-{planner.started}",
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
            callbacks=[FailureReader(searcher)],
        ),
    )
    log.info(
        "%d trials to run, %d at a time (%g CPU, %g GPU each), %s",
        settings.budget - planner.started,
        concurrent,
        settings.cpus_per_trial,
        gpus,
        f"ASHA from epoch {settings.grace_period} of {settings.epochs}"
        if settings.scheduler == "asha"
        else f"{settings.epochs} epochs each",
    )
    # A failed trial is one line of this run's log (its traceback stays in its error.txt), not Ray's traceback.
    tune_log = logging.getLogger("ray.tune")
    level = tune_log.level
    tune_log.setLevel(logging.CRITICAL)
    try:
        with sigterm_as_sigint():
            tuner.fit()
        searcher.settle_failures()
    finally:
        tune_log.setLevel(level)
