"""model.tar.gz with a learned model: packed validated, reproducible, extracted as SageMaker does.
(Serving an archive packed this way: tests/serving/test_serving_learned.py.)"""
from __future__ import annotations

import json
import subprocess
import sys
import tarfile

import pytest

from learned_support import make_model_dir
from roomkit.detector.config import DetectorConfig
from roomkit.learned.modelfile import has_model, read_info, shipped_model_dir
from roomkit.serving.artifacts import ArtifactError, extract_model, package_model, read_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("model") / "trained")


def _members(path) -> list[str]:
    with tarfile.open(path) as tar:
        return sorted(tar.getnames())


def test_model_files_travel_in_the_archive_and_come_back_byte_identical(tmp_path, model_dir):
    out = package_model({"backend": "learned"}, tmp_path / "model.tar.gz", model_dir=model_dir)
    assert _members(out) == ["config.json", "model.json", "model.onnx"]
    assert read_model(out) == DetectorConfig(backend="learned")
    dest = extract_model(out, tmp_path / "opt-ml-model")
    for name in ("model.onnx", "model.json"):
        assert (dest / name).read_bytes() == (model_dir / name).read_bytes()
    assert read_info(dest).channels == read_info(model_dir).channels
    assert read_model(dest) == DetectorConfig(backend="learned")


def test_archives_with_a_model_are_reproducible(tmp_path, model_dir):
    a = package_model({"backend": "hybrid"}, tmp_path / "a.tar.gz", model_dir=model_dir)
    b = package_model({"backend": "hybrid"}, tmp_path / "b.tar.gz", model_dir=model_dir)
    assert a.read_bytes() == b.read_bytes()


def test_a_rules_config_packs_no_model_unless_given_one(tmp_path, model_dir):
    assert _members(package_model({}, tmp_path / "a.tar.gz")) == ["config.json"]
    # A rules endpoint may still carry a model, for requests that ask for learned / hybrid.
    assert "model.onnx" in _members(package_model({}, tmp_path / "b.tar.gz", model_dir=model_dir))


def test_a_learned_config_without_a_model_dir_packs_the_shipped_weights_or_says_how_to_get_a_model(tmp_path):
    shipped = shipped_model_dir()
    if has_model(shipped):
        out = package_model({"backend": "learned"}, tmp_path / "m.tar.gz")
        dest = extract_model(out, tmp_path / "x")
        assert (dest / "model.onnx").read_bytes() == (shipped / "model.onnx").read_bytes()
    else:
        with pytest.raises(ArtifactError, match="roomkit train") as info:
            package_model({"backend": "learned"}, tmp_path / "m.tar.gz")
        assert "learned" in info.value.message and "--model" in info.value.message
        assert not (tmp_path / "m.tar.gz").exists()


@pytest.mark.parametrize("breakage, message", [
    ("truncate", "cannot be loaded by onnxruntime"),
    ("no_json", "no model.json"),
    ("bad_json", "not valid JSON"),
    ("missing_dir", "does not exist"),
])
def test_a_broken_model_is_refused_at_packaging_time(tmp_path, model_dir, breakage, message):
    src = tmp_path / "broken"
    if breakage != "missing_dir":
        make_model_dir(src)
    if breakage == "truncate":
        data = (src / "model.onnx").read_bytes()
        (src / "model.onnx").write_bytes(data[: len(data) // 3])
    elif breakage == "no_json":
        (src / "model.json").unlink()
    elif breakage == "bad_json":
        (src / "model.json").write_text("{")
    with pytest.raises(ArtifactError, match=message):
        package_model({"backend": "learned"}, tmp_path / "m.tar.gz", model_dir=src)
    assert not (tmp_path / "m.tar.gz").exists()


def test_an_extra_file_may_not_replace_the_model(tmp_path, model_dir):
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"not a model")
    with pytest.raises(ArtifactError, match="duplicate archive member 'model.onnx'"):
        package_model({}, tmp_path / "m.tar.gz", extra_files=[fake], model_dir=model_dir)


def test_packaging_a_model_loads_no_opencv(tmp_path, model_dir):
    """The deploy code packs artifacts; the AWS side never loads OpenCV (checking the model
    with onnxruntime does not need it)."""
    code = (
        "import sys; from roomkit.serving.artifacts import package_model; "
        f"package_model({{'backend': 'learned'}}, {str(tmp_path / 'm.tar.gz')!r}, model_dir={str(model_dir)!r}); "
        "print(json.dumps(['cv2' in sys.modules, 'jax' in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [False, False]
