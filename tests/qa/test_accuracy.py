"""Accuracy floors: a detector change that loses accuracy fails here instead of being re-recorded
in the notebooks' checked outputs.

Two sets, each scored against its own ground truth with :mod:`roomkit.qa.evaluate` (one-to-one
polygon matching at IoU 0.5, every plan as the API returns it):

* the committed sample plans (``data/samples/``, hand-checked ground truth);
* a fresh synthetic set (seed 5151, two plans of every style) that no tuning has used — the
  benchmarks and past tuning used seeds 7, 11 and 2024. Its ground truth is exact by
  construction (the generator draws the walls around the rooms it records).

The floors sit a little below the figures measured when they were set (samples F1@0.5 0.978,
mIoU 0.960; synthetic seed 5151 F1@0.5 0.973, mIoU 0.952), so noise-free detector refactors pass
and real regressions do not. Raise them when the detector gets better; never lower them to let a
change through without saying so in its commit.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from roomkit import detect_rooms, load_image
from roomkit.qa import synth
from roomkit.qa.evaluate import Summary, load_truth_dir, score_plan

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"
FRESH_SEED = 5151
FRESH_COUNT = 2 * len([s for s in synth.STYLES if s not in synth.CYCLE_EXCLUDED])

FLOORS = {
    "samples": {"f1": 0.97, "miou": 0.95},
    "synthetic": {"f1": 0.96, "miou": 0.94},
}


def _assert_floor(summary: Summary, floors: dict[str, float], what: str) -> None:
    worst = ", ".join(f"{p.name} {p.f1(0.5):.2f}" for p in summary.worst_first()[:5])
    assert summary.f1(0.5) >= floors["f1"], f"{what}: {summary.line()} (worst: {worst})"
    assert summary.mean_iou is not None and summary.mean_iou >= floors["miou"], f"{what}: {summary.line()}"


@pytest.mark.slow
def test_sample_plans_stay_above_the_accuracy_floor():
    truths = load_truth_dir(SAMPLES)
    assert len(truths) == 21
    scores = [score_plan(detect_rooms(load_image(SAMPLES / t.image)), t, name=stem) for stem, t in truths.items()]
    _assert_floor(Summary(tuple(scores)), FLOORS["samples"], "samples")


@pytest.mark.slow
def test_fresh_synthetic_plans_stay_above_the_accuracy_floor():
    scores = [score_plan(detect_rooms(plan.image), plan.truth(name), name=name, style=plan.style)
              for name, plan in synth.iter_plans(FRESH_COUNT, seed=FRESH_SEED)]
    summary = Summary(tuple(scores))
    assert summary.n_plans == FRESH_COUNT and len(summary.by_style()) == FRESH_COUNT // 2
    _assert_floor(summary, FLOORS["synthetic"], f"synthetic seed {FRESH_SEED}")
