"""The model artifact: ``model.tar.gz`` with ``config.json`` at the archive root.

SageMaker downloads the object a model's ``ModelDataUrl`` names and extracts it into
``/opt/ml/model`` before starting the container; the server reads ``/opt/ml/model/config.json``
once per worker. The artifact is the validated detector configuration, the learned model
(``model.onnx`` + ``model.json``, :mod:`roomkit.learned.modelfile`) when there is one, and any
extra files a deployment wants beside it (a README, a calibration table).

Archives are reproducible: the same config and files give byte-identical ``model.tar.gz``
(sorted members, fixed mtime, owner and modes, no gzip timestamp), so re-running a deployment
does not upload a "new" model, and an artifact's hash identifies its content.

This module imports neither boto3 nor OpenCV: uploading the archive is the deploy code's job
(checking a model loads uses onnxruntime, imported only then).
"""
from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Mapping, Union

from roomkit.detector.config import DetectorConfig
from roomkit.errors import ConfigError, RoomkitError
from roomkit.learned.modelfile import INFO_NAME, ONNX_NAME, ModelError, has_model, read_info, shipped_model_dir

CONFIG_NAME = "config.json"
ARTIFACT_NAME = "model.tar.gz"
# Members carry this mtime (2020-01-01) unless SOURCE_DATE_EPOCH says otherwise.
_DEFAULT_MTIME = 1577836800

ConfigLike = Union[DetectorConfig, Mapping[str, Any], str, os.PathLike]
ExtraFile = Union[str, os.PathLike, tuple[Union[str, os.PathLike], str]]


class ArtifactError(RoomkitError):
    """A model artifact cannot be written or read (missing file, bad member, no config.json)."""

    code = "invalid_model_artifact"
    http_status = 400


def package_model(
    config: ConfigLike,
    out: str | os.PathLike,
    extra_files: Iterable[ExtraFile] = (),
    model_dir: str | os.PathLike | None = None,
) -> Path:
    """Write ``model.tar.gz`` holding ``config.json`` (validated), the learned model and ``extra_files``.

    Parameters
    ----------
    config:
        A :class:`~roomkit.detector.config.DetectorConfig`, a mapping of its fields, or the path of a
        ``config.json``. It is validated here, so a typo fails at packaging time rather than as
        an endpoint that never turns healthy.
    out:
        The archive path (``.../model.tar.gz``), or an existing directory to write
        ``model.tar.gz`` into.
    extra_files:
        Files to add at the archive root under their own name, or ``(path, arcname)`` pairs
        (``arcname`` a relative POSIX path such as ``"docs/README.md"``).
    model_dir:
        A model directory (``model.onnx`` + ``model.json``, as ``roomkit train`` writes it),
        checked here by loading it with onnxruntime. Without it, a config whose backend is
        ``learned`` or ``hybrid`` gets the weights shipped with roomkit (an error if this
        install has none); a ``rules`` config gets no model.

    Returns
    -------
    Path
        The archive written.

    Examples
    --------
    >>> package_model({"door_gap": 24}, tmp_path)            # doctest: +SKIP
    PosixPath('.../model.tar.gz')
    """
    cfg = _as_config(config)
    members: dict[str, bytes] = {
        CONFIG_NAME: (json.dumps(cfg.to_dict(), indent=2, sort_keys=True) + "\n").encode("utf-8")
    }
    members.update(_model_members(cfg, model_dir))
    for item in extra_files:
        if isinstance(item, tuple):
            src, arcname = Path(item[0]), _check_arcname(item[1])
        else:
            src = Path(item)
            arcname = _check_arcname(src.name)
        if arcname in members:
            raise ArtifactError(
                f"duplicate archive member {arcname!r} ({CONFIG_NAME}, {ONNX_NAME} and {INFO_NAME} are written by roomkit)")
        if not src.is_file():
            raise ArtifactError(f"extra file {src} does not exist or is not a regular file")
        members[arcname] = src.read_bytes()

    out = Path(out)
    if out.is_dir():
        out = out / ARTIFACT_NAME
    out.parent.mkdir(parents=True, exist_ok=True)
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", _DEFAULT_MTIME))

    tmp = out.with_name(out.name + ".part")
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(members):
                data = members[name]
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mtime = mtime
                info.mode = 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, out)
    return out


def read_model(path: str | os.PathLike) -> DetectorConfig:
    """The detector configuration inside a model artifact.

    ``path`` is a ``model.tar.gz``, a directory it was extracted into (what the container sees
    as ``/opt/ml/model``) or a ``config.json``.
    """
    path = Path(path)
    if path.is_dir():
        return DetectorConfig.from_json(path / CONFIG_NAME)
    if path.suffix == ".json":
        return DetectorConfig.from_json(path)
    try:
        with tarfile.open(path, mode="r:*") as tar:
            try:
                member = tar.getmember(CONFIG_NAME)
            except KeyError:
                raise ArtifactError(
                    f"{path} has no {CONFIG_NAME} at the archive root "
                    f"(members: {', '.join(tar.getnames()[:10]) or 'none'})"
                ) from None
            handle = tar.extractfile(member)
            if handle is None:
                raise ArtifactError(f"{path}: {CONFIG_NAME} is not a regular file")
            text = handle.read().decode("utf-8")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ArtifactError(f"cannot read model artifact {path}: {exc}") from exc
    try:
        return DetectorConfig.from_dict(json.loads(text))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{CONFIG_NAME} is not valid JSON: {exc}") from exc
    except ConfigError as exc:
        raise ConfigError(f"{path}:{CONFIG_NAME}: {exc.message}") from exc


def extract_model(path: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Extract a model artifact into ``dest`` the way SageMaker fills ``/opt/ml/model``.

    Only regular files and directories inside ``dest`` are written (tarfile's ``data`` filter):
    absolute names, ``..``, links and device files are refused. Returns ``dest``.
    """
    path, dest = Path(path), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(path, mode="r:*") as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ArtifactError(f"cannot extract model artifact {path}: {exc}") from exc
    if not (dest / CONFIG_NAME).is_file():
        raise ArtifactError(f"{path} has no {CONFIG_NAME} at the archive root")
    return dest


def _model_members(cfg: DetectorConfig, model_dir: str | os.PathLike | None) -> dict[str, bytes]:
    """``model.onnx`` and ``model.json`` to pack: from ``model_dir`` (validated), else the shipped
    weights when the backend needs a model, else none."""
    if model_dir is None:
        if cfg.backend == "rules":
            return {}
        model_dir = shipped_model_dir()
        if not has_model(model_dir):
            raise ArtifactError(
                f"backend {cfg.backend!r} needs a learned model and this roomkit install ships none "
                f"({model_dir} has no {ONNX_NAME}): train one with `roomkit train DATA_DIR --out MODEL_DIR` "
                "and pass model_dir (CLI: --model MODEL_DIR), or use backend 'rules'")
    src = Path(model_dir)
    if not src.is_dir():
        raise ArtifactError(f"model directory {src} does not exist or is not a folder")
    try:
        read_info(src)
        from roomkit.learned.runtime import LearnedModel  # onnxruntime, only to check the file loads

        LearnedModel.load(src, threads=1)
    except ModelError as exc:
        raise ArtifactError(f"cannot package the model in {src}: {exc.message}") from None
    return {ONNX_NAME: (src / ONNX_NAME).read_bytes(), INFO_NAME: (src / INFO_NAME).read_bytes()}


def _as_config(config: ConfigLike) -> DetectorConfig:
    if isinstance(config, DetectorConfig):
        return config
    if isinstance(config, Mapping):
        return DetectorConfig.from_dict(config)
    if isinstance(config, (str, os.PathLike)):
        return DetectorConfig.from_json(config)
    raise ConfigError(
        f"config must be a DetectorConfig, a mapping or a path to config.json, got {type(config).__name__}"
    )


def _check_arcname(name: str) -> str:
    pure = PurePosixPath(str(name).replace("\\", "/"))
    if not pure.parts or pure.is_absolute() or ".." in pure.parts or str(pure) in ("", "."):
        raise ArtifactError(f"archive member name {name!r} must be a relative path inside the archive")
    return str(pure)
