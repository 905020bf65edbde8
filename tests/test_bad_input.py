"""Bad configs and bad data files: each stops with one line that names the key or the file.

The config table goes through the same steps as ``python -m rlnas`` up to the
start of the search (override check, composition, typed validation, building);
``tests/test_cli.py`` checks the exit code 2 and the missing traceback end to end.
"""

import json

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from PIL import Image

from rlnas.__main__ import resumed_config, user_error_message, with_default_task
from rlnas.config import check_overrides, validate_config
from rlnas.data import DataError, load_image_classification
from rlnas.data.detection import load_coco, load_detection
from rlnas.data.images import _imagefolder_images
from rlnas.data.sequences import load_sequences
from rlnas.search.builder import build_search
from tests.conftest import ROOT

BAD_CONFIGS = [
    # unknown names in config groups (sweep values too)
    (["controller=foo"], "controller=foo is not a controller config; allowed: darts, enas, evolution, gdas, grid"),
    (
        ["+task=segmentation"],
        "task=segmentation is not a task config; allowed: classification, cluttered_digits, detection",
    ),
    (["space=huge"], "space=huge is not a space config; allowed: attention, conv1d, macro"),
    (["reward=fast"], "reward=fast is not a reward config; allowed: hard, metric, mnas"),
    (["controller=enas,evolutionary"], "controller=evolutionary is not a controller config"),
    # wrong types
    (["seed=abc"], "seed='abc' must be int"),
    (["search.epochs=1.5"], "search.epochs=1.5 must be int"),
    (["search.nesterov=maybe"], "search.nesterov='maybe' must be bool"),
    (["threads=two"], "threads='two' must be int or null"),
    (["checkpoint.every=often"], "checkpoint.every='often' must be int"),
    (["controller.lr=fast"], "controller.lr='fast' must be float"),
    (["space.ops=conv3x3"], "space.ops='conv3x3' must be a list of str"),
    (["task.data.limit=all"], "task.data.limit='all' must be int or null"),
    # unknown keys
    (["+search.epoch=3"], "search.epoch is not a setting; allowed: archs_per_step, augment, batch_size"),
    (["+checkpoint.evry=2"], "checkpoint.evry is not a setting; allowed: every, stop_after"),
    (["+space.depth=3"], "space.depth is not a setting of MacroSpace; allowed: activation, channels, dims, num_layers"),
    (
        ["+task.data.colour=1"],
        "task.data.colour is not a setting of load_image_classification; allowed: generator, image_size",
    ),
    (["space.depth=3"], "space.depth is not a setting of MacroSpace; allowed: activation, channels, dims"),
    # zero or negative budgets, out-of-range values
    (["search.epochs=0"], "search.epochs must be >= 1, got 0"),
    (["search.batch_size=-8"], "search.batch_size must be >= 1, got -8"),
    (["search.warmup_epochs=-1"], "search.warmup_epochs must be >= 0, got -1"),
    (["search.warmup_epochs=2"], "search.warmup_epochs=2 leaves no epoch to train the controller (search.epochs=2)"),
    (["search.lr=-1"], "search.lr=-1 and search.lr_min=0.0005 need 0 <= lr_min <= lr, lr > 0"),
    (["checkpoint.every=-1"], "checkpoint.every must be >= 0, got -1"),
    (["space.num_layers=0"], "space.num_layers must be >= 1, got 0"),
    (["selection.k=0"], "selection.k must be >= 1, got 0"),
    # unknown choices inside a section
    (["search.optimizer=rmsprop"], "search.optimizer='rmsprop' is unknown; allowed: ['sgd', 'adamw']"),
    (["selection.rule=pareto"], "selection.rule='pareto' is unknown; allowed:"),
    (["selection.cost=watts"], "selection.cost='watts' is not a cost; allowed:"),
    (["costs.track=[params,watts]"], "costs.track: unknown cost 'watts'; allowed:"),
    (["task.reward_metric=auc"], "task.reward_metric='auc' is unknown for the classification task"),
    (["task.data.name=svhn"], "task.data.name='svhn' is unknown; allowed:"),
    (["space.activation=swish9"], "space.activation='swish9'"),
    (["+task=detection", "task.map_backend=cocoapi"], "task.map_backend='cocoapi' is unknown; allowed:"),
    (["device=tpu"], "device='tpu' is not a device; use auto, cpu, cuda or cuda:N"),
    # impossible or inconsistent constraints
    (["reward=hard", "reward.targets.params=10"], "reward.targets.params=10 cannot be met"),
    (["reward=mnas", "reward.targets.latency_ms=-1"], "reward.targets.latency_ms must be > 0"),
    (["reward=tunas_abs", "reward.beta=0.2"], "reward.beta must be < 0"),
    # a penalty at or above every metric: breaking the limit pays, the search looks for infeasible networks
    (["reward=hard", "reward.penalty=1"], "reward.penalty=1 is not below the best accuracy a feasible architecture"),
    (["reward.mask_infeasible=true"], "reward.mask_infeasible=true needs reward.targets (the hard limits)"),
    # numbers no setting means (NaN, infinities)
    (["search.lr=inf"], "search.lr=inf must be a finite number"),
    (["search.weight_decay=nan"], "search.weight_decay=nan must be a finite number"),
    (["controller.lr=-inf"], "controller.lr=-inf must be a finite number"),
    # controllers too large to allocate: a traceback from the allocator, or the kernel's out-of-memory kill
    (["controller.lstm_size=1000000000"], "controller.lstm_size=1000000000 gives a policy of 8e+18 numbers"),
    (["controller=ppo", "controller.net_arch=[100000,100000]"], "controller.net_arch=[100000, 100000] gives a policy"),
    (
        ["controller=recurrent_ppo", "controller.lstm_hidden_size=1000000"],
        "controller.net_arch=[64, 64] with controller.lstm_hidden_size=1000000 gives a policy",
    ),
    (["controller=maskable_ppo", "controller.rollout_archs=100000000"], "gives a rollout buffer of"),
    # finite but past float32's range: torch's "cannot be converted to type float without overflow"
    (["search.lr=1e308"], "search.lr=1e+308 is past float32's range (3.4e38)"),
    (["search.weight_decay=1e300"], "search.weight_decay=1e+300 is past float32's range (3.4e38)"),
    (["reward=tunas_abs", "reward.beta=-inf"], "reward.beta=-inf must be a finite number"),
    (["reward=mnas", "reward.targets.latency_ms=inf"], "reward.targets.latency_ms=inf must be a finite number"),
    # machine settings and combinations that cannot work
    (["device=mps"], "device='mps' is not usable here"),
    (["threads=-3"], "threads must be >= 1 or null, got -3"),
    (
        ["+task=sequence", "space=macro"],
        "space=MacroSpace does not fit the sequence task; choose one of space=attention, space=rnn_cell",
    ),
    # "whose inputs need one of MacroSpace": a class name, and the 2-D macro space does not fit either.
    (["+task=mnist1d", "space=attention"], "space=AttentionSpace does not fit the mnist1d task; choose space=conv1d"),
    (["space=rnn_cell"], "space=RNNCellSpace does not fit the classification task"),
    (["costs.latency_table=/nonexistent/lut.json"], "costs.latency_table=/nonexistent/lut.json: no such file"),
    (["task.data.limit=3"], "3 samples leave 1 for training and 1 for validation; a search needs at least 2 and 1"),
    # Hydra's "Key 'stem_stride' is not in struct": a setting the group's config leaves out, or none at all
    (["space.stem_stride=2"], "space.stem_stride is a setting the chosen config leaves out: add it with +space.stem"),
    (["search.epoch=1"], "search.epoch is not a setting; allowed: archs_per_step, augment, batch_size"),
    (["+task=mnist1d", "task.data.generator.noise=1"], "task.data.generator.noise is not a setting; allowed: ["),
    # one batch of 100 million architectures: the ENAS policy asked for 25.6 GB (a traceback after the epochs)
    (["search.final_samples=100000000"], "search.final_samples=100000000 draws more architectures at once than a"),
    (["search.archs_per_step=200000"], "search.archs_per_step=200000 draws more architectures at once than a"),
    (["task.data.limit=1"], "task.data.limit=1 keeps 1 class; classification needs at least 2"),
    # the limit named as the cause, not the generator's sample count or the split fractions alone
    (["+task=cluttered_digits", "task.data.limit=5"], "task.data.limit=5 is below the 10 images cluttered_digits"),
    (["+task=mnist1d", "task.data.limit=5"], "task.data.limit=5: dataset of 5 samples is too small to split"),
    # differentiable controllers: spaces without a weighted supernet, tabular benchmarks, settings
    (["+task=sequence", "controller=darts"], "controller=darts needs a supernet with a weighted forward"),
    (["controller=gdas", "controller.tau_min=20"], "controller.tau_min=20 exceeds controller.tau_max=10.0"),
    (["controller=darts", "controller.mode=snas"], "controller.mode='snas' is unknown; allowed: ['darts', 'gdas']"),
    (["search.bn_calibration=-1"], "search.bn_calibration must be >= 0, got -1"),
    (["search.final_finetune=-1"], "search.final_finetune must be >= 0, got -1"),
    (["search.bn_calibration_scope=some"], "search.bn_calibration_scope='some' is unknown; allowed: ['final', 'all']"),
    (["search.final_proxy=snip"], "search.final_proxy='snip' is unknown; allowed: [None, 'synflow']"),
    (
        ["+task=sequence", "space=attention", "search.final_proxy=synflow"],
        "search.final_proxy=synflow cannot rank these networks: their LayerNorm subtracts a mean of its input",
    ),
    # data paths given in the config
    (["task.data.name=imagefolder", "task.data.root=/nonexistent/pets"], "/nonexistent/pets"),
    (["+task=detection", "task.data.name=coco"], "task.data.annotations"),
    # seeds, drills and sizes that no run can use
    (["seed=-1"], "seed must be >= 0, got -1"),
    (["data_seed=-5"], "data_seed must be >= 0 or null, got -5"),
    # past 64 bits torch said "Overflow when unpacking long long", naming no key
    (["seed=99999999999999999999"], "seed must be <= 4294967295 (2**32 - 1), got 99999999999999999999"),
    (["data_seed=4294967296"], "data_seed must be <= 4294967295 (2**32 - 1), got 4294967296"),
    (["checkpoint.stop_after=-1"], "checkpoint.stop_after must be >= 1 or null, got -1"),
    (["task.data.image_size=0"], "task.data.image_size must be >= 1, got 0"),
    (["+task=detection", "task.data.num_images=0"], "task.data.num_images must be >= 3, got 0"),
    (["task.data.val_fraction=1.5"], "task.data.val_fraction=1.5 and task.data.test_fraction=0.2 must be in (0, 1)"),
    # optimiser settings that stop learning or diverge
    (["search.grad_clip=0"], "search.grad_clip must be > 0 (a gradient norm bound), got 0"),
    (["search.momentum=1.5"], "search.momentum must be in [0, 1), got 1.5"),
    (["search.weight_decay=-1"], "search.weight_decay must be >= 0, got -1"),
    (["search.weight_decay=40"], "search.weight_decay=40 times search.lr=0.05 is 2; it must be < 1"),
    # controller settings that silently mean something else
    (["controller.temperature=0"], "controller.temperature=0 must be > 0 or null"),
    (["controller.tanh_constant=-1"], "controller.tanh_constant=-1 must be > 0 or null"),
    (["controller.entropy_weight=-1"], "controller.entropy_weight=-1 must be >= 0"),
    (["controller.lstm_size=0"], "controller.lstm_size=0 must be >= 1"),
    (["controller=tpe", "controller.n_startup_trials=-1"], "controller.n_startup_trials=-1 must be >= 0"),
    (["controller=ppo", "controller.n_epochs=0"], "controller.n_epochs=0 must be >= 1"),
    (["controller=ppo", "controller.batch_size=0"], "controller.batch_size=0 must be >= 1"),
    (["controller=ppo", "controller.clip_range=0"], "controller.clip_range=0 must be > 0"),
    (["controller=ppo", "controller.ent_coef=-0.1"], "controller.ent_coef=-0.1 must be >= 0"),
    (["controller=ppo", "controller.device=tpu"], "controller.device='tpu' is not a device"),
    # rewards that cannot be computed or weigh nothing
    (["reward=hard", "reward.targets.params=abc"], "reward.targets.params='abc' must be a number"),
    (["reward=weighted", "reward.weights.params=null"], "reward.weights is empty; name at least one cost"),
    # a boolean where a number or a switch belongs: YAML makes true 1 and bool() makes "maybe" true
    (["reward=hard", "reward.targets.size_mb=true"], "reward.targets.size_mb=True must be a number"),
    (["reward=weighted", "reward.weights.params=true"], "reward.weights.params=True must be a number"),
    (["reward=hard", "reward.mask_infeasible=maybe"], "reward.mask_infeasible must be true or false, got 'maybe'"),
    # settings that would silently drop data, score nothing or search nothing
    (["task.data.limit=-5"], "task.data.limit must be >= 1 or null, got -5"),
    (["reward.metric=loss"], "reward.metric='loss' differs from task.reward_metric='accuracy'"),
    (["space=nb201", "space.ops=[none]"], "space.ops=['none'] needs an operation other than none"),
    (["+task=detection", "task.score_threshold=2"], "task.score_threshold must be in [0, 1), got 2"),
    # several processes
    (["distributed.backend=mpi"], "distributed.backend='mpi' is unknown; allowed: ['auto', 'gloo', 'nccl']"),
    (["distributed.timeout_s=0"], "distributed.timeout_s must be > 0, got 0"),
    # sizes that would exhaust memory: refused before anything is allocated
    (["task.data.image_size=100000"], "task.data.image_size: the resized digits would take"),
    (["+task=detection", "task.data.canvas_size=100000"], "task.data.num_images, canvas_size: the digit canvases"),
    # 12.5 million decisions per architecture (5,000 layers): the latency table alone ran for minutes
    (["space.num_layers=1000000"], "space.num_layers=1000000 gives 500,000,500,000 decisions per architecture"),
    (["space.num_layers=400", "space.channels=[100000]"], "space.num_layers=400, space.channels=[100000] and"),
    (["space.channels=[100000000]"], "space.channels=[100000000] and space.ops="),
    (["space=nb201", "space.cells_per_stage=100000"], "space.cells_per_stage=100000 and space.channels=[16, 32, 64]"),
    # the estimate took every kernel as 3x3: conv99999 on MNIST-1D's 40 steps ran for minutes on 9 GB of weights
    # the sequence spaces had no such check: a traceback from torch's allocator, or minutes building edges
    (
        ["+task=sequence", "space=rnn_cell", "space.hidden_size=10000000"],
        "space.num_nodes=6 and space.hidden_size=10000000: the supernet would hold about",
    ),
    (
        ["+task=sequence", "space=rnn_cell", "space.num_nodes=100000"],
        "space.num_nodes=100000 and space.hidden_size=64: the supernet would hold about",
    ),
    (
        ["+task=sequence", "space=attention", "space.d_model=100000000"],
        "space.d_model=100000000, space.ffn_ratios=[1, 2, 4] and space.kernel_size=3: the supernet would hold",
    ),
    (
        ["+task=mnist1d", "space.ops=[conv999999]"],
        "space.ops=['conv999999']: the supernet would hold about 91.6 GiB of weights",
    ),
    # the ground-truth comparison at the end of a run
    (["ground_truth.random=many"], "ground_truth.random='many' must be int"),
    (["ground_truth.seeds=-1"], "ground_truth.seeds must be >= 1, got -1"),
    (["ground_truth.epochs=0"], "ground_truth.epochs must be >= 1, got 0"),
    (["+task=mnist1d", "task.data.layout=sequence"], "task.data.layout='sequence' does not fit the mnist1d task"),
    (  # the comparison tests on a split the data would not have: said before the search, not after it
        ["+task=mnist1d", "task.data.test_fraction=0"],
        "task.data.test_fraction=0 leaves no test split for the closing ground-truth comparison",
    ),
    # head and policy settings that learn nothing or mean nothing
    (["task.dropout=1.5"], "task.dropout must be in [0, 1), got 1.5"),
    (["task.label_smoothing=1"], "task.label_smoothing must be in [0, 1), got 1"),
    (["task.label_smoothing=-0.1"], "task.label_smoothing must be in [0, 1), got -0.1"),
    (["controller=ppo", "controller.gae_lambda=-1"], "controller.gae_lambda=-1 must be in [0, 1]"),
    # weights and bounds whose sign silently reverses what they do
    (["controller.grad_clip=-1"], "controller.grad_clip=-1 must be > 0 or null"),
    (["controller.skip_weight=-5"], "controller.skip_weight=-5 must be >= 0"),
    (["controller=ppo", "controller.vf_coef=-1"], "controller.vf_coef=-1 must be >= 0"),
    # a zero-width hidden layer makes a constant policy; a fractional width was truncated
    (["controller=ppo", "controller.net_arch=[0]"], "controller.net_arch=[0] must be a list of layer widths >= 1"),
    (["controller=recurrent_ppo", "controller.lstm_hidden_size=0"], "controller.lstm_hidden_size=0 must be a whole"),
    (["space.channels=[32.5,64]"], "space.channels=[32.5, 64] must be a list of int"),
    # detection settings under which no box is a positive, kept or ever placed
    (["+task=detection", "task.head_channels=0"], "task.head_channels must be >= 1, got 0"),
    # torch's "num_channels (12) must be divisible by num_groups (8)", and an allocation of 670 million GiB
    (["+task=detection", "task.head_channels=12"], "task.head_channels must be a multiple of 8"),
    (["+task=detection", "task.head_channels=100000000"], "task.head_channels=100000000: the head would hold about"),
    (["+task=detection", "task.center_radius=-1"], "task.center_radius must be > 0 (in strides), got -1"),
    (["+task=detection", "task.nms_iou=2"], "task.nms_iou must be in [0, 1] (an IoU), got 2"),
    (["+task=detection", "task.max_detections=0"], "task.max_detections must be >= 1, got 0"),
    (["+task=detection", "task.data.objects=[5,1]"], "task.data.objects=[5, 1] must satisfy 0 <= min <= max"),
    (["+task=detection", "task.data.objects=[0,0]"], "task.data.objects=[0, 0] must satisfy 0 <= min <= max"),
    # 500 digits of side 10 on a 64-pixel canvas: minutes of placement attempts, then most missing
    (["+task=detection", "task.data.objects=[1,500]"], "1 <= max <= 36 (digits of side 10 that fit on a 64-pixel"),
    (["+task=detection", "task.data.objects=[3]"], "task.data.objects=[3] must be a list of 2 int"),
    # a single name where a list belongs was "AnyNode is not a ListConfig"
    (["costs.track=params"], "costs.track='params' must be a list of str"),
    # an interpolation is checked as the value it resolves to (a list here was a TypeError traceback)
    (['search.lr=${oc.decode:"[1]"}'], "search.lr=[1] must be float"),
    (["search.lr=${oc.env:RLNAS_NO_SUCH_VARIABLE}"], "search.lr=${oc.env:RLNAS_NO_SUCH_VARIABLE}: KeyError"),
    # a repeated choice silently doubles its prior; a meta tensor holds no data
    (["+task=sequence", "space=rnn_cell", "space.activations=[tanh,tanh]"], "space.activations has duplicates"),
    (["+task=sequence", "space=attention", "space.heads=[2,2]"], "space.heads has duplicates: [2, 2]"),
    (["+task=sequence", "space=attention", "space.layer_types=[]"], "space.layer_types must list at least one"),
    (["space=nb201", "space.ops=[none,none,skip_connect]"], "space.ops has duplicates"),
    (["device=meta"], "device='meta' holds no data"),
    # a builtin has no signature to check settings against: "no signature found for builtin type"
    (
        ["controller._target_=collections.OrderedDict"],
        "controller._target_=collections.OrderedDict is not a class rlnas can build",
    ),
    # a deleted section a run reads: "Key 'search' is not in struct", mid-run
    (["~search"], "search: the section was deleted (~search), and a run reads it"),
    # Hydra's "Key 'seed' is not in struct", and "Could not delete from config. 'threads' does not exist"
    (["~seed"], "~seed: seed is a setting every run has; set it instead (seed=VALUE, default 0)"),
    (["~threads"], "~threads: threads is a setting every run has; set it instead (threads=VALUE, default null)"),
    (["~space"], "space: the section was deleted (~space)"),
    (["+benchmark=toy", "~reward"], "reward: the section was deleted (~reward)"),
    # a table run trains nothing: a task or standalone ground-truth draws were silently ignored
    (["+task=mnist1d", "+benchmark=toy"], "+task and +benchmark: a benchmark run looks each architecture up"),
    (["+benchmark=toy", "ground_truth.random=2"], "ground_truth.random=2: a benchmark run trains nothing standalone"),
    (
        ["+task=sequence", "task.data.name=file", "task.data.path=x.csv", "task.data.features=0"],
        "task.data.features must be a whole number >= 1 (values per step), got 0",
    ),
]


def first_error(overrides: list[str], run_dir) -> str:
    """The one-line message ``python -m rlnas +experiment=smoke OVERRIDES`` stops with."""
    args = with_default_task(["+experiment=smoke", *overrides])
    try:
        check_overrides(args)
        with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
            cfg = compose("config", overrides=[a for a in args if not a.startswith("-")])
        validate_config(cfg)
        build_search(cfg, run_dir, progress=False)
    except Exception as err:  # noqa: BLE001 - the message is what is checked
        message = user_error_message(err)
        assert message is not None, f"{overrides}: not reported as a config error: {err!r}"
        return message
    pytest.fail(f"{overrides} was accepted")


@pytest.mark.parametrize("overrides, message", BAD_CONFIGS, ids=[" ".join(o) for o, _ in BAD_CONFIGS])
def test_bad_config_stops_with_one_line_naming_the_key(overrides, message, tmp_path):
    got = first_error(overrides, tmp_path / "run")
    assert message in got
    assert "\n" not in got
    assert not (tmp_path / "run" / "history.csv").exists()


@pytest.mark.parametrize(
    "overrides",
    [
        ["reward=weighted", "reward.targets.params=10"],
        ["reward=mnas", "reward.targets.latency_ms=1e-9"],
        ["reward=tunas_abs", "reward.targets.params=10"],
    ],
    ids=lambda o: " ".join(o),
)
def test_targets_that_only_scale_a_penalty_may_lie_below_every_architecture(overrides, tmp_path):
    """A weighted reward's normaliser, MnasNet's soft target or TuNAS's were refused as "cannot be met",
    as if they were limits; every architecture is scored against them. (reward=hard's limit is refused.)"""
    args = with_default_task(["+experiment=smoke", *overrides])
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=args)
    validate_config(cfg)
    search = build_search(cfg, tmp_path / "run", progress=False)
    assert not search.reward.limits
    assert "cannot be met" in first_error([*overrides, "reward.mask_infeasible=true"], tmp_path / "masked")


def test_resume_errors_name_the_key(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.yaml there"):
        resumed_config(str(tmp_path), [])
    (tmp_path / "config.yaml").write_text("seed: 0\nsearch:\n  epochs: 3\n")
    with pytest.raises(ValueError, match=r"resume: search.epochs=5 conflicts with the run's search.epochs=3"):
        resumed_config(str(tmp_path), ["search.epochs=5"])
    with pytest.raises(ValueError, match="would swap a config group"):
        resumed_config(str(tmp_path), ["controller=random"])


def test_a_resume_override_of_a_key_the_bare_config_lacks_is_named_as_a_change_to_the_run(tmp_path):
    """``resume=RUN trials.budget=6``: the run's trials section is not in the bare config Hydra composes first."""
    (tmp_path / "config.yaml").write_text("seed: 0\ntrials:\n  budget: 4\n")
    argv = with_default_task([f"resume={tmp_path}", "trials.budget=6", "threads=1"])
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=argv)  # Hydra's "Key 'trials' is not in struct" before
    assert cfg.trials.budget == 6
    with pytest.raises(ValueError, match=r"resume: trials.budget=6 conflicts with the run's trials.budget=4"):
        resumed_config(str(tmp_path), argv)
    same = with_default_task([f"resume={tmp_path}", "trials.budget=4"])
    assert resumed_config(str(tmp_path), same).trials.budget == 4


def test_every_config_section_has_hostile_cases():
    """A section added to the app's config without a bad-value case here fails this test."""
    from dataclasses import fields

    from rlnas.config import RlnasConfig

    covered = {o.lstrip("+~").partition("=")[0].split(".")[0] for overrides, _ in BAD_CONFIGS for o in overrides}
    # resume= is checked in test_checkpoint.py and test_trust.py, benchmark.* in test_benchmarks.py and
    # trials.* in test_trials.py (other loops).
    elsewhere = {"resume", "benchmark", "trials"}
    missing = [f.name for f in fields(RlnasConfig) if f.name not in covered | elsewhere]
    assert not missing, f"config sections without a bad-config case: {missing}"


# --- bad data files -------------------------------------------------------


def _image(path, size=(20, 24), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    shape = (*size, 3) if mode == "RGB" else size
    Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(path)


def _coco(root, **changes):
    """A valid two-image COCO dataset under ``root`` with ``changes`` applied to its JSON."""
    for name in ("a.png", "b.png"):
        _image(root / "img" / name, size=(40, 80))
    payload = {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 80, "height": 40},
            {"id": 2, "file_name": "b.png", "width": 80, "height": 40},
        ],
        "annotations": [
            {"id": 10, "image_id": 1, "bbox": [8, 4, 16, 20], "category_id": 7},
            {"id": 12, "image_id": 2, "bbox": [0, 0, 80, 40], "category_id": 3},
        ],
        "categories": [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}],
        **changes,
    }
    (root / "ann.json").write_text(json.dumps(payload))
    return root / "img", root / "ann.json"


def _coco_with_broken_image(root):
    images, annotations = _coco(root)
    (images / "a.png").write_bytes(b"GIF89a")
    return images, annotations


def _imagefolder(root, files):
    for rel, kind in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "image":
            _image(path)
        else:
            path.write_bytes(kind)
    return root


def load_folder(root):
    return load_image_classification("imagefolder", root=str(root), image_size=16)


def test_hidden_files_and_folders_are_not_samples_or_classes(tmp_path):
    # macOS's "._a.png" resource forks stopped a search as unreadable images; a Jupyter
    # ".ipynb_checkpoints" folder with an image in it became a third class.
    root = _imagefolder(
        tmp_path,
        {
            "cat/a.png": "image",
            "cat/._a.png": b"\x00\x05\x16\x07",
            "cat/.thumbs/t.png": "image",
            "dog/b.png": "image",
            ".ipynb_checkpoints/c.png": "image",
        },
    )
    x, y, classes = _imagefolder_images(str(root), 8)
    assert classes == ["cat", "dog"] and len(x) == 2 and sorted(y.tolist()) == [0, 1]


def _mnist_raw(root, n=2):
    """MNIST's four idx files (the format torchvision reads) holding ``n`` blank digits each."""
    import struct

    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split in ("train", "t10k"):
        images = struct.pack(">BBBBiii", 0, 0, 0x08, 3, n, 28, 28) + bytes(n * 28 * 28)
        (raw / f"{split}-images-idx3-ubyte").write_bytes(images)
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(struct.pack(">BBBBi", 0, 0, 0x08, 1, n) + bytes(n))
    return root


def load_coco_at(images_ann):
    return load_coco(*images_ann, canvas_size=32)


BAD_DATA = [
    ("imagefolder root missing", lambda t: load_folder(t / "nope"), "nope"),
    (
        "imagefolder without class folders",
        lambda t: load_folder(_imagefolder(t, {"notes.txt": b"x"})),
        "Couldn't find any class folder",
    ),
    (
        "imagefolder class without images",
        lambda t: load_folder(_imagefolder(t, {"cat/readme.txt": b"x"})),
        "Found no valid file for the classes cat",
    ),
    (
        "imagefolder truncated png",
        lambda t: load_folder(_imagefolder(t, {"cat/a.png": "image", "dog/b.png": b"\x89PNG\r\n"})),
        "b.png: unreadable image",
    ),
    (
        "imagefolder empty jpg",
        lambda t: load_folder(_imagefolder(t, {"cat/a.png": "image", "dog/c.jpg": b""})),
        "c.jpg: unreadable image",
    ),
    (
        "imagefolder with a symlink loop: each image reached again and again, in every split",
        lambda t: (
            _imagefolder(t, {"cat/a.png": "image", "dog/b.png": "image"}),
            (t / "cat" / "up").symlink_to(".."),
            load_folder(t),
        ),
        "are one file (through a symlink): each image must appear once under task.data.root",
    ),
    ("cifar10 files missing", lambda t: load_image_classification("cifar10", root=str(t)), "cifar10 not found under"),
    # Resized beyond memory (cifar10 at image_size=224 is 36 GB): the kernel killed the run, with no message.
    (
        "imagefolder at an image size no memory holds",
        lambda t: load_image_classification(
            "imagefolder", root=str(_imagefolder(t, {"cat/a.png": "image", "dog/b.png": "image"})), image_size=100_000
        ),
        "task.data.image_size: 2 images would take 447.0 GiB, more than a quarter of this machine's",
    ),
    (
        "mnist resized beyond memory",
        lambda t: load_image_classification("mnist", root=str(_mnist_raw(t)), image_size=100_000),
        "task.data.image_size: 4 resized images would take 298.0 GiB",
    ),
    ("coco annotations missing", lambda t: load_coco(t, t / "nope.json", 32), "nope.json: annotations file not found"),
    (
        "coco malformed json",
        lambda t: (t.joinpath("bad.json").write_text("{not json"), load_coco(t, t / "bad.json", 32)),
        "bad.json: malformed JSON",
    ),
    (
        "coco json not an object",
        lambda t: (t.joinpath("bad.json").write_text("[]"), load_coco(t, t / "bad.json", 32)),
        "bad.json: a COCO file needs",
    ),
    (
        "coco box outside its image",
        lambda t: load_coco_at(
            _coco(t, annotations=[{"id": 5, "image_id": 1, "bbox": [70, 0, 20, 10], "category_id": 3}])
        ),
        "ann.json: annotations[0] (id 5)",
    ),
    (
        "coco unknown category",
        lambda t: load_coco_at(
            _coco(t, annotations=[{"id": 6, "image_id": 1, "bbox": [1, 1, 5, 5], "category_id": 99}])
        ),
        "unknown category_id 99",
    ),
    (
        "coco unknown image id",
        lambda t: load_coco_at(
            _coco(t, annotations=[{"id": 8, "image_id": 42, "bbox": [1, 1, 5, 5], "category_id": 3}])
        ),
        "image_id 42 names no images record",
    ),
    (
        "coco repeated image id",
        lambda t: load_coco_at(
            _coco(
                t,
                images=[
                    {"id": 1, "file_name": "a.png", "width": 80, "height": 40},
                    {"id": 1, "file_name": "b.png", "width": 80, "height": 40},
                ],
            )
        ),
        "ann.json: images[1] repeats image id 1",
    ),
    (
        "coco repeated category id",
        lambda t: load_coco_at(_coco(t, categories=[{"id": 3, "name": "cat"}, {"id": 3, "name": "dog"}])),
        "ann.json: categories[1] repeats category id 3",
    ),
    (
        "coco NaN box",
        lambda t: load_coco_at(
            _coco(t, annotations=[{"id": 4, "image_id": 1, "bbox": [1, 1, float("nan"), 5], "category_id": 3}])
        ),
        "annotations[0] (id 4): bbox must be four finite numbers",
    ),
    (
        "coco image id as a list",
        lambda t: load_coco_at(
            _coco(t, annotations=[{"id": 4, "image_id": [1], "bbox": [1, 1, 5, 5], "category_id": 3}])
        ),
        "annotations[0] (id 4): image_id [1] names no images record",
    ),
    (
        "coco annotation not a record",
        lambda t: load_coco_at(_coco(t, annotations=[7])),
        "ann.json: annotations[0] is int, not a record",
    ),
    (
        "coco width not a number",
        lambda t: load_coco_at(
            _coco(
                t,
                images=[
                    {"id": 1, "file_name": "a.png", "width": "wide", "height": 40},
                    {"id": 2, "file_name": "b.png", "width": 80, "height": 40},
                ],
            )
        ),
        "ann.json: images[0] (id 1): width must be a positive number, got 'wide'",
    ),
    (
        "coco too few images for a test split",
        lambda t: load_detection("coco", *map(str, _coco(t)), canvas_size=32),
        "2 images leave none for the test split",
    ),
    (
        "coco malformed bbox",
        lambda t: load_coco_at(_coco(t, annotations=[{"id": 9, "image_id": 1, "bbox": "wide", "category_id": 3}])),
        "bbox must be",
    ),
    (
        "coco image file missing",
        lambda t: load_coco_at(
            _coco(
                t,
                images=[
                    {"id": 1, "file_name": "zzz.png", "width": 80, "height": 40},
                    {"id": 2, "file_name": "b.png", "width": 80, "height": 40},
                ],
            )
        ),
        "zzz.png: image file",
    ),
    (
        "coco without annotations",
        lambda t: load_coco_at(_coco(t, annotations=[])),
        "ann.json: no annotations; detection needs boxes",
    ),
    # Crowd regions (iscrowd=1) were learnt as single objects; with only those, the search ran on them.
    (
        "coco with crowd regions only",
        lambda t: load_coco_at(
            _coco(t, annotations=[{"id": 3, "image_id": 1, "bbox": [1, 1, 5, 5], "category_id": 3, "iscrowd": 1}])
        ),
        "ann.json: no annotations (1 crowd regions, iscrowd=1, are not objects)",
    ),
    (
        "coco iscrowd not 0 or 1",
        lambda t: load_coco_at(
            _coco(t, annotations=[{"id": 3, "image_id": 1, "bbox": [1, 1, 5, 5], "category_id": 3, "iscrowd": "y"}])
        ),
        "annotations[0] (id 3): iscrowd must be 0 or 1, got 'y'",
    ),
    # True == 1 as a key: a boolean category or image id named record 1, silently.
    (
        "coco category id true",
        lambda t: load_coco_at(
            _coco(
                t,
                categories=[{"id": 1, "name": "cat"}],
                annotations=[{"id": 3, "image_id": 1, "bbox": [1, 1, 5, 5], "category_id": True}],
            )
        ),
        "unknown category_id True",
    ),
    (
        "coco image id true",
        lambda t: load_coco_at(
            _coco(t, annotations=[{"id": 3, "image_id": True, "bbox": [1, 1, 5, 5], "category_id": 3}])
        ),
        "image_id True names no images record",
    ),
    # 300,000 boxes on one image: the loss's location-to-box tensors took the machine's memory (killed).
    (
        "coco with more boxes on one image than the loss can compare",
        lambda t: load_coco_at(
            _coco(
                t, annotations=[{"id": k, "image_id": 2, "bbox": [1, 1, 5, 5], "category_id": 3} for k in range(1001)]
            )
        ),
        "images record 2 has 1,001 boxes; at most 1,000 per image",
    ),
    # 100,000 nested brackets: json's RecursionError, a traceback.
    (
        "coco json nested too deeply",
        lambda t: (
            t.joinpath("deep.json").write_text("[" * 100_000 + "]" * 100_000),
            load_coco(t, t / "deep.json", 32),
        ),
        "deep.json: malformed JSON (nested too deeply",
    ),
    (
        "coco image of another size than declared",
        lambda t: load_coco_at(
            _coco(
                t,
                images=[
                    {"id": 1, "file_name": "a.png", "width": 160, "height": 80},
                    {"id": 2, "file_name": "b.png", "width": 80, "height": 40},
                ],
            )
        ),
        "ann.json: images record 1 declares 160x80 but a.png is 80x40",
    ),
    ("coco unreadable image", lambda t: load_coco_at(_coco_with_broken_image(t)), "a.png"),
    ("coco without images", lambda t: load_coco_at(_coco(t, images=[], annotations=[])), "ann.json"),
    ("detection data.name unknown", lambda t: load_detection("voc"), "task.data.name='voc'"),
    (  # the generator's settings beside COCO data were ignored, silently
        "detection canvases settings beside coco",
        lambda t: load_detection("coco", images=str(t), annotations=str(t / "a.json"), objects=(1, 2)),
        "task.data.objects=[1, 2] shapes the generated digit canvases; task.data.name=coco reads your images",
    ),
    # settings that apply to other data were ignored, silently
    (
        "sequence features beside the embedded digits",
        lambda t: load_sequences("digits", features=3),
        "task.data.features=3 splits a .csv file's rows into steps; the digits sequences have their own",
    ),
    (
        "sequence generator beside the embedded digits",
        lambda t: load_sequences("digits", generator={"iid_noise_scale": 0.1}),
        "task.data.generator applies to task.data.name=mnist1d, not 'digits'",
    ),
    (
        "sequence sample count beside the embedded digits",
        lambda t: load_sequences("digits", num_samples=100_000_000),
        "task.data.num_samples applies to task.data.name=mnist1d (signals generated), not 'digits'",
    ),
    (
        "sequence file missing",
        lambda t: load_sequences("file", path=str(t / "seq.npz")),
        "seq.npz: sequence file not found",
    ),
    (
        "sequence file of another type",
        lambda t: load_sequences("file", path=_write(t / "seq.txt", "1,2,3")),
        "seq.txt: unknown sequence file type '.txt'",
    ),
    (
        "sequence csv with a ragged row",
        lambda t: load_sequences("file", path=_write(t / "s.csv", "0,1,2,3\n1,4,5\n")),
        "s.csv: line 2: 2 values, the first row has 3",
    ),
    (
        "sequence csv with text",
        lambda t: load_sequences("file", path=_write(t / "s.csv", "0,1,2\ncat,4,5\n")),
        "s.csv: line 2: expected an integer label",
    ),
    (
        "sequence npz without labels",
        lambda t: load_sequences("file", path=_npz(t / "s.npz", x=np.zeros((4, 3)))),
        "s.npz: needs arrays 'x' (N, steps, features) and 'y' (N,); missing ['y']",
    ),
    (
        "sequence npz with negative labels",
        lambda t: load_sequences("file", path=_npz(t / "s.npz", x=np.zeros((4, 3)), y=np.array([0, 1, -1, 0]))),
        "s.npz: labels must be class indices",
    ),
    (
        "sequence npz with zero steps",
        lambda t: load_sequences("file", path=_npz(t / "s.npz", x=np.zeros((4, 0, 2)), y=np.array([0, 1, 1, 0]))),
        "s.npz: x has 0 steps of 2 features",
    ),
    (
        "sequence npz with zero features",
        lambda t: load_sequences("file", path=_npz(t / "s.npz", x=np.zeros((4, 3, 0)), y=np.array([0, 1, 1, 0]))),
        "s.npz: x has 3 steps of 0 features",
    ),
    (
        "sequence npz with a label of a million",
        lambda t: load_sequences("file", path=_npz(t / "s.npz", x=np.zeros((4, 3)), y=np.array([0, 1, 1_000_000, 0]))),
        "s.npz: label 1000000 is out of range",
    ),
    (
        "sequence npz with values of 1e38",
        lambda t: load_sequences(
            "file", path=_npz(t / "s.npz", x=np.full((4, 3), 1e38, dtype=np.float32), y=np.array([0, 1, 1, 0]))
        ),
        "s.npz: values up to 1e+38",
    ),
    ("sequence file name without a path", lambda t: load_sequences("file"), "task.data.path must name"),
    # Class names as labels: numpy's "ufunc 'minimum' did not contain a loop" traceback.
    (
        "sequence npz with class names as labels",
        lambda t: load_sequences("file", path=_npz(t / "s.npz", x=np.zeros((4, 3)), y=np.array(["a", "b", "a", "b"]))),
        "s.npz: labels must be class indices 0..K-1, got <U1 values such as 'a'",
    ),
    # A legacy encoding: "'utf-8' codec can't decode byte 0xe9", no file named.
    (
        "sequence csv not utf-8",
        lambda t: load_sequences("file", path=str(_write_bytes(t / "s.csv", b"0,1,2\n1,4,5\n\xe9,1,2\n"))),
        "s.csv: not UTF-8 text (byte 0xe9 at offset 12)",
    ),
    # A compressed array declaring 7.5 GiB: inflated whole (8 GB) before any check.
    (
        "sequence npz declaring more than memory holds",
        lambda t: load_sequences("file", path=str(_npz_declaring(t / "s.npz", (20_000, 100_000, 1)))),
        "s.npz: array 'x' (20000, 100000, 1) would take 7.5 GiB",
    ),
]


def _write_bytes(path, data):
    path.write_bytes(data)
    return path


def _npz_declaring(path, shape):
    """An ``.npz`` whose ``x`` header declares ``shape`` (float32) but holds no data: a decompression bomb's header."""
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    labels = io.BytesIO()
    np.save(labels, np.zeros(shape[0], dtype=np.int64))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", header.getvalue())
        archive.writestr("y.npy", labels.getvalue())
    return path


def _write(path, text):
    path.write_text(text)
    return str(path)


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize("case, load, message", BAD_DATA, ids=[c for c, _, _ in BAD_DATA])
def test_bad_data_file_stops_with_one_line_naming_it(case, load, message, tmp_path):
    with pytest.raises(DataError) as err:
        load(tmp_path)
    text = user_error_message(err.value)
    assert message in text
    assert "\n" not in text


def test_every_data_loader_has_hostile_cases():
    """Each loader of users' files (image folders, torchvision sets, COCO, sequence files) has bad-file cases."""
    names = " ".join(case for case, _, _ in BAD_DATA)
    for loader in ("imagefolder", "cifar10", "coco", "sequence npz", "sequence csv"):
        assert loader in names, loader


def test_images_of_mixed_sizes_and_modes_load_resized(tmp_path):
    _image(tmp_path / "cat" / "a.png", size=(20, 24))
    _image(tmp_path / "cat" / "b.png", size=(31, 17), mode="L")
    _image(tmp_path / "dog" / "c.png", size=(64, 64))
    _image(tmp_path / "dog" / "d.png", size=(8, 8))
    data = load_image_classification(
        "imagefolder", root=str(tmp_path), image_size=16, val_fraction=0.25, test_fraction=0.25
    )
    assert data.train.x.shape[1:] == (3, 16, 16)
    assert len(data.train) + len(data.val) + len(data.test) == 4


@pytest.mark.parametrize(
    "entry, message",
    [
        (-1, r"entries_ms.stem=-1 is not a latency"),
        ("fast", r"entries_ms.stem='fast' is not a latency"),
        (float("nan"), r"entries_ms.stem=nan is not a latency"),
        # finite, yet summed to inf in the cost means (accepted, with NumPy's overflow warning)
        (1e308, r"entries_ms.stem=1e\+308 is not a latency \(milliseconds >= 0 and at most an hour"),
    ],
)
def test_latency_tables_with_values_that_are_not_latencies_are_refused(tmp_path, entry, message):
    import json as json_

    from rlnas.costs.latency import LatencyTable

    path = tmp_path / "lut.json"
    path.write_text(
        json_.dumps({"device": "cpu", "input_shape": [1, 8, 8], "entries_ms": {"head": 0.1, "stem": entry}})
    )
    with pytest.raises(ValueError, match=message):
        LatencyTable.load(path)


def test_a_latency_table_without_an_op_names_the_file_and_the_module(tmp_path):
    from rlnas.costs.latency import LatencyTable

    path = tmp_path / "lut.json"
    LatencyTable({"head": 0.1, "stem": 0.2}, "cpu", [1, 8, 8]).save(path)
    with pytest.raises(KeyError, match=rf"the latency table {path} has no entry for module 'layers.0.conv3x3'"):
        LatencyTable.load(path).predict(["stem", "layers.0.conv3x3"])


def test_retrain_refuses_an_arch_of_fractions_instead_of_rounding_it(tmp_path):
    from rlnas.retrain import load_run

    (tmp_path / "best_arch.json").write_text(json.dumps({"arch": [1.7, 0, 2]}))
    with pytest.raises(ValueError, match=r"best_arch.json: .*'arch' must be a list of whole numbers .*1.7"):
        load_run(str(tmp_path / "best_arch.json"), None)


def test_retrain_says_what_a_bare_list_of_choices_lacks(tmp_path):
    from rlnas.retrain import load_run

    # "TypeError: list indices must be integers or slices, not str" said nothing of the file's shape.
    (tmp_path / "best_arch.json").write_text(json.dumps([1, 0, 2]))
    with pytest.raises(ValueError, match=r"best_arch.json: .*holds a JSON list, not an object with an 'arch' key"):
        load_run(str(tmp_path / "best_arch.json"), None)


def test_more_threads_than_cores_are_named_in_a_warning(caplog):
    import logging
    import os

    import torch

    from rlnas.utils import set_threads

    before = torch.get_num_threads()
    cores = len(os.sched_getaffinity(0))
    try:
        with caplog.at_level(logging.WARNING, logger="rlnas"):
            set_threads(cores)
            assert not caplog.records
            set_threads(cores + 7)
    finally:
        torch.set_num_threads(before)
    assert [r.getMessage() for r in caplog.records] == [
        f"threads={cores + 7} exceeds the {cores} cores this process may use: slower, and latencies measured too high"
    ]


def test_an_interpolated_setting_is_saved_as_the_value_the_run_used():
    """seed=${now:%S} was saved as such in config.yaml: a resume resolved it again, to another seed."""
    from omegaconf import OmegaConf

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["+task=classification", "seed=${now:%S}", "search.lr=${search.momentum}"])
    validate_config(cfg)
    saved = OmegaConf.to_yaml(cfg)
    assert "${" not in saved
    assert isinstance(cfg.seed, int) and 0 <= cfg.seed < 60 and cfg.search.lr == cfg.search.momentum
    # Seconds 00-09 resolve with a leading zero: still the number the schema takes.
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["+task=classification", "seed=${oc.decode:'007'}", "data_seed=${now:0%S}"])
    validate_config(cfg)
    assert cfg.data_seed == int(OmegaConf.to_container(cfg)["data_seed"]) and isinstance(cfg.data_seed, int)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["task.data.root=/data/photos"], "task.data.root=/data/photos is read for imagefolder, cifar10 and mnist"),
        (
            ["+task=cluttered_digits", "task.data.root=/data/photos"],
            "task.data.name=cluttered_digits needs no files (set task.data.name=imagefolder",
        ),
        (["+task=sequence", "task.data.path=/data/s.npz"], "task.data.path=/data/s.npz is read when task.data.name="),
        (
            ["+task=detection", "task.data.annotations=/data/ann.json"],
            "task.data.images and task.data.annotations are read when task.data.name=coco",
        ),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)
def test_files_named_for_an_embedded_dataset_are_refused_not_ignored(overrides, message, tmp_path):
    """task.data.root=PHOTOS without task.data.name=imagefolder searched the digits, silently."""
    assert message in first_error(overrides, tmp_path / "run")
