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


def build_parts(overrides: list[str], device_name: str, seed: int):
    """Config, device, space, task, device-resident data and the supernet with its head.

    Returns:
        ``(cfg, device, space, task, data, model)`` where ``model`` is a
        :class:`~rlnas.tasks.Network` around the supernet, on ``device``.
    """
    import torch
    from hydra.utils import instantiate

    from rlnas.supernet import build_supernet
    from rlnas.tasks import Network
    from rlnas.utils import resolve_device

    torch.manual_seed(seed)
    cfg = load_config(overrides)
    device = resolve_device(device_name)
    space = instantiate(cfg.space, _convert_="all")
    task = instantiate(cfg.task, _convert_="all")
    data = task.load_data(seed=seed).to(device)
    backbone = build_supernet(space, data.in_channels)
    model = Network(backbone, task.build_head(backbone.out_channels, data)).to(device)
    return cfg, device, space, task, data, model
