"""The SageMaker serving contract: ``GET /ping`` and ``POST /invocations`` on port 8080.

:func:`serve` runs the same server the container's ``serve`` entrypoint and ``roomkit serve``
run: gunicorn worker processes around :mod:`roomkit.serving.app`. The request and response
formats are described in ``openapi.json`` next to this module.
"""
from __future__ import annotations

import os
from pathlib import Path

from roomkit.serving.options import ServerOptions

OPENAPI_PATH = Path(__file__).with_name("openapi.json")

__all__ = ["serve", "ServerOptions", "OPENAPI_PATH"]


def serve(
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    model_dir: str | os.PathLike | None = None,
    timeout: float | None = None,
    *,
    threads: int | None = None,
    max_request_size: int | str | None = None,
) -> None:
    """Serve the detector until SIGTERM or Ctrl-C (blocks; run it in the main thread).

    Every argument left ``None`` comes from SageMaker's environment variables, then defaults:
    ``host`` 127.0.0.1 (the container's entrypoint passes 0.0.0.0), ``port`` ``SAGEMAKER_BIND_TO_PORT`` or 8080, ``workers``
    ``SAGEMAKER_MODEL_SERVER_WORKERS`` or the CPU count, ``model_dir`` ``SM_MODEL_DIR`` or
    /opt/ml/model (``config.json`` inside; absent means default settings, invalid means /ping
    answers 503), ``timeout`` ``SAGEMAKER_MODEL_SERVER_TIMEOUT`` or 300 s per request,
    ``max_request_size`` ``SAGEMAKER_MAX_REQUEST_SIZE`` or 1 GiB (bytes, or "500MB").

    Examples
    --------
    >>> import roomkit
    >>> roomkit.serve(host="127.0.0.1", port=8080, workers=2, model_dir="model/")  # doctest: +SKIP
    """
    from roomkit.serving.server import run

    run(
        ServerOptions.resolve(
            host=host,
            port=port,
            workers=workers,
            model_dir=model_dir,
            timeout=timeout,
            threads=threads,
            max_request_size=max_request_size,
        )
    )
