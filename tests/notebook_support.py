"""Shared by the notebook tests: the environment papermill's kernels run in."""
from __future__ import annotations

import os
import sys
from pathlib import Path


def notebook_env(tmp: Path) -> dict[str, str]:
    """This interpreter first on PATH (the python3 kernelspec runs `python`), and no shared
    local AWS of the developer's leaking in."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["ROOMKIT_LOCAL_STATE"] = str(tmp / "no-shared-local-aws.json")
    env.pop("ROOMKIT_WALKTHROUGH_OUT", None)
    env.pop("AWS_PROFILE", None)
    return env
