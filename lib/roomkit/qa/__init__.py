"""Quality assurance: scoring detections against ground truth and looking at them.

:mod:`.evaluate` (precision/recall/F1 at IoU thresholds, matched IoU, ground-truth files),
:mod:`.viz` (overlays, galleries, threshold curves, the HTML report), :mod:`.synth` (generated
plans with exact ground truth). Detector side: never imports boto3.
"""
