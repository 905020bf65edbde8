"""Builds a :class:`~rlnas.search.loop.Search` from a Hydra config."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from rlnas.controllers.base import CONTROLLER_FILE, Controller
from rlnas.controllers.rank_zero import RankZeroController
from rlnas.costs import COST_NAMES, CostModel, LatencyTable
from rlnas.data.base import warn_batch_beyond_split
from rlnas.evaluators.proxies import check_proxy
from rlnas.evaluators.supernet import SuperNetEvaluator, calibration_inputs
from rlnas.rewards.base import Reward
from rlnas.rewards.constraints import FeasibilityMask
from rlnas.search.callbacks import HistoryWriter, OutputWriter, ProgressBar, TensorBoardLogger
from rlnas.search.checkpoint import (
    CHECKPOINT,
    STATUS_FILE,
    Checkpointer,
    check_config_unchanged,
    config_fingerprint,
    load_checkpoint,
    restore_search,
)
from rlnas.search.hparams import compared_hparams, flat_hparams
from rlnas.search.loop import Callback, Search, SearchSettings
from rlnas.search.selection import SelectionSettings
from rlnas.spaces.base import SearchSpace
from rlnas.supernet import build_child, build_supernet
from rlnas.tasks.base import Network, Task
from rlnas.utils import (
    atomic_file,
    conf_dir,
    data_seed,
    parse_json,
    resolve_device,
    section_values,
    seed_everything,
    set_threads,
)
from rlnas.utils.distributed import Comm, DistributedSettings, synchronise_batchnorm
from rlnas.utils.rundir import continue_hint
from rlnas.utils.trust import checked_instantiate

log = logging.getLogger(__name__)
#: Files a search writes; their presence means the directory holds a run (``trials.jsonl``: a trial search's log).
RUN_FILES = ("history.csv", "best_arch.json", "summary.json", "supernet.pt", CHECKPOINT, "trials.jsonl")
#: The other files a search writes in its run dir (each replaced whole): in a new run's dir, someone else's.
OUTPUT_FILES = (
    "pareto.csv",
    "pareto.png",
    CONTROLLER_FILE,
    "controller_sb3.zip",
    "ground_truth.json",
    "trials.csv",
    "trials_state.pt",
)
#: What a search that failed before its first result leaves besides Hydra's files; started again there, it
#: replaces them. Without the failed run's ``status.json`` they are someone else's files.
STARTED_FILES = ("config.yaml", STATUS_FILE)
#: Folders a search writes into (new files each time): a file of that name is someone else's.
OUTPUT_FOLDERS = ("tensorboard", "ray")


def taken_files(run_dir: Path) -> list[str]:
    """Files in ``run_dir`` a new search there would replace: another run's, or ones no run wrote.

    A run that failed before its first result (a data error, a stop during setup) leaves only its
    ``config.yaml`` and ``status.json``; a search may start again there.
    """
    run_dir = Path(run_dir)

    def present(name: str) -> bool:
        return (run_dir / name).exists() or (run_dir / name).is_symlink()

    taken = [n for n in (*RUN_FILES, *OUTPUT_FILES) if present(n)]
    if not _is_run_status(run_dir / STATUS_FILE):
        taken += [n for n in STARTED_FILES if present(n)]
    return taken + _not_folders(run_dir)


def _not_folders(run_dir: Path) -> list[str]:
    """The :data:`OUTPUT_FOLDERS` of ``run_dir`` that are there as something else (a file, a link)."""
    return [
        n for n in OUTPUT_FOLDERS if (run_dir / n).is_symlink() or (run_dir / n).exists() and not (run_dir / n).is_dir()
    ]


def _is_run_status(path: Path) -> bool:
    """Whether ``path`` is a run's ``status.json`` (a JSON object with a run's status, host and pid)."""
    import json

    try:
        payload = parse_json(path.read_text()) if path.is_file() and not path.is_symlink() else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(payload, dict) and {"status", "host", "pid"} <= set(payload)


def settings_from(cfg: DictConfig) -> SearchSettings:
    """``search:`` config -> :class:`SearchSettings`, rejecting unknown keys."""
    return SearchSettings(**section_values(cfg, SearchSettings, "search"))


def build_reward(cfg: DictConfig, task_metric: str, metric_max: float | None = None) -> tuple[Reward, bool]:
    """The reward of ``reward:`` (metric defaulting to the task's) and whether to mask infeasible actions.

    Args:
        cfg: The ``reward:`` section.
        task_metric: The metric every score reports.
        metric_max: The highest reward a feasible architecture can get (``None``: unknown); a
            hard limit's ``penalty`` at or above it would make breaking the limit pay.
    """
    reward_cfg = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(reward_cfg, dict)
    mask_infeasible = reward_cfg.pop("mask_infeasible", False)
    if not isinstance(mask_infeasible, bool):  # bool("maybe") would turn the limits' masks on
        raise ValueError(f"reward.mask_infeasible must be true or false, got {mask_infeasible!r}")
    if reward_cfg.get("metric") is None:
        if _takes_setting(reward_cfg.get("_target_"), "metric"):  # a reward of the user's own may not
            reward_cfg["metric"] = task_metric
    elif reward_cfg["metric"] != task_metric:  # minibatch scores report the task's reward metric only
        raise ValueError(
            f"reward.metric={reward_cfg['metric']!r} differs from task.reward_metric={task_metric!r}, "
            f"the metric every score reports; set task.reward_metric instead (reward.metric: null)"
        )
    reward = checked_instantiate(reward_cfg, Reward, "reward")
    check_penalty_below(reward, metric_max, f"the best {task_metric} a feasible architecture can get")
    return reward, mask_infeasible


def check_penalty_below(reward: Reward, best: float | None, what: str) -> None:
    """Refuses a hard limit's ``penalty`` at or above ``best``, the highest reward a feasible architecture
    can get (``what``, for the message; ``None``: unknown): breaking the limit would then pay.

    Raises:
        ValueError: Naming ``reward.penalty`` and ``best``.
    """
    from rlnas.rewards import HardReward

    if isinstance(reward, HardReward) and best is not None and reward.penalty >= best:
        raise ValueError(
            f"reward.penalty={reward.penalty:g} is not below {what} ({best:g}); breaking a limit would pay: "
            "set reward.penalty below it (default 0)"
        )


def _takes_setting(target: Any, name: str) -> bool:
    """Whether the class or function ``target`` names takes a keyword ``name`` (True when it cannot be told)."""
    import inspect

    from hydra.utils import get_method

    try:
        params = inspect.signature(get_method(str(target))).parameters.values()
    except Exception:  # noqa: BLE001 - not importable or no signature: checked_instantiate names it
        return True
    return any(p.name == name or p.kind == p.VAR_KEYWORD for p in params)


#: Controller settings that size a random start, and the method that then takes over.
RANDOM_STARTS = {"num_init": "local search", "population_size": "evolution", "n_startup_trials": "TPE"}


def warn_random_start(cfg: DictConfig, budget: int, what: str) -> None:
    """Warns when the controller's random start takes the whole budget: the search is then random search.

    Args:
        cfg: The ``controller`` section.
        budget: Architectures the search evaluates in all.
        what: What sets the budget, as the warning names it (``benchmark.evaluations=60``).
    """
    for key, method in RANDOM_STARTS.items():
        start = cfg.get(key)
        if isinstance(start, int) and start >= budget:
            log.warning(
                "controller.%s=%d draws at least the %d architectures the search evaluates (%s): %s never "
                "starts, and the search is random search; choose a smaller controller.%s",
                key,
                start,
                budget,
                what,
                method,
                key,
            )


def build_controller(cfg: DictConfig, space: SearchSpace, seed: int) -> Controller:
    """The controller of ``controller:``, warm-started from ``controller.init_from`` when one is given."""
    controller_cfg = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(controller_cfg, dict)
    init_from = controller_cfg.pop("init_from", None)
    controller: Controller = checked_instantiate(controller_cfg, Controller, "controller", space=space, seed=seed)
    if init_from:
        from rlnas.controllers.transfer import init_controller_from

        init_controller_from(controller, init_from)
    return controller


def latency_table(
    space: SearchSpace,
    model: Network,
    input_shape: tuple,
    device: torch.device,
    run_dir: Path,
    path: str | None,
    resume: bool = False,
) -> LatencyTable:
    """Loads the latency LUT from ``path`` or the run dir, else measures and saves it there.

    ``resume``: the run continues from its checkpoint, whose epochs were priced with the run dir's table.

    Raises:
        FileNotFoundError: When ``path`` is given but is no file (a typo would silently re-measure).
    """
    target = run_dir / "latency_lut.json"
    if resume and not path and not target.is_file():  # measured anew, the times differ from the first start's
        log.warning(
            "%s is missing: latencies are measured anew for the rest of the run, so its history mixes two "
            "measurements (and a latency target rewards by the new one); restore the file to resume exactly",
            target,
        )
    if path and not Path(path).expanduser().is_file():
        raise FileNotFoundError(f"costs.latency_table={path}: no such file (null measures a table in the run dir)")
    for candidate in (Path(path) if path else None, target):
        if candidate is not None and candidate.is_file():
            table = LatencyTable.load(candidate)
            if table.device == str(device) and list(table.input_shape) == list(input_shape):
                log.info("latency table reused from %s", candidate)
                if candidate != target:
                    table.save(target)
                return table
            log.warning("%s was measured for %s %s; measuring anew", candidate, table.device, table.input_shape)
    # Each of the space's modules is timed: seconds for the shipped spaces, minutes for thousands of layers.
    log.info("measuring the latency of each of the supernet's modules on %s (kept in %s)", device, target.name)
    table = LatencyTable.measure(model.backbone, model.head, input_shape, device)
    table.save(target)
    return table


def distributed_settings(cfg: DictConfig) -> DistributedSettings:
    """``distributed:`` config -> :class:`DistributedSettings` (defaults when the section is absent)."""
    if cfg.get("distributed") is None:
        return DistributedSettings()
    return DistributedSettings(**section_values(cfg.distributed, DistributedSettings, "distributed"))


def build_search(
    cfg: DictConfig, run_dir: str | Path, progress: bool | None = None, resume: bool = False, comm: Comm | None = None
) -> Search:
    """Instantiates space, task, data, supernet, evaluator, controller, reward and callbacks.

    With ``resume`` the run dir's ``checkpoint.pt`` (when one was written) is
    restored, so :meth:`Search.run` continues after its epoch. With ``comm``
    of several ranks (``torchrun``), every rank builds the same search and
    only rank 0 writes files (:mod:`rlnas.utils.distributed`).
    """
    comm = comm or Comm()
    run_dir = Path(run_dir)
    _claim_run_dir(run_dir, resume, comm)
    if cfg.get("threads"):
        set_threads(int(cfg.threads))
    device = resolve_device(str(cfg.device))
    if comm.active and device.type == "cuda":
        device = torch.device("cuda", comm.local_rank)
    seed = int(cfg.seed)
    seed_everything(seed)
    settings = settings_from(cfg.search)

    space, task = build_space_and_task(cfg)
    data = task.load_data(seed=data_seed(cfg)).to(device)
    log.info("data: %d train / %d val / %d test samples on %s", len(data.train), len(data.val), len(data.test), device)
    warn_batch_beyond_split("search.batch_size", settings.batch_size * comm.world, len(data.train))

    backbone = build_supernet(space, data.in_channels)
    head = task.build_head(backbone.out_channels, data)
    model = Network(backbone, head).to(device)
    if comm.active and settings.final_finetune:  # each rank would train its own copy, and may pick another
        raise ValueError("search.final_finetune trains each final candidate in one process; set it to 0 under torchrun")
    if comm.active:
        if distributed_settings(cfg).sync_batchnorm:
            synchronise_batchnorm(model)
        comm.broadcast_module(model)  # one starting point, whatever each rank's RNG did
    input_shape = tuple(data.train.x.shape[1:])

    def child_factory(arch):
        child = build_child(space, arch, data.in_channels)
        return Network(child, task.build_head(child.out_channels, data))

    if settings.final_proxy:  # before any training: a proxy that cannot score this space stops the run here
        check_proxy(settings.final_proxy, child_factory(space.sample(np.random.default_rng(seed))))

    reward, mask_infeasible = build_reward(cfg.reward, task.reward_metric, task.metric_max)
    targets = dict(getattr(reward, "targets", {}))

    costs_cfg = cfg.get("costs") or {}
    # Measured (or loaded) once, on rank 0: every rank prices architectures alike.
    latency = comm.broadcast_object(
        latency_table(
            space,
            model,
            input_shape,
            device,
            run_dir,
            costs_cfg.get("latency_table"),
            resume and (run_dir / CHECKPOINT).is_file(),
        )
        if comm.is_main
        else None
    )
    track = costs_cfg.get("track")  # [] tracks nothing beyond what the reward and the selection need
    track = list(["params", "size_mb", "size_int8_mb", "latency_ms"] if track is None else track)
    selection_cost = cfg.selection.cost if cfg.get("selection") else "params"
    track += [name for name in [*targets, selection_cost] if name not in track and name in COST_NAMES]
    cost_model = CostModel(space, backbone, head, child_factory, input_shape, latency, track)

    evaluator = SuperNetEvaluator(
        model,
        task,
        data.val,
        settings.val_batch_size,
        torch.Generator(device).manual_seed(seed + 1),
        costs=cost_model,
        full_costs=cost_model.full,
        calibration=calibration_inputs(data.train, settings.bn_calibration, seed + 2)
        if settings.bn_calibration
        else None,
        calibrate_minibatches=settings.bn_calibration_scope == "all",
        comm=comm,
    )
    controller = build_controller(cfg.controller, space, seed)
    proposals = (settings.epochs - settings.warmup_epochs) * settings.controller_steps * settings.archs_per_step
    warn_random_start(cfg.controller, proposals, "search.epochs after the warm-up x controller_steps x archs_per_step")
    limits = bool(getattr(reward, "limits", False))
    _fit_controller(controller, space, backbone, cost_model, targets, mask_infeasible, limits, device, comm)

    state = _checkpoint_state(run_dir, resume, device, comm)
    if state is not None:
        check_config_unchanged(state, cfg, run_dir / "config.yaml")
    config_text = OmegaConf.to_yaml(cfg)
    if not resume and comm.is_main:
        with atomic_file(run_dir / "config.yaml") as f:
            f.write(config_text)
    checkpointer = _checkpointer(cfg, run_dir, comm)
    selection = SelectionSettings(
        **(OmegaConf.to_container(cfg.selection, resolve=True) if cfg.get("selection") else {})
    )
    if selection.cost not in COST_NAMES:
        raise ValueError(f"selection.cost={selection.cost!r} is not a cost; allowed: {list(COST_NAMES)}")
    if comm.active:
        controller = RankZeroController(controller, comm)  # type: ignore[assignment]
    callbacks: list[Callback] = []
    if comm.is_main:  # the other ranks train and score; they write nothing
        callbacks = [
            TensorBoardLogger(
                run_dir / "tensorboard",
                flat_hparams(cfg),
                config_text,
                purge_step=state["next_epoch"] if state else None,
                compared=compared_hparams(cfg),
            ),
            HistoryWriter(run_dir / "history.csv"),
            OutputWriter(run_dir, extra={"task": task.name, "space": type(space).__name__, "seed": seed}),
        ]
        if progress is not False:
            callbacks.append(ProgressBar(settings.epochs, disable=None if progress is None else not progress))
    # Last, so a checkpoint sees what the other callbacks did in the epoch (on every rank: stops are agreed there).
    callbacks.append(checkpointer)
    search = Search(space, task, data, model, evaluator, controller, reward, settings, seed, callbacks, selection, comm)
    if state is not None:
        _restore(search, state, run_dir)
    return search


def _claim_run_dir(run_dir: Path, resume: bool, comm: Comm) -> None:
    """:func:`claim_run_dir` on the main rank (the others write nothing there)."""
    if comm.is_main:
        claim_run_dir(run_dir, resume)


def claim_run_dir(run_dir: Path, resume: bool, can_resume: bool = True) -> None:
    """Creates the run dir; refuses one that holds another run or files a search writes (:func:`taken_files`),
    or, on resume, a finished run.

    Args:
        run_dir: The run dir.
        resume: Whether this start continues the run there.
        can_resume: Whether the refusal may suggest ``resume=`` (tabular runs start again instead).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    taken = taken_files(run_dir)
    if taken and not resume:
        hint = continue_hint(run_dir, taken, (CHECKPOINT, "trials.jsonl")) if can_resume else ""
        raise ValueError(
            f"hydra.run.dir={run_dir} already holds a run or a file a search writes ({taken[0]}); choose another "
            "directory" + hint
        )
    if resume and (run_dir / "best_arch.json").exists():
        raise ValueError(f"resume={run_dir}: that run has finished (best_arch.json exists)")
    if resume:  # found only when the first write there fails, after the epochs it took to get there
        misplaced = [n for n in (*RUN_FILES, *OUTPUT_FILES, *STARTED_FILES) if (run_dir / n).is_dir()]
        misplaced += _not_folders(run_dir)
        if misplaced:
            kind = "a folder" if (run_dir / misplaced[0]).is_dir() else "a file"
            raise ValueError(
                f"resume={run_dir}: {misplaced[0]} is {kind} there, where the run writes "
                f"{'a file' if kind == 'a folder' else 'a folder'}; move it away"
            )


def build_space_and_task(cfg: DictConfig) -> tuple[SearchSpace, Task]:
    """The space and task of ``cfg``, each target type-checked before it is built, and checked to fit."""
    space: SearchSpace = checked_instantiate(cfg.space, SearchSpace, "space")
    task: Task = checked_instantiate(cfg.task, Task, "task")
    if not any(c.__name__ in task.spaces for c in type(space).__mro__):
        raise ValueError(f"space={type(space).__name__} does not fit the {task.name} task; {_fitting_spaces(task)}")
    if getattr(space, "dims", task.dims) != task.dims:
        raise ValueError(
            f"space.dims={space.dims} does not fit the {task.name} task, whose inputs are {task.dims}-D; "
            f"{_fitting_spaces(task)}"
        )
    return space, task


def _fitting_spaces(task: Task) -> str:
    """``choose space=NAME``: the package's space configs (``conf/space/``) whose class and dims fit ``task``."""
    import yaml

    names = []
    for path in sorted((conf_dir() / "space").glob("*.yaml")):
        node = yaml.safe_load(path.read_text()) or {}
        target = str(node.get("_target_", "")).rsplit(".", 1)[-1]
        if target in task.spaces and int(node.get("dims", 2)) == task.dims:
            names.append(path.stem)
    return "choose " + ("one of " if len(names) > 1 else "") + ", ".join(f"space={name}" for name in names)


def _fit_controller(
    controller: Controller,
    space: SearchSpace,
    backbone: Any,
    cost_model: CostModel,
    targets: dict[str, Any],
    mask_infeasible: bool,
    limits: bool,
    device: torch.device,
    comm: Comm,
) -> None:
    """Gives the controller the feasibility mask and, when differentiable, the costs; refuses what cannot work."""
    if comm.active and controller.differentiable:
        raise ValueError(
            f"controller={getattr(controller, 'mode', type(controller).__name__)} learns alphas by "
            "gradient in one process; under "
            "torchrun use a sampling controller (enas, ppo, random, evolution, ...)"
        )
    if targets and (mask_infeasible or limits):
        # Fails early, naming the key, when no architecture can meet a limit. Targets that only scale a
        # penalty (MnasNet's soft reward, TuNAS, the weighted sum) may lie below every architecture.
        feasibility = FeasibilityMask(space, cost_model, targets)
        if mask_infeasible:
            controller.action_mask = feasibility.mask
    elif mask_infeasible:
        raise ValueError("reward.mask_infeasible=true needs reward.targets (the hard limits)")
    if controller.differentiable:
        if not hasattr(backbone, "forward_weighted"):
            raise ValueError(
                f"the {type(space).__name__} supernet has no weighted forward for a differentiable controller"
            )
        controller.to(device)
        controller.set_costs(cost_model, targets)


def _checkpoint_state(run_dir: Path, resume: bool, device: torch.device, comm: Comm) -> dict[str, Any] | None:
    """The run's checkpoint when resuming one that wrote it (read on rank 0, sent to the others)."""
    state = None
    if resume and comm.is_main and (run_dir / CHECKPOINT).exists():
        # Several ranks: rank 0 reads it and sends it (the others need not see the run dir).
        state = load_checkpoint(run_dir / CHECKPOINT, "cpu" if comm.active else device)
        log.info("resuming %s after epoch %d", run_dir, state["next_epoch"])
    elif resume and comm.is_main:
        log.warning("resume=%s: no checkpoint written yet; starting the run over", run_dir)
    if resume and comm.active:
        state = comm.broadcast_object(state)
    return state


def _checkpointer(cfg: DictConfig, run_dir: Path, comm: Comm) -> Checkpointer:
    """The ``checkpoint:`` section as a :class:`Checkpointer`."""
    ckpt_cfg = cfg.get("checkpoint") or {}
    every = int(ckpt_cfg.get("every", 1))
    if every < 0:
        raise ValueError(f"checkpoint.every must be >= 0, got {every}")
    stop_after = ckpt_cfg.get("stop_after")
    stop = int(stop_after) if stop_after is not None else None
    return Checkpointer(run_dir, every, stop, comm, config=config_fingerprint(cfg))


def _restore(search: Search, state: dict[str, Any], run_dir: Path) -> None:
    """:func:`restore_search`, its errors naming the checkpoint file."""
    try:
        restore_search(search, state)
    except ValueError as err:
        raise ValueError(f"{run_dir / CHECKPOINT}: {err}") from None
