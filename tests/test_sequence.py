"""Sequence task, recurrent and attention spaces, their supernets, and controller transfer."""

import json

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from rlnas.controllers.transfer import init_controller_from
from rlnas.costs import CostModel
from rlnas.data.sequences import load_sequences
from rlnas.search.builder import build_controller
from rlnas.spaces import AttentionSpace, RNNCellSpace
from rlnas.supernet import build_child, build_supernet
from rlnas.tasks import Network, SequenceClassificationTask
from tests.conftest import run_cli
from tools._common import load_config

SPACES = [RNNCellSpace(num_nodes=5, hidden_size=16), AttentionSpace(num_layers=2, d_model=16, heads=(1, 2, 4))]


def test_digits_read_row_by_row_with_fixed_splits():
    data = load_sequences("digits", seed=0)
    again = load_sequences("digits", seed=0)
    assert data.train.x.shape[1:] == (8, 8) and data.in_channels == 8 and data.num_classes == 10
    assert len(data.train) + len(data.val) + len(data.test) == 1797
    torch.testing.assert_close(data.val.x, again.val.x)
    assert abs(float(data.train.x.mean())) < 1e-4  # normalised with training statistics


def test_users_sequence_files_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 5, 2)).astype(np.float32), rng.integers(0, 3, 30)
    np.savez(tmp_path / "seq.npz", x=x, y=y)
    data = load_sequences("file", path=str(tmp_path / "seq.npz"), seed=0)
    assert data.train.x.shape[1:] == (5, 2) and data.num_classes == 3
    rows = ["label," + ",".join(f"v{i}" for i in range(10))]
    rows += [f"{label}," + ",".join(f"{v:.4f}" for v in seq.reshape(-1)) for seq, label in zip(x, y)]
    (tmp_path / "seq.csv").write_text("\n".join(rows) + "\n")
    from_csv = load_sequences("file", path=str(tmp_path / "seq.csv"), features=2, seed=0)
    torch.testing.assert_close(from_csv.train.x, data.train.x, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("space", SPACES, ids=lambda s: type(s).__name__)
def test_supernet_path_equals_its_standalone_child_and_costs_are_exact(space):
    torch.manual_seed(0)
    supernet = build_supernet(space, in_channels=3).eval()
    task = SequenceClassificationTask()
    data = load_sequences("digits", limit=50, seed=0)
    head = task.build_head(supernet.out_channels, data)
    costs = CostModel(
        space, supernet, head, lambda a: Network(build_child(space, a, 3), head), (8, 3), None, track=["params"]
    )
    x = torch.randn(4, 8, 3)
    rng = np.random.default_rng(0)
    for _ in range(6):
        arch = space.sample(rng)
        child = supernet.extract_child(arch).eval()
        torch.testing.assert_close(child(x)[0], supernet(x, arch)[0])
        own = sum(p.numel() for p in child.parameters()) + sum(p.numel() for p in head.parameters())
        assert costs(arch)["params"] == own


def test_rnn_cell_decisions_follow_enas():
    space = RNNCellSpace(num_nodes=4, activations=("tanh", "relu"))
    assert [d.name for d in space.decisions] == [
        "node0/act",
        "node1/input",
        "node1/act",
        "node2/input",
        "node2/act",
        "node3/input",
        "node3/act",
    ]
    assert [d.num_choices for d in space.decisions if d.kind == "input"] == [1, 2, 3]
    inputs, acts, loose = space.cell((1, 0, 0, 0, 1, 1, 0))  # node1<-0, node2<-0, node3<-1
    assert inputs == [-1, 0, 0, 1] and acts == ["relu", "tanh", "relu", "tanh"] and loose == [2, 3]


# recurrent_ppo (10 s here) shares the PPO family's code with ppo and maskable_ppo: run on purpose (-m slow).
@pytest.mark.parametrize(
    "name",
    [
        "enas",
        "random",
        "evolution",
        "tpe",
        "grid",
        "ppo",
        "maskable_ppo",
        pytest.param("recurrent_ppo", marks=pytest.mark.slow),
    ],
)
def test_every_controller_proposes_and_learns_on_the_sequence_spaces(name):
    """Valid proposals on both sequence spaces; the learning controllers improve on a hidden-target reward."""
    for space in SPACES:
        cfg = load_config([f"controller={name}", "+task=sequence"])
        ctrl = build_controller(cfg.controller, space, seed=0)
        # Reward: the share of decisions equal to a hidden architecture of the space.
        target = np.asarray(space.sample(np.random.default_rng(1)))
        means = []
        for _ in range(12):
            archs = ctrl.propose(10)
            assert len(archs) == 10 and all(space.validate(a) == a for a in archs)
            rewards = [float(np.mean(np.asarray(a) == target)) for a in archs]
            ctrl.observe(archs, rewards)
            means.append(np.mean(rewards))
        if ctrl.learns:  # the last three batches beat the first (uniform for every learner) by a margin
            assert np.mean(means[-3:]) > means[0] + 0.1, (name, type(space).__name__, means)


# attention (8 s) runs the same command line on the other sequence space: on purpose (-m slow).
@pytest.mark.parametrize("space", ["rnn_cell", pytest.param("attention", marks=pytest.mark.slow)])
def test_sequence_search_runs_end_to_end(space, tmp_path):
    proc = run_cli("+task=sequence", f"space={space}", "+experiment=smoke", "reward=mnas", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    best = json.loads((tmp_path / "best_arch.json").read_text())
    assert best["task"] == "sequence" and 0 < best["metrics"]["val_accuracy"] <= 1
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert np.isfinite(summary["final_random_mean_reward"])


@pytest.fixture(scope="module")
def classification_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("source")
    proc = run_cli("+experiment=smoke", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return run_dir


def test_transfer_to_the_same_space_loads_every_weight(classification_run):
    cfg = load_config(["+task=classification", f"controller.init_from={classification_run}"])
    ctrl = build_controller(cfg.controller, instantiate(cfg.space, _convert_="all"), seed=5)
    saved = torch.load(classification_run / "controller.pt", weights_only=False)["policy"]
    assert all(torch.equal(saved[k], v) for k, v in ctrl.policy.state_dict().items())
    # The file itself names its run dir as well (it was "no controller.pt there").
    by_file = build_controller(cfg.controller, instantiate(cfg.space, _convert_="all"), seed=5)
    init_controller_from(by_file, classification_run / "controller.pt")
    assert all(torch.equal(saved[k], v) for k, v in by_file.policy.state_dict().items())


def test_transfer_across_spaces_keeps_the_core_and_the_shared_choices(classification_run):
    cfg = load_config(["+task=detection"])
    space = instantiate(cfg.space, _convert_="all")  # 3x3 ops shared with the source, 5x5 ops new, no pools
    cold = build_controller(cfg.controller, space, seed=0)
    warm = build_controller(cfg.controller, space, seed=0)
    report = init_controller_from(warm, classification_run)
    saved = torch.load(classification_run / "controller.pt", weights_only=False)["policy"]
    assert torch.equal(warm.policy.lstm.weight_ih_l0, saved["lstm.weight_ih_l0"])
    ops = list(space.decisions[0].choices)
    source_ops = ["conv3x3", "sepconv3x3", "maxpool3x3", "avgpool3x3"]
    shared = [(i, op) for i, op in enumerate(source_ops) if op in ops]
    assert [op for _, op in shared] == ["conv3x3", "sepconv3x3"]
    for i, op in shared:
        torch.testing.assert_close(warm.policy.heads["op"].weight[ops.index(op)], saved["heads.op.weight"][i])
    torch.testing.assert_close(
        warm.policy.heads["op"].weight[ops.index("conv5x5")], cold.policy.heads["op"].weight[ops.index("conv5x5")]
    )
    assert any("rows of conv5x5, sepconv5x5" in k for k in report["kept"])


def test_transfer_errors_name_the_key(classification_run, tmp_path):
    cfg = load_config(["+task=classification"])
    space = instantiate(cfg.space, _convert_="all")
    with pytest.raises(FileNotFoundError, match="controller.init_from=.*no controller.pt there"):
        init_controller_from(build_controller(cfg.controller, space, seed=0), tmp_path)
    ppo = build_controller(load_config(["+task=classification", "controller=ppo"]).controller, space, seed=0)
    with pytest.raises(ValueError, match="that run's controller is ENASController, this one PPOController"):
        init_controller_from(ppo, classification_run)


def test_a_found_recurrent_cell_retrains_exports_and_quantises(tmp_path):
    from hydra import compose, initialize_config_dir

    from rlnas.retrain import retrain
    from tests.conftest import ROOT

    proc = run_cli("+task=sequence", "+experiment=smoke", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "retrain",
            overrides=[
                f"arch={tmp_path / 'run' / 'best_arch.json'}",
                "train.epochs=2",
                "compress=int8",
                "quantize.calibration_samples=32",
            ],
        )
    report = retrain(cfg, tmp_path / "retrained")
    rows = {row["variant"]: row for row in report["variants"]}
    assert rows["onnxruntime fp32"]["max_abs_diff"] <= 1e-4
    # An unrolled cell cannot be FX-traced: its int8 model is dynamically quantised.
    assert rows["int8 (dynamic)"]["size_mb"] < 0.5 * rows["pytorch fp32"]["size_mb"]


def test_sequence_csvs_as_spreadsheets_save_them_read_alike(tmp_path):
    """A byte-order mark hid the first label (its row was taken for a header and dropped, silently);
    semicolons or tabs and an upper-case suffix were refused."""
    from rlnas.data.sequences import read_sequence_file

    rows = [(i % 3, [round(0.1 * i + j, 2) for j in range(4)]) for i in range(9)]

    def text(sep: str) -> str:
        return "".join(sep.join([str(label), *map(str, values)]) + "\n" for label, values in rows)

    (tmp_path / "plain.csv").write_text(text(","))
    x, y = read_sequence_file(tmp_path / "plain.csv", features=2)
    assert x.shape == (9, 2, 2) and y.tolist() == [r[0] for r in rows]
    variants = {
        "bom.csv": text(",").encode("utf-8-sig"),
        "semicolons.csv": text(";").encode(),
        "tabs.csv": ("label\tv0\tv1\tv2\tv3\n" + text("\t")).encode(),
        "UPPER.CSV": text(",").encode(),
        "decimal_commas.csv": text(";").replace(".", ",").encode(),  # 0,5 is 0.5 where ';' separates
        "float_labels.csv": "".join(  # a float label column ("2.0"), as pandas writes one
            ",".join([f"{label}.0", *map(str, values)]) + "\n" for label, values in rows
        ).encode(),
    }
    for name, content in variants.items():
        (tmp_path / name).write_bytes(content)
        x2, y2 = read_sequence_file(tmp_path / name, features=2)
        assert torch.equal(x2, x) and torch.equal(y2, y), name
