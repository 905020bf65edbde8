"""One search over several processes (``torchrun``): shared gradients, one controller, one writer.

Every rank holds the whole supernet and the whole dataset on its own device.
Each global minibatch is drawn once from a generator every rank seeds alike
and split into equal shards, one per rank; the ranks average their gradients
before each step (the data parallelism of DistributedDataParallel, Li et al.,
2020). With ``distributed.sync_batchnorm`` BatchNorm normalises with the
statistics of the whole global batch (as SyncBatchNorm does on GPUs), so N
ranks with a per-rank batch of B take the steps one process takes with a batch
of N x B, the supernet's batch-statistics BatchNorm included; without it each
rank normalises its own shard (DDP's default, no per-layer communication).

The controller lives on rank 0: it proposes, the proposals are broadcast,
every rank scores them on its shard of the validation minibatch and the scores
are averaged, so every rank trains and scores the same architectures and the
run ends with one ``best_arch.json``. Only rank 0 writes run files.
"""

from __future__ import annotations

import datetime
import logging
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

log = logging.getLogger(__name__)


class DistributedError(RuntimeError):
    """Another rank of the run failed or could not be reached; the message is one line."""


def launched() -> bool:
    """Whether this process is one of several a launcher such as ``torchrun`` started."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@dataclass
class DistributedSettings:
    """``distributed:`` in the config; read only when the run is launched by ``torchrun``.

    Attributes:
        backend: ``auto`` (nccl on CUDA, gloo on the CPU), ``gloo`` or ``nccl``.
        sync_batchnorm: Normalise with the statistics of the global batch, so
            the steps do not depend on the number of ranks (an all-reduce per
            BatchNorm layer); ``false``: each rank's shard (DDP's default).
        timeout_s: Seconds a rank waits for the others before it gives up.
    """

    backend: str = "auto"
    sync_batchnorm: bool = False
    timeout_s: float = 600.0

    def __post_init__(self) -> None:
        if self.backend not in ("auto", "gloo", "nccl"):
            raise ValueError(f"distributed.backend={self.backend!r} is unknown; allowed: ['auto', 'gloo', 'nccl']")
        if not self.timeout_s > 0:
            raise ValueError(f"distributed.timeout_s must be > 0, got {self.timeout_s}")


def lost_peer(err: BaseException, rank: int) -> DistributedError:
    """A collective's failure as one line (a peer that died, a timeout, a broken connection)."""
    text = str(err).strip()
    detail = text.splitlines()[0] if text else type(err).__name__
    detail = re.sub(r"^\[[^\]]*\]\s*", "", detail)  # gloo's source location
    return DistributedError(f"rank {rank}: another process of the run stopped or cannot be reached ({detail[:120]})")


def _all_reduce(tensor: Tensor) -> None:
    try:
        dist.all_reduce(tensor)
    except (RuntimeError, dist.DistBackendError) as err:
        raise lost_peer(err, dist.get_rank()) from None


class _SumAcrossRanks(torch.autograd.Function):
    """All-reduce (sum) whose gradient is the all-reduced gradient."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:  # noqa: D102
        out = x.clone()
        _all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:  # noqa: D102
        out = grad.contiguous().clone()
        _all_reduce(out)
        return out


class _GlobalBatchNorm:
    """Forward of a batch-statistics BatchNorm over the global batch of all ranks.

    Only inside :func:`global_batchnorm` (forwards every rank runs in step:
    training and minibatch scoring); elsewhere (latency timing, previews on
    rank 0, whole-split chunks) each rank normalises alone. Layers with running
    statistics (a calibration pass) keep their own forward.
    """

    sync = False

    def forward(self, x: Tensor) -> Tensor:
        bn: Any = self
        if bn.running_mean is not None or not _GlobalBatchNorm.sync:
            return super().forward(x)  # type: ignore[misc]
        dims = [0, *range(2, x.dim())]
        c = x.shape[1]
        # Each rank's own mean and sum of squared deviations (accurate, as BatchNorm computes
        # them), combined exactly (Chan et al., 1979); E[x^2] - E[x]^2 would cancel
        # catastrophically for channels whose mean dwarfs their spread (post-ReLU maps).
        var_r, mean_r = torch.var_mean(x, dim=dims, unbiased=False)
        n_r = x.numel() / c
        local = torch.cat([mean_r, var_r * n_r, torch.full((1,), n_r, device=x.device, dtype=x.dtype)])
        rank, world = dist.get_rank(), dist.get_world_size()
        rows = _SumAcrossRanks.apply(
            torch.stack([local if i == rank else torch.zeros_like(local) for i in range(world)])
        )
        means, m2, counts = rows[:, :c], rows[:, c : 2 * c], rows[:, 2 * c :]
        n = counts.sum()
        mean = (counts * means).sum(0) / n
        var = (m2 + counts * (means - mean) ** 2).sum(0) / n
        shape = [1, c] + [1] * (x.dim() - 2)
        out = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + bn.eps)
        if bn.affine:
            out = out * bn.weight.view(shape) + bn.bias.view(shape)
        return out


def synchronise_batchnorm(model: nn.Module) -> int:
    """Makes ``model``'s BatchNorm layers normalise over all ranks; returns how many.

    Each layer keeps its class's name, parameters and state-dict keys (the
    class is swapped for a subclass), so checkpoints stay interchangeable with
    single-process runs.
    """
    n = 0
    for m in model.modules():
        if isinstance(m, _BatchNorm) and not isinstance(m, _GlobalBatchNorm):
            m.__class__ = type(type(m).__name__, (_GlobalBatchNorm, type(m)), {})
            n += 1
    return n


@contextmanager
def global_batchnorm(comm: Comm) -> Iterator[None]:
    """Inside the block, synchronised BatchNorm layers use the statistics of all ranks' batches.

    Every rank must run the same forwards inside it, in the same order.
    """
    previous, _GlobalBatchNorm.sync = _GlobalBatchNorm.sync, comm.active
    try:
        yield
    finally:
        _GlobalBatchNorm.sync = previous


class Comm:
    """The ranks of one search and what they exchange; a single process is ``Comm()`` (every call a no-op).

    Args:
        rank: This process's rank.
        world: Number of processes.
        local_rank: Rank on this machine (picks the CUDA device).
    """

    def __init__(self, rank: int = 0, world: int = 1, local_rank: int = 0) -> None:
        self.rank, self.world, self.local_rank = rank, world, local_rank

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def __repr__(self) -> str:
        return f"Comm(rank={self.rank}, world={self.world})"

    # -- tensors ---------------------------------------------------------------
    def mean_(self, flat: Tensor) -> Tensor:
        """Averages ``flat`` over the ranks, in place."""
        if self.active:
            self._call(dist.all_reduce, flat)
            flat /= self.world
        return flat

    def average_gradients(self, params: Sequence[nn.Parameter], loss: Tensor) -> Tensor:
        """Averages the gradients of ``params`` (those that have one) and ``loss`` over the ranks.

        Every rank trains the same architecture, so the same parameters carry
        gradients everywhere; one flat all-reduce carries them all.

        Returns:
            The loss averaged over the ranks (detached).
        """
        if not self.active:
            return loss.detach()
        grads = [p.grad for p in params if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads] + [loss.detach().reshape(1)])
        self.mean_(flat)
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()
        return flat[-1]

    def broadcast_module(self, module: nn.Module) -> None:
        """Rank 0's parameters and buffers on every rank (a common start, as DDP's constructor does)."""
        if self.active:
            for tensor in module.state_dict().values():
                if isinstance(tensor, Tensor):
                    self._call(dist.broadcast, tensor, 0)

    def same_weights(self, module: nn.Module) -> bool:
        """Whether every rank holds the same parameters (a float64 sum per tensor, compared across ranks)."""
        if not self.active:
            return True
        sums = torch.stack([p.detach().double().sum() for p in module.parameters()]).cpu()
        gathered = self.all_gather_object(sums)
        return all(torch.equal(gathered[0], other) for other in gathered[1:])

    # -- python objects ----------------------------------------------------------
    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.active:
            return obj
        box = [obj if self.is_main else None]
        self._call(dist.broadcast_object_list, box, 0)
        return box[0]

    def all_gather_object(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order."""
        if not self.active:
            return [obj]
        out: list[Any] = [None] * self.world
        self._call(dist.all_gather_object, out, obj)
        return out

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` holds on any rank (a stop request seen by one rank stops all)."""
        if not self.active:
            return flag
        return any(self.all_gather_object(bool(flag)))

    def barrier(self) -> None:
        if self.active:
            self._call(dist.barrier)

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except (RuntimeError, dist.DistBackendError) as err:
            raise lost_peer(err, self.rank) from None


def init_from_env(settings: DistributedSettings, device_name: str = "auto") -> Comm:
    """Joins the process group ``torchrun`` describes in the environment (one process: ``Comm()``).

    Args:
        settings: Backend and timeout.
        device_name: The config's ``device``; with CUDA each rank takes
            ``cuda:LOCAL_RANK`` (the search builder does the same).
    """
    if not launched():
        return Comm()
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    cuda = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
    if cuda:
        if local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"rank {rank}: LOCAL_RANK={local_rank} but this machine has "
                f"{torch.cuda.device_count()} CUDA device(s); start at most that many processes per node"
            )
        torch.cuda.set_device(local_rank)
    backend = settings.backend if settings.backend != "auto" else ("nccl" if cuda else "gloo")
    if backend == "nccl" and not cuda:
        raise ValueError("distributed.backend=nccl needs CUDA devices; use gloo (or auto) on the CPU")
    if not dist.is_initialized():
        # Object collectives (proposals, stop requests) go through gloo even when tensors use nccl.
        spec = "cpu:gloo,cuda:nccl" if backend == "nccl" else "gloo"
        dist.init_process_group(spec, timeout=datetime.timedelta(seconds=settings.timeout_s))
    return Comm(rank, world, local_rank)


def shutdown(wait_for_others: bool = False) -> None:
    """Leaves the process group (when one was joined).

    Args:
        wait_for_others: First wait until every rank got here (a run that ended well): a rank
            that leaves while rank 0 still writes the run's files can be aborted by gloo at
            exit ("terminate called without an active exception"), and torchrun then stops
            rank 0 too. Not after an error: the others may be waiting in a collective.
    """
    if dist.is_available() and dist.is_initialized():
        if wait_for_others:
            dist.barrier()
        dist.destroy_process_group()
