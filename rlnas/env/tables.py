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
    """The ``benchmark:`` node of ``benchmark/NAME.yaml`` in ``config_dir``, then in the package's configs.

    Raises:
        FileNotFoundError: Naming the config dir or the benchmark, with the benchmarks that exist.
    """
    roots = [conf_dir()]
    if config_dir is not None:
        if not Path(config_dir).is_dir():
            what = "not a directory" if Path(config_dir).exists() else "no such directory"
            raise FileNotFoundError(f"config_dir={config_dir}: {what}")
        roots.insert(0, Path(config_dir))  # the user's configs first, beside the package's (as --config-dir)
    plain = "/" not in str(name) and "\\" not in str(name)  # a name, not a path out of the config dirs
    found = [p for root in roots if plain and (p := root / "benchmark" / f"{name}.yaml").is_file()]
    if not found:
        known = sorted({p.stem for root in roots for p in (root / "benchmark").glob("*.yaml")})
        raise FileNotFoundError(f"benchmark={name} is not a benchmark config; known: {', '.join(known)}")
    path = found[0]
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
        config_dir: A config dir of your own whose ``benchmark/NAME.yaml`` is searched before the package's.
        **env_kwargs: Passed to :class:`ArchitectureEnv` (``reward``, ``invalid_action``, ``render_mode``).
    """
    from rlnas.benchmarks.parts import benchmark_parts

    bench = benchmark_config(benchmark, config_dir)
    if path is not None:
        bench["path"] = str(path)
        if "env_var" in bench:  # the path given wins over the config's environment variable
            bench["env_var"] = None
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
