"""Package layout for setuptools (metadata lives in pyproject.toml).

The Hydra configs stay at the top of the repository in ``conf/`` and ship
inside the wheel as the package ``rlnas.conf`` (its groups as
``rlnas.conf.task`` and so on), so an installed ``rlnas`` finds them from any
directory.
"""

from pathlib import Path

from setuptools import find_packages, setup

CONF = Path(__file__).resolve().parent / "conf"
conf_packages = ["rlnas.conf"] + sorted(
    f"rlnas.conf.{d.name}" for d in CONF.iterdir() if d.is_dir() and not d.name.startswith(("_", "."))
)

setup(
    packages=[*find_packages(include=["rlnas", "rlnas.*"]), *conf_packages],
    package_dir={"rlnas.conf": "conf"},
    package_data={"rlnas": ["py.typed"], **{name: ["*.yaml"] for name in conf_packages}},
)
