"""Retrain, test, export and compress a found architecture.

``python -m rlnas.retrain arch=outputs/runs/DATE/TIME/best_arch.json [compress=int8|prune|all]``

Builds the standalone child (a plain ``nn.Module``) of the arch for the task of
its search run, trains it from scratch (or from the supernet's weights with
``init=supernet``) with a cosine schedule, tests it on the held-out test split
the search never saw, and writes to the run dir:

* ``model.pt``: state dict, arch, resolved search and retrain configs;
* ``model.onnx`` and ``model.ts`` (TorchScript), both taking raw [0, 1]
  images, checked against PyTorch on test inputs;
* ``model.json``: what :mod:`rlnas.predict` needs (task, classes, input size);
* ``report.md`` / ``report.json``: test metrics, parameters, size and batch-1
  latency of every format and compressed variant.

Earlier outputs are never overwritten: the run dir must be new.
"""

from __future__ import annotations

import copy
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from torch import nn

from rlnas.costs.model import forward_mflops
from rlnas.data.base import require_test_split
from rlnas.export import (
    Deployable,
    ExportMismatchError,
    check_parity,
    export_onnx,
    export_torchscript,
    finalize_pruning,
    load_torchscript,
    nonzero_params,
    onnx_latency_ms,
    onnx_session,
    prune_magnitude,
    quantize_int8,
    state_size_mb,
    torch_latency_ms,
)
from rlnas.export.model_folder import IMAGE_TASKS
from rlnas.export.report import RawInputs, raw_images, report_markdown, variant_row
from rlnas.spaces.training import describe_with_settings
from rlnas.supernet.sharing import shared_weights
from rlnas.tasks.training import (
    RECIPE_HPARAMS,
    TASK_HPARAMS,
    evaluate,
    make_recipe,
    search_parts,
    standalone_network,
    train,
    with_settings,
)
from rlnas.utils import (
    MAX_SEED,
    atomic_file,
    conf_dir,
    is_seed,
    is_whole,
    parse_json,
    resolve_device,
    save_atomic,
    seed_everything,
    set_threads,
    write_json_atomic,
)
from rlnas.utils.rundir import (
    bare_word,
    check_launcher_jobs,
    explicit_run_dir,
    flags_first,
    launch_relative_paths,
    lock_run_dir,
    new_run_dir,
    quote_paths,
    refuse_earlier_job,
    refuse_earlier_sweep,
    refuse_planted_links,
    say_repeated_keys,
    writable_dir,
)
from rlnas.utils.trust import load_run_config, load_tensor_file

log = logging.getLogger("rlnas.retrain")
COMPRESS = ("none", "int8", "prune", "all")


def load_run(arch_path: str, run_config: str | None) -> tuple[list[int], dict[str, Any], DictConfig, Path]:
    """The arch, the best_arch.json payload, the search config and the search run dir.

    Raises:
        FileNotFoundError / ValueError: Naming the file that is missing or malformed.
    """
    path = Path(arch_path).expanduser()
    model_folder = (
        "a trained model, not a search's pick; pass the search run's dir or its best_arch.json (the retrain "
        "that made this model names it as arch= in its .hydra/overrides.yaml)"
    )
    if path.is_dir():  # a search's run dir: its pick
        if (path / "model.json").is_file() and not (path / "best_arch.json").is_file():
            raise FileNotFoundError(f"arch={arch_path}: {model_folder}")
        if not (path / "best_arch.json").is_file():
            raise FileNotFoundError(
                f"arch={arch_path}: a directory without best_arch.json (a search that has not finished, or not a "
                "run dir); pass a search run's dir or its best_arch.json"
            )
        path = path / "best_arch.json"
    elif not path.is_file():
        what = "not a file" if path.exists() else "no such file"
        raise FileNotFoundError(f"arch={arch_path}: {what} (pass a search run's dir or its best_arch.json)")
    try:
        payload = parse_json(path.read_text())
        if not isinstance(payload, dict):
            raise TypeError(
                f"the file holds a JSON {type(payload).__name__}, not an object with an 'arch' key "
                '(e.g. {"arch": [0, 2, 1]}; the run\'s config.yaml beside it gives the space)'
            )
        arch = payload["arch"]
        if not isinstance(arch, list) or not all(isinstance(a, int) and not isinstance(a, bool) for a in arch):
            raise ValueError(f"'arch' must be a list of whole numbers (choice indices), got {arch!r}"[:200])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: not a best_arch.json with an 'arch' list ({type(err).__name__}: {err})") from None
    if not run_config and {"task_config", "files"} <= set(payload):  # a model folder's model.json
        raise ValueError(f"{path}: {model_folder}")
    searched = payload.get("train", {})
    known = (*RECIPE_HPARAMS, *TASK_HPARAMS)
    if not isinstance(searched, dict) or not all(k in known for k in searched):
        raise ValueError(
            f"{path}: 'train' must map training settings among {list(known)} to values, got {searched!r}"[:300]
        )
    metrics = payload.get("metrics", {})
    plain = isinstance(metrics, dict) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in metrics.values()
    )
    if not plain:  # the report quotes them beside the retrained scores
        raise ValueError(f"{path}: 'metrics' must map metric names to numbers, got {metrics!r}"[:300])
    if not isinstance(payload.get("description", ""), str):  # compared with the space's own description
        raise ValueError(f"{path}: 'description' must be text, got {payload['description']!r}"[:300])
    cfg_path = Path(run_config).expanduser() if run_config else path.parent / "config.yaml"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{cfg_path}: the search's config.yaml is missing; pass run_config=PATH")
    search_cfg = load_run_config(cfg_path)
    if search_cfg.get("benchmark") is not None:
        raise ValueError(
            f"{cfg_path}: a +benchmark run looks architectures up in a table and has no task to train them on; "
            "retrain the pick of a search on a task"
        )
    if "space" not in search_cfg or "task" not in search_cfg:
        raise ValueError(f"{cfg_path}: not a search config (needs 'space' and 'task')")
    return arch, payload, search_cfg, path.parent


def _refuse_retrained(out_dir: Path) -> None:
    """Refuses a folder that already holds a retrained model."""
    taken = [p.name for p in out_dir.glob("model.*")] + [p.name for p in out_dir.glob("report.*")]
    if taken:
        raise ValueError(f"hydra.run.dir={out_dir} already holds a retrained model ({taken[0]}); choose another")


def _check_decoded(arch_path: str, saved: Any, decoded: dict[str, str]) -> None:
    """Refuses a best_arch.json whose ``decoded`` names other choices than its ``arch`` encodes.

    ``decoded`` is what a reader of the file sees and may edit; ``arch`` (the choice indices) is what
    trains. Edited apart, the retrain would train another network than the one the file shows.
    """
    if saved is None or saved == decoded:
        return
    if not isinstance(saved, dict):
        raise ValueError(f"arch={arch_path}: 'decoded' must map each decision to its choice, got {saved!r}"[:300])
    differ = [name for name in dict.fromkeys([*decoded, *saved]) if saved.get(name) != decoded.get(name)]
    name = differ[0]
    raise ValueError(
        f"arch={arch_path}: its 'decoded' says {name}={saved.get(name)!r} but its 'arch' encodes "
        f"{name}={decoded.get(name)!r} ({len(differ)} decisions differ); the file was edited after the search: "
        "change 'arch' (choice indices) and remove 'decoded', or restore it"
    )


def init_from_supernet(network: nn.Module, supernet_path: Path) -> int:
    """Copies the shared weights a child uses from ``supernet.pt``; returns how many tensors were copied.

    BatchNorm running statistics have no counterpart (the supernet uses batch
    statistics) and start fresh.

    Raises:
        FileNotFoundError / ValueError: Naming the file when it is missing, not tensors, or lacks any of the
            child's weights (another search's supernet).
    """
    if not supernet_path.is_file():
        raise FileNotFoundError(f"{supernet_path}: init=supernet needs the search's supernet.pt")
    weights = load_tensor_file(supernet_path, "supernet.pt")
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise ValueError(f"{supernet_path}: not a supernet.pt (a mapping of tensor names to tensors)")
    matched = shared_weights(weights, network)
    # Every weight of the child is a slice of the supernet's: fewer means another search's file, whose
    # network would otherwise train from scratch under init=supernet, silently.
    missing = sorted(name for name, _ in network.named_parameters() if name not in matched)
    if missing:
        total = sum(1 for _ in network.parameters())
        raise ValueError(
            f"{supernet_path}: holds {total - len(missing)} of the {total} weight tensors of this architecture's "
            f"network (none for {missing[0]}); it is another search's supernet (init=scratch trains without it)"
        )
    network.load_state_dict(matched, strict=False)
    return len(matched)


def searched_settings(search_cfg: DictConfig, payload: dict[str, Any], given: set[str]) -> dict[str, Any]:
    """The training settings a trial search trained its pick with, less those given on the command line.

    A trial search trains with ``trials.train`` over the retrain recipe and, in a
    joint search, the pick's own ``train/*`` decisions (``best_arch.json``'s
    ``train``); the pick is retrained with them too. ``epochs`` stays the
    retrain recipe's.
    """
    trials_train = OmegaConf.select(search_cfg, "trials.train")
    trials_train = OmegaConf.to_container(trials_train) if isinstance(trials_train, DictConfig) else {}
    settings = {**trials_train, **payload.get("train", {})}
    return {k: v for k, v in settings.items() if k != "epochs" and k not in given}


def _check_settings(cfg: DictConfig) -> None:
    """Refuses seed, threads, export, pruning and quantisation settings no run can use, compressing or not.

    Raises:
        ValueError: ``KEY must be ..., got VALUE``.
    """

    known = set(OmegaConf.load(conf_dir() / "retrain.yaml")) - {"defaults"}
    unknown = sorted(set(cfg) - known - {"hydra"})
    if unknown:  # +key=value adds a key Hydra's struct check lets through; nothing would read it
        raise ValueError(f"{unknown[0]} is not a retrain setting; allowed: {sorted(known - {'hydra'})}")
    if not is_seed(cfg.seed):
        raise ValueError(f"seed must be a whole number in 0..{MAX_SEED} (2**32 - 1), got {cfg.seed!r}")
    threads = cfg.get("threads")
    if threads is not None and not (is_whole(threads) and threads >= 1):
        raise ValueError(f"threads must be a whole number >= 1 or null, got {threads!r}")
    for key in ("export.onnx", "export.torchscript"):
        value = OmegaConf.select(cfg, key)
        if not isinstance(value, bool):  # "maybe" or 0 would be taken by truthiness
            raise ValueError(f"{key} must be true or false, got {value!r}")
    amount = cfg.prune.amount
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0 < amount < 1:
        raise ValueError(f"prune.amount must be in (0, 1), got {amount!r}")
    if not (is_whole(cfg.prune.finetune_epochs) and cfg.prune.finetune_epochs >= 0):
        raise ValueError(f"prune.finetune_epochs must be a whole number >= 0, got {cfg.prune.finetune_epochs!r}")
    if not (is_whole(cfg.quantize.calibration_samples) and cfg.quantize.calibration_samples >= 1):
        raise ValueError(
            f"quantize.calibration_samples must be a whole number >= 1, got {cfg.quantize.calibration_samples!r}"
        )


def retrain(cfg: DictConfig, out_dir: Path, given: set[str] | None = None) -> dict[str, Any]:
    """Runs the whole retrain → test → export → compress pipeline; returns the report.

    Args:
        cfg: The retrain config (``conf/retrain.yaml``).
        out_dir: Where the model and report go.
        given: ``train.*`` keys set on the command line: they win over the settings a trial search
            trained its pick with.
    """
    start = time.perf_counter()
    compress = str(cfg.compress)
    if compress not in COMPRESS:
        raise ValueError(f"compress={compress!r} is unknown; allowed: {list(COMPRESS)}")
    arch, payload, search_cfg, search_dir = load_run(str(cfg.arch), cfg.get("run_config"))
    recipe = make_recipe(cfg.train, search_cfg.get("search") or OmegaConf.create())
    searched = searched_settings(search_cfg, payload, set(given or ()))
    if cfg.init not in ("scratch", "supernet"):
        raise ValueError(f"init={cfg.init!r} is unknown; allowed: ['scratch', 'supernet']")
    _check_settings(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    _refuse_retrained(out_dir)
    if cfg.get("threads") is not None:
        set_threads(int(cfg.threads))
    device = resolve_device(str(cfg.device))
    seed_everything(int(cfg.seed))

    space, task, data = search_parts(search_cfg, device)
    require_test_split(data, "a retrained network")
    try:
        space.validate(arch)
    except ValueError as err:  # run_config= of another search, or an edited arch
        source = f"run_config={cfg.run_config}" if cfg.get("run_config") else f"{search_dir / 'config.yaml'}"
        raise ValueError(f"arch={cfg.arch}: {err} (the space of {source})") from None
    saved = payload.get("description")
    architecture = space.describe(arch)
    described = describe_with_settings(architecture, payload.get("train", {}))
    if (
        saved is not None
        and saved != described
        and (saved == architecture or saved.startswith(architecture + " train/"))
    ):
        # The architecture is this space's; its training settings were edited (or added) after the search.
        raise ValueError(
            f"arch={cfg.arch}: its 'train' settings ({describe_with_settings('', payload.get('train', {})) or 'none'}) "
            f"differ from those its description names ({saved[len(architecture) + 1 :] or 'none'}); "
            "the file was edited after the search (give training settings as train.NAME=VALUE instead)"
        )
    if saved is not None and saved != described:  # same length, another space: another network
        raise ValueError(
            f"arch={cfg.arch} was found in another space ({saved}) than the one its config.yaml "
            f"describes ({described}); pass that search's config with run_config="
        )
    _check_decoded(cfg.arch, payload.get("decoded"), space.decode(arch))
    try:
        recipe, task = with_settings(recipe, task, searched)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{cfg.arch}: the searched training settings cannot be used ({err})") from None
    if searched:
        log.info("with the search's training settings %s", searched)
    # One writer per model folder, taken once every check has passed (a refused retrain leaves it empty);
    # a sweep's jobs and the Python API come here without the command line's lock.
    lock_run_dir(out_dir)
    _refuse_retrained(out_dir)  # again: another retrain may have finished there meanwhile
    network = standalone_network(space, task, data, arch)
    copied = init_from_supernet(network, search_dir / "supernet.pt") if cfg.init == "supernet" else 0
    log.info("retraining %s (%s) on %d samples, %s", space.describe(arch), task.name, len(data.train), device)

    history = train(network, task, data, recipe, int(cfg.seed))
    test = evaluate(network, task, data.test)
    val = evaluate(network, task, data.val)
    deploy = Deployable(copy.deepcopy(network).cpu().eval(), data.mean, data.std, data.test.x.dim()).eval()
    example = raw_images(data.test, data.mean, data.std, 1)
    inputs = raw_images(data.test, data.mean, data.std, 64)
    with torch.no_grad():
        expected = deploy(inputs)
    params = sum(p.numel() for p in network.parameters())
    size = state_size_mb(deploy)
    rows = [
        variant_row(
            "pytorch fp32",
            test,
            params,
            size,
            torch_latency_ms(deploy, example),
            mflops=forward_mflops(deploy, example),
        )
    ]

    checkpoint = {
        "state_dict": network.state_dict(),
        "arch": arch,
        "task": task.name,
        "search_config": OmegaConf.to_container(search_cfg, resolve=True),
        "retrain_config": OmegaConf.to_container(cfg, resolve=True),
        "searched_settings": searched,
        "mean": data.mean,
        "std": data.std,
    }
    save_atomic(checkpoint, out_dir / "model.pt")
    files = {"pytorch": "model.pt"}
    if cfg.export.onnx:
        export_onnx(deploy, example, out_dir / "model.onnx")
        session = onnx_session(out_dir / "model.onnx")
        diff = check_parity("model.onnx", expected, session.run(None, {"images": inputs.numpy()})[0])
        onnx_fn = lambda x: session.run(None, {"images": x.numpy()})[0]  # noqa: E731
        rows.append(
            variant_row(
                "onnxruntime fp32",
                evaluate(RawInputs(onnx_fn, data.mean, data.std), task, data.test),
                params,
                (out_dir / "model.onnx").stat().st_size / 1e6,
                onnx_latency_ms(session, example),
                max_abs_diff=diff,
            )
        )
        files["onnx"] = "model.onnx"
    if cfg.export.torchscript:
        export_torchscript(deploy, example, out_dir / "model.ts")
        scripted = load_torchscript(out_dir / "model.ts")
        with torch.no_grad():
            diff = check_parity("model.ts", expected, scripted(inputs))
        rows.append(
            variant_row(
                "torchscript fp32",
                test,
                params,
                (out_dir / "model.ts").stat().st_size / 1e6,
                torch_latency_ms(scripted, example),
                max_abs_diff=diff,
            )
        )
        files["torchscript"] = "model.ts"

    if compress in ("int8", "all"):
        calibration = raw_images(data.train, data.mean, data.std, int(cfg.quantize.calibration_samples))
        quantized = quantize_int8(deploy, calibration, example)
        metrics = evaluate(RawInputs(quantized, data.mean, data.std), task, data.test)
        export_torchscript(quantized, example, out_dir / "model_int8.ts")
        files["int8_torchscript"] = "model_int8.ts"
        scheme = getattr(quantized, "int8_scheme", "static PTQ")
        rows.append(
            variant_row(
                f"int8 ({scheme})", metrics, params, state_size_mb(quantized), torch_latency_ms(quantized, example)
            )
        )
    if compress in ("prune", "all"):
        pruned = copy.deepcopy(network)
        targets = prune_magnitude(pruned, float(cfg.prune.amount))
        before = evaluate(pruned, task, data.test)
        # Fine-tuning at a tenth of the learning rate recovers most of the loss (Han et al., 2015).
        train(
            pruned,
            task,
            data,
            recipe,
            int(cfg.seed) + 1,
            epochs=int(cfg.prune.finetune_epochs),
            lr_scale=0.1,
            desc="fine-tune",
        )
        finalize_pruning(targets)
        metrics = evaluate(pruned, task, data.test)
        pruned_deploy = Deployable(copy.deepcopy(pruned).cpu().eval(), data.mean, data.std, data.test.x.dim()).eval()
        save_atomic({**checkpoint, "state_dict": pruned.state_dict()}, out_dir / "model_pruned.pt")
        files["pruned_pytorch"] = "model_pruned.pt"
        nonzero = nonzero_params(pruned)
        rows.append(
            variant_row(
                f"pruned {cfg.prune.amount:g} + fine-tune",
                metrics,
                params,
                state_size_mb(pruned_deploy),
                torch_latency_ms(pruned_deploy, example),
                nonzero_params=nonzero,
                sparse_size_mb=nonzero * 4 / 1e6,
                **{f"test_{k}_before_finetune": v for k, v in before.items()},
            )
        )

    meta = {
        "task": task.name,
        "task_config": OmegaConf.to_container(search_cfg.task, resolve=True),
        "arch": arch,
        "description": space.describe(arch),
        "class_names": data.class_names,
        "num_classes": data.num_classes,
        "in_channels": data.in_channels,
        "image_size": list(data.train.x.shape[-2:]),
        "input": "raw images in [0, 1], (N, C, H, W)"
        if task.name in IMAGE_TASKS
        else f"raw arrays, (N, {', '.join(map(str, data.train.x.shape[1:]))})",
        "files": files,
    }
    write_json_atomic(out_dir / "model.json", meta)
    report = {
        "arch": arch,
        "description": space.describe(arch),
        "task": task.name,
        "source": str(cfg.arch),
        "search_val": payload.get("metrics", {}),
        "val": val,
        "test": test,
        "init": str(cfg.init),
        "supernet_tensors_copied": copied,
        "recipe": recipe.__dict__,
        "searched_settings": searched,
        # A trial search trained each candidate on its own; any other search scored it on the supernet.
        "search_scored": "trained on its own"
        if OmegaConf.select(search_cfg, "trials") is not None
        else "shared weights",
        "history": history,
        "variants": rows,
        "device": str(device),
        "seconds": time.perf_counter() - start,
    }
    write_json_atomic(out_dir / "report.json", report)
    with atomic_file(out_dir / "report.md") as f:
        f.write(report_markdown(report))
    return report


def given_train_keys(overrides: Any) -> set[str]:
    """``train.*`` keys among command-line overrides (``train.lr=0.1``, ``++train.lr=0.1``): ``{"lr"}``."""
    keys = set()
    for item in overrides:
        key = str(item).split("=", 1)[0].lstrip("+~")
        if key.startswith("train."):
            keys.add(key.split(".", 1)[1])
    return keys


def check_compression_overrides(compress: str, overrides: Any) -> None:
    """Refuses ``prune.*`` or ``quantize.*`` on a command line whose ``compress`` does not run that step.

    ``prune.amount=0.3`` without ``compress=prune`` retrained, exported and pruned nothing, without a word.

    Raises:
        ValueError: Naming the override and the ``compress`` values that read it.
    """
    if compress not in COMPRESS:  # named first: compress=quantize is the mistake, not quantize.*
        raise ValueError(f"compress={compress!r} is unknown; allowed: {list(COMPRESS)}")
    steps = {"prune": ("prune", "all"), "quantize": ("int8", "all")}
    for item in overrides:
        section = str(item).split("=", 1)[0].lstrip("+~").split(".")[0]
        if section in steps and compress not in steps[section]:
            wanted = " or ".join(f"compress={c}" for c in steps[section])
            raise ValueError(
                f"{item}: read with {wanted} only (this run has compress={compress}); add it or drop {item}"
            )


@hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="retrain")
def run(cfg: DictConfig) -> None:
    """Hydra entry point; user errors print one line and exit with code 2."""
    from rlnas.utils.errors import one_line_errors

    out_dir = Path(HydraConfig.get().runtime.output_dir)
    if HydraConfig.get().job.chdir:  # the job runs in its output dir: paths as typed are from the launch dir
        launch_relative_paths(cfg, ("arch", "run_config"))
    with one_line_errors("rlnas.retrain", also=(FloatingPointError, ExportMismatchError)):
        check_compression_overrides(str(cfg.compress), HydraConfig.get().overrides.task)
        report = retrain(cfg, out_dir, given=given_train_keys(HydraConfig.get().overrides.task))
    first = report["variants"][0]
    metrics = ", ".join(f"{k}={v:.4f}" for k, v in first.items() if k.startswith("test_"))
    print(
        f"retrained: {report['description']} | {metrics} | params={first['params']:,} | "
        f"size_mb={first['size_mb']:.3f} | latency_ms={first['latency_ms']:.3f} | run dir: {out_dir}"
    )


#: Settings that hold a path (quoted for Hydra's grammar when they need it).
PATH_KEYS = ("arch", "run_config", "hydra.run.dir", "hydra.sweep.dir")


def _composition_error(argv: list[str]) -> str | None:
    """The one line a retrain command line fails to compose with (an unknown key: the settings there), or None."""
    from rlnas.utils.errors import composition_error, unknown_key_message

    message = composition_error(conf_dir(), "retrain", argv)
    return None if message is None else unknown_key_message(conf_dir(), "retrain", argv, message)


def _sweep_error(argv: list[str]) -> str | None:
    """The one line of a retrain sweep's first bad job, or None: each swept value is checked before the
    first job starts (``seed=0,abc`` retrained seed 0 in full, then stopped on "abc")."""
    from hydra import compose, initialize_config_dir

    from rlnas.utils.rundir import hydra_overrides
    from rlnas.utils.sweeps import job_changes, job_place, sweep_jobs, sweep_kind_error

    overrides = hydra_overrides(argv)
    message = sweep_kind_error(overrides, groups=False)
    if message is not None:
        return message
    jobs = sweep_jobs(overrides)
    first = [o for o, _ in jobs[0]] if jobs else []
    for number, job in enumerate(jobs):
        typed = [o for o, _ in job]
        changed = job_changes(job, first)
        if number and not changed:  # a value swept twice (seed=0,0): the first job again
            continue
        message = _composition_error(typed)
        if message is None:
            with initialize_config_dir(str(conf_dir()), version_base="1.3"):
                cfg = compose("retrain", overrides=typed)
            try:
                _check_settings(cfg)
            except ValueError as err:
                message = str(err)
        if message is not None:
            return f"{message} ({job_place(changed)})"
    return None


def main() -> None:
    """Console entry point: ``--help`` explains the retrain settings, anything else goes to Hydra."""
    from rlnas.utils.distributed import launched
    from rlnas.utils.errors import environment_error, flag_error, tolerant_stdout

    tolerant_stdout("rlnas.retrain")
    if any(a in ("-h", "--help") for a in sys.argv[1:]):
        print(RETRAIN_HELP + (conf_dir() / "retrain.yaml").read_text())
        return
    message = (
        flag_error(sys.argv[1:], "retrain", "; set its keys on the command line (key=value)") or environment_error()
    )
    if message is None and launched():  # each process retrained alone, and they raced for the same files
        message = "a retrain trains one network in one process; start it without torchrun"
    if message is not None:
        print(f"rlnas.retrain: error: {message}", file=sys.stderr)
        sys.exit(2)
    # A sweep job's pick (``0_seed=0,controller=enas/best_arch.json``) is quoted, else Hydra's grammar
    # reads its '=' and ',' ("mismatched input '=' expecting <EOF>").
    sys.argv = [sys.argv[0], *quote_paths(flags_first(sys.argv[1:]), PATH_KEYS)]
    word = bare_word(sys.argv[1:])
    if word is not None:  # Hydra's grammar says "extraneous input '/' expecting {EQUAL, ...}"
        print(f"rlnas.retrain: error: argument {word!r} is not key=value; did you mean arch={word}?", file=sys.stderr)
        sys.exit(2)
    say_repeated_keys("rlnas.retrain", sys.argv[1:])  # arch=a.json arch=b.json retrained b without a word
    # An unknown key or a bad value: one line here, not Hydra's multi-line report. With Hydra's own flags
    # (-m, --cfg, ...) Hydra composes each job itself.
    flags = any(a.startswith("-") for a in sys.argv[1:])
    message = None if flags else _composition_error(sys.argv[1:])
    run_dir, sweep_dir = (explicit_run_dir(sys.argv[1:], key) for key in ("hydra.run.dir", "hydra.sweep.dir"))
    if message is None and not flags:
        message = _used_run_dir(run_dir)
    if message is None and not flags and run_dir is None:
        # Time-stamped default: claimed here, so a retrain started in the same second gets its own folder.
        try:
            claimed = new_run_dir(conf_dir(), "retrain", sys.argv[1:])
        except ValueError as err:
            claimed, message = None, str(err)
        if claimed is not None:
            sys.argv = [*sys.argv, *quote_paths([f"hydra.run.dir={claimed}"], PATH_KEYS)]
    if message is None and any(a in ("-m", "--multirun") for a in sys.argv[1:]):
        message = _sweep_error(sys.argv[1:]) or _used_sweep_dir(sweep_dir)
        try:
            check_launcher_jobs(sys.argv[1:])
        except ValueError as err:
            message = message or str(err)
        if message is None and sweep_dir is None:
            try:
                claimed = new_run_dir(conf_dir(), "retrain", sys.argv[1:], "sweep")
            except ValueError as err:
                claimed, message = None, str(err)
            if claimed is not None:
                sys.argv = [*sys.argv, *quote_paths([f"hydra.sweep.dir={claimed}"], PATH_KEYS)]
    if message is not None:
        print(f"rlnas.retrain: error: {message}", file=sys.stderr)
        sys.exit(2)
    run()


def _used_run_dir(run_dir: str | None) -> str | None:
    """Why ``hydra.run.dir`` may not take this retrain (None: it may), judged before Hydra writes there.

    Hydra replaces a directory's ``.hydra/`` record as the job starts: in a search's run dir or
    another retrain's model folder that is the record of how they were made.
    """
    if not run_dir:
        return None
    try:
        # Hydra would make it and fail with a traceback: a read-only disk, no permission, a file on the way,
        # a name too long.
        writable_dir(run_dir, f"hydra.run.dir={run_dir}", "the retrain's files")
        refuse_planted_links(run_dir)
        refuse_earlier_job(run_dir)
        # Two retrains into one folder each passed the check above and wrote over the other's files (a
        # model.pt of one beside the model.onnx of the other): the first holds the folder while it runs.
        lock_run_dir(run_dir)
    except ValueError as err:
        return str(err)
    return None


def _used_sweep_dir(sweep_dir: str | None) -> str | None:
    """Why ``hydra.sweep.dir`` may not take this retrain sweep (None: it may).

    Hydra names a retrain sweep's jobs ``0``, ``1``, ... and rewrites each job's ``.hydra/`` record
    before the job can refuse a folder that already holds a model: a second sweep into the same
    folder would leave the first sweep's models beside the second's settings.
    """
    try:
        refuse_earlier_sweep(sweep_dir)
    except ValueError as err:
        return str(err)
    return None


RETRAIN_HELP = """usage: python -m rlnas.retrain arch=RUN_DIR/best_arch.json [key=value ...]

Trains a found architecture as a standalone network, tests it on the split the
search never saw, exports it (ONNX, TorchScript) and optionally compresses it.
The search's config.yaml beside best_arch.json gives task, data and space.
Output: outputs/retrain/DATE/TIME (report.md, model.onnx, model.json).

settings (conf/retrain.yaml):

"""


if __name__ == "__main__":
    main()
