"""Serve a retrained model: run its ONNX export on image or array files with onnxruntime.

``python -m rlnas.predict model=outputs/retrain/DATE/TIME input=FILE_OR_DIR [output=preds.json]``

``model`` is a retrain run dir (or its ``model.onnx``); ``model.json`` beside
the ONNX file says how inputs are prepared and what the outputs mean. An image
model's inputs are image files: each is converted to the model's channels,
resized to its input size and scaled to [0, 1] — the same steps the data
loaders take — so the exported model (normalisation folded in) sees what it
was trained on. A signal or sequence model's inputs (``mnist1d``,
``sequence``) are raw arrays, as the generator or your data gives them: a
``.npy`` file holding one sample or N of them (``(N, 40)`` for MNIST-1D), the
array ``x`` of an ``.npz`` file (the sequence task's training format), or a
``.csv``/``.txt`` file with one signal per line. Univariate sequences may
leave out their one feature (``(steps,)`` or ``(N, steps)``), as in training.

Prints one JSON object per input (JSON Lines): for classification the class,
its probability and the top-k (with the sample's ``row`` in an array file);
for detection the boxes (in the original image's pixels, ``[x1, y1, x2, y2]``),
labels and scores. ``output=FILE`` also writes them as one JSON list. In a
folder, a file that cannot be read gets a row with an ``error`` instead, the
others are still predicted, and the exit status is 1 (2 for an error that
stops the run).
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from tqdm.auto import tqdm

from rlnas.data.base import npz_header
from rlnas.data.images import eight_bit, upright
from rlnas.export.model_folder import (  # noqa: F401 - re-exported
    ARRAY_TASKS,
    IMAGE_TASKS,
    MAX_SIDE,
    Model,
    PredictError,
    load_model,
)
from rlnas.utils import csv_separator, is_numeric_text, parse_json
from rlnas.utils.errors import stdout_failed, tolerant_stdout
from rlnas.utils.rundir import writable_dir

#: File suffixes read from an input directory: an image model's ...
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
#: ... and a signal or sequence model's.
ARRAY_SUFFIXES = (".npy", ".npz", ".csv", ".txt")
#: An existing output file larger than this is not read to tell whether it is an earlier predictions file.
MAX_PREDICTIONS_BYTES = 2**30
#: Values one array file may hold (float32: 1 GiB); larger files are split by the user.
MAX_ARRAY_VALUES = 2**28


@dataclass
class PredictConfig:
    """Command-line settings (``key=value``)."""

    model: str = "???"
    input: str = "???"
    output: str | None = None
    batch_size: int = 64
    #: null: 3 (a classifier's setting; a detection model refuses it).
    top_k: int | None = None
    score_threshold: float | None = None


def input_files(path: str | Path, suffixes: Sequence[str], kind: str) -> list[Path]:
    """The input file itself, or the ``suffixes`` files under a directory (recursively, sorted).

    Hidden files and folders under a directory (macOS's ``._x.png`` resource forks,
    ``.thumbnails/``) are skipped, as the ImageFolder loader skips them.
    """
    path = Path(path).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and p.suffix.lower() in suffixes
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not files:
            raise PredictError(f"input={path}: no {kind} files ({', '.join(suffixes)})")
        return files
    if path.exists():  # a pipe or a device: reading it would wait on a writer, or never end
        raise PredictError(f"input={path} is not a regular file or a directory (a pipe or device); save the data first")
    raise PredictError(f"input={path}: no such file or directory")


def load_array(path: Path, sample_shape: tuple[int, ...]) -> np.ndarray:
    """The samples of one ``.npy`` or ``.csv``/``.txt`` file as float32 ``(N, *sample_shape)``.

    A file holds one sample or N of them; the model's leading singleton
    dimensions may be left out (an MNIST-1D model takes ``(1, 1, 40)``: a
    file of shape ``(40,)`` is one signal, ``(N, 40)`` is N). A line of text holds one
    sample, flattened when it has several features per step. An ``.npy`` file
    is read as numbers only: one that holds Python objects is refused, never
    unpickled.

    Raises:
        PredictError: Naming the file: unreadable, not numbers, not finite, too large or of another shape.
    """
    if path.suffix.lower() not in ARRAY_SUFFIXES:
        raise PredictError(f"{path}: not an array file ({', '.join(ARRAY_SUFFIXES)})")
    core = sample_shape
    while len(core) > 1 and core[0] == 1:
        core = core[1:]
    # A univariate sequence (steps, 1) may come as (steps,), as the training files' (N, steps) do.
    shapes = {sample_shape, core, core[:-1] if len(core) > 1 and core[-1] == 1 else core}
    try:
        if path.suffix.lower() == ".npz":
            values = _npz_samples(path)
        elif path.suffix.lower() == ".npy":
            values = np.load(path, mmap_mode="r", allow_pickle=False)
            if not isinstance(values, np.ndarray) or not _real(values.dtype):
                raise PredictError(f"{path}: holds {getattr(values, 'dtype', type(values).__name__)}, not real numbers")
        else:
            if path.stat().st_size > 32 * MAX_ARRAY_VALUES:
                gib = path.stat().st_size / 2**30
                raise PredictError(f"{path}: {gib:.1f} GiB of text; split it into smaller files")
            values = _read_text_table(path)
            width = int(np.prod(core))
            if len(core) > 1 and values.ndim == 2 and values.shape[1] == width:
                # One sample per line, its steps one after another (as a training .csv's rows are read,
                # task.data.features values per step).
                values = values.reshape(len(values), *core)
    except PredictError:
        raise
    except Exception as err:  # noqa: BLE001 - numpy raises many types for malformed files
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise PredictError(f"{path}: unreadable as an array of numbers ({detail})") from None
    if values.size > MAX_ARRAY_VALUES:
        raise PredictError(f"{path}: {values.size:,} values; at most {MAX_ARRAY_VALUES:,} per file")
    shape = tuple(values.shape)
    if shape in shapes:
        count = 1
    elif shape[1:] in shapes and shape[0] >= 1:
        count = shape[0]
    else:
        per_line = f"; a line of text: {int(np.prod(core))} values" if len(core) > 1 else ""
        raise PredictError(
            f"{path}: an array of shape {shape}; the model takes {core} per sample (one, or N as (N, "
            f"{', '.join(map(str, core))}){per_line})"
        )
    with np.errstate(over="ignore"):  # beyond float32's range: inf, refused below
        array = np.asarray(values, dtype=np.float32).reshape(count, *sample_shape)
    if not np.isfinite(array).all():
        raise PredictError(f"{path}: holds NaN, infinite values or values beyond float32's range (about 3.4e38)")
    return np.ascontiguousarray(array)


def _real(dtype: np.dtype) -> bool:
    """Whether an array of ``dtype`` holds real numbers (complex ones would lose a part, objects are refused)."""
    return np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)


def _npz_samples(path: Path) -> np.ndarray:
    """The samples ``x`` of an ``.npz`` file (labels ``y`` beside them are ignored), sized before inflating."""
    with np.load(path, allow_pickle=False) as loaded:
        if "x" not in loaded.files:
            raise PredictError(f"{path}: no array 'x' (the samples; np.savez(path, x=...)), only {loaded.files}")
        shape, dtype = npz_header(loaded, "x", path)
        if math.prod(shape) > MAX_ARRAY_VALUES:
            raise PredictError(f"{path}: {math.prod(shape):,} values; at most {MAX_ARRAY_VALUES:,} per file")
        if not _real(dtype):
            raise PredictError(f"{path}: x holds {dtype}, not real numbers")
        return loaded["x"]


def _read_text_table(path: Path) -> np.ndarray:
    """Numbers from a ``.csv`` (commas, semicolons or tabs) or ``.txt`` (blanks) file, one sample per row.

    Spreadsheets write a byte-order mark and often a header row: the mark is
    dropped, and a first row that is not numbers is read as the header. The
    file is read once; numpy parses its lines.
    """
    raw = path.read_text(encoding="utf-8-sig").splitlines()
    delimiter = _delimiter(raw) if path.suffix.lower() == ".csv" else None
    # Exporters quote every field ("1.5") or end each row with a separator ("1.5,2.0,"): both are read,
    # and so are decimal commas where a semicolon or tab separates the fields.
    lines = [line.replace('"', "").strip() for line in raw]
    if delimiter is not None:
        lines = [line[: -len(delimiter)].rstrip() if line.endswith(delimiter) else line for line in lines]
    if delimiter in (";", "\t"):
        lines = [line.replace(",", ".") for line in lines]
    rows = [(i, line, line.split(delimiter)) for i, line in enumerate(lines, 1) if line]
    header = bool(rows) and not all(is_numeric_text(f) for f in rows[0][2])
    data = rows[1:] if header else rows
    for row, _, fields in data[1:]:
        if len(fields) != len(data[0][2]):
            raise PredictError(
                f"{path}: line {row} has {len(fields)} values, line {data[0][0]} has {len(data[0][2])}; "
                "every sample needs the same number"
            )
    if header and not data:
        raise PredictError(
            f"{path}: holds no numbers (its one row, {rows[0][1][:60]!r}, is not numbers separated "
            f"by {repr(delimiter) if delimiter else 'blanks'}); write one sample per row"
        )
    with warnings.catch_warnings():  # an empty file: numpy warns, then returns no rows, refused below
        warnings.simplefilter("ignore", UserWarning)
        values = np.loadtxt([line for _, line, _ in data], delimiter=delimiter, ndmin=2)
    if values.size == 0:
        raise PredictError(f"{path}: holds no numbers")
    return values


def _delimiter(lines: Sequence[str]) -> str | None:
    """The separator of a ``.csv`` file: the comma, or a semicolon or tab (spreadsheets of some locales), or blanks.

    Taken from the last non-empty line (a header may use another): the most frequent of the three, none for
    numbers separated by blanks alone.
    """
    return csv_separator(next((text for text in reversed(lines) if text.strip()), ""))


def load_image(path: Path, channels: int, size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """An image as float32 (C, H, W) in [0, 1] at the model's size, and its original (width, height)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img = upright(img)  # as trained (rlnas.data.images) and as the user sees it: boxes land on that
            original = img.size
            img = eight_bit(img, "L" if channels == 1 else "RGB").resize((size[1], size[0]), Image.BILINEAR)
            pixels = np.asarray(img, dtype=np.float32) / 255.0
    except Exception as err:  # PIL raises many types for broken files
        raise PredictError(f"{path}: unreadable image ({type(err).__name__})") from None
    if pixels.ndim == 2:
        pixels = pixels[None]
    else:
        pixels = pixels.transpose(2, 0, 1)
    return np.ascontiguousarray(pixels), original


def _check_output(output: Path, given: str, inputs: Sequence[Path]) -> None:
    """Refuses an output that is one of the run's inputs, or an existing file this tool did not write.

    Raises:
        PredictError: Naming the output and why.
    """
    target = output.resolve()
    if any(target == p.resolve() for p in inputs):
        raise PredictError(f"output={given} is one of this run's inputs (the model or an input); name another file")
    if output.is_symlink() or output.exists() and not output.is_file():
        # Reading /dev/stdout to tell whose file it is blocked forever when it was a pipe.
        raise PredictError(
            f"output={given} is not a regular file (a link, device or pipe); name a new file, or leave output= out "
            "to print the predictions"
        )
    if output.exists():
        try:
            if output.stat().st_size > MAX_PREDICTIONS_BYTES:  # not read into memory to find out whose it is
                raise OSError
            previous = parse_json(output.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            previous = None
        if not isinstance(previous, list) or not all(isinstance(r, dict) and "file" in r for r in previous):
            raise PredictError(
                f"output={given} exists and is not a predictions file written by rlnas.predict; it is left as it is "
                "(name a new file)"
            )


def _batches(items: Sequence[Path], size: int) -> Iterator[Sequence[Path]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Decoder:
    """Turns raw model outputs into JSON-ready predictions for the model's task."""

    def __init__(self, model: Model, top_k: int, score_threshold: float | None) -> None:
        self.meta = model.meta
        self.top_k = int(top_k)
        self.names = [str(n) for n in self.meta["class_names"]]
        self.detector = None
        if self.meta["task"] == "detection":
            from rlnas.tasks.detection import DetectionTask
            from rlnas.utils.trust import checked_instantiate

            task_config = self.meta.get("task_config") or {"_target_": "rlnas.tasks.detection.DetectionTask"}
            if not isinstance(task_config, dict):
                raise PredictError(f"{model.path.with_name('model.json')}: task_config must be a mapping")
            task_config = dict(task_config)
            if score_threshold is not None:
                task_config["score_threshold"] = float(score_threshold)
            # model.json is data (a model folder may come from anyone): only the project's detection task is built.
            source = str(model.path.with_name("model.json"))
            from hydra.errors import InstantiationException

            try:
                self.detector = checked_instantiate(task_config, DetectionTask, "task_config", source=source)
            except InstantiationException as err:  # a tampered setting (score_threshold: "high")
                cause = err.__cause__ or err
                detail = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
                raise PredictError(f"{source}: task_config cannot be used ({detail})") from None
            self.detector.num_classes = len(self.names)
            self.detector.image_size = int(model.size[1])

    def __call__(self, outputs: np.ndarray, originals: Sequence[tuple[int, int]]) -> list[dict[str, Any]]:
        if self.detector is not None:
            return self._detections(outputs, originals)
        return self._classes(outputs)

    def _classes(self, logits: np.ndarray) -> list[dict[str, Any]]:
        probs = torch.softmax(torch.as_tensor(logits, dtype=torch.float32), dim=1)
        top = probs.topk(min(self.top_k, probs.shape[1]), dim=1)
        rows = []
        for values, indices in zip(top.values.tolist(), top.indices.tolist()):
            rows.append(
                {
                    "class": self.names[indices[0]],
                    "index": indices[0],
                    "probability": round(values[0], 6),
                    "top_k": [{"class": self.names[i], "probability": round(v, 6)} for v, i in zip(values, indices)],
                }
            )
        return rows

    def _detections(self, outputs: np.ndarray, originals: Sequence[tuple[int, int]]) -> list[dict[str, Any]]:
        assert self.detector is not None
        size = self.detector.image_size
        rows = []
        for found, (width, height) in zip(self.detector.decode(torch.as_tensor(outputs)), originals):
            # Boxes come in the model's input pixels; scale back to the original image.
            scale = torch.tensor([width / size, height / size, width / size, height / size])
            boxes = (found["boxes"].cpu() * scale).tolist()
            rows.append(
                {
                    "detections": [
                        {
                            "label": self.names[int(label)],
                            "index": int(label),
                            "score": round(float(score), 6),
                            "box": [round(v, 2) for v in box],
                        }
                        for box, label, score in zip(boxes, found["labels"].tolist(), found["scores"].tolist())
                    ]
                }
            )
        return rows


def _finite(outputs: np.ndarray, model: Model, inputs: Sequence[str]) -> np.ndarray:
    """The model's raw outputs, refused where a sample's scores hold NaN or inf (a damaged model or an overflow).

    Args:
        outputs: One row of scores (or a detector's raw map) per sample.
        model: The model that gave them.
        inputs: Each row's input as the user knows it (a file, or ``file row N``).

    Raises:
        PredictError: Naming the model file and the first such input, where a
            prediction would say class X with probability NaN.
    """
    bad = ~np.isfinite(outputs.reshape(len(outputs), -1)).all(axis=1)
    if bad.any():
        raise PredictError(
            f"{model.path}: gives NaN or inf scores for {inputs[int(bad.argmax())]}; "
            "its weights or this input are not usable"
        )
    return outputs


def predict(
    model: Model,
    files: Sequence[Path],
    batch_size: int = 64,
    top_k: int = 3,
    score_threshold: float | None = None,
    progress: bool = True,
    keep_going: bool = False,
) -> Iterator[dict[str, Any]]:
    """Yields one prediction per image or array sample, in order, batching the ONNX calls.

    Args:
        keep_going: An unreadable file yields ``{"file": ..., "error": ...}`` and the
            others are still predicted (one broken image in a folder of thousands);
            otherwise it raises.

    Raises:
        PredictError: For a setting out of range (:func:`check_settings`), and
            for an unreadable file unless ``keep_going``.
    """
    check_settings(batch_size, top_k, score_threshold)
    decoder = Decoder(model, top_k, score_threshold)
    bar = tqdm(
        total=len(files),
        desc="predict",
        unit="file",
        disable=None if progress else True,
        dynamic_ncols=True,
        file=sys.stderr,
    )
    name = model.session.get_inputs()[0].name
    batch = int(batch_size)
    if not model.takes_images:
        for path in files:
            try:
                samples = load_array(path, model.sample_shape)
            except PredictError as err:
                if not keep_going:
                    raise
                yield _unreadable(path, err)
                bar.update(1)
                continue
            for start in range(0, len(samples), batch):
                rows = samples[start : start + batch]
                names = [f"{path} row {start + i}" for i in range(len(rows))]
                outputs = _finite(model.session.run(None, {name: rows})[0], model, names)
                for i, row in enumerate(decoder(outputs, [])):
                    yield {"file": str(path), "row": start + i, **row}
            bar.update(1)
        bar.close()
        return
    for chunk in _batches(files, batch):
        loaded: dict[Path, tuple[np.ndarray, tuple[int, int]]] = {}
        failed: dict[Path, PredictError] = {}
        for path in chunk:
            try:
                loaded[path] = load_image(path, model.channels, model.size)
            except PredictError as err:
                if not keep_going:
                    raise
                failed[path] = err
        if loaded:
            x = np.stack([pixels for pixels, _ in loaded.values()])
            outputs = _finite(model.session.run(None, {name: x})[0], model, [str(p) for p in loaded])
            found = dict(zip(loaded, decoder(outputs, [size for _, size in loaded.values()])))
        for path in chunk:  # in the order given, the unreadable ones in their places
            yield _unreadable(path, failed[path]) if path in failed else {"file": str(path), **found[path]}
        bar.update(len(chunk))
    bar.close()


def _unreadable(path: Path, err: PredictError) -> dict[str, Any]:
    """The row of a file that could not be read: its name and why (the message less the path it starts with)."""
    message = str(err)
    prefix = f"{path}: "
    return {"file": str(path), "error": message[len(prefix) :] if message.startswith(prefix) else message}


#: Settings that name a file or folder, taken as typed.
PATH_SETTINGS = ("model", "input", "output")


def parse_args(argv: Sequence[str]) -> PredictConfig:
    """``key=value`` arguments checked against :class:`PredictConfig`."""
    schema = OmegaConf.structured(PredictConfig)
    bad = [a for a in argv if "=" not in a]
    if bad:
        raise PredictError(f"argument {bad[0]!r} is not key=value; keys: {list(PredictConfig.__annotations__)}")
    keys = [a.partition("=")[0] for a in argv]
    unknown = next((k for k in keys if k not in PredictConfig.__annotations__), None)
    if unknown is not None:  # OmegaConf's "Key 'device' not in 'PredictConfig'" named no setting there is
        allowed = ", ".join(PredictConfig.__annotations__)
        raise PredictError(f"{unknown} is not a setting of rlnas.predict; allowed: {allowed}"[:300])
    twice = next((k for k in keys if keys.count(k) > 1), None)
    if twice is not None:  # the last one silently won: input=a.png input=b.png predicted b.png alone
        hint = " (input= takes a folder of files)" if twice == "input" else ""
        raise PredictError(f"{twice}= is given {keys.count(twice)} times; give it once{hint}")
    for arg in argv:
        key, _, value = arg.partition("=")
        if key in ("model", "input") and not value.strip():
            raise PredictError(f"{key}= is empty; name a {'retrain run dir' if key == 'model' else 'file or folder'}")
    # Paths as typed: YAML read input=- as a list ("Cannot convert 'ListConfig' to string"), input=1e3 as 1000.0.
    paths = {k: v for k, _, v in (a.partition("=") for a in argv) if k in PATH_SETTINGS}
    try:
        cfg = OmegaConf.merge(schema, OmegaConf.from_dotlist([a for a in argv if a.partition("=")[0] not in paths]))
        for key, value in paths.items():
            cfg[key] = None if key == "output" and value in ("", "null") else value
        for key in ("model", "input"):
            if OmegaConf.is_missing(cfg, key):
                raise PredictError(f"{key}=... is required")
        parsed: PredictConfig = OmegaConf.to_object(cfg)  # type: ignore[assignment]
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None)
        message = str(err).splitlines()[0]
        raise PredictError(f"{key}: {message}" if key else message) from None
    check_settings(parsed.batch_size, parsed.top_k, parsed.score_threshold)
    return parsed


def check_settings(batch_size: Any, top_k: Any, score_threshold: Any) -> None:
    """Refuses a batch size or ``top_k`` below 1 and a threshold outside ``[0, 1]``, by name.

    From the command line and from Python alike: ``predict(batch_size=0)`` ran with one anyway, a
    negative ``top_k`` dropped the last classes, ``top_k=2.5`` was rounded down.

    Raises:
        PredictError: Naming the setting.
    """
    for key, value in (("batch_size", batch_size), ("top_k", top_k)):
        if value is None and key == "top_k":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise PredictError(f"{key} must be a whole number >= 1, got {value!r}")
    if score_threshold is None:
        return
    if isinstance(score_threshold, bool) or not isinstance(score_threshold, (int, float, np.integer, np.floating)):
        raise PredictError(f"score_threshold must be a number in [0, 1] or null, got {score_threshold!r}")
    if not 0 <= score_threshold <= 1:
        raise PredictError(f"score_threshold must be in [0, 1] or null, got {score_threshold}")


def _check_task_settings(cfg: PredictConfig, task: str | None) -> None:
    """Refuses a setting the model's task does not read (it would be ignored, silently)."""
    if cfg.score_threshold is not None and task != "detection":
        raise PredictError(f"score_threshold is a detection model's setting; {cfg.model} is a {task} model")
    if cfg.top_k is not None and task == "detection":
        raise PredictError(f"top_k is a classifier's setting; {cfg.model} is a detection model (score_threshold=)")


def _output_file(setting: str | None) -> Path | None:
    """The file ``output=`` names, checked before any work: a missing folder is made, an unwritable one named."""
    output = Path(setting).expanduser() if setting else None
    if sys.stdout is None and output is None:  # started with stdout closed: every row would vanish
        raise PredictError("standard output is closed; pass output=FILE for the predictions")
    if output is None:
        return None
    try:
        is_dir = output.is_dir()
    except OSError as err:  # a name too long
        raise PredictError(f"output={setting}: cannot write the predictions there ({err.strerror})") from None
    if is_dir:
        raise PredictError(f"output={setting} is a directory; name a file (e.g. preds.json)")
    try:  # a read-only disk, a file on the way
        writable_dir(output.parent, f"output={setting}", "the predictions")
    except ValueError as err:
        raise PredictError(str(err)) from None
    return output


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; errors print one line and return 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    tolerant_stdout("rlnas.predict")
    if any(a in ("-h", "--help") for a in args):
        print(
            __doc__.strip() + "\n\nsettings (key=value): model (required), input (required), output=null, "
            "batch_size=64, top_k=3, score_threshold=null (detection: the model's own when null)"
        )
        return 0
    try:
        cfg = parse_args(args)
        output = _output_file(cfg.output)
        model = load_model(cfg.model)
        _check_task_settings(cfg, model.meta.get("task"))
        files = (
            input_files(cfg.input, IMAGE_SUFFIXES, "image")
            if model.takes_images
            else input_files(cfg.input, ARRAY_SUFFIXES, f"{model.meta['task']} input")
        )
        if output is not None:
            _check_output(output, cfg.output, [*files, model.path, model.path.with_name("model.json")])
        rows = []
        # A folder's broken file is a row with an error (and exit status 1), not the end of the others.
        folder = Path(cfg.input).expanduser().is_dir()
        rows_of = predict(model, files, cfg.batch_size, cfg.top_k or 3, cfg.score_threshold, keep_going=folder)
        for row in rows_of:
            print(json.dumps(row), flush=True)
            rows.append(row)
            if output is None and stdout_failed() is not None:  # the reader is gone and no file waits
                return 1
    except PredictError as err:
        print(f"rlnas.predict: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a path the system cannot take (a name too long, a link loop) or a failing disk
        from rlnas.utils.errors import user_error_message

        message = user_error_message(err)
        if message is None:
            raise
        print(f"rlnas.predict: error: {message}", file=sys.stderr)
        return 2
    if output is not None:
        from rlnas.utils import write_json_atomic
        from rlnas.utils.errors import user_error_message

        try:
            write_json_atomic(output, rows)
        except OSError as err:  # a disk that filled up meanwhile: the predictions were printed above
            print(f"rlnas.predict: error: {user_error_message(err) or err}", file=sys.stderr)
            return 2
        print(f"wrote {len(rows)} predictions to {cfg.output}", file=sys.stderr)
    failed = [row for row in rows if "error" in row]
    if failed:
        print(
            f"rlnas.predict: {len(failed)} of {len(files)} files could not be read (their rows hold an error), "
            f"the first {failed[0]['file']}: {failed[0]['error']}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
