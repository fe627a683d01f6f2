"""Plans in, detections out: the data types every other package shares.

:mod:`.imageio` decodes plan bytes (every image type, PDF) with guard rails checked from the
header, :mod:`.mediatypes` sniffs content types, :mod:`.response` holds ``Detection`` and
``Room`` and renders them as the response JSON and GeoJSON. Imports NumPy and OpenCV (imageio)
but never boto3; ``mediatypes`` and ``response`` are pure Python.
"""
