"""One trial: a candidate trained from scratch on the train split, scored on the validation split each epoch.

Runs in a Ray worker (``tune.report`` after every epoch, which is where an
early-stopping scheduler ends a trial). The run's config and its data split
come from the driver through Ray's object store, so every trial, on whichever
machine, trains on the same split as every other. Space, task and reward are
built once per worker process and reused by the trials it runs.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from omegaconf import OmegaConf

from rlnas.costs.latency import measure_ms
from rlnas.costs.model import forward_mflops
from rlnas.spaces.base import SearchSpace
from rlnas.spaces.seams import Evaluation, reward_number
from rlnas.spaces.training import TrainingSpace
from rlnas.supernet.macro import count_params
from rlnas.tasks.training import Recipe, evaluate, standalone_network, train, with_settings
from rlnas.utils.trust import checked_instantiate

#: The parts each worker process built, by run key (a worker may serve several runs in one session).
_PARTS: dict[str, dict[str, Any]] = {}


def trial_space(cfg: Any) -> SearchSpace:
    """The run's space, with ``trials.hparams``'s training decisions after its own when it has any."""
    space: SearchSpace = checked_instantiate(cfg.space, SearchSpace, "space")
    hparams = OmegaConf.to_container(cfg.trials.hparams, resolve=True) if cfg.trials.get("hparams") else {}
    return TrainingSpace(space, hparams) if hparams else space


def _parts(setup: dict[str, Any]) -> dict[str, Any]:
    """Space, task, reward and data on this worker's device, built on the first trial of a run."""
    key = setup["key"]
    if key not in _PARTS:
        from rlnas.search.builder import build_reward
        from rlnas.tasks.base import Task

        cfg = OmegaConf.create(setup["config"])
        task: Task = checked_instantiate(cfg.task, Task, "task")
        reward, _ = build_reward(cfg.reward, task.reward_metric)
        device = torch.device("cuda" if setup["gpus"] > 0 and torch.cuda.is_available() else "cpu")
        _PARTS.clear()  # one run's data at a time per worker
        _PARTS[key] = {
            "space": trial_space(cfg),
            "task": task,
            "reward": reward,
            "data": setup["data"].to(device),
            "recipe": Recipe(**setup["recipe"]),
        }
    return _PARTS[key]


def candidate_costs(network: torch.nn.Module, input_shape: tuple[int, ...], track: list[str]) -> dict[str, float]:
    """The tracked costs of a standalone network.

    ``latency_ms`` is the network's own median forward time at batch 1 on the
    trial's device (a weight-sharing search predicts it from a table of the
    supernet's modules instead); trials that share a machine share its cores,
    so it is noisier than a table measured alone.
    """
    params = float(count_params(network))
    out = {"params": params, "size_mb": params * 4 / 1e6, "size_int8_mb": params / 1e6}
    device = next(network.parameters()).device
    example = torch.zeros(1, *input_shape, device=device)
    was_training = network.training
    network.eval()
    if "mflops" in track:
        out["mflops"] = forward_mflops(network, example)
    if "latency_ms" in track:
        out["latency_ms"] = measure_ms(lambda: network(example), device)
    network.train(was_training)
    return {k: v for k, v in out.items() if k in track}


def train_trial(config: dict[str, Any], setup: dict[str, Any]) -> None:
    """The Ray Tune function trainable: trains ``config["arch"]``, reporting after every epoch.

    Reports ``reward`` (what the controller and the scheduler compare), the
    task's metrics on the validation split as ``val_NAME``, the costs and
    ``epoch``. A NaN loss raises (the trial fails and is recorded as failed).
    """
    from ray import tune

    started = time.perf_counter()
    torch.set_num_threads(max(1, int(setup["threads"])))
    parts = _parts(setup)
    space, data = parts["space"], parts["data"]
    arch = space.validate(config["arch"])
    base, settings = space.split(arch) if isinstance(space, TrainingSpace) else (arch, {})
    recipe, task = with_settings(parts["recipe"], parts["task"], settings)
    seed = int(setup["seed"]) * 1_000_003 + int(config["index"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = standalone_network(space.base if isinstance(space, TrainingSpace) else space, task, data, base)
    costs = candidate_costs(network, tuple(data.train.x.shape[1:]), setup["track"])

    def report(epoch: int, net: torch.nn.Module) -> None:
        metrics = evaluate(net, task, data.val)
        value = reward_number(parts["reward"](Evaluation(dict(metrics), dict(costs))), parts["reward"])
        tune.report(
            {
                "reward": value,
                "epoch": epoch,
                "seconds": time.perf_counter() - started,
                **{f"val_{k}": float(v) for k, v in metrics.items()},
                **{f"cost_{k}": float(v) for k, v in costs.items()},
            }
        )

    train(network, task, data, recipe, seed, desc=f"trial {config['index']}", on_epoch=report)
