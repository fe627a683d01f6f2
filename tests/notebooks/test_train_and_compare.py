"""Notebook 07 (train, compare rules / learned / hybrid, package, deploy, submit), executed once
through `roomkit notebooks run --only 07` with a tiny training budget on three sample plans.

07 is not part of the walk-through (`make demo` would train for 30 minutes): the runner leaves
it out unless `--only` names it. The CI parameters are CI_PARAMETERS below.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from notebook_support import notebook_env
from roomkit.notebooks.runner import (
    OPTIONAL,
    check_notebook,
    compare_checked_outputs,
    find_notebooks,
    strip_notebook,
)

pytest.importorskip("jax")  # training needs the roomkit[train] extra (in the test lock)

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
NAME = "07_train_and_compare.ipynb"
PLANS = ["small_plan", "small_listing", "clean_rect"]
# ≤ 90 s of training-related time on these 2 cores: 1 epoch of 2 steps, 4 synthetic plans.
CI_PARAMETERS = {"minutes": None, "epochs": 1, "steps_per_epoch": 2, "synthetic": 4, "base": None,
                 "overlay_plans": 1, "timeout": 300}


def _env(tmp: Path) -> dict[str, str]:
    return notebook_env(tmp)


def test_07_is_clean_and_outside_the_walkthrough():
    path = NOTEBOOKS / NAME
    assert check_notebook(path) == []
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert strip_notebook(json.loads(json.dumps(nb))) == nb
    first, params = nb["cells"][0], nb["cells"][1]
    assert first["cell_type"] == "markdown" and "cost" in "".join(first["source"]).lower()
    assert "parameters" in params["metadata"]["tags"]
    for name in ("mode", "region", "out_dir", "plans_dir", "minutes", "epochs", "steps_per_epoch",
                 "synthetic", "base", "seed", "serve_backend"):
        assert re.search(rf"^{name} = ", "".join(params["source"]), re.M), name
    assert "07" in OPTIONAL
    assert NAME not in [p.name for p in find_notebooks(NOTEBOOKS)]  # make demo does not train
    assert [p.name for p in find_notebooks(NOTEBOOKS, ["07"])] == [NAME]
    assert NAME in [p.name for p in find_notebooks(NOTEBOOKS, optional=True)]  # strip/check/record see it
    assert "07_train_and_compare" in (NOTEBOOKS / "README.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def run_07(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nb07")
    plans = tmp / "plans"
    plans.mkdir()
    for stem in PLANS:
        for f in (ROOT / "data" / "samples").glob(f"{stem}.*"):
            shutil.copy(f, plans / f.name)
    out = tmp / "out"
    cmd = [sys.executable, "-m", "roomkit", "notebooks", "run", "--only", "07", "--out", str(out),
           "-p", f"plans_dir={json.dumps(str(plans))}"]
    for key, value in CI_PARAMETERS.items():
        cmd += ["-p", f"{key}={json.dumps(value)}"]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=tmp, env=_env(tmp), capture_output=True, text=True, timeout=900)
    seconds = time.monotonic() - t0
    print(f"notebook 07 through `roomkit notebooks run`: {seconds:.0f} s")
    return proc, out, seconds


def _outputs(nb: dict, marker: str) -> list[dict]:
    """The outputs of the code cell whose source contains ``marker``."""
    [cell] = [c for c in nb["cells"] if c["cell_type"] == "code" and marker in "".join(c["source"])]
    return cell["outputs"]


def _text(outputs: list[dict]) -> str:
    parts = []
    for o in outputs:
        if "text" in o:
            parts.append("".join(o["text"]))
        parts.extend("".join(v) for k, v in (o.get("data") or {}).items() if k in ("text/plain", "text/html"))
    return "\n".join(parts)


@pytest.mark.slow
def test_07_trains_compares_packages_and_gets_the_async_results_back(run_07):
    proc, out, _ = run_07
    assert proc.returncode == 0, proc.stdout + proc.stderr[-5000:]
    assert re.search(r"^07_train_and_compare\.ipynb\s+ok\s", proc.stdout, re.M), proc.stdout
    nb = json.loads((out / "executed" / NAME).read_text(encoding="utf-8"))
    assert not [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    work = out / "train_and_compare"
    # (a) trained with the CI budget, the curve and model.json shown
    info = json.loads((work / "model" / "model.json").read_text())
    assert info["training"]["epochs_run"] == 1 and info["training"]["steps"] == 2
    assert info["trained_on"]["annotated_plans"] == 3 and info["trained_on"]["synthetic_plans"] == 4
    curve = _outputs(nb, "display(Image(")
    assert any("image/png" in o.get("data", {}) for o in curve) and '"trained_on"' in _text(curve)
    # (b) the comparison: 3 backends in the summary, 3 plans x 3 backends per plan, overlays drawn
    summary = _text(_outputs(nb, "compare_backends("))
    for backend in ("rules", "learned", "hybrid"):
        assert backend in summary
    assert "backends compared: rules, learned, hybrid" in _text(_outputs(nb, "backends compared"))
    table = _text(_outputs(nb, "comparison.table()"))
    assert all(stem in table for stem in PLANS)
    assert sum("image/png" in o.get("data", {}) for o in _outputs(nb, "most_different(")) == 1
    # (c) the artifact holds the model and asks for the hybrid backend
    import tarfile

    with tarfile.open(work / "model.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["config.json", "model.json", "model.onnx"]
        assert json.load(tar.extractfile("config.json"))["backend"] == "hybrid"
    # (d) every plan's result came back from the async endpoint, and it was torn down
    assert "a result came back for every plan: True" in _text(_outputs(nb, "a result came back"))
    csv = (work / "results" / "results.csv").read_text()
    assert all(stem in csv for stem in PLANS)
    assert not (work / "deployment.json").exists()
    assert "resources removed" in _text(_outputs(nb, "teardown("))
    problems = compare_checked_outputs(out / "executed" / NAME, NOTEBOOKS / NAME, NOTEBOOKS / "nbval_sanitize.cfg")
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_07_endpoint_answers_with_the_trained_model(run_07):
    proc, out, _ = run_07
    assert proc.returncode == 0, proc.stderr[-3000:]
    nb = json.loads((out / "executed" / NAME).read_text(encoding="utf-8"))
    text = _text(_outputs(nb, "outcome_counts(rows)"))
    assert f"{len(PLANS)} plans: {len(PLANS)} succeeded, 0 failed, 0 pending" in text
    assert sorted(p.stem for p in (out / "train_and_compare" / "results").glob("*.json")) == sorted(PLANS)
    assert any("image/png" in o.get("data", {}) for o in _outputs(nb, "outcome_counts(rows)"))
