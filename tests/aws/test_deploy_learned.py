"""deploy with a learned model (against moto's server): the model travels in model.tar.gz, and a
missing or broken one fails before anything is created."""
from __future__ import annotations

import io
import tarfile

import pytest

from learned_support import make_model_dir
from moto_fixtures import aws, moto_url, push_image  # noqa: F401  (fixtures)
from roomkit.aws.deploy import deploy
from roomkit.aws.spec import DeploymentSpec
from roomkit.errors import ConfigError
from roomkit.learned.modelfile import has_model, shipped_model_dir
from roomkit.serving.artifacts import ArtifactError


def _spec(session, **overrides) -> DeploymentSpec:
    data = {"name": "rk-learned", "image_uri": push_image(session), "model_config": {"backend": "hybrid"}}
    data.update(overrides)
    return DeploymentSpec.from_dict(data)


def _artifact_members(session, url: str) -> dict[str, bytes]:
    bucket, key = url[5:].split("/", 1)
    body = session.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def test_deploy_packs_the_model_dir_into_the_artifact(aws, tmp_path):
    model = make_model_dir(tmp_path / "trained")
    dep = deploy(_spec(aws), aws, progress=False, model_dir=model)
    members = _artifact_members(aws, dep.model_data_url)
    assert sorted(members) == ["config.json", "model.json", "model.onnx"]
    assert members["model.onnx"] == (model / "model.onnx").read_bytes()


def test_a_broken_or_missing_model_fails_before_anything_is_created(aws, tmp_path):
    broken = make_model_dir(tmp_path / "broken")
    (broken / "model.onnx").write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match="cannot be loaded by onnxruntime"):
        deploy(_spec(aws), aws, progress=False, model_dir=broken)
    if not has_model(shipped_model_dir()):  # no model_dir: the shipped weights, when this install has them
        with pytest.raises(ArtifactError, match="roomkit train"):
            deploy(_spec(aws), aws, progress=False)
    assert aws.client("s3").list_buckets()["Buckets"] == []
    assert aws.client("sagemaker").list_models()["Models"] == []


def test_a_model_dir_needs_a_model_config_to_pack_it_with(aws, tmp_path):
    spec = _spec(aws, model_config=None, model_data_url="s3://somewhere/m/model.tar.gz")
    with pytest.raises(ConfigError, match="model_data_url"):
        deploy(spec, aws, progress=False, model_dir=make_model_dir(tmp_path / "m"))
