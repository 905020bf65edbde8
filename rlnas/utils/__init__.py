"""Small shared helpers: seeding and global RNG states, device selection, atomic file writes, config sections."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import math
import os
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

#: Largest seed a run takes: NumPy's legacy seeding takes 32-bit seeds, and a
#: seed beyond torch's 64 bits fails deep inside it without naming the key.
MAX_SEED = 2**32 - 1


def seed_everything(seed: int) -> None:
    """Seeds Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def conf_dir() -> Path:
    """The Hydra config directory: the installed package ``rlnas.conf``, else a source checkout's ``conf/``."""
    try:
        from importlib.resources import files

        installed = Path(str(files("rlnas.conf")))
        if (installed / "config.yaml").is_file():
            return installed
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parents[2] / "conf"


def data_seed(cfg: Any) -> int:
    """The seed of a run's train/val/test split: ``data_seed``, or the run's ``seed`` when that is null."""
    value = cfg.get("data_seed")
    return int(cfg.get("seed", 0) if value is None else value)


def global_rng_state() -> dict[str, Any]:
    """The process-wide random states (python, numpy, torch CPU and CUDA)."""
    return {
        "python": random.getstate(),
        # numpy's legacy state as plain values (a checkpoint holds no pickled numpy objects).
        "numpy": legacy_rng_state(np.random.get_state()),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def legacy_rng_state(state: tuple) -> list[Any]:
    """A numpy ``RandomState.get_state()`` tuple as plain values (a tensor and numbers: no pickled numpy objects)."""
    name, keys, pos, has_gauss, cached = state
    return [str(name), torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached)]


def legacy_rng_tuple(state: Sequence[Any]) -> tuple:
    """The ``RandomState.set_state()`` tuple of what :func:`legacy_rng_state` returned."""
    name, keys, pos, has_gauss, cached = state
    keys = keys.numpy() if torch.is_tensor(keys) else keys
    return str(name), np.asarray(keys, dtype=np.uint32), int(pos), int(has_gauss), float(cached)


def set_global_rng_state(state: dict[str, Any]) -> None:
    """Restores what :func:`global_rng_state` returned."""
    random.setstate(state["python"])
    np.random.set_state(legacy_rng_tuple(state["numpy"]))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else the CPU.

    Raises:
        ValueError: If CUDA is requested but not available.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"device={name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name!r} but CUDA is not available; use device=cpu or device=auto")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device={name!r} but this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "meta":  # tensors without data: every step would fail later, far from the setting
        raise ValueError(f"device={name!r} holds no data; use auto, cpu, cuda or cuda:N")
    if device.type not in ("cpu", "cuda"):
        try:
            torch.empty(1, device=device)
        except (RuntimeError, AssertionError) as err:
            detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            detail = detail.split(". ")[0][:80]
            raise ValueError(f"device={name!r} is not usable here ({detail}); use device=cpu or device=auto") from None
    return device


def set_threads(threads: int) -> None:
    """Sets torch's intra-op threads, warning when they exceed the cores this process may use.

    More threads than cores oversubscribe them: a search runs several times
    slower and every measured latency is inflated by the waiting.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if threads > cores:
        logging.getLogger("rlnas").warning(
            "threads=%d exceeds the %d cores this process may use: slower, and latencies measured too high",
            threads,
            cores,
        )
    torch.set_num_threads(threads)


def is_whole(value: Any) -> bool:
    """Whether a config value is a whole number (``3`` or ``3.0``; not ``2.5``, ``True`` or ``"3"``)."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and float(value).is_integer()


def csv_separator(line: str) -> str | None:
    """The field separator of a CSV line: a semicolon or tab when there is one (spreadsheets of locales with a
    decimal comma write those, and their numbers hold commas), else the comma; ``None`` when the line has none.
    """
    for separator in (";", "\t", ","):
        if separator in line:
            return separator
    return None


def csv_number(text: str, separator: str | None) -> float:
    """A CSV field as a number: ``"1,5"`` is 1.5 in a file whose fields a semicolon or tab separates.

    Raises:
        ValueError: ``text`` is no number as a spreadsheet writes one; Python's own literals that ``float``
            also reads (``1_000``: digit grouping, which a CSV does not use) are not numbers here.
    """
    text = text.strip()
    if "_" in text:
        raise ValueError(f"could not convert string to float: {text!r}")
    return float(text.replace(",", ".") if separator in (";", "\t") else text)


def save_figure(figure: Any, path: str | Path, **savefig: Any) -> Path:
    """Writes a matplotlib figure to ``path`` (the format from its suffix) whole, never through a symlink
    (:func:`atomic_file`), then closes the figure.

    Args:
        figure: The figure.
        path: Where the image goes.
        **savefig: Further arguments of ``Figure.savefig`` (``dpi``).
    """
    path = Path(path)
    try:
        with atomic_file(path, "wb") as f:
            figure.savefig(f, format=path.suffix.lstrip(".") or "png", **savefig)
    finally:
        import matplotlib.pyplot as plt

        plt.close(figure)
    return path


def is_numeric_text(text: str) -> bool:
    """Whether a field of a text file reads as a number (``"3"``, ``"2.5e-3"``, ``"nan"``): tells a header row."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def is_seed(value: Any) -> bool:
    """Whether a config value is a seed NumPy's legacy generator and torch both take: whole, in 0..``MAX_SEED``."""
    return is_whole(value) and 0 <= value <= MAX_SEED


def is_number(value: Any) -> bool:
    """Whether a value read from a file or config is a number (``3``, ``2.5``, ``nan``; not ``True`` or ``"3"``)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def section_values(section: Any, cls: type, prefix: str) -> dict[str, Any]:
    """A config section as a dict, after checking every key is a field of the dataclass ``cls``.

    Raises:
        ValueError: Naming the first unknown key as ``prefix.key`` and the allowed keys.
    """
    from omegaconf import OmegaConf

    given = OmegaConf.to_container(section, resolve=True) if OmegaConf.is_config(section) else dict(section)
    assert isinstance(given, dict)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ValueError(f"{prefix}.{unknown[0]} is not a setting; allowed: {sorted(known)}")
    return given


@contextmanager
def atomic_file(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """A file to write ``path`` through: a temporary file beside it, flushed to disk, then ``os.replace``-d.

    A kill at any moment leaves the old ``path`` or the new one, never half a
    file; on an exception (a full disk) the old one stays and the temporary
    file is removed. Symlinks are never written through: the temporary file is
    created exclusively (a planted link or a killed writer's leftover there is
    removed first, never followed), and ``os.replace`` replaces a link at ``path`` rather than the
    file it points to.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    # A planted link, or what a writer killed between creating and renaming it left (SIGKILL runs no
    # cleanup): either would make every later write of ``path`` fail with "File exists".
    with contextlib.suppress(FileNotFoundError, IsADirectoryError):
        tmp.unlink()
    try:
        # "x": O_CREAT | O_EXCL, which fails on any existing name, a symlink included.
        with tmp.open(mode.replace("w", "x"), **({} if "b" in mode else {"newline": ""})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        # A full or read-only disk, a kill: no half-written temporary file is left behind.
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(err, OSError) and err.errno is not None and (not err.filename or err.filename == str(tmp)):
            raise OSError(err.errno, err.strerror, str(path)) from err  # the file it happened to, not its temporary
        raise


def strict_json(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, inf) as ``None``, so that it is strict JSON (RFC 8259)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value


def parse_json(text: str) -> Any:
    """``json.loads``, with nesting too deep for Python's parser reported as malformed JSON.

    A file of 100,000 nested brackets makes ``json.loads`` raise :class:`RecursionError`, which callers
    that name a malformed file (:class:`json.JSONDecodeError`) would not catch. A key given twice in one
    object is malformed too: ``json.loads`` keeps the last one unseen (an edited ``"arch"`` written below
    the original would be the one used).
    """

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise json.JSONDecodeError(f"key {key!r} appears twice in one object", text[:100], 0)
            out[key] = value
        return out

    try:
        return json.loads(text, object_pairs_hook=unique)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text[:100], 0) from None


def check_yaml(text: str) -> None:
    """Refuses YAML that no file rlnas writes looks like, before anything is built from it.

    Aliases (``*name``) are the stuff of a "billion laughs" file: nine aliases of nine aliases ... expand
    to billions of nodes once built or printed. Nesting is left to libyaml, which refuses deep nesting at
    once, where PyYAML's own parser takes time quadratic in it (30 s for 20,000 brackets).

    Raises:
        ValueError: For aliases or nesting too deep; a ``yaml.YAMLError`` for malformed YAML.
    """
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        if any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=loader)):
            raise ValueError("it holds YAML aliases (*name), which no file written by rlnas holds")
    except RecursionError:
        raise ValueError("nested too deeply") from None


def parse_yaml(text: str) -> Any:
    """YAML as plain data, from a file others may have written (:func:`check_yaml` first)."""
    import yaml

    check_yaml(text)
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader


def write_text_atomic(path: str | Path, text: str) -> None:
    """Writes ``text`` through :func:`atomic_file`: a kill or a full disk leaves the old file whole."""
    with atomic_file(path) as f:
        f.write(text)


def write_bytes_atomic(path: str | Path, data: io.BytesIO) -> None:
    """Writes serialised bytes through :func:`atomic_file`.

    Serialisers that write to a file themselves report a failed write badly:
    torch's zip writer as a bare ``RuntimeError`` ("unexpected pos"), TorchScript's
    with a C++ ``terminate`` of the whole process. Serialised in memory first, a
    plain write raises the ``OSError`` that names the file and its cause.
    """
    with atomic_file(path, "wb") as f:
        f.write(data.getbuffer())


def write_json_atomic(path: str | Path, payload: Any) -> None:
    """Writes ``payload`` as indented, strict JSON through :func:`atomic_file` (NaN and inf become ``null``)."""
    with atomic_file(path) as f:
        f.write(json.dumps(strict_json(payload), indent=2, sort_keys=False, allow_nan=False) + "\n")


def save_atomic(payload: Any, path: str | Path) -> None:
    """``torch.save`` through :func:`write_bytes_atomic`."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_bytes_atomic(path, buffer)


def memory_bytes() -> int:
    """Physical memory of this machine (what a dataset or a supernet must fit in)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # not POSIX: assume a laptop's 16 GiB
        return 16 * 2**30


def memory_budget() -> float:
    """The most one dataset or one supernet's weights may take: a quarter of the machine's memory."""
    return memory_bytes() / 4
