"""A retrain run's model folder as data: ``model.onnx`` and the ``model.json`` that says how to feed and read it.

A model folder may come from anyone: every field of ``model.json`` that later
code allocates from or trusts is checked here, against ``model.onnx`` where its
shapes are fixed, with a one-line error naming the file and field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlnas.utils import parse_json

#: Tasks whose models take images ...
IMAGE_TASKS = ("classification", "detection")
#: ... and tasks whose models take arrays (signals, sequences), read from .npy or .csv files.
ARRAY_TASKS = ("mnist1d", "sequence")


class PredictError(ValueError):
    """A missing or malformed model or input; the message names the file or key."""


@dataclass
class Model:
    """An ONNX session with the metadata that says how to feed and read it."""

    session: Any
    meta: dict[str, Any]
    path: Path

    @property
    def channels(self) -> int:
        return int(self.meta["in_channels"])

    @property
    def size(self) -> tuple[int, int]:
        h, w = self.meta["image_size"]
        return int(h), int(w)

    @property
    def takes_images(self) -> bool:
        return self.meta["task"] in IMAGE_TASKS

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """One input's shape without the batch dimension (``(1, 1, 40)`` for an MNIST-1D model)."""
        shape = self.session.get_inputs()[0].shape[1:]
        if all(isinstance(d, int) for d in shape):
            return tuple(shape)
        return (self.channels, *self.size) if self.takes_images else tuple(self.size)


def load_model(path: str | Path) -> Model:
    """Opens ``model.onnx`` of a retrain run dir (or the given ONNX file) and its ``model.json``.

    Raises:
        PredictError: Naming the missing or malformed file.
    """
    from rlnas.export import onnx_session

    path = Path(path).expanduser()
    onnx_path = path / "model.onnx" if path.is_dir() else path
    meta_path = onnx_path.with_name("model.json")
    if path.is_file() and path.suffix.lower() != ".onnx":  # model.pt or model.ts: the folder serves its ONNX export
        raise PredictError(
            f"model={path}: rlnas.predict serves the ONNX export; pass the retrain run dir or its model.onnx"
        )
    if not onnx_path.is_file():
        if path.is_dir() and (path / "best_arch.json").is_file():  # a search's run dir: not trained on its own yet
            raise PredictError(
                f"model={path}: a search's run dir, not a trained model; train its pick first: "
                f"python -m rlnas.retrain arch={path}, then pass the retrain dir it names"
            )
        raise PredictError(f"model={path}: no ONNX model at {onnx_path} (pass a retrain run dir or its model.onnx)")
    if not meta_path.is_file():
        raise PredictError(f"{meta_path}: missing; it is written by rlnas.retrain beside model.onnx")
    try:
        meta = parse_json(meta_path.read_text())
        needed = ("task", "in_channels", "image_size", "class_names")
        absent = [k for k in needed if k not in meta] if isinstance(meta, dict) else ["task"]
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PredictError(f"{meta_path}: malformed JSON ({err})") from None
    if isinstance(meta, dict) and meta.get("task") not in (None, *IMAGE_TASKS, *ARRAY_TASKS):
        raise PredictError(
            f"{meta_path}: task={meta['task']!r} is not a task rlnas.predict serves "
            f"({', '.join([*IMAGE_TASKS, *ARRAY_TASKS])})"
        )
    if absent:
        raise PredictError(f"{meta_path}: no '{absent[0]}' entry")
    _check_meta(meta, meta_path)
    try:
        session = onnx_session(onnx_path)
    except Exception as err:  # onnxruntime raises its own exception types
        raise PredictError(f"{onnx_path}: not a loadable ONNX model ({type(err).__name__})") from None
    _check_against_session(meta, meta_path, session)
    return Model(session, meta, onnx_path)


#: Largest image side a model.json may ask for: images are resized to it before anything is allocated.
MAX_SIDE = 4096


def _check_meta(meta: dict[str, Any], meta_path: Path) -> None:
    """Refuses model.json fields that would crash or exhaust memory later, naming the field."""
    size = meta["image_size"]
    if (
        not isinstance(size, list)
        or len(size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= MAX_SIDE for s in size)
    ):
        raise PredictError(
            f"{meta_path}: image_size must be [height, width], whole numbers in 1..{MAX_SIDE}, got {size!r}"
        )
    if meta["task"] in IMAGE_TASKS and (meta["in_channels"] not in (1, 3) or isinstance(meta["in_channels"], bool)):
        raise PredictError(f"{meta_path}: in_channels must be 1 (grey) or 3 (RGB), got {meta['in_channels']!r}")
    names = meta["class_names"]
    if not isinstance(names, list) or not names or not all(isinstance(n, (str, int)) for n in names):
        raise PredictError(f"{meta_path}: class_names must be a non-empty list of names")
    seen: set[str] = set()
    for name in map(str, names):
        if name in seen:  # a prediction's label would not tell two classes apart
            raise PredictError(f"{meta_path}: class_names must be distinct; {name!r} repeats")
        seen.add(name)


def _check_against_session(meta: dict[str, Any], meta_path: Path, session: Any) -> None:
    """Refuses a model.json that describes another network than model.onnx (where the ONNX shapes are fixed)."""
    shape = list(session.get_inputs()[0].shape)
    if len(shape) == 4:
        for field, have, want in (
            ("in_channels", meta["in_channels"], shape[1]),
            ("image_size", meta["image_size"], shape[2:]),
        ):
            fixed = [w for w in (want if isinstance(want, list) else [want])]
            if all(isinstance(w, int) for w in fixed) and (have if isinstance(have, list) else [have]) != fixed:
                raise PredictError(f"{meta_path}: {field}={have} but model.onnx takes {want}")
    outputs = session.get_outputs()[0].shape
    if meta["task"] == "detection" and len(outputs) == 2:
        raise PredictError(f"{meta_path}: task=detection but model.onnx outputs class scores (a classifier)")
    if meta["task"] != "detection":  # every other task classifies
        if len(outputs) != 2:
            raise PredictError(f"{meta_path}: task={meta['task']} but model.onnx outputs {len(outputs)}-D tensors")
        if isinstance(outputs[1], int) and outputs[1] != len(meta["class_names"]):
            raise PredictError(
                f"{meta_path}: {len(meta['class_names'])} class_names but model.onnx scores {outputs[1]} classes"
            )
