"""The learned backend end to end on the CPU: targets, a tiny training run, ONNX parity,
resuming, determinism, and the learned / hybrid backends through ``detect_rooms``."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("jax")  # the roomkit[train] extra; in the test lock

from roomkit.detector import detect_rooms  # noqa: E402
from roomkit.detector.config import DetectorConfig  # noqa: E402
from roomkit.errors import ConfigError  # noqa: E402
from roomkit.learned import export, net  # noqa: E402
from roomkit.learned.modelfile import ModelError, ModelInfo  # noqa: E402
from roomkit.learned.runtime import LearnedModel  # noqa: E402
from roomkit.learned.targets import OPENING, ROOM, WALL, make_targets  # noqa: E402
from roomkit.learned.train import TrainConfig, train  # noqa: E402
from roomkit.qa import synth  # noqa: E402
from roomkit.qa.evaluate import score_plan  # noqa: E402

#: Small clean plans: walls, rooms and doorways only, so a minute of CPU learns them.
EASY = dict(size=(160, 200), labels=False, windows=False, doors="gap", footprints=("rect",), rooms=(2, 4),
            wall_vary=0.0)
TINY = dict(crop=128, batch=4, channels=(8, 16, 16, 16, 16), sides=(160, 200), max_side=256, learning_rate=0.01,
            augment=0.0, validation_share=0.25)


def _plans(folder: Path, seeds: range) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in seeds:
        synth.generate_plan(i, "clean", **EASY).save(folder, f"p{i}")
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("learned")
    data = _plans(root / "plans", range(8))
    result = train([data], root / "model", TrainConfig(epochs=6, steps_per_epoch=40, seed=0, **TINY), progress=False,
                   log=lambda _m: None)
    return data, result


def test_targets_mark_rooms_thin_walls_and_doorways():
    plan = synth.generate_plan(5, "thin", footprints=("rect",), labels=False, furniture=0.0, room_dims=False)
    gray = plan.image if plan.image.ndim == 2 else plan.image.mean(axis=2).astype(np.uint8)
    rooms = [np.asarray(r.polygon) for r in plan.truth().rooms]
    t = make_targets(gray, rooms)
    ink = gray < 128
    near_ink = cv2.dilate(ink.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    assert (t == ROOM).mean() > 0.3
    # Walls drawn 2-3 px thin survive as walls (their anti-aliased edges too): wall pixels are
    # ink or touch it, and the ink between rooms is wall, not room.
    assert near_ink[t == WALL].all()
    between = ink & (t != 0)
    assert (t[between] == WALL).mean() > 0.8  # the rest: door leaves and swings inside rooms
    assert (t == OPENING).sum() > 0 and not ink[t == OPENING].any()


def test_a_tiny_training_run_lowers_the_loss_and_finds_the_rooms_of_an_easy_plan(trained, tmp_path):
    _data, result = trained
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < 0.7 * losses[0], losses
    for name in ("model.onnx", "model.json", "training_curve.png", "history.json", "checkpoint.pkl"):
        assert (result.model_dir / name).is_file(), name
    info = json.loads((result.model_dir / "model.json").read_text())
    assert info["trained_on"]["annotated_plans"] == 8 and info["trained_on"]["real_plans_dev"] is False
    assert info["validation"]["f1"] is not None and info["training"]["onnx_parity_max_abs"] <= 1e-4
    found = []
    for seed in (100, 101, 102):
        easy = synth.generate_plan(seed, "clean", **EASY)
        # the network alone: the plan's text would name and correct its rooms
        det = detect_rooms(easy.image, DetectorConfig(backend="learned", read_text=False), model=result.model_dir)
        found.append(score_plan(det, easy.truth()).f1(0.5))
    assert np.mean(found) >= 0.6, found


def test_onnx_file_matches_the_jax_network(tmp_path):
    params = net.init_params(3, (8, 16, 32, 32), 4)
    path = export.write_onnx(params, 4, tmp_path / "model.onnx")
    x = np.random.default_rng(1).random((2, 1, 48, 72), dtype=np.float32)
    assert export.check_parity(params, path, x) <= 1e-4


def test_the_shipped_file_is_the_current_export_of_its_own_weights():
    """The shipped model.onnx computes the JAX network of the tensors it holds, and is what
    export writes for them (re-exporting changes nothing), so a change of the graph builder
    cannot ship without the file being re-exported (python -m roomkit.learned.export FILE)."""
    from roomkit.learned.modelfile import ONNX_NAME, shipped_model_dir

    path = shipped_model_dir() / ONNX_NAME
    if not path.is_file():
        pytest.skip("this install has no shipped weights")
    params = export.read_params(path)
    assert sorted(params) == sorted(net.init_params(0, (8, 16, 32, 64, 96), 4))
    probe = np.random.default_rng(0).random((1, 1, 64, 48), dtype=np.float32)
    assert export.check_parity(params, path, probe) <= 1e-4
    doc = "roomkit room segmentation (outside, wall, opening, room)"
    assert export.build_graph(params, 4, doc=doc).SerializeToString() == path.read_bytes()


def test_reexport_keeps_every_trained_tensor_bit_for_bit(tmp_path):
    params = net.init_params(5, (8, 16, 16), 4)
    path = export.write_onnx(params, 4, tmp_path / "model.onnx", doc="a doc")
    first = path.read_bytes()
    export.reexport(path)
    assert path.read_bytes() == first  # the file keeps its doc string and graph
    back = export.read_params(path)
    assert sorted(back) == sorted(params)
    for layer, p in params.items():
        for kind in ("w", "b"):
            assert back[layer][kind].dtype == np.float32
            assert np.array_equal(back[layer][kind], np.asarray(p[kind])), (layer, kind)


def test_training_is_deterministic_for_a_seed_and_resumes(tmp_path):
    data = _plans(tmp_path / "plans", range(4))
    cfg = TrainConfig(epochs=1, steps_per_epoch=2, seed=7, **TINY)
    a = train([data], tmp_path / "a", cfg, progress=False, log=lambda _m: None)
    b = train([data], tmp_path / "b", cfg, progress=False, log=lambda _m: None)
    assert (a.model_dir / "model.onnx").read_bytes() == (b.model_dir / "model.onnx").read_bytes()
    assert a.history[0]["loss"] == b.history[0]["loss"]
    # Re-running into the same folder resumes from its checkpoint instead of starting over.
    said: list[str] = []
    again = train([data], tmp_path / "a", cfg, progress=False, log=said.append)
    assert any("resuming" in m for m in said) and again.history == a.history
    # A checkpoint from other settings is refused by name, not silently mixed in.
    with pytest.raises(Exception, match="other settings"):
        train([data], tmp_path / "a", TrainConfig(epochs=1, steps_per_epoch=3, seed=7, **TINY), progress=False,
              log=lambda _m: None)


def test_learned_and_hybrid_backends_give_identical_output_for_identical_input(trained):
    _data, result = trained
    model = LearnedModel.load(result.model_dir)
    image = Path("data/samples/clean_l.png").read_bytes()
    for backend in ("learned", "hybrid"):
        cfg = DetectorConfig(backend=backend)
        one = detect_rooms(image, cfg, model=model).to_response()
        two = detect_rooms(image, cfg, model=model).to_response()
        for timing in ("processing_time_ms", "processing_time_breakdown_ms"):
            one.pop(timing, None), two.pop(timing, None)
        assert one == two and "text_flags" in one  # the text was read (the default) and agrees too


def test_predict_gives_probabilities_at_the_plans_size_and_scales_long_plans_back(tmp_path):
    from learned_support import make_model_dir

    d = make_model_dir(tmp_path / "m")
    ModelInfo(channels=(4, 8, 8, 8, 8), max_side=64).write(d)  # plans longer than 64 px run shrunk
    model = LearnedModel.load(d, threads=1)
    plan = synth.generate_plan(3, "clean", **EASY).image
    gray = plan if plan.ndim == 2 else cv2.cvtColor(plan, cv2.COLOR_BGR2GRAY)
    f = 64 / max(gray.shape)
    small = cv2.resize(gray, (round(gray.shape[1] * f), round(gray.shape[0] * f)), interpolation=cv2.INTER_AREA)
    assert f < 1 and max(small.shape) == 64
    for image in (small, gray):
        probs = model.predict(image)
        assert probs.shape == (4, *image.shape) and probs.dtype == np.float32 and probs.flags.c_contiguous
        assert np.allclose(probs.sum(0), 1.0, atol=1e-5) and probs.min() >= 0.0
    # The long plan's maps are the shrunk plan's maps scaled back to its pixels.
    want = [cv2.resize(c, gray.shape[::-1], interpolation=cv2.INTER_LINEAR) for c in model.predict(small)]
    assert np.array_equal(probs, np.stack(want))


def test_config_names_a_bad_backend_and_a_missing_model_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="backend"):
        DetectorConfig(backend="neural")
    with pytest.raises(ModelError, match="model.onnx"):
        LearnedModel.load(tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"not an onnx file")
    ModelInfo(channels=(8, 16, 16, 16, 16)).write(tmp_path)
    with pytest.raises(ModelError, match="cannot be loaded"):
        LearnedModel.load(tmp_path)
