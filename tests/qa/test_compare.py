"""roomkit.qa.compare: backends side by side on annotated plans (what notebook 07 shows).

A random-weight model stands in for a trained one: what is tested is the bookkeeping (every
backend on every plan, scored as roomkit.qa.evaluate scores it) and the drawing, not accuracy.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("jax")  # the random model is written with the training code (roomkit[train])

from roomkit.detector import detect_rooms  # noqa: E402
from roomkit.detector.config import DetectorConfig  # noqa: E402
from roomkit.errors import InputError  # noqa: E402
from roomkit.learned.modelfile import ModelError, ModelInfo  # noqa: E402
from roomkit.learned.runtime import LearnedModel  # noqa: E402
from roomkit.qa.compare import compare_backends, overlays  # noqa: E402
from roomkit.qa.evaluate import load_truth, score_plan  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"
PLANS = ["small_plan", "single_room"]


@pytest.fixture(scope="module")
def random_model(tmp_path_factory):
    from roomkit.learned import export, net

    d = tmp_path_factory.mktemp("model")
    p = net.init_params(0, (4, 8, 8, 8, 8), 4)
    export.write_onnx(p, 4, d / "model.onnx")
    ModelInfo(channels=(4, 8, 8, 8, 8)).write(d)
    return d


@pytest.fixture(scope="module")
def plans_dir(tmp_path_factory):
    """Two sample plans with their ground truth, in the data/samples format."""
    d = tmp_path_factory.mktemp("plans")
    for name in PLANS:
        truth = load_truth(SAMPLES / f"{name}.json")
        shutil.copy(SAMPLES / truth.image, d / truth.image)
        shutil.copy(SAMPLES / f"{name}.json", d / f"{name}.json")
    return d


@pytest.fixture(scope="module")
def comparison(plans_dir, random_model):
    return compare_backends(plans_dir, ("rules", "learned", "hybrid"), model=random_model)


def test_table_is_plans_by_backends(comparison):
    table = comparison.table()
    assert table.shape == (2, 3)
    assert list(table.columns) == ["rules", "learned", "hybrid"]
    assert sorted(table.index) == sorted(PLANS)
    assert table.notna().all().all() and ((table >= 0) & (table <= 1)).all().all()
    rows = comparison.rows()
    assert len(rows) == 6 and set(rows["backend"]) == {"rules", "learned", "hybrid"}
    assert {"plan", "backend", "n_truth", "n_pred", "f1@0.5", "mean_iou", "ms"} <= set(rows.columns)
    summary = comparison.summary()
    assert list(summary.index) == ["rules", "learned", "hybrid"]
    assert {"f1@0.5", "precision@0.5", "recall@0.5", "mean_iou"} <= set(summary.columns)
    assert (summary["plans"] == 2).all()


def test_rules_scores_equal_what_evaluate_gives_directly(comparison, plans_dir):
    for name in PLANS:
        truth = load_truth(plans_dir / f"{name}.json")
        det = detect_rooms(str(plans_dir / truth.image), DetectorConfig(backend="rules"))
        direct = score_plan(det, truth)
        assert comparison.table().loc[name, "rules"] == round(direct.f1(0.5), 4)
        row = comparison.rows().set_index(["plan", "backend"]).loc[(name, "rules")]
        assert row["n_pred"] == direct.n_pred and row["n_truth"] == len(truth.rooms)
    pooled = comparison.summaries()["rules"]
    assert comparison.summary().loc["rules", "f1@0.5"] == round(pooled.f1(0.5), 4)
    assert pooled.n_truth == sum(len(load_truth(plans_dir / f"{n}.json").rooms) for n in PLANS)


def test_learned_backends_use_the_given_model(comparison, plans_dir, random_model):
    """The learned column is the random model's answer (the same detection as detect_rooms with
    that model directory), not the shipped weights'."""
    name = PLANS[0]
    truth = load_truth(plans_dir / f"{name}.json")
    det = detect_rooms(str(plans_dir / truth.image), DetectorConfig(backend="learned"), model=random_model)
    assert comparison.detections(name)["learned"].to_response()["detected_rooms"] == det.to_response()["detected_rooms"]
    loaded = LearnedModel.load(random_model)
    again = compare_backends(plans_dir, ("learned",), model=loaded, plans=[name])
    assert again.table().loc[name, "learned"] == comparison.table().loc[name, "learned"]


def test_most_different_orders_by_the_spread_of_f1(comparison):
    table = comparison.table()
    spread = (table.max(axis=1) - table.min(axis=1)).to_dict()
    picked = comparison.most_different(2)
    assert sorted(picked) == sorted(PLANS) and spread[picked[0]] >= spread[picked[1]]
    assert comparison.most_different(1) == picked[:1] and comparison.most_different(0) == []


def test_overlay_has_one_panel_per_backend(comparison, plans_dir):
    name = PLANS[0]
    fig = comparison.overlay(name)
    assert len(fig.axes) == 3
    assert [ax.get_title().split(" · ")[0] for ax in fig.axes] == ["rules", "learned", "hybrid"]
    truth = load_truth(plans_dir / f"{name}.json")
    two = overlays(plans_dir / truth.image, {k: v for k, v in comparison.detections(name).items() if k != "learned"},
                   truth)
    assert len(two.axes) == 2
    assert "F1@0.5" in two.axes[0].get_title()


def test_a_missing_model_fails_up_front_and_rules_need_none(plans_dir, tmp_path):
    with pytest.raises(ModelError, match="no model.onnx"):
        compare_backends(plans_dir, ("rules", "hybrid"), model=tmp_path)
    rules_only = compare_backends(plans_dir, ("rules",), model=tmp_path)
    assert rules_only.table().shape == (2, 1)


def test_bad_arguments_are_clear_errors(plans_dir, tmp_path):
    with pytest.raises(InputError, match="backends must be"):
        compare_backends(plans_dir, ("rules", "neural"))
    with pytest.raises(InputError, match="no ground truth for nope"):
        compare_backends(plans_dir, ("rules",), plans=["nope"])
    with pytest.raises(InputError, match="no ground-truth"):
        compare_backends(tmp_path, ("rules",))


def test_an_unreadable_plan_counts_as_nothing_found(plans_dir, tmp_path):
    d = tmp_path / "plans"
    shutil.copytree(plans_dir, d)
    truth = load_truth(d / f"{PLANS[0]}.json")
    (d / truth.image).write_bytes(b"not an image")
    c = compare_backends(d, ("rules",))
    row = c.rows().set_index("plan").loc[PLANS[0]]
    assert row["n_pred"] == 0 and row["f1@0.5"] == 0.0 and "unreadable" in row["note"]
