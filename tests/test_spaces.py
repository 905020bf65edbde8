import numpy as np
import pytest

from rlnas.spaces import InvalidArchitectureError, MacroSpace, parse_op


def test_macro_space_has_one_op_and_i_skips_per_layer(small_space):
    kinds = [d.kind for d in small_space.decisions]
    assert kinds.count("op") == 4
    assert kinds.count("skip") == 0 + 1 + 2 + 3
    assert small_space.decisions[0].name == "layer0/op"
    assert small_space.size == 4**4 * 2**6


def test_decode_encode_round_trip(small_space):
    rng = np.random.default_rng(0)
    for _ in range(50):
        arch = small_space.sample(rng)
        decoded = small_space.decode(arch)
        assert small_space.encode(decoded) == arch
        assert all(isinstance(v, str) for v in decoded.values())


def test_layer_accessors(small_space):
    arch = [0] * len(small_space)
    arch[small_space.op_index[2]] = 1
    arch[small_space.skip_index[3][0]] = 1
    arch[small_space.skip_index[3][2]] = 1
    assert small_space.layer_op(arch, 2) == "sepconv5x5"
    assert small_space.layer_skips(arch, 3) == (0, 2)
    assert "sepconv5x5" in small_space.describe(arch)


@pytest.mark.parametrize(
    "arch, message",
    [
        ([0] * 3, "expects 10"),
        ([0] * 9 + [2], "layer3/skip2"),
        ([4] + [0] * 9, "layer0/op"),
        ([-1] + [0] * 9, "allowed 0..3"),
        (["a"] * 10, "sequence of ints"),
    ],
)
def test_validate_rejects_bad_archs(small_space, arch, message):
    with pytest.raises(InvalidArchitectureError, match=message):
        small_space.validate(arch)


def test_encode_rejects_unknown_choice_name(small_space):
    decoded = small_space.decode([0] * 10)
    decoded["layer1/op"] = "conv7x7"
    with pytest.raises(InvalidArchitectureError, match="no choice 'conv7x7'"):
        small_space.encode(decoded)


def test_parse_op():
    assert parse_op("sepconv5x5") == ("sepconv", 5)
    assert parse_op("dilconv3x3") == ("dilconv", 3) and parse_op("identity") == ("identity", 1)
    assert parse_op("conv7", dims=1) == ("conv", 7)
    for bad in ("conv3x5", "conv4x4", "gapconv3x3", "conv", "conv5"):
        with pytest.raises(ValueError, match="unknown operation"):
            parse_op(bad)
    for bad in ("conv3x3", "conv4", "identity3"):
        with pytest.raises(ValueError, match="unknown operation"):
            parse_op(bad, dims=1)


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"ops": ["conv3x3", "warp9x9"]}, "space.ops"),
        ({"ops": []}, "space.ops"),
        ({"activation": "swishy"}, "space.activation"),
        ({"num_layers": 0}, "space.num_layers"),
        ({"channels": [16, 32, 64, 128], "num_layers": 3}, "space.channels"),
        ({"reduction_layers": [0]}, "space.reduction_layers"),
        ({"channels": [0, 8]}, "space.channels"),
    ],
)
def test_space_config_errors_name_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        MacroSpace(**kwargs)


def test_default_reductions_split_layers_evenly():
    space = MacroSpace(num_layers=12, channels=[36, 72, 144])
    assert space.reduction_layers == (4, 8)
    assert space.layer_stage == (0,) * 4 + (1,) * 4 + (2,) * 4


def test_an_architecture_is_made_of_whole_numbers_and_sample_takes_a_seed():
    """validate() ran int() on each choice: 2.9 became 2, True 1 and "3" 3, another architecture than the one
    handed over (a controller's observe and the retrain take it through validate); sample(None) or sample(3)
    was an AttributeError; MacroSpace(ops="conv3x3") named the unknown operation 'c'."""
    import torch

    space = MacroSpace()
    arch = space.sample(np.random.default_rng(0))
    assert space.sample(0) == space.sample(np.random.default_rng(0)) and space.validate(space.sample(None))
    for bad, shown in ((2.9, "2.9"), (True, "True"), ("3", "'3'")):
        with pytest.raises(InvalidArchitectureError, match=f"must be a sequence of ints: {shown} is not a"):
            space.validate([bad, *arch[1:]])
    # NumPy and tensor integers, and a float holding a whole number, are the choice they hold.
    for same in (np.array(arch), torch.tensor(arch), [float(a) for a in arch]):
        assert space.validate(same) == arch
    for key in ("ops", "channels"):
        with pytest.raises(ValueError, match=f"space.{key} must be a list, got 'conv3x3'"):
            MacroSpace(**{key: "conv3x3"})
