import numpy as np
import pytest
import torch

from rlnas.spaces import AttentionSpace, MacroSpace, NB201Space, RNNCellSpace
from rlnas.supernet import build_child, build_supernet
from rlnas.supernet.macro import count_params


@pytest.mark.parametrize("seed", range(6))
def test_supernet_path_equals_standalone_child(small_space, seed):
    torch.manual_seed(seed)
    supernet = build_supernet(small_space, in_channels=3)
    arch = small_space.sample(np.random.default_rng(seed))
    child = supernet.extract_child(arch)
    x = torch.randn(5, 3, 12, 12)
    for mode in ("train", "eval"):
        supernet.train(mode == "train")
        child.train(mode == "train")
        expected = supernet(x, arch)
        got = child(x)
        assert len(expected) == len(got) == 2
        for e, g in zip(expected, got):
            torch.testing.assert_close(g, e, rtol=0, atol=0)


def test_child_gradients_match_supernet_gradients(small_space):
    torch.manual_seed(0)
    supernet = build_supernet(small_space, in_channels=1)
    arch = small_space.sample(np.random.default_rng(3))
    child = supernet.extract_child(arch)
    x = torch.randn(4, 1, 8, 8)
    supernet(x, arch)[-1].square().mean().backward()
    child(x)[-1].square().mean().backward()
    own = dict(supernet.named_parameters())
    for name, p in child.named_parameters():
        torch.testing.assert_close(p.grad, own[name].grad)


def test_child_holds_only_its_ops(small_space):
    supernet = build_supernet(small_space, in_channels=1)
    arch = small_space.validate([0] * len(small_space))  # conv3x3 everywhere, no skips
    child = build_child(small_space, arch, in_channels=1)
    assert all(list(layer.keys()) == ["conv3x3"] for layer in child.layers)
    assert {n for n, _ in child.named_parameters()} <= {n for n, _ in supernet.named_parameters()}
    assert count_params(child) < count_params(supernet)


def test_feature_shapes_follow_stages():
    space = MacroSpace(num_layers=6, channels=[8, 16, 32])
    supernet = build_supernet(space, in_channels=1)
    feats = supernet(torch.randn(2, 1, 15, 15), space.sample(np.random.default_rng(0)))
    assert [tuple(f.shape) for f in feats] == [(2, 8, 15, 15), (2, 16, 8, 8), (2, 32, 4, 4)]


def test_skip_across_two_reductions_is_used():
    space = MacroSpace(num_layers=3, ops=["conv3x3"], channels=[4, 8, 16])
    arch = [0] * len(space)
    arch[space.skip_index[2][0]] = 1  # layer 0 (stage 0) -> layer 2 (stage 2)
    child = build_child(space, arch, in_channels=1, track_running_stats=False)
    assert "0>2" in child.adapters
    out = child(torch.randn(2, 1, 8, 8))
    assert out[-1].shape == (2, 16, 2, 2)


def test_stem_stride_and_width_multiplier():
    space = MacroSpace(num_layers=4, channels=[128, 256], width_multiplier=0.25, stem_stride=4)
    assert space.channels == (32, 64)
    supernet = build_supernet(space, in_channels=1)
    arch = space.sample(np.random.default_rng(0))
    feats = supernet(torch.randn(2, 1, 64, 64), arch)
    assert [tuple(f.shape) for f in feats] == [(2, 32, 16, 16), (2, 64, 8, 8)]
    torch.testing.assert_close(
        supernet.extract_child(arch)(torch.ones(2, 1, 64, 64))[-1],
        supernet(torch.ones(2, 1, 64, 64), arch)[-1],
        rtol=0,
        atol=0,
    )


@pytest.mark.parametrize(
    "space, shape",
    [
        (NB201Space(channels=(8, 16), cells_per_stage=2), (4, 1, 8, 8)),
        (RNNCellSpace(num_nodes=5, hidden_size=16), (4, 8, 1)),
        (AttentionSpace(num_layers=2, d_model=16, heads=(1, 2, 4)), (4, 8, 1)),
        (
            MacroSpace(
                dims=1,
                num_layers=4,
                ops=["conv3", "conv7", "dilconv3", "sepconv5", "maxpool3", "avgpool3", "identity"],
                channels=[8, 16],
            ),
            (4, 1, 1, 40),
        ),
    ],
    ids=["nb201", "rnn_cell", "attention", "conv1d"],
)
def test_supernet_path_equals_its_child_in_train_mode_with_gradients(space, shape):
    """What the search trains is what a retrain builds: same outputs and same gradients, name by name."""
    torch.manual_seed(0)
    supernet = build_supernet(space, in_channels=1).train()
    rng = np.random.default_rng(0)
    for _ in range(3):
        arch = space.sample(rng)
        child = supernet.extract_child(arch).train()
        x = torch.randn(*shape)
        supernet.zero_grad()
        torch.manual_seed(1)  # the same dropout masks, if a space has any
        ours = supernet(x, arch)
        torch.manual_seed(1)
        theirs = child(x)
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(b, a, rtol=0, atol=0)
        ours[-1].square().mean().backward()
        theirs[-1].square().mean().backward()
        shared = dict(supernet.named_parameters())
        for name, p in child.named_parameters():
            # A sliced choice (the attention space's FFN widths) is the leading block of the shared tensor.
            block = tuple(slice(0, n) for n in p.shape)
            theirs_grad = shared[name].grad
            if p.grad is None:
                assert theirs_grad is None or not theirs_grad[block].any(), name
            else:
                torch.testing.assert_close(p.grad, theirs_grad[block], rtol=1e-5, atol=1e-7)


def _calibration_case(space, seed: int):
    from rlnas.supernet.sharing import shared_weights

    torch.manual_seed(seed)
    supernet = build_supernet(space, in_channels=3)
    # Non-trivial BN affine parameters, so a wrong statistic cannot hide behind weight 1, bias 0.
    for m in supernet.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
            torch.nn.init.uniform_(m.bias, -0.5, 0.5)
    arch = space.sample(np.random.default_rng(seed))
    child = build_child(space, arch, in_channels=3, track_running_stats=True)
    child.load_state_dict(shared_weights(supernet.state_dict(), child), strict=False)
    return supernet, child, arch


@pytest.mark.parametrize(
    "make_space",
    [lambda: MacroSpace(num_layers=4, channels=[8, 16]), lambda: NB201Space(channels=[8, 16, 32], cells_per_stage=1)],
    ids=["macro", "nb201"],
)
def test_calibrated_batchnorm_scores_like_a_standalone_network(make_space):
    """Per-architecture BN statistics: the supernet path scores as the child with running stats from the same images."""
    from rlnas.evaluators.supernet import calibrated_batchnorm

    space = make_space()
    supernet, child, arch = _calibration_case(space, 0)
    calib = [torch.randn(16, 3, 12, 12) + 0.5, torch.randn(16, 3, 12, 12) * 2]
    for m in child.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average, as the calibration
    child.train()
    with torch.no_grad():
        for x in calib:
            child(x)
    child.eval()
    x = torch.randn(7, 3, 12, 12)
    keys = set(supernet.state_dict())
    with torch.no_grad(), calibrated_batchnorm(supernet, arch, calib):
        got = supernet(x, arch)[-1]
        alone = supernet(x[:2], arch)[-1]
    torch.testing.assert_close(got, child(x)[-1], rtol=1e-4, atol=1e-5)
    # A score no longer depends on the other images of its minibatch ...
    torch.testing.assert_close(alone, got[:2], rtol=1e-4, atol=1e-5)
    # ... which it does with the supernet's batch statistics.
    supernet.eval()
    with torch.no_grad():
        assert not torch.allclose(supernet(x[:2], arch)[-1], supernet(x, arch)[-1][:2], atol=1e-3)
    # The supernet is left as it was: no running statistics in its state, batch statistics again.
    assert set(supernet.state_dict()) == keys
    assert all(
        m.running_mean is None and not m.track_running_stats
        for m in supernet.modules()
        if isinstance(m, torch.nn.BatchNorm2d)
    )


def test_one_dimensional_space_runs_along_the_signal_only():
    space = MacroSpace(dims=1, num_layers=4, ops=["conv5", "dilconv3", "maxpool3", "identity"], channels=[8, 16])
    supernet = build_supernet(space, in_channels=1)
    feats = supernet(torch.randn(2, 1, 1, 40), space.sample(np.random.default_rng(0)))
    assert [tuple(f.shape) for f in feats] == [(2, 8, 1, 40), (2, 16, 1, 20)]
    conv = supernet.layers[0]["conv5"][0]
    assert conv.kernel_size == (1, 5) and supernet.layers[0]["dilconv3"][0].dilation == (2, 2)
    # A 1-D op name in a 2-D space (and a 2-D one in a 1-D space) is refused, naming the key.
    with pytest.raises(ValueError, match="space.ops: unknown operation 'conv5'"):
        MacroSpace(ops=["conv5"])
    with pytest.raises(ValueError, match="space.ops: unknown operation 'conv3x3'.*1-D"):
        MacroSpace(dims=1, ops=["conv3x3"])
    with pytest.raises(ValueError, match="space.dims"):
        MacroSpace(dims=3)
