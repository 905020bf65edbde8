"""Gymnasium ids of rlnas's environments, and the config resolver of sweep job folders, registered when
``rlnas`` is imported.

Registration names entry points as strings, so it imports nothing heavy:
the environment modules load on the first ``gym.make``. Gymnasium before 1.0
also finds :func:`register_envs` through the ``gymnasium.envs`` entry point
(pyproject.toml), so ``gym.make("rlnas/NB201-v0")`` works there without any
import of rlnas; Gymnasium 1.x dropped that plugin hook, so there
``import rlnas`` (or the id ``"rlnas.env:rlnas/NB201-v0"``) registers them.
"""

from __future__ import annotations

import hashlib

ENV_ID = "rlnas/ArchitectureSearch-v0"
#: Tabular benchmarks: one architecture per episode, the table's metric as reward.
TABLE_ENV_IDS = {
    "rlnas/NB201-v0": "rlnas.env.tables:nb201_env",
    "rlnas/ToyTable-v0": "rlnas.env.tables:toy_env",
    "rlnas/Table-v0": "rlnas.env.tables:make_table_env",
}


def register_envs() -> None:
    """Registers every ``rlnas/...`` id that is not registered yet."""
    import gymnasium as gym

    for env_id, entry in {ENV_ID: "rlnas.env.arch_env:ArchitectureEnv", **TABLE_ENV_IDS}.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry)


#: Longest name of a sweep job's folder, in bytes (file systems allow 255 per name).
MAX_JOB_DIR_BYTES = 120
#: The resolver ``conf/hydra/default.yaml`` names a sweep job's folder with.
JOB_DIR_RESOLVER = "rlnas_job_dir"


def job_dir_name(overrides: str) -> str:
    """One folder name for a sweep job's overrides (Hydra's ``override_dirname``).

    A path in a value (``task.data.root=/data/set``) made nested folders, and a dozen overrides a name longer
    than a file system takes (``OSError: File name too long`` before the first job ran). Separators become
    ``_``; a name longer than :data:`MAX_JOB_DIR_BYTES` is cut and ends in ``~`` and a hash of the whole, so two
    jobs never share a folder (the job's overrides are in its ``.hydra/overrides.yaml`` either way).
    """
    name = str(overrides).replace("/", "_").replace("\\", "_").replace("\0", "")
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= MAX_JOB_DIR_BYTES:
        return name
    digest = hashlib.sha1(raw).hexdigest()[:8]
    return raw[: MAX_JOB_DIR_BYTES - 9].decode("utf-8", "ignore") + "~" + digest


def register_resolvers() -> None:
    """Registers :func:`job_dir_name` with OmegaConf (the sweep's job folders name it), once."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver(JOB_DIR_RESOLVER):
        OmegaConf.register_new_resolver(JOB_DIR_RESOLVER, job_dir_name)
