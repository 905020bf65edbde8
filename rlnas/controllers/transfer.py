"""Warm-starting a controller from another run's (``controller.init_from=RUN_DIR``).

Where the two search spaces match, every learned weight carries over. Where
they differ (another task's space, more operations, other decision kinds) the
tensors with the same name and shape carry over — for the ENAS controller the
LSTM core and the heads and embeddings of decision kinds whose choices are the
same — and for the ENAS controller's per-choice rows (a kind's output head and
embedding) the rows of choices both spaces offer under the same name (e.g.
``conv3x3`` in a classification and a detection macro space), matched by name
even where the two kinds have as many choices. The rest keep
their fresh initialisation. The log lists what carried over.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from rlnas.controllers.base import CONTROLLER_FILE, Controller
from rlnas.utils.trust import load_tensor_file

log = logging.getLogger(__name__)


def load_matching(
    module: nn.Module, source: Mapping[str, Tensor], skip: frozenset[str] = frozenset()
) -> tuple[list[str], list[str]]:
    """Copies the tensors of ``source`` that ``module`` has under the same name and shape.

    Args:
        module: The module to load into.
        source: Saved tensors by name.
        skip: Names never copied whole (per-choice rows matched by name instead).

    Returns:
        ``(transferred, kept)``: names copied, and names of ``module`` left as they were.
    """
    own = module.state_dict()
    matched = {k: v for k, v in source.items() if k in own and k not in skip and own[k].shape == v.shape}
    module.load_state_dict(matched, strict=False)
    return sorted(matched), sorted(k for k in own if k not in matched)


def _saved_space(run_dir: Path) -> Any:
    """The search space of the run in ``run_dir`` (from its ``config.yaml``), or ``None``."""
    config = run_dir / "config.yaml"
    if not config.is_file():
        return None
    from rlnas.spaces.base import SearchSpace
    from rlnas.utils.trust import checked_instantiate, load_run_config

    # The other run's config is data: it may name only rlnas's own classes (refused loudly otherwise).
    saved = load_run_config(config)
    if "space" not in saved:
        return None
    try:
        return checked_instantiate(saved.space, SearchSpace, "space", source=str(config))
    except ValueError:
        raise
    except Exception:  # noqa: BLE001 - a space this version cannot build: only same-shape tensors carry over
        return None


def kind_choices(space: Any) -> dict[str, tuple[str, ...]]:
    """Per decision kind, the choice names of its largest decision (the rows of the kind's head)."""
    out: dict[str, tuple[str, ...]] = {}
    for d in space.decisions:
        if len(d.choices) > len(out.get(d.kind, ())):
            out[d.kind] = d.choices
    return out


def _row_keys(kind: str) -> tuple[str, str]:
    """The ENAS policy's tensors with one row per choice of ``kind``."""
    return f"heads.{kind}.weight", f"embeddings.{kind}.weight"


def _renamed_kinds(theirs: Mapping[str, tuple[str, ...]], ours: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Decision kinds both spaces have, with other choices (names or order) in each (``kind_choices`` of each)."""
    return sorted(k for k in set(theirs) & set(ours) if theirs[k] != ours[k])


def _load_matching_choices(
    policy: nn.Module,
    source: Mapping[str, Tensor],
    theirs: Mapping[str, tuple[str, ...]],
    ours: Mapping[str, tuple[str, ...]],
) -> tuple[list[str], list[str]]:
    """Copies head and embedding rows of choices both spaces name alike, for kinds whose choices differ.

    Rows are matched by choice name, never by position: with ``[conv3x3, sepconv3x3,
    maxpool3x3, avgpool3x3]`` in one space and ``[conv5x5, sepconv5x5, conv3x3,
    sepconv3x3]`` in the other, the tensors have the same shape but row 0 means
    another operation.

    Returns:
        ``(copied, fresh)``: descriptions of the tensors whose rows were copied, and of the rows left fresh.
    """
    own = policy.state_dict()
    copied, fresh = [], []
    for kind in _renamed_kinds(theirs, ours):
        pairs = [(theirs[kind].index(c), i) for i, c in enumerate(ours[kind]) if c in theirs[kind]]
        for key in _row_keys(kind):
            if key not in own or key not in source or not pairs:
                continue
            if own[key].shape[1:] != source[key].shape[1:]:
                continue
            with torch.no_grad():
                target = dict(policy.named_parameters())[key]
                for src, dst in pairs:
                    target[dst] = source[key][src].to(target.device)
            copied.append(f"{key} (rows of {', '.join(c for c in ours[kind] if c in theirs[kind])})")
            new = [c for c in ours[kind] if c not in theirs[kind]]
            if new:
                fresh.append(f"{key} (rows of {', '.join(new)})")
    return copied, fresh


def _policy_tensors(controller: Controller, state: Mapping[str, Any]) -> tuple[nn.Module, Mapping[str, Tensor]]:
    """The learned module of ``controller`` and the matching tensors saved in ``state``."""
    if "policy" in state and hasattr(controller, "policy"):  # ENAS: the policy's state dict
        return controller.policy, state["policy"]
    if "model" in state and hasattr(controller, "model"):  # SB3: the policy inside the saved zip
        from stable_baselines3.common.save_util import load_from_zip_file

        # load_data=False: the zip's data part is cloudpickled; only its tensors (loaded weights_only) are read.
        _, params, _ = load_from_zip_file(io.BytesIO(state["model"]), device="cpu", load_data=False)
        return controller.model.policy, params["policy"]
    raise ValueError(
        f"controller.init_from: {type(controller).__name__} has no learned weights to start from "
        "(use it with enas, ppo, maskable_ppo or recurrent_ppo)"
    )


def init_controller_from(controller: Controller, run_dir: str | Path) -> dict[str, list[str]]:
    """Starts ``controller`` from the controller saved in ``run_dir``, sharing what fits.

    Args:
        controller: A freshly built controller.
        run_dir: A finished search's run dir (it holds ``controller.pt``), or that file.

    Returns:
        ``{"transferred": [...], "kept": [...]}`` tensor names.

    Raises:
        FileNotFoundError: When ``run_dir`` holds no saved controller.
        ValueError: When the saved controller is of another kind, or nothing fits.
    """
    given = Path(run_dir).expanduser()
    if given.is_file() and given.name == CONTROLLER_FILE:  # the file itself: its run dir also holds the config
        run_dir = given.parent
    path = Path(run_dir).expanduser() / CONTROLLER_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"controller.init_from={run_dir}: no {CONTROLLER_FILE} there (pass a finished search's run dir)"
        )
    try:  # a controller file is data and never runs code
        state = load_tensor_file(path, "controller file")
    except ValueError as err:
        raise ValueError(f"controller.init_from={run_dir}: {err}") from None
    if not isinstance(state, dict):
        raise ValueError(f"controller.init_from={run_dir}: {path} is not a controller file")
    kind = state.get("controller_class") if isinstance(state, dict) else None
    if kind is not None and kind != type(controller).__name__:
        raise ValueError(
            f"controller.init_from={run_dir}: that run's controller is {kind}, this one "
            f"{type(controller).__name__}; choose the same controller"
        )
    module, source = _policy_tensors(controller, state)
    source_space = _saved_space(Path(run_dir).expanduser())
    by_name = source_space is not None and hasattr(controller, "policy")
    skip: frozenset[str] = frozenset()
    if by_name:  # ENAS rows of renamed kinds are matched by choice name below, never copied whole
        theirs, ours = kind_choices(source_space), kind_choices(controller.space)
        skip = frozenset(key for kind in _renamed_kinds(theirs, ours) for key in _row_keys(kind))
    transferred, kept = load_matching(module, source, skip)
    if by_name:
        rows, fresh = _load_matching_choices(controller.policy, source, theirs, ours)
        transferred += rows
        kept = [k for k in kept if k not in {r.split(" ")[0] for r in rows}] + fresh
    if not transferred:
        raise ValueError(f"controller.init_from={run_dir}: no weight of the saved controller fits this one")
    log.info(
        "controller.init_from=%s: %d tensors transferred (%s); %d re-initialised (%s)",
        run_dir,
        len(transferred),
        ", ".join(transferred),
        len(kept),
        ", ".join(kept) or "none",
    )
    return {"transferred": transferred, "kept": kept}
