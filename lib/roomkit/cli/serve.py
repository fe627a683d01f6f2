"""``roomkit serve``: the SageMaker serving contract on this machine (what ``serve`` runs in the image)."""
from __future__ import annotations

import argparse

ORDER = 40


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the inference server (GET /ping, POST /invocations)",
        description=(
            "Run the inference server SageMaker runs in the container. Unset options come from "
            "SAGEMAKER_BIND_TO_PORT, SAGEMAKER_MODEL_SERVER_WORKERS, SAGEMAKER_MODEL_SERVER_TIMEOUT, "
            "SAGEMAKER_MAX_REQUEST_SIZE and SM_MODEL_DIR, then defaults. Stops gracefully on SIGTERM."
        ),
    )
    parser.add_argument("--host", default=None, help="address to bind (default 127.0.0.1; the container's entrypoint binds 0.0.0.0)")
    parser.add_argument("--port", type=int, default=None, help="port (default $SAGEMAKER_BIND_TO_PORT or 8080)")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes (default $SAGEMAKER_MODEL_SERVER_WORKERS or the CPU count)")
    parser.add_argument("--model-dir", default=None,
                        help="directory holding config.json (default $SM_MODEL_DIR or /opt/ml/model)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="per-request timeout in seconds (default $SAGEMAKER_MODEL_SERVER_TIMEOUT or 300)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads per worker for pings and uploads (default $ROOMKIT_SERVER_THREADS or 16)")
    parser.add_argument("--max-request-size", default=None,
                        help="largest request body, bytes or e.g. 500MB (default $SAGEMAKER_MAX_REQUEST_SIZE or 1GiB)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from roomkit.serving import serve

    serve(
        host=args.host,
        port=args.port,
        workers=args.workers,
        model_dir=args.model_dir,
        timeout=args.timeout,
        threads=args.threads,
        max_request_size=args.max_request_size,
    )
    return 0
