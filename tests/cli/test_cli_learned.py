"""``roomkit train`` and ``roomkit detect --backend/--model``: bad input is one error line and exit
status 2 (before the training framework loads); a tiny real run writes a model and resumes."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from learned_support import make_model_dir
from roomkit.cli import main

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data" / "samples"


def _one_error_line(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("roomkit ") and "error:" in err, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


# -- roomkit train: bad input --------------------------------------------------------------------
def test_train_refuses_a_missing_folder(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope"), "--out", str(tmp_path / "m"), "--epochs", "1"]) == 2
    _one_error_line(capsys, "no such folder", "nope")
    assert not (tmp_path / "m").exists()


def test_train_refuses_a_folder_without_ground_truth(tmp_path, capsys):
    plans = tmp_path / "plans"
    plans.mkdir()
    shutil.copy(SAMPLES / "clean_l.png", plans)  # an image, but no <name>.json beside it
    assert main(["train", str(plans), "--out", str(tmp_path / "m"), "--epochs", "1"]) == 2
    _one_error_line(capsys, "no ground-truth JSON", str(plans))


def test_train_refuses_a_file_given_as_a_folder(tmp_path, capsys):
    assert main(["train", str(SAMPLES / "clean_l.png"), "--out", str(tmp_path / "m")]) == 2
    _one_error_line(capsys, "not a folder")


def test_train_refuses_both_minutes_and_epochs(tmp_path, capsys):
    assert main(["train", "--synthetic", "4", "--minutes", "1", "--epochs", "2", "--out", str(tmp_path / "m")]) == 2
    _one_error_line(capsys, "--minutes", "--epochs")


def test_train_refuses_nothing_to_train_on(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "m"), "--epochs", "1"]) == 2
    _one_error_line(capsys, "nothing to train on", "--synthetic")


@pytest.mark.parametrize("args, needle", [
    (["--epochs", "0"], "--epochs"),
    (["--minutes", "0"], "--minutes"),
    (["--epochs", "1", "--steps-per-epoch", "0"], "--steps-per-epoch"),
])
def test_train_refuses_empty_budgets(tmp_path, capsys, args, needle):
    assert main(["train", "--synthetic", "4", "--out", str(tmp_path / "m"), *args]) == 2
    _one_error_line(capsys, needle)


def test_train_refuses_a_base_that_is_not_a_model(tmp_path, capsys):
    (tmp_path / "base").mkdir()
    assert main(["train", "--synthetic", "4", "--epochs", "1", "--base", str(tmp_path / "base"),
                 "--out", str(tmp_path / "m")]) == 2
    _one_error_line(capsys, "no model.onnx")
    from roomkit.learned.modelfile import has_model, shipped_model_dir

    if not has_model(shipped_model_dir()):  # `--base shipped` names the shipped weights' folder
        assert main(["train", "--synthetic", "4", "--epochs", "1", "--base", "shipped",
                     "--out", str(tmp_path / "m")]) == 2
        _one_error_line(capsys, "no model.onnx", str(shipped_model_dir()))


def test_train_bad_input_exits_2_without_a_traceback_from_the_real_command(tmp_path):
    done = subprocess.run([sys.executable, "-m", "roomkit", "train", str(tmp_path / "nope"), "--out", str(tmp_path / "m")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"roomkit train: error: no such folder: {tmp_path / 'nope'}"]


# -- roomkit train: a tiny real run, then the same command again resumes ---------------------------------
@pytest.mark.slow
def test_train_writes_a_model_and_a_second_run_resumes(tmp_path):
    out = tmp_path / "model"
    argv = [sys.executable, "-m", "roomkit", "train", "--synthetic", "4", "--epochs", "1",
            "--steps-per-epoch", "2", "--seed", "3", "--out", str(out)]
    env = {"MPLBACKEND": "Agg", "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
           "JAX_PLATFORMS": "cpu"}
    first = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "epoch 1: loss" in first.stdout and "validation F1@0.5" in first.stdout
    for name in ("model.onnx", "model.json", "training_curve.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0
        assert f"{out / name}" in first.stdout  # the end of the run says where each file is
    assert (out / "training_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    info = json.loads((out / "model.json").read_text())
    assert info["trained_on"]["synthetic_plans"] == 4 and info["trained_on"]["real_plans_dev"] is False
    # The model it wrote is one the server and the detector load.
    from roomkit.learned.runtime import LearnedModel

    LearnedModel.load(out)
    second = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming" in second.stdout


# -- roomkit detect --backend / --model ----------------------------------------------------------------
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("model") / "m")


@pytest.mark.parametrize("backend", ["learned", "hybrid"])
def test_detect_runs_the_learned_backends_with_a_model_dir(tmp_path, capsys, model_dir, backend):
    out = tmp_path / "out"
    assert main(["detect", str(SAMPLES / "clean_l.png"), "--backend", backend, "--model", str(model_dir),
                 "--out", str(out)]) == 0
    doc = json.loads((out / "clean_l.json").read_text())
    assert doc["status"] == "success"
    if backend == "hybrid":
        assert doc["detected_rooms"], "the hybrid keeps the rules' rooms on a clean plan"


def test_detect_with_a_broken_model_exits_2_with_one_line(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.onnx").write_bytes(b"garbage")
    (tmp_path / "m" / "model.json").write_text(json.dumps({"format": "roomkit-segmentation/1", "classes":
                                                          ["outside", "wall", "opening", "room"],
                                                          "max_side": 768, "multiple": 16}))
    assert main(["detect", str(SAMPLES / "clean_l.png"), "--backend", "learned", "--model", str(tmp_path / "m"),
                 "--out", str(tmp_path / "out")]) == 2
    _one_error_line(capsys, "cannot be loaded by onnxruntime")
    assert main(["detect", str(SAMPLES / "clean_l.png"), "--backend", "hybrid", "--model", str(tmp_path / "none"),
                 "--out", str(tmp_path / "out")]) == 2
    _one_error_line(capsys, "no model.onnx")


def test_detect_refuses_an_unknown_backend(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["detect", str(SAMPLES / "clean_l.png"), "--backend", "neural", "--out", str(tmp_path / "out")])
    assert info.value.code == 2
    assert "--backend" in capsys.readouterr().err
