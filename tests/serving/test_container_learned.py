"""The serving image and the learned backend: it carries the shipped weights and onnxruntime,
never the training framework (JAX, optax, onnx: the roomkit[train] extra)."""
from __future__ import annotations

import importlib.util
import re
import tomllib

from serving_support import ROOT

TRAINING_ONLY = {"jax", "jaxlib", "optax", "onnx"}


def _names(text: str) -> set[str]:
    out = set()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.add(re.sub(r"[-_.]+", "-", line.partition("==")[0]).lower())
    return out


def _generator():
    spec = importlib.util.spec_from_file_location("container_requirements", ROOT / "container" / "requirements.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_serving_requirements_hold_no_training_framework():
    committed = _names((ROOT / "container" / "requirements.txt").read_text())
    generated = _names(_generator().render())
    for names in (committed, generated):
        assert not names & TRAINING_ONLY, sorted(names & TRAINING_ONLY)
        assert "onnxruntime" in names  # inference stays in the image
    # ...while the test lock has them, so the check above is not vacuous.
    assert TRAINING_ONLY <= _names((ROOT / "requirements.lock").read_text())


def test_training_framework_is_an_extra_the_image_does_not_install():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {re.split(r"[<>=!\[ ;]", r)[0].lower() for r in project["dependencies"] + project["optional-dependencies"]["serve"]}
    assert not core & TRAINING_ONLY
    train = {re.split(r"[<>=!\[ ;]", r)[0].lower() for r in project["optional-dependencies"]["train"]}
    assert TRAINING_ONLY <= train
    dockerfile = (ROOT / "container" / "Dockerfile").read_text()
    assert "[train]" not in dockerfile and "roomkit[" not in dockerfile


def test_shipped_weights_are_package_data_the_image_copies():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["roomkit"]
    assert "learned/model/*.onnx" in data and "learned/model/*.json" in data
    ignore = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines() if p.strip() and not p.startswith("#")]
    assert "!lib/" in ignore  # lib/roomkit/learned/model/ goes into the build context
    assert not any(p.endswith((".onnx", "model/", "learned/")) for p in ignore if not p.startswith("!"))
