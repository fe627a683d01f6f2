"""roomkit: find the rooms in architectural blueprints; serve the detector on SageMaker Async.

The public API is small and imported lazily, so that AWS-side modules (``roomkit.aws.trigger``,
``roomkit.aws.deploy``) can be imported without pulling OpenCV in, and OpenCV-side modules never
pull boto3 in. The AWS workflow lives in its modules (``roomkit.aws.deploy.deploy``,
``roomkit.aws.submit.submit``): a function named like its module would shadow the module here.
"""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "detect_rooms": "roomkit.detector",
    "load_image": "roomkit.plans.imageio",
    "Detection": "roomkit.plans.response",
    "Room": "roomkit.plans.response",
    "DetectorConfig": "roomkit.detector.config",
    "RoomkitError": "roomkit.errors",
    "InputError": "roomkit.errors",
    "ConfigError": "roomkit.errors",
    "serve": "roomkit.serving",
    "DeploymentSpec": "roomkit.aws.spec",
    "Deployment": "roomkit.aws.deployment",
}

__all__ = sorted(_LAZY) + ["__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from roomkit.detector.config import DetectorConfig
    from roomkit.detector import detect_rooms
    from roomkit.errors import ConfigError, InputError, RoomkitError
    from roomkit.plans.imageio import load_image
    from roomkit.plans.response import Detection, Room
    from roomkit.aws.spec import DeploymentSpec
    from roomkit.aws.deployment import Deployment
    from roomkit.serving import serve


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'roomkit' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
