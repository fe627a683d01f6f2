"""Training examples: plans with room polygons → (prepared gray, class map) pairs, and batches.

Sources: folders in the ``data/samples/`` format (``<name>.json`` ground truth beside its image,
what ``roomkit eval`` reads) and :mod:`roomkit.qa.synth` plans drawn on the fly. Every plan is
prepared exactly as the detector prepares it (:func:`roomkit.detector.preprocess.prepare`), at a
longer side drawn per plan so the network sees walls of many thicknesses.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from roomkit.detector.preprocess import prepare
from roomkit.errors import InputError
from roomkit.learned.augment import augment
from roomkit.learned.runtime import to_input
from roomkit.learned.targets import OUTSIDE, make_targets
from roomkit.plans.imageio import load_image
from roomkit.qa.evaluate import GroundTruth, load_truth_dir



@dataclass(frozen=True)
class Plan:
    """A plan with its truth, before preparation."""

    name: str
    image: np.ndarray
    truth: GroundTruth


@dataclass(frozen=True)
class Example:
    """A prepared plan (uint8 gray, dark ink on light paper) and its class map."""

    name: str
    gray: np.ndarray
    target: np.ndarray
    truth: GroundTruth
    scale: float  # prepared px per original px


def read_dirs(dirs: Sequence[str | Path]) -> list[Plan]:
    """Every plan with ground truth in these folders (``<name>.json`` naming its image)."""
    plans: list[Plan] = []
    for d in dirs:
        d = Path(d)
        truths = load_truth_dir(d)
        if not truths:
            raise InputError(f"{d} holds no ground-truth JSON files (the data/samples/ format)")
        for stem, truth in truths.items():
            img = d / truth.image
            if not img.is_file():
                raise InputError(f"{d / (stem + '.json')} names {truth.image}, which is not in {d}")
            plans.append(Plan(f"{d.name}/{stem}", load_image(img), truth))
    return plans


def synthetic(count: int, seed: int, styles: Sequence[str] | None = None) -> Iterator[Plan]:
    """``count`` roomkit.synth plans (plan ``i`` is ``synth.generate_plan([seed, i], …)``)."""
    from roomkit.qa import synth

    names = list(styles) if styles else default_styles()
    for name, plan in synth.iter_plans(count, seed=seed, styles=names, prefix="synth"):
        yield Plan(name, plan.image, plan.truth(name))


def default_styles() -> list[str]:
    """Every named style but the blank page and the huge sheet, with small listing plans
    (``r3d``, what most real plans sent to the kit look like) and random mixes weighted up."""
    from roomkit.qa import synth

    skip = {"blank", "large", "random", "r3d"}
    return [s for s in synth.style_names() if s not in skip] + ["random"] * 4 + ["r3d"] * 12


def prepare_example(plan: Plan, long_side: int) -> Example:
    """Prepare ``plan`` at ``long_side`` (never enlarged) and derive its targets."""
    prep = prepare(plan.image, long_side, deskew=False)
    s = prep.frame.scale
    polys = [np.asarray(r.polygon, np.float64) * s for r in plan.truth.rooms]
    return Example(plan.name, prep.gray, make_targets(prep.gray, polys), plan.truth, s)


def prepare_all(plans: Iterable[Plan], sides: tuple[int, int], rng: np.random.Generator) -> list[Example]:
    """Each plan prepared at a longer side drawn uniformly from ``sides`` (a fixed draw per seed)."""
    out = []
    for p in plans:
        side = int(rng.integers(sides[0], sides[1] + 1))
        out.append(prepare_example(p, side))
    return out


def crop(ex: Example, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A ``size``² window of an example (padded with paper / outside where the plan is smaller)."""
    h, w = ex.gray.shape
    g = np.full((max(h, size), max(w, size)), 255, np.uint8)
    t = np.full(g.shape, OUTSIDE, np.uint8)
    g[:h, :w], t[:h, :w] = ex.gray, ex.target
    y = int(rng.integers(0, g.shape[0] - size + 1))
    x = int(rng.integers(0, g.shape[1] - size + 1))
    return g[y:y + size, x:x + size], t[y:y + size, x:x + size]


def batch(examples: Sequence[Example], size: int, count: int, rng: np.random.Generator,
          strength: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` augmented crops: inputs (count, 1, size, size) float32, targets (count, size, size) int32."""
    xs, ys = [], []
    for _ in range(count):
        ex = examples[int(rng.integers(len(examples)))]
        g, t = crop(ex, size, rng)
        g, t = augment(g, t, rng, strength)
        xs.append(to_input(g))
        ys.append(t)
    return np.stack(xs)[:, None].astype(np.float32), np.stack(ys).astype(np.int32)

