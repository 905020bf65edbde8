"""Files that are data never run code: checkpoints, controller files, run configs, model folders.

Each crafted file would create a marker file if anything unpickled or
instantiated it; each test checks that it is refused in one line and that the
marker does not exist.
"""

from __future__ import annotations

import io
import json
import pickle
import re
import shutil
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from rlnas.utils.trust import UntrustedConfigError, check_own_targets, checked_instantiate, load_run_config
from tests.conftest import ROOT, run_cli


class _Marker:
    """Unpickling this creates ``path`` (what a crafted pickle can do: run any call)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def _crafted_torch_file(path: Path, marker: Path, **extra) -> None:
    """A torch.save file whose unpickling touches ``marker``."""
    torch.save({"next_epoch": 1, "version": 4, "evil": _Marker(marker), **extra}, path)


def _cfg(*overrides: str):
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=["+task=classification", "+experiment=smoke", *overrides])


def test_a_crafted_checkpoint_is_refused_without_running_code(tmp_path):
    from rlnas.search.checkpoint import load_checkpoint

    marker = tmp_path / "pwned"
    _crafted_torch_file(tmp_path / "checkpoint.pt", marker)
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "checkpoint.pt")
    assert not marker.exists()


def test_a_checkpoint_holds_no_pickled_objects(tmp_path):
    """A real checkpoint loads with weights_only=True, for every kind of controller state."""
    from rlnas.search.builder import build_search
    from rlnas.search.checkpoint import CHECKPOINT, SearchInterrupted

    with pytest.raises(SearchInterrupted):
        build_search(
            _cfg("controller=tpe", "search.epochs=2", "checkpoint.stop_after=1"), tmp_path, progress=False
        ).run()
    state = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert state["next_epoch"] == 1 and isinstance(state["history"], str)


def test_a_crafted_controller_file_is_refused_without_running_code(tmp_path):
    from rlnas.search.builder import build_search

    marker = tmp_path / "pwned"
    other = tmp_path / "other"
    other.mkdir()
    _crafted_torch_file(other / "controller.pt", marker, controller_class="ENASController")
    with pytest.raises(ValueError, match=r"controller.pt: not a readable controller file"):
        build_search(_cfg(f"controller.init_from={other}"), tmp_path / "run", progress=False)
    assert not marker.exists()


def test_a_controller_file_reads_no_cloudpickled_sb3_data(tmp_path):
    """The SB3 zip's data part is cloudpickled: only its weights are read when warm-starting."""
    from rlnas.controllers.transfer import _policy_tensors
    from rlnas.search.builder import build_controller

    cfg = _cfg("controller=ppo")
    space = instantiate(cfg.space, _convert_="all")
    controller = build_controller(cfg.controller, space, seed=0)
    state = torch.load(io.BytesIO(_roundtrip(controller.state_dict())), weights_only=True)
    module, tensors = _policy_tensors(controller, state)
    assert set(tensors) == set(module.state_dict())


def _roundtrip(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def test_a_run_config_naming_another_target_is_refused_before_anything_runs(tmp_path):
    from rlnas.__main__ import resumed_config

    source, copy = tmp_path / "source.txt", tmp_path / "copied.txt"
    source.write_text("secret")
    config = OmegaConf.to_container(_cfg(), resolve=True)
    config["space"] = {"_target_": "shutil.copyfile", "src": str(source), "dst": str(copy)}
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(config))
    with pytest.raises(UntrustedConfigError, match=r"config.yaml: space._target_='shutil.copyfile'"):
        resumed_config(str(tmp_path), [])
    # Nested targets and a controller's are checked too.
    config["space"] = _cfg().space
    config["controller"] = {"_target_": "rlnas.controllers.EvolutionController", "hook": {"_target_": "os.system"}}
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(config))
    with pytest.raises(UntrustedConfigError, match=r"controller.hook._target_='os.system'"):
        load_run_config(tmp_path / "config.yaml")
    assert not copy.exists()


def test_a_users_own_plugin_in_a_run_config_is_trusted_only_by_their_consent(tmp_path, monkeypatch):
    """A run of the user's own controller could never be resumed: its config.yaml names their class. The
    environment variable trusts the modules it names, and no others (a prefix of a name is not its module)."""
    config = OmegaConf.to_container(_cfg(), resolve=True)
    config["controller"] = {"_target_": "myctl.Base"}
    config["space"] = {"_target_": "myctl_evil.Space"}
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(config))
    monkeypatch.delenv("RLNAS_TRUSTED_TARGETS", raising=False)
    with pytest.raises(UntrustedConfigError, match=r"trust its module: RLNAS_TRUSTED_TARGETS='my"):
        load_run_config(tmp_path / "config.yaml")
    monkeypatch.setenv("RLNAS_TRUSTED_TARGETS", "myctl, other.")
    with pytest.raises(UntrustedConfigError, match=r"space._target_='myctl_evil.Space'"):
        load_run_config(tmp_path / "config.yaml")
    config["space"] = _cfg().space
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(config))
    assert load_run_config(tmp_path / "config.yaml").controller._target_ == "myctl.Base"


def test_a_yaml_python_tag_in_a_run_config_is_one_line(tmp_path):
    marker = tmp_path / "pwned"
    (tmp_path / "config.yaml").write_text(f"space: !!python/object/apply:pathlib.Path.touch [{str(marker)!r}]\n")
    with pytest.raises(ValueError, match=r"config.yaml: not a readable run config"):
        load_run_config(tmp_path / "config.yaml")
    assert not marker.exists()
    result = run_cli(f"resume={tmp_path}")
    assert result.returncode == 2 and "not a readable run config" in result.stderr
    assert "Traceback" not in result.stderr and not marker.exists()


def test_a_run_config_of_yaml_aliases_or_empty_is_refused_at_once(tmp_path):
    """A "billion laughs" config.yaml (aliases of aliases, billions of nodes once built) hung a resume for
    minutes; an emptied one was reported as deleted sections ("~search")."""
    import time

    laughs = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    for level in range(1, 10):
        name, prev = f"l{level}", "a" if level == 1 else f"l{level - 1}"
        laughs += f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]\n"
    (tmp_path / "config.yaml").write_text(laughs)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"config.yaml: not a readable run config \(ValueError: it holds YAML aliases"):
        load_run_config(tmp_path / "config.yaml")
    assert time.perf_counter() - start < 5
    # 20,000 nested brackets: 30 s in PyYAML's own parser, then a RecursionError.
    (tmp_path / "config.yaml").write_text("a: " + "[" * 20_000 + "]" * 20_000 + "\n")
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"config.yaml: not a readable run config"):
        load_run_config(tmp_path / "config.yaml")
    assert time.perf_counter() - start < 5
    (tmp_path / "config.yaml").write_text("")
    with pytest.raises(ValueError, match=r"config.yaml: empty; not a run config"):
        load_run_config(tmp_path / "config.yaml")


def test_a_user_config_target_is_type_checked_before_it_is_called(tmp_path):
    from rlnas.search.builder import build_search
    from rlnas.spaces.base import SearchSpace

    source, copy = tmp_path / "source.txt", tmp_path / "copied.txt"
    source.write_text("secret")
    node = {"_target_": "shutil.copyfile", "src": str(source), "dst": str(copy)}
    with pytest.raises(UntrustedConfigError, match=r"space._target_=shutil.copyfile is not a SearchSpace class"):
        checked_instantiate(node, SearchSpace, "space")
    cfg = _cfg()
    cfg.space = node
    with pytest.raises(UntrustedConfigError, match="is not a SearchSpace class"):
        build_search(cfg, tmp_path / "run", progress=False)
    cfg = _cfg()
    cfg.task = {"_target_": "torch.load", "f": str(source)}
    with pytest.raises(UntrustedConfigError, match="task._target_=torch.load is not a Task class"):
        build_search(cfg, tmp_path / "run2", progress=False)
    assert not copy.exists()


def test_own_targets_must_be_strings_under_rlnas():
    check_own_targets({"a": {"_target_": "rlnas.spaces.MacroSpace"}}, "f.yaml")
    for bad in ("rlnasty.x", "os.system", 3, None, "rlnas.\x00x"):
        with pytest.raises(UntrustedConfigError):
            check_own_targets({"a": [{"_target_": bad}]}, "f.yaml")


def test_a_model_folder_runs_no_code_from_model_json(tmp_path):
    from rlnas.predict import Decoder, Model

    source, copy = tmp_path / "source.txt", tmp_path / "copied.txt"
    source.write_text("secret")
    meta = {
        "task": "detection",
        "in_channels": 1,
        "image_size": [32, 32],
        "class_names": ["a"],
        "task_config": {"_target_": "shutil.copyfile", "src": str(source), "dst": str(copy)},
    }
    with pytest.raises(ValueError, match=r"model.json: task_config._target_='shutil.copyfile' is not one of rlnas"):
        Decoder(Model(None, meta, tmp_path / "model.onnx"), top_k=1, score_threshold=None)
    assert not copy.exists()


def test_pickle_is_not_used_for_search_state():
    """The modules that write checkpoints and controller state import no pickle."""
    for module in ("rlnas/search/checkpoint.py", "rlnas/controllers/sb3.py", "rlnas/controllers/baselines.py"):
        assert "import pickle" not in (ROOT / module).read_text(), module
    assert pickle  # the tests' crafted files use it


def test_tampered_model_json_fields_are_named(tmp_path):
    """Each tampered field of a real model folder is refused in one line naming model.json and the field."""
    from rlnas.predict import PredictError, load_model
    from rlnas.retrain import retrain
    from tests.test_retrain import _retrain_cfg, _search_run

    run = _search_run(tmp_path, "classification")
    out = tmp_path / "model"
    retrain(_retrain_cfg(run / "best_arch.json", "train.epochs=1", "compress=none"), out)
    good = json.loads((out / "model.json").read_text())
    load_model(out)
    cases = {
        "in_channels": ({"in_channels": 7}, "in_channels"),
        "huge": ({"image_size": [100000, 100000]}, "image_size"),
        "word": ({"image_size": "big"}, "image_size"),
        "other size": ({"image_size": [9, 9]}, "image_size"),
        "no names": ({"class_names": []}, "class_names"),
        "short names": ({"class_names": ["0", "1"]}, "class_names"),
        "same names": ({"class_names": ["7", *good["class_names"][1:-1], 7]}, "class_names must be distinct; '7'"),
        "detection": ({"task": "detection"}, "task=detection"),
    }
    for name, (change, field) in cases.items():
        tampered = tmp_path / name
        shutil.copytree(out, tampered)
        (tampered / "model.json").write_text(json.dumps({**good, **change}))
        with pytest.raises(PredictError, match=field) as err:
            load_model(tampered)
        assert "model.json" in str(err.value), name


def test_a_crafted_supernet_is_refused_by_retrain_and_the_tools(tmp_path):
    from rlnas.retrain import init_from_supernet
    from tools._common import load_run

    marker = tmp_path / "pwned"
    torch.save({"w": _Marker(marker)}, tmp_path / "supernet.pt")
    with pytest.raises(ValueError, match="supernet.pt: not a readable supernet.pt"):
        init_from_supernet(torch.nn.Linear(1, 1), tmp_path / "supernet.pt")
    OmegaConf.save(_cfg(), tmp_path / "config.yaml")
    with pytest.raises(SystemExit, match=f"--run-dir {tmp_path}"):
        load_run(tmp_path, tmp_path / "scratch")
    assert not marker.exists()


def test_another_searchs_supernet_beside_a_run_config_is_one_line(smoke_run, tmp_path):
    """score_run.py on a run dir whose supernet.pt is another search's: torch's many-line traceback."""
    from tools._common import load_run

    run = tmp_path / "run"
    shutil.copytree(smoke_run[0], run)
    torch.save({"head.fc.weight": torch.zeros(3, 1)}, run / "supernet.pt")
    with pytest.raises(SystemExit, match=re.escape(f"--run-dir {run}: supernet.pt does not fit the supernet")):
        load_run(run, tmp_path / "scratch")


def test_outputs_never_follow_a_planted_symlink(tmp_path):
    from rlnas.utils import atomic_file

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    run = tmp_path / "run"
    run.mkdir()
    (run / "pareto.csv").symlink_to(victim)
    (run / "history.csv.tmp").symlink_to(victim)
    for name in ("pareto.csv", "history.csv"):
        with atomic_file(run / name) as f:
            f.write("new")
        assert (run / name).read_text() == "new" and not (run / name).is_symlink()
    assert victim.read_text() == "precious"


def test_a_killed_writers_temporary_file_does_not_block_the_next_write(tmp_path):
    """A SIGKILL between creating trials_state.pt.tmp and renaming it left the file; the resumed
    search then failed at its first save with "trials_state.pt: File exists"."""
    from rlnas.utils import atomic_file

    (tmp_path / "trials_state.pt.tmp").write_bytes(b"half a state")
    with atomic_file(tmp_path / "trials_state.pt", "wb") as f:
        f.write(b"state")
    assert (tmp_path / "trials_state.pt").read_bytes() == b"state"
    assert not (tmp_path / "trials_state.pt.tmp").exists()


def test_a_run_dir_with_planted_links_is_refused_before_hydra_writes(tmp_path):
    victim = tmp_path / "victim.log"
    victim.write_text("precious")
    run = tmp_path / "run"
    run.mkdir()
    (run / "__main__.log").symlink_to(victim)
    result = run_cli("+experiment=smoke", f"hydra.run.dir={run}")
    assert result.returncode == 2 and "__main__.log is a symlink" in result.stderr
    assert "Traceback" not in result.stderr and victim.read_text() == "precious"
