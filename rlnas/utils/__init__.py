"""Small shared helpers: seeding, device selection, config sections as dataclass fields."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seeds Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else the CPU.

    Raises:
        ValueError: If CUDA is requested but not available.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name!r} but CUDA is not available; use device=cpu or device=auto")
    return device


def section_values(section: Any, cls: type, prefix: str) -> dict[str, Any]:
    """A config section as a dict, after checking every key is a field of the dataclass ``cls``.

    Raises:
        ValueError: Naming the first unknown key as ``prefix.key`` and the allowed keys.
    """
    from omegaconf import OmegaConf

    given = OmegaConf.to_container(section, resolve=True) if OmegaConf.is_config(section) else dict(section)
    assert isinstance(given, dict)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ValueError(f"{prefix}.{unknown[0]} is not a setting; allowed: {sorted(known)}")
    return given
