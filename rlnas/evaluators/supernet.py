"""Scores architectures with the shared weights of a supernet."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import torch
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils._pytree import tree_map

from rlnas.data.base import Split
from rlnas.evaluators.base import Evaluation
from rlnas.tasks.base import Network, Task
from rlnas.utils.distributed import Comm, global_batchnorm
from rlnas.utils.timing import ComputeTimer


def calibration_inputs(split: Split, images: int, seed: int) -> Tensor:
    """``images`` training inputs drawn once (seeded), the same for every architecture scored."""
    generator = torch.Generator(split.x.device).manual_seed(seed)
    return split.batch(min(images, len(split)), generator)[0]


@contextmanager
def calibrated_batchnorm(model: Network, arch: Sequence[int], inputs: Sequence[Tensor]) -> Iterator[None]:
    """Inside the block, the supernet's BatchNorm layers normalise with ``arch``'s own statistics.

    The supernet's BatchNorm keeps no running statistics (they would mix every
    sampled path), so by default a score normalises with the statistics of the
    images it is scored on: a reward then depends on which images share the
    minibatch. Here each layer's mean and variance are recomputed for ``arch``
    alone on fixed training inputs (the BN recalibration of single-path
    one-shot NAS, Guo et al., 2020, and of slimmable networks, Yu & Huang,
    2019), and the scoring forward passes use them as a standalone network
    uses its running statistics. The model is left as it was on exit.

    Args:
        model: The supernet with its head (switched to eval mode).
        arch: The architecture whose path is calibrated.
        inputs: Training input batches, the same for every architecture.
    """
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.running_mean is None]
    saved = [(m.momentum, m.track_running_stats) for m in layers]
    model.eval()
    try:
        for m in layers:
            ref = m.weight if m.weight is not None else next(model.parameters())
            m.running_mean = torch.zeros(m.num_features, device=ref.device, dtype=ref.dtype)
            m.running_var = torch.ones(m.num_features, device=ref.device, dtype=ref.dtype)
            m.num_batches_tracked = torch.zeros((), dtype=torch.long, device=ref.device)
            # momentum None: a cumulative average over the calibration batches.
            m.momentum, m.track_running_stats = None, True
            m.train()
        with torch.no_grad():
            for x in inputs:
                model(x, list(arch))
        for m in layers:
            m.eval()
        yield
    finally:
        for m, (momentum, track) in zip(layers, saved):
            m.momentum, m.track_running_stats = momentum, track
            m.running_mean = m.running_var = m.num_batches_tracked = None
            m.train(model.training)


class SuperNetEvaluator:
    """Scores an architecture on a validation minibatch with the supernet's weights.

    The loop calls :meth:`next_batch` once per controller step so all the
    architectures of a step are compared on the same images (a fair race), and
    :meth:`evaluate_full` for the final choice over the whole split.

    Args:
        model: The supernet with its task head.
        task: The task (metrics).
        split: The split to score on (validation during search).
        batch_size: Minibatch size of :meth:`evaluate`.
        generator: Device generator drawing the minibatches.
        costs: arch -> cost figures reported with every evaluation.
        full_costs: arch -> every cost figure, for the reported architectures
            (defaults to ``costs``).
        calibration: Training inputs for per-architecture BatchNorm statistics
            (:func:`calibrated_batchnorm`), split into batches of
            ``batch_size``; None scores with the statistics of the scored batch.
        calibrate_minibatches: Whether minibatch scores (:meth:`evaluate_batch`,
            the controller's rewards) are calibrated too, or only whole-split
            scores (:meth:`evaluate_full`, the final choice).
        comm: The ranks of a multi-process search: each scores its share of
            every minibatch and of the split, and the scores are combined
            (minibatch scores averaged over equal shares; whole-split metrics
            computed on the gathered outputs). Default: one process.
    """

    def __init__(
        self,
        model: Network,
        task: Task,
        split: Split,
        batch_size: int,
        generator: torch.Generator,
        costs: Callable[[Sequence[int]], dict[str, float]],
        full_costs: Callable[[Sequence[int]], dict[str, float]] | None = None,
        calibration: Tensor | None = None,
        calibrate_minibatches: bool = True,
        comm: Comm | None = None,
    ) -> None:
        self.model = model
        self.task = task
        self.split = split
        self.batch_size = int(batch_size)
        self.generator = generator
        self.costs = costs
        self.full_costs = full_costs or costs
        self.reward_metric = task.reward_metric
        self.timer = ComputeTimer(split.x.device)
        self.comm = comm or Comm()
        self._batch = split.batch(self.batch_size, generator, self.comm.rank, self.comm.world)
        self.set_calibration(calibration)
        self.calibrate_minibatches = calibrate_minibatches

    def set_calibration(self, calibration: Tensor | None) -> None:
        """Training inputs for per-architecture BatchNorm statistics from now on (None: the scored images' own)."""
        self.calibration = [] if calibration is None else list(calibration.split(self.batch_size))

    def _statistics(self, arch: Sequence[int], minibatch: bool) -> AbstractContextManager[None]:
        """The BatchNorm statistics ``arch`` is scored with: calibrated when configured for this kind of score."""
        if self.calibration and (self.calibrate_minibatches or not minibatch):
            return calibrated_batchnorm(self.model, arch, self.calibration)
        return nullcontext()

    def next_batch(self) -> None:
        """Draws a fresh validation minibatch for the next comparisons."""
        self._batch = self.split.batch(self.batch_size, self.generator, self.comm.rank, self.comm.world)

    @torch.no_grad()
    def evaluate(self, arch: Sequence[int]) -> Evaluation:
        return self.evaluate_batch([arch])[0]

    @torch.no_grad()
    def evaluate_batch(self, archs: Sequence[Sequence[int]]) -> list[Evaluation]:
        """Reward metric of each arch on the current minibatch, one host sync in all."""
        self.model.eval()
        x, y = self._batch
        with self.timer(), global_batchnorm(self.comm):
            outputs = []
            for a in archs:
                with self._statistics(a, minibatch=True):
                    outputs.append(self.model(x, a))
        if self.comm.active and self.reward_metric != "accuracy":
            # Macro F1, precision, recall and mAP are not means of per-shard values: score the global batch.
            device = y.device
            gathered = self.comm.all_gather_object(tree_map(_to_cpu, (outputs, y)))
            y = _cat([tree_map(lambda t: _to(t, device), rank_y) for _, rank_y in gathered])
            outputs = [
                _cat([tree_map(lambda t: _to(t, device), rank_out[i]) for rank_out, _ in gathered])
                for i in range(len(archs))
            ]
            values = torch.stack([self.task.batch_reward_metric(out, y) for out in outputs]).tolist()
        else:  # accuracy over equal shards: the mean of the ranks' values is the global batch's
            values = self.comm.mean_(torch.stack([self.task.batch_reward_metric(out, y) for out in outputs])).tolist()
        return [Evaluation({self.reward_metric: v}, dict(self.costs(a))) for a, v in zip(archs, values)]

    @torch.no_grad()
    def evaluate_full(self, arch: Sequence[int], chunk_size: int = 512) -> Evaluation:
        """All task metrics of ``arch`` over the whole split, with the tracked costs."""
        self.model.eval()
        outputs, targets = [], []
        comm = self.comm
        # Ranks may hold different numbers of chunks: BatchNorm stays per rank here.
        with self.timer(), self._statistics(arch, minibatch=False):
            for x, y in self.split.shard(comm.rank, comm.world).chunks(chunk_size):
                outputs.append(self.model(x, arch))
                targets.append(y)
        if comm.active:  # the metrics of the whole split, from every rank's outputs
            device = self.split.x.device
            gathered = comm.all_gather_object(tree_map(_to_cpu, (outputs, targets)))
            outputs = [tree_map(lambda t: _to(t, device), o) for rank_out, _ in gathered for o in rank_out]
            targets = [tree_map(lambda t: _to(t, device), t_) for _, rank_tg in gathered for t_ in rank_tg]
        return Evaluation(self.task.metrics(outputs, targets), dict(self.costs(arch)))


def _cat(parts: list[Any]) -> Any:
    """The ranks' pieces of one batch (tensors, or tuples, lists and dicts of them) joined along the batch dim."""
    first = parts[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(parts)
    if isinstance(first, dict):
        return {k: _cat([p[k] for p in parts]) for k in first}
    if isinstance(first, (list, tuple)):
        return type(first)(_cat(list(items)) for items in zip(*parts))
    raise TypeError(f"cannot join {type(first).__name__} outputs of several ranks")


def _to_cpu(value: Any) -> Any:
    return value.cpu() if isinstance(value, Tensor) else value


def _to(value: Any, device: torch.device) -> Any:
    return value.to(device) if isinstance(value, Tensor) else value
