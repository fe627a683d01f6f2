"""Running a trained model: ``model.onnx`` with onnxruntime on the CPU, no training framework.

:class:`LearnedModel` turns a prepared plan (uint8 gray, dark ink on light paper, as
:func:`roomkit.detector.preprocess.prepare` makes it) into per-pixel class probabilities.
Loading validates the whole directory, so a server can refuse to turn healthy on a missing or
corrupt model instead of failing its first request.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from roomkit.learned.modelfile import CLASSES, INFO_NAME, ONNX_NAME, ModelError, ModelInfo, read_info, shipped_model_dir

#: Output channel of each class.
OUTSIDE, WALL, OPENING, ROOM = (CLASSES.index(c) for c in ("outside", "wall", "opening", "room"))


def to_input(gray: np.ndarray) -> np.ndarray:
    """The network's input for a uint8 plan: ink = 1, paper = 0, float32 (H, W)."""
    return 1.0 - gray.astype(np.float32) / 255.0


def pad_to(x: np.ndarray, multiple: int) -> np.ndarray:
    """Pad (…, H, W) with zeros (paper) at the bottom/right to multiples of ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not ph and not pw:
        return x
    pad = [(0, 0)] * (x.ndim - 2) + [(0, ph), (0, pw)]
    return np.pad(x, pad)


@dataclass(frozen=True)
class LearnedModel:
    """A loaded model directory; :meth:`predict` is thread-safe (onnxruntime sessions are)."""

    path: Path
    info: ModelInfo
    session: object  # onnxruntime.InferenceSession

    @classmethod
    def load(cls, model_dir: str | Path | None = None, *, threads: int | None = None) -> "LearnedModel":
        """Load and check ``model_dir`` (default: the shipped weights); :class:`ModelError` if unusable.

        ``threads``: onnxruntime's intra-op threads (default: ``ROOMKIT_MODEL_THREADS`` or all cores).
        """
        import onnxruntime as ort  # lazy: only learned/hybrid backends need it

        path = Path(model_dir) if model_dir is not None else shipped_model_dir()
        info = read_info(path)
        opts = ort.SessionOptions()
        n = threads if threads is not None else int(os.environ.get("ROOMKIT_MODEL_THREADS", "0") or 0)
        opts.intra_op_num_threads = max(0, n)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(path / ONNX_NAME), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail / InvalidGraph types
            raise ModelError(f"{path / ONNX_NAME} cannot be loaded by onnxruntime: {str(exc).strip()[:300]}") from exc
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1 or inputs[0].shape[1] != 1 or outputs[0].shape[1] != len(CLASSES):
            raise ModelError(
                f"{path / ONNX_NAME} does not take (N, 1, H, W) and give (N, {len(CLASSES)}, H, W) as {INFO_NAME} says"
            )
        model = cls(path, info, session)
        model.predict(np.full((info.multiple, info.multiple), 255, np.uint8))  # fail now, not on a request
        return model

    def predict(self, gray: np.ndarray) -> np.ndarray:
        """Class probabilities (len(CLASSES), H, W) float32 for a uint8 (H, W) plan.

        Plans longer than ``info.max_side`` run shrunk and their maps are scaled back up."""
        h, w = gray.shape
        scale = min(1.0, self.info.max_side / float(max(h, w)))
        small = gray
        if scale < 1.0:
            import cv2  # lazy: validating a model (the artifact packer, AWS side) needs no OpenCV

            small = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        x = pad_to(to_input(small), self.info.multiple)[None, None]
        sess = self.session
        try:
            out = sess.run(None, {sess.get_inputs()[0].name: x})[0][0]  # type: ignore[attr-defined]
        except Exception as exc:
            raise ModelError(f"the model failed on a {w}x{h} plan: {str(exc).strip()[:300]}") from exc
        out = out[:, : small.shape[0], : small.shape[1]]
        if scale < 1.0:  # each map straight into its place (no stacked copy: half the time at 2 MP)
            full = np.empty((out.shape[0], h, w), np.float32)
            for c, dst in zip(out, full):
                cv2.resize(c, (w, h), dst=dst, interpolation=cv2.INTER_LINEAR)
            return full
        return np.ascontiguousarray(out, dtype=np.float32)


_CACHE: dict[tuple[str, float, float], LearnedModel] = {}
_LOCK = threading.Lock()


def load_model(model_dir: str | Path | None = None) -> LearnedModel:
    """:meth:`LearnedModel.load`, cached per directory and file times (one session per process)."""
    path = (Path(model_dir) if model_dir is not None else shipped_model_dir()).resolve()
    try:
        key = (str(path), (path / ONNX_NAME).stat().st_mtime, (path / INFO_NAME).stat().st_mtime)
    except OSError:
        read_info(path)  # raises the ModelError naming what is missing
        raise ModelError(f"cannot read the model files in {path}") from None
    with _LOCK:
        model = _CACHE.get(key)
        if model is None:
            model = LearnedModel.load(path)
            _CACHE.clear()  # one model per process is the serving case; keep memory flat
            _CACHE[key] = model
        return model
