"""One rank of a small search, for tests/test_distributed.py: ``torchrun ... distributed_worker.py OUT ARGS``.

Runs a whole +experiment=smoke search (with the overrides in ARGS) and saves
this rank's supernet weights (at the start and at the end) and sampled architectures to OUT/rank{R}_of{W}.pt.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from rlnas.config import CONF_DIR
from rlnas.search.builder import build_search, distributed_settings
from rlnas.utils.distributed import init_from_env, shutdown


def main(out: str, overrides: list[str]) -> None:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["+task=classification", "+experiment=smoke", *overrides])
    comm = init_from_env(distributed_settings(cfg), str(cfg.device))
    try:
        search = build_search(cfg, Path(out) / f"run{comm.world}", progress=False, comm=comm)
        start = {k: v.detach().cpu().clone() for k, v in search.model.state_dict().items()}
        result = search.run()
        weights = {k: v.detach().cpu() for k, v in search.model.state_dict().items()}
        archs = [row["arch"] for row in search.history]
        torch.save(
            {"start": start, "weights": weights, "archs": archs, "best": result.best.arch},
            Path(out) / f"rank{comm.rank}_of{comm.world}.pt",
        )
    finally:
        shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
