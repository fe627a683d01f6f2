"""The hybrid backend's step: the network's wall and opening maps as evidence for the rules.

The rules find walls by stroke width and close rooms by geometry; they cannot tell a bathtub's
outline from a partition, or a closet front drawn as a pen line from a worktop. The network can
(it has seen them in context). This step edits the rules' wall mask with its maps before the
closure stages run: ink the network is sure is wall joins the walls (thin partitions, railings),
wall pieces it is sure are not walls leave (fixtures, text blocks), and openings it finds are
closed as doorways.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from roomkit.learned.runtime import OPENING, WALL

# Levels chosen on 45 of the real development plans with an early checkpoint of the shipped
# weights (model selection, no training on them): adding sure wall ink is what helps; dropping
# wall pieces and closing openings help only when the network is very sure (lower levels lost
# F1). Added ink must join the walls twice: free-standing additions (furniture and fixture
# outlines) split rooms (synthetic plans and samples: F1@0.5 0.913 -> 0.960; rules 0.966).
#: Ink with at least this wall probability is wall, however thin it is drawn.
ADD_LEVEL = 0.8
#: A wall piece (8-connected) whose mean wall probability is below this is not a wall.
DROP_LEVEL = 0.05
#: Opening pixels at least this probable close a doorway.
OPENING_LEVEL = 0.9
#: Keep only added pieces that touch the walls in two separate places (partitions run from wall
#: to wall; furniture outlines stand free or touch once).
ADD_JOINING = True


def joining(added: np.ndarray, wall: np.ndarray) -> np.ndarray:
    """The 8-connected pieces of ``added`` that touch ``wall`` in at least two separate places."""
    n, pieces = cv2.connectedComponents(added, connectivity=8)
    if n <= 1:
        return added
    contact = added & cv2.dilate(wall, np.ones((3, 3), np.uint8))
    m, regions = cv2.connectedComponents(contact, connectivity=8)
    if m <= 1:
        return np.zeros_like(added)
    ys, xs = np.nonzero(regions)
    pairs = np.unique(np.stack([regions[ys, xs], pieces[ys, xs]], axis=1), axis=0)
    touches = np.bincount(pairs[:, 1], minlength=n)
    keep = touches >= 2
    keep[0] = False
    return keep[pieces].astype(np.uint8)


@dataclass(frozen=True)
class Evidence:
    """The edits: ``added`` / ``dropped`` wall pixels and ``openings`` to close (uint8 0/1)."""

    added: np.ndarray
    dropped: np.ndarray
    openings: np.ndarray


def learned_evidence(probs: np.ndarray, wall: np.ndarray, ink: np.ndarray) -> Evidence:
    """Edits of the rules' ``wall`` mask from (classes, H, W) probabilities and the plan's ``ink``."""
    p_wall = probs[WALL]
    added = ((p_wall >= ADD_LEVEL) & (ink > 0) & (wall == 0)).astype(np.uint8)
    if ADD_JOINING:
        added = joining(added, wall)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(wall, connectivity=8)
    dropped = np.zeros_like(wall)
    if n > 1:
        sums = np.bincount(labels.ravel(), weights=p_wall.ravel(), minlength=n)
        mean = sums / np.maximum(stats[:, cv2.CC_STAT_AREA], 1)
        low = mean < DROP_LEVEL
        low[0] = False
        if low.any():
            dropped = low[labels].astype(np.uint8)
    openings = ((probs[OPENING] >= OPENING_LEVEL) & (wall == 0)).astype(np.uint8)
    return Evidence(added, dropped, openings)
