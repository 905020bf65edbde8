"""The project's tabular benchmarks as Gymnasium environments, for any RL library.

``gymnasium.make("rlnas/NB201-v0", path="nb201_cifar10_test.csv")`` is one
architecture per episode: one action per cell edge (its operation), the
table's metric as the reward at the last step, the allowed actions from
``env.unwrapped.action_masks()`` (as for ``rlnas/ArchitectureSearch-v0``). ``rlnas/ToyTable-v0`` is the hidden-target
table (no file). Any ``conf/benchmark/NAME.yaml``, a user's own included, is
reachable with ``gymnasium.make("rlnas/Table-v0", benchmark="NAME")``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from rlnas.env.arch_env import ArchitectureEnv
from rlnas.utils import conf_dir


def benchmark_config(name: str, config_dir: str | Path | None = None) -> dict[str, Any]:
    """The ``benchmark:`` node of ``benchmark/NAME.yaml`` in ``config_dir`` (default: the package's configs).

    Raises:
        FileNotFoundError: Naming the file, with the benchmarks that exist there.
    """
    root = Path(config_dir) if config_dir is not None else conf_dir()
    path = root / "benchmark" / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (root / "benchmark").glob("*.yaml"))
        raise FileNotFoundError(f"benchmark={name}: no {path}; known: {', '.join(known)}")
    node = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    assert isinstance(node, dict)
    return dict(node.get("benchmark", {}))


def make_table_env(
    benchmark: str,
    path: str | None = None,
    metric: str | None = None,
    config_dir: str | Path | None = None,
    **env_kwargs: Any,
) -> ArchitectureEnv:
    """An :class:`ArchitectureEnv` whose evaluator answers from a tabular benchmark.

    Args:
        benchmark: The benchmark config's name (``nb201_cifar10``, ``toy``, or one of yours).
        path: The table file, instead of the config's ``path`` and its environment variable.
        metric: The table column to reward, instead of the config's.
        config_dir: Where ``benchmark/NAME.yaml`` lives (default: the package's configs).
        **env_kwargs: Passed to :class:`ArchitectureEnv` (``reward``, ``invalid_action``, ``render_mode``).
    """
    from rlnas.benchmarks.parts import benchmark_parts

    bench = benchmark_config(benchmark, config_dir)
    if path is not None:
        bench["path"], bench["env_var"] = str(path), None
    if metric is not None:
        bench["metric"] = metric
    bench.pop("evaluations", None)
    bench.pop("archs_per_step", None)
    space, evaluator = benchmark_parts(bench)
    return ArchitectureEnv(space, evaluator, **env_kwargs)


def nb201_env(path: str | None = None, metric: str | None = None, **env_kwargs: Any) -> ArchitectureEnv:
    """``rlnas/NB201-v0``: NAS-Bench-201 CIFAR-10 (``path`` or ``$RLNAS_NB201_CIFAR10`` names the table)."""
    return make_table_env("nb201_cifar10", path, metric, **env_kwargs)


def toy_env(**env_kwargs: Any) -> ArchitectureEnv:
    """``rlnas/ToyTable-v0``: the hidden-target table (reward = share of decisions matching a hidden architecture)."""
    return make_table_env("toy", **env_kwargs)
