"""Checkpoints that continue a search bit for bit, and clean stops on SIGINT/SIGTERM.

A checkpoint holds everything the next epoch depends on: supernet weights,
optimiser and scheduler, the controller's state (an SB3 model included), the
loop's and the evaluator's random generators, the global RNGs (python, numpy,
torch, CUDA), the history of scored architectures and the epoch counter. It is
written to a temporary file and moved over the previous one with
``os.replace``, so a kill at any moment leaves either the old or the new
checkpoint, never half of one. Weights with a NaN are never written.
"""

from __future__ import annotations

import json
import logging
import shlex
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from rlnas.search.faults import finite_weights
from rlnas.search.loop import Callback, EpochStats
from rlnas.utils import global_rng_state, save_atomic, set_global_rng_state
from rlnas.utils.distributed import Comm
from rlnas.utils.trust import load_tensor_file

if TYPE_CHECKING:
    from rlnas.search.loop import Search

log = logging.getLogger(__name__)

#: File name of a run's checkpoint.
CHECKPOINT = "checkpoint.pt"
#: Written in every run dir: ``running`` at the start, then ``completed``, ``failed`` or ``interrupted``.
STATUS_FILE = "status.json"
#: Format version, bumped when the layout changes.
VERSION = 4


class SearchInterrupted(RuntimeError):
    """A SIGINT/SIGTERM stopped the search after writing a checkpoint."""

    def __init__(self, epoch: int, run_dir: Path, message: str | None = None) -> None:
        hint = f"continue with: python -m rlnas {shlex.quote(f'resume={run_dir}')}"
        super().__init__(message.format(hint=hint) if message else f"interrupted after epoch {epoch}; {hint}")
        self.epoch = epoch
        self.run_dir = run_dir


#: Settings a resumed run may change (threads, checkpointing, Hydra's own); the rest must match the checkpoint.
RESUME_FREE_SECTIONS = ("resume", "threads", "checkpoint", "hydra")


def resume_may_change(key: str) -> bool:
    """Whether a resume may set ``key`` (a dotted override key) to another value than the run's."""
    return key.split(".", 1)[0] in RESUME_FREE_SECTIONS


def config_fingerprint(cfg: Any) -> str:
    """The run config a checkpoint was written under, as canonical JSON, without what a resume may change."""
    from omegaconf import DictConfig, OmegaConf

    tree = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    return json.dumps({k: v for k, v in tree.items() if k not in RESUME_FREE_SECTIONS}, sort_keys=True, default=str)


def first_difference(saved: Any, now: Any, path: str = "", added_keys: bool = True) -> tuple[str, Any, Any] | None:
    """The first dotted key whose value differs between two JSON trees, with both values.

    ``added_keys=False`` passes over keys that only ``now`` has (settings added
    since ``saved`` was written, whose defaults keep the earlier behaviour).
    """
    if isinstance(saved, dict) and isinstance(now, dict):
        keys = set(saved) | set(now) if added_keys else set(saved)
        for key in sorted(keys, key=str):
            found = first_difference(saved.get(key), now.get(key), f"{path}.{key}" if path else str(key), added_keys)
            if found:
                return found
        return None
    return None if saved == now else (path, saved, now)


def check_config_unchanged(state: dict[str, Any], cfg: Any, config_path: Path) -> None:
    """Refuses to resume a checkpoint under a config that was edited since it was written.

    Raises:
        ValueError: Naming the file and the first changed key.
    """
    saved = state.get("config")
    if saved is None:
        return
    found = first_difference(json.loads(saved), json.loads(config_fingerprint(cfg)))
    if found:
        key, before, after = found
        raise ValueError(
            f"{config_path}: {key} is {after!r} but the checkpoint was written with {before!r}; a resumed run keeps "
            "the config it started with (restore the file, or start a new run)"
        )


def search_state(search: Search, config: str | None = None) -> dict[str, Any]:
    """Everything :func:`restore_search` needs to continue ``search`` after its current epoch.

    ``config`` (:func:`config_fingerprint`) is stored so that a resume can refuse an edited config.
    """
    evaluator = search.evaluator
    return {
        "version": VERSION,
        "config": config,
        "next_epoch": search.epoch + 1,
        "model": search.model.state_dict(),
        "optimizer": search.optimizer.state_dict(),
        "scheduler": search.scheduler.state_dict(),
        "controller": search.controller.state_dict(),
        # JSON text: no pickle in a checkpoint (it loads with weights_only=True), and one string is
        # fast where torch.save's pickler would visit each of thousands of rows in Python.
        "history": json.dumps(search.history, default=_plain),
        "last_mean": search.last_mean,
        "faults": search.faults.state_dict(),
        "generator": search.generator.get_state(),
        "rng": search.rng.bit_generator.state,
        "evaluator_generator": evaluator.generator.get_state(),
        "evaluator_batch": evaluator._batch,
        "global_rng": global_rng_state(),
    }


def _plain(value: Any) -> Any:
    """numpy scalars and tuples in history rows as JSON values."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} in a history row cannot be checkpointed")


def restore_search(search: Search, state: dict[str, Any]) -> None:
    """Puts ``search`` where :func:`search_state` left it; the next :meth:`Search.run` continues there."""
    if state.get("version") != VERSION:
        raise ValueError(
            f"checkpoint format {state.get('version')} is not {VERSION}; it was written by another version"
        )
    ours, theirs = search.model.state_dict(), state["model"]
    if not isinstance(theirs, dict):
        raise ValueError("the checkpoint holds no supernet weights")
    for name in sorted(set(ours) | set(theirs)):  # another space or task: name the first difference
        if name not in theirs or name not in ours or tuple(ours[name].shape) != tuple(theirs[name].shape):
            have = tuple(theirs[name].shape) if name in theirs else "nothing"
            want = tuple(ours[name].shape) if name in ours else "nothing"
            raise ValueError(
                f"the checkpoint holds another supernet than the run's config.yaml describes "
                f"({name}: {have} in the checkpoint, {want} in the config)"
            )
    search.model.load_state_dict(theirs)
    search.optimizer.load_state_dict(state["optimizer"])
    search.scheduler.load_state_dict(state["scheduler"])
    search.controller.load_state_dict(state["controller"])
    search.history = [{**row, "arch": tuple(row["arch"])} for row in json.loads(state["history"])]
    search.last_mean = float(state["last_mean"])
    search.faults.load_state_dict(state["faults"])
    search.generator.set_state(state["generator"])
    search.rng.bit_generator.state = state["rng"]
    search.evaluator.generator.set_state(state["evaluator_generator"])
    search.evaluator._batch = tuple(t.to(search.device) for t in state["evaluator_batch"])
    search.start_epoch = int(state["next_epoch"])
    set_global_rng_state(state["global_rng"])


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Reads a checkpoint.

    Raises:
        ValueError: Naming the file when it is not a readable checkpoint.
    """
    # A checkpoint is data: one that would need more than tensors, numbers and strings is refused.
    state = load_tensor_file(path, "checkpoint", device)
    if not isinstance(state, dict) or "next_epoch" not in state:
        raise ValueError(f"{path}: not a search checkpoint")
    return state


#: Seconds a stop request waits for the epoch to end before the search stops from its last checkpoint
#: (below SLURM's default KillWait of 30 s between SIGTERM and SIGKILL).
STOP_GRACE_S = 20.0


class Checkpointer(Callback):
    """Writes ``checkpoint.pt`` every ``every`` epochs and stops cleanly on SIGINT/SIGTERM.

    A stop request lets the current epoch finish and checkpoints it; an epoch still running
    ``STOP_GRACE_S`` after the request (``search.controller_steps=1000000000``, a huge epoch) is abandoned
    and the search stops from its last checkpoint, as a second request does at once. The grace is kept
    by a timer (``SIGALRM``) where the system has one, so that a single step that outlasts it
    (``search.archs_per_step=100000``) is abandoned too, and at the end of every step elsewhere. A
    multi-process search always finishes the epoch (its ranks must stop at the same step).

    Args:
        run_dir: The run directory.
        every: Epochs between checkpoints (0: only when stopping).
        stop_after: Stop (as if interrupted) after this many epochs; for drills and tests.
        comm: The ranks of a multi-process search: a stop request any rank
            receives stops them all at the same point, and only rank 0 writes.
    """

    def __init__(
        self,
        run_dir: str | Path,
        every: int = 1,
        stop_after: int | None = None,
        comm: Comm | None = None,
        config: str | None = None,
    ) -> None:
        self.config = config
        self.comm = comm or Comm()
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / CHECKPOINT
        self.every = int(every)
        self.stop_after = stop_after
        self.stop_requested = False
        self._requested_at = 0.0
        self._search: Search | None = None
        #: Epochs the checkpoint on disk holds (0: none yet).
        self.saved_epoch = 0
        self._previous: dict[int, Any] = {}

    def on_search_start(self, search: Search) -> None:
        self._search = search
        self.stop_requested = False
        self.saved_epoch = search.start_epoch  # a resumed run starts from its checkpoint
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._request_stop)
            except ValueError:  # not the main thread: no handlers, checkpoints still written
                pass

    def _request_stop(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.stop_requested:  # the second request: stop now, from the last checkpoint
            self._stop_from_checkpoint(f"stopped at once by a second {name}")
        log.warning(
            "%s: finishing the current epoch or step, then writing a checkpoint (again to stop at once; "
            "an epoch not done in %.0f s is abandoned for the last checkpoint)",
            name,
            STOP_GRACE_S,
        )
        self.stop_requested = True
        self._requested_at = time.monotonic()
        if self.comm.world == 1 and STOP_GRACE_S > 0 and hasattr(signal, "setitimer"):
            # A step can outlast the grace by itself; the alarm stops the search wherever it is then.
            self._previous.setdefault(signal.SIGALRM, signal.signal(signal.SIGALRM, self._grace_over))
            signal.setitimer(signal.ITIMER_REAL, STOP_GRACE_S)

    def _grace_over(self, signum: int, frame: Any) -> None:
        self._stop_from_checkpoint(self._grace_message())

    def _grace_message(self) -> str:
        search = self._search
        if search is not None and self.saved_epoch >= search.settings.epochs:
            where = "during the final re-scoring"
        else:
            where = f"during epoch {search.epoch + 1}" if search is not None else "mid-epoch"
        return f"stopped {where}, still running {STOP_GRACE_S:.0f} s after the stop request"

    def _stop_from_checkpoint(self, why: str) -> None:
        self._restore_handlers()
        epoch = self.saved_epoch
        message = (
            f"{why}; the last checkpoint (after epoch {epoch}) is kept, {{hint}}"
            if epoch
            else f"{why}; no checkpoint yet, nothing to resume"
        )
        raise SearchInterrupted(epoch, self.run_dir, message)

    def on_step(self, search: Search) -> None:
        if not self.stop_requested or self.comm.world > 1:
            return
        if time.monotonic() - self._requested_at > STOP_GRACE_S:
            self._stop_from_checkpoint(self._grace_message())

    def _restore_handlers(self) -> None:
        if hasattr(signal, "SIGALRM") and signal.SIGALRM in self._previous:
            signal.setitimer(signal.ITIMER_REAL, 0)  # the grace's timer, if it still runs
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    @contextmanager
    def _grace_held(self) -> Iterator[None]:
        """The grace's alarm held back while a checkpoint is written and recorded (it lands right after)."""
        held = hasattr(signal, "pthread_sigmask") and hasattr(signal, "SIGALRM")
        if held:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        try:
            yield
        finally:
            if held:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})

    def on_epoch_end(self, search: Search, stats: EpochStats) -> None:
        done = stats.epoch + 1
        stopping = self.comm.any(self.stop_requested) or (self.stop_after is not None and done >= self.stop_after)
        # The last epoch is always saved: a stop during the final re-scoring resumes into it.
        if stopping or (self.every and done % self.every == 0) or done == search.settings.epochs:
            if finite_weights(search.model):
                with self._grace_held():
                    if self.comm.is_main:
                        save_atomic(search_state(search, self.config), self.path)
                    self.saved_epoch = done
            else:
                log.error("epoch %d left non-finite weights; keeping the previous checkpoint", done)
        if stopping and done < search.settings.epochs:
            self.comm.barrier()  # no rank leaves before rank 0 has written the checkpoint
            self._restore_handlers()
            raise SearchInterrupted(done, self.run_dir)

    def on_final_step(self, search: Search) -> None:
        if self.comm.any(self.stop_requested) and self.saved_epoch == search.settings.epochs:
            self.comm.barrier()
            self._restore_handlers()
            raise SearchInterrupted(
                search.settings.epochs,
                self.run_dir,
                "interrupted during the final re-scoring (all epochs are saved); {hint}",
            )

    def on_search_end(self, search: Search, result: Any) -> None:
        self._restore_handlers()

    def on_search_failed(self, search: Search) -> None:
        self._restore_handlers()
