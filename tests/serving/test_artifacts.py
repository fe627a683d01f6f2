"""model.tar.gz: what ModelDataUrl points to, extracted by SageMaker into /opt/ml/model."""
from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile

import pytest

from roomkit.serving.artifacts import ArtifactError, extract_model, package_model, read_model
from roomkit.detector.config import DetectorConfig
from roomkit.errors import ConfigError


def test_config_json_sits_at_the_archive_root_with_the_full_validated_config(tmp_path):
    out = package_model(DetectorConfig(door_gap=24.0, min_room_area=0.002), tmp_path / "model.tar.gz")
    assert out == tmp_path / "model.tar.gz"
    with tarfile.open(out, "r:gz") as tar:
        assert tar.getnames() == ["config.json"]
        member = tar.getmember("config.json")
        assert member.isfile() and member.mode == 0o644 and member.uid == 0
        data = json.loads(tar.extractfile(member).read())
    assert data == DetectorConfig(door_gap=24.0, min_room_area=0.002).to_dict()
    assert read_model(out) == DetectorConfig(door_gap=24.0, min_room_area=0.002)


@pytest.mark.parametrize("kind", ["dataclass", "dict", "path"])
def test_config_may_be_given_three_ways(tmp_path, kind):
    cfg = DetectorConfig(simplify_tolerance=2.5)
    source = {"dataclass": cfg, "dict": {"simplify_tolerance": 2.5}, "path": cfg.to_json(tmp_path / "c.json")}[kind]
    out = package_model(source, tmp_path)  # a directory: model.tar.gz inside
    assert out.name == "model.tar.gz" and read_model(out) == cfg


def test_bad_config_fails_at_packaging_time_not_at_endpoint_start(tmp_path):
    with pytest.raises(ConfigError, match="door_gapp"):
        package_model({"door_gapp": 3}, tmp_path)
    assert not (tmp_path / "model.tar.gz").exists()
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        package_model(tmp_path / "bad.json", tmp_path)


def test_archives_are_reproducible(tmp_path):
    a = package_model({"door_gap": 20}, tmp_path / "a.tar.gz")
    b = package_model({"door_gap": 20}, tmp_path / "b.tar.gz")
    c = package_model({"door_gap": 21}, tmp_path / "c.tar.gz")
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    assert digest(a) == digest(b) != digest(c)


def test_extra_files_and_extraction_like_sagemaker(tmp_path):
    notes = tmp_path / "NOTES.md"
    notes.write_text("tuned on the March scans\n")
    table = tmp_path / "table.csv"
    table.write_text("a,b\n1,2\n")
    out = package_model({}, tmp_path / "m.tar.gz", extra_files=[notes, (table, "calibration/table.csv")])
    dest = extract_model(out, tmp_path / "opt-ml-model")
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == [
        "NOTES.md", "calibration/table.csv", "config.json"]
    assert (dest / "calibration/table.csv").read_text() == "a,b\n1,2\n"
    assert read_model(dest) == DetectorConfig()  # a directory works too
    assert read_model(dest / "config.json") == DetectorConfig()


@pytest.mark.parametrize("arcname", ["/etc/passwd", "../up.txt", "a/../../b", "config.json"])
def test_bad_extra_file_names_are_refused(tmp_path, arcname):
    f = tmp_path / "f.txt"
    f.write_text("x")
    with pytest.raises(ArtifactError):
        package_model({}, tmp_path / "m.tar.gz", extra_files=[(f, arcname)])


def test_missing_extra_file_is_refused(tmp_path):
    with pytest.raises(ArtifactError, match="does not exist"):
        package_model({}, tmp_path / "m.tar.gz", extra_files=[tmp_path / "nope.bin"])


def test_reading_an_archive_without_config_or_with_hostile_members(tmp_path):
    empty = tmp_path / "empty.tar.gz"
    with tarfile.open(empty, "w:gz") as tar:
        info = tarfile.TarInfo("weights.bin")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    with pytest.raises(ArtifactError, match="no config.json"):
        read_model(empty)
    with pytest.raises(ArtifactError, match="no config.json"):
        extract_model(empty, tmp_path / "x")

    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"!"))
    with pytest.raises(ArtifactError):
        extract_model(evil, tmp_path / "y")
    assert not (tmp_path / "escape.txt").exists()

    (tmp_path / "junk.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(ArtifactError, match="cannot read"):
        read_model(tmp_path / "junk.tar.gz")


def test_artifacts_import_neither_boto3_nor_opencv():
    code = "import sys, roomkit.serving.artifacts; print(sorted(m for m in ('boto3', 'botocore', 'cv2') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"
