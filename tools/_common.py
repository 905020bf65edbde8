"""Helpers shared by the tools: compose the project's Hydra config outside the app."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]


def load_config(overrides: list[str]) -> DictConfig:
    """The app's config for ``overrides`` (``+task=classification`` added when no task is given)."""
    from rlnas.__main__ import with_default_task

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=with_default_task(list(overrides)))
