"""A run's config as TensorBoard hyper-parameters: all of it flattened, and the part that tells runs apart."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf


def flat_hparams(cfg: DictConfig) -> dict[str, Any]:
    """The config flattened to ``a.b.c: value`` pairs for TensorBoard."""
    out: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}{k}.")
        else:
            out[prefix[:-1]] = node if isinstance(node, (int, float, str, bool)) else str(node)

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return {k: v for k, v in out.items() if not k.startswith("hydra.")}


def compared_hparams(cfg: DictConfig) -> dict[str, Any]:
    """The hyper-parameters that tell runs apart in TensorBoard's HPARAMS tab.

    The chosen config groups (task, controller, space, reward, ...), the seed and
    every key set on the command line, so a sweep's jobs line up by what was
    swept rather than by a hundred equal settings.
    """
    from hydra.core.hydra_config import HydraConfig

    flat = flat_hparams(cfg)
    chosen: dict[str, Any] = {"seed": flat.get("seed")}
    if not HydraConfig.initialized():
        return flat
    hydra_cfg = HydraConfig.get()
    for group, choice in hydra_cfg.runtime.choices.items():
        if not group.startswith("hydra") and choice is not None:
            chosen[group] = str(choice)
    for override in hydra_cfg.overrides.task:
        key = override.lstrip("+~").partition("=")[0]
        if key in flat:
            chosen[key] = flat[key]
    return chosen
