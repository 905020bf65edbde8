"""The Hydra configs, installed as the package ``rlnas.conf`` (see setup.py)."""
