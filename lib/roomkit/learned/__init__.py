"""The learned backend: a small segmentation network (outside / wall / opening / room).

Serving needs only :mod:`.modelfile` (the model directory's files), :mod:`.runtime`
(onnxruntime inference) and :mod:`.instances` (maps → rooms). Training — :mod:`.targets`,
:mod:`.augment`, :mod:`.data`, :mod:`.net`, :mod:`.train`, :mod:`.export` — needs the
``roomkit[train]`` extra (JAX, optax, onnx) and never runs in the serving image.
"""
