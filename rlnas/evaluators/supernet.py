"""Scores architectures with the shared weights of a supernet."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from rlnas.data.base import Split
from rlnas.evaluators.base import Evaluation
from rlnas.tasks.base import Network, Task
from rlnas.utils.timing import ComputeTimer


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
        self._batch = split.batch(self.batch_size, generator)

    def next_batch(self) -> None:
        """Draws a fresh validation minibatch for the next comparisons."""
        self._batch = self.split.batch(self.batch_size, self.generator)

    @torch.no_grad()
    def evaluate(self, arch: Sequence[int]) -> Evaluation:
        return self.evaluate_batch([arch])[0]

    @torch.no_grad()
    def evaluate_batch(self, archs: Sequence[Sequence[int]]) -> list[Evaluation]:
        """Reward metric of each arch on the current minibatch, one host sync in all."""
        self.model.eval()
        x, y = self._batch
        with self.timer():
            outputs = [self.model(x, a) for a in archs]
        values = torch.stack([self.task.batch_reward_metric(out, y) for out in outputs]).tolist()
        return [Evaluation({self.reward_metric: v}, dict(self.costs(a))) for a, v in zip(archs, values)]

    @torch.no_grad()
    def evaluate_full(self, arch: Sequence[int], chunk_size: int = 512) -> Evaluation:
        """All task metrics of ``arch`` over the whole split, with the tracked costs."""
        self.model.eval()
        outputs, targets = [], []
        for x, y in self.split.chunks(chunk_size):
            with self.timer():
                outputs.append(self.model(x, arch))
            targets.append(y)
        return Evaluation(self.task.metrics(outputs, targets), dict(self.costs(arch)))
