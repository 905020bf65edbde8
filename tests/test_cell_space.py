"""The NAS-Bench-201 cell space with weight sharing."""

import numpy as np
import pytest
import torch

from rlnas.spaces import NB201Space
from rlnas.supernet import build_child, build_supernet
from tests.conftest import run_cli


def test_arch_strings_follow_nb201_notation():
    space = NB201Space()
    assert space.size == 5**6
    arch = space.encode(
        {
            "e0": "nor_conv_3x3",
            "e1": "nor_conv_3x3",
            "e2": "avg_pool_3x3",
            "e3": "skip_connect",
            "e4": "nor_conv_3x3",
            "e5": "skip_connect",
        }
    )
    assert space.nb201_string(arch) == (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    )
    with pytest.raises(ValueError, match="space.ops"):
        NB201Space(ops=["none", "conv7x7"])


@pytest.mark.parametrize("train", [True, False])
def test_supernet_path_equals_the_standalone_child(train):
    space = NB201Space(channels=(8, 16), cells_per_stage=2)
    torch.manual_seed(0)
    supernet = build_supernet(space, 1)
    x = torch.randn(4, 1, 8, 8)
    for arch in [space.sample(np.random.default_rng(s)) for s in range(6)] + [(0,) * 6]:
        child = supernet.extract_child(arch)
        supernet.train(train)
        child.train(train)
        ours, theirs = supernet(x, arch), child(x)
        assert [f.shape for f in ours] == [(4, 8, 8, 8), (4, 16, 4, 4)]
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        assert set(child.state_dict()) <= set(supernet.state_dict())


def test_all_none_cell_outputs_zero_and_params_add_up():
    space = NB201Space(channels=(8,), cells_per_stage=1)
    supernet = build_supernet(space, 1)
    none = space.encode({f"e{k}": "none" for k in range(6)})
    assert not supernet(torch.randn(2, 1, 8, 8), none)[0].any()
    table = {name: sum(p.numel() for p in m.parameters()) for name, m in supernet.choice_modules()}
    for arch in [none, (3,) * 6, (1, 2, 3, 4, 0, 3)]:
        child = build_child(space, arch, 1)
        assert sum(table[m] for m in supernet.used_modules(arch)) == sum(p.numel() for p in child.parameters())


def test_search_on_the_cell_space_runs(tmp_path):
    proc = run_cli("space=nb201", "+experiment=smoke", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "e0=" in (tmp_path / "best_arch.json").read_text()
