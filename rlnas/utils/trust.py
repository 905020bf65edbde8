"""Building objects from config nodes without calling what a file did not mean to name.

Hydra's ``instantiate`` calls whatever ``_target_`` names. A config the user
writes or passes (``--config-dir``) is code they chose; a file that is data (a
run's ``config.yaml`` read back on ``resume=`` or ``controller.init_from=``, a
model folder's ``model.json``) is not, and may come from anyone. So:

- every target is resolved and its type checked before it is called: a space
  must be a :class:`~rlnas.spaces.base.SearchSpace`, a task a
  :class:`~rlnas.tasks.base.Task`, and so on (``torch.load`` or
  ``shutil.copyfile`` is refused before it runs);
- a node read from a data file may name only the project's own classes
  (``rlnas.``), checked before anything is imported, and no nested target;
  a user who resumes a run of their own plug-in (a controller, space or
  reward in a module of theirs) names its module in the environment variable
  ``RLNAS_TRUSTED_TARGETS`` (comma-separated, e.g. ``myctl,mylab.nas``), a
  consent no file can give.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

#: The only module prefix a target read from a data file may have (beside the user's trusted modules).
OWN_PREFIX = "rlnas."
#: Modules (comma-separated) whose targets the user trusts in data files too: their own plug-ins.
TRUST_VARIABLE = "RLNAS_TRUSTED_TARGETS"


def trusted_modules() -> list[str]:
    """The modules named in ``$RLNAS_TRUSTED_TARGETS`` (``myctl`` trusts ``myctl.Base``, not ``myctl_x.Y``)."""
    return [m.strip().rstrip(".") for m in os.environ.get(TRUST_VARIABLE, "").split(",") if m.strip().rstrip(".")]


def _trusted(target: Any) -> bool:
    if not isinstance(target, str) or "\x00" in target:
        return False
    return target.startswith(OWN_PREFIX) or any(target.startswith(f"{m}.") for m in trusted_modules())


class UntrustedConfigError(ValueError):
    """A target in a config names something outside what the key may build."""


def _targets(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    """``(key, target)`` of every ``_target_`` in ``node`` (a config, dict or list), depth first."""
    if isinstance(node, (DictConfig, ListConfig)):
        node = OmegaConf.to_container(node, resolve=False)
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            if key == "_target_":
                yield where, value
            else:
                yield from _targets(value, where)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _targets(value, f"{path}[{i}]")


def check_own_targets(node: Any, source: str, path: str = "") -> None:
    """Refuses a node read from a data file that names a target outside the project.

    Args:
        node: The config (or part of it) read from ``source``.
        source: The file it was read from, for the message.
        path: The node's key in the whole config, for the message.

    Raises:
        UntrustedConfigError: Naming the file, key and target.
    """
    for key, target in _targets(node, path):
        if not _trusted(target):
            module = str(target).rpartition(".")[0] or str(target)
            raise UntrustedConfigError(
                f"{source}: {key}={target!r} is not one of rlnas's own classes; a run's files may only name "
                f"those (a file that is data never runs other code). If it is your own plug-in, trust its module: "
                f"{TRUST_VARIABLE}={module!r}"[:400]
            )


def load_tensor_file(path: str | Path, what: str, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``: tensors, numbers, strings and containers of them, never code.

    Raises:
        ValueError: ``"{path}: not a readable {what} (...)"`` for a truncated or foreign file, or one that
            would need anything else to unpickle (a crafted file).
    """
    import torch

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - a truncated, foreign or crafted file raises many types
        raise ValueError(f"{path}: not a readable {what} ({type(err).__name__})") from None


def load_run_config(path: str | Path) -> DictConfig:
    """A run's saved ``config.yaml`` (data: it may name only the project's own targets).

    Raises:
        UntrustedConfigError: When it names another target.
        ValueError: Naming the file, when it is not a readable YAML mapping.
    """
    from rlnas.utils import check_yaml

    try:
        text = Path(path).read_text()
        check_yaml(text)  # a "billion laughs" file hung a resume as the config was built
        config = OmegaConf.create(text)  # OmegaConf's own YAML loader, as OmegaConf.load, on the text read once
    except Exception as err:  # noqa: BLE001 - YAML syntax errors, tags (!!python/object) and unreadable files
        first = str(err).splitlines()[0] if str(err) else ""
        raise ValueError(f"{path}: not a readable run config ({type(err).__name__}: {first})") from None
    if not isinstance(config, DictConfig):
        raise ValueError(f"{path}: not a run config (a YAML mapping)")
    if not config:  # an emptied file: every section would read as deleted
        raise ValueError(f"{path}: empty; not a run config")
    check_own_targets(config, str(path))
    return config


def checked_instantiate(node: Any, base: type, key: str, source: str | None = None, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate(node, **kwargs)`` once its target is known to be a subclass of ``base``.

    Args:
        node: A config node with a ``_target_`` (no nested targets when read from a data file).
        base: The type the key must build, e.g. ``SearchSpace``.
        key: The node's key (``space``, ``task``...), for the message.
        source: The data file the node was read from; ``None`` for the user's own config.
        **kwargs: Passed to ``instantiate``.

    Raises:
        UntrustedConfigError: When the target is not a class of type ``base`` (or, from a data
            file, not one of the project's own).
    """
    from hydra.utils import get_class, instantiate

    where = f"{source}: " if source else ""
    if source is not None:
        check_own_targets(node, source, key)
    target = node.get("_target_") if isinstance(node, (dict, DictConfig)) else None
    if not isinstance(target, str) or not target:
        raise UntrustedConfigError(f"{where}{key} needs a _target_ naming a {base.__name__} class")
    try:
        cls = get_class(target)  # imports the module; calls nothing
    except Exception:  # noqa: BLE001 - not importable, or a function (torch.load): not a class
        cls = None
    if not isinstance(cls, type) or not issubclass(cls, base):
        raise UntrustedConfigError(
            f"{where}{key}._target_={target} is not a {base.__name__} class; {key} builds only those"
        )
    return instantiate(node, _convert_="all", **kwargs)
