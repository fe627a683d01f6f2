"""What only the walk-through's notebooks need, beside the modules that own each step.

The notebook cells call the owning modules directly (:mod:`roomkit.qa.samples`,
:mod:`roomkit.qa.results`, :mod:`roomkit.qa.viz`, :mod:`roomkit.aws.preflight`,
:mod:`roomkit.aws.deploy`, :mod:`roomkit.aws.submit`, :mod:`roomkit.aws.uploads`,
:mod:`roomkit.local.connect`, :mod:`roomkit.serving.image`); what is left here ties the
notebooks together: one output folder (:func:`output_dir`), the demo's default spec and inputs
(the samples plus a broken plan), and :func:`ensure_deployment`, which lets notebooks 04/04b run
alone in local mode by re-creating notebook 03's deployment from its manifest (in aws mode a
missing endpoint is an error that says to run 03: nothing is deployed behind your back).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Sequence

from roomkit.aws.preflight import endpoint_status
from roomkit.errors import ConfigError
from roomkit.qa.samples import load_samples, samples_dir

__all__ = ["DEFAULT_NAME", "DEFAULT_OUT", "OUT_ENV", "default_spec", "ensure_deployment", "make_broken_plan", "output_dir", "repo_root", "submission_inputs", "wait_for"]

# Where the walk-through writes (config.json, model.tar.gz, the manifest, results, the report)
# when a notebook's ``out_dir`` parameter is left at None.
OUT_ENV = "ROOMKIT_WALKTHROUGH_OUT"
DEFAULT_OUT = Path("out") / "walkthrough"
DEFAULT_NAME = "roomkit-demo"


# -- paths -----------------------------------------------------------------------------------------
def repo_root() -> Path | None:
    """The checkout holding this package (``<root>/lib/roomkit``), if it is one."""
    package = Path(__file__).resolve().parents[1]  # <root>/lib/roomkit
    root = package.parent.parent
    return root if (root / "pyproject.toml").is_file() and (root / "lib" / "roomkit").is_dir() else None


def output_dir(path: str | os.PathLike[str] | None = None, *, create: bool = True) -> Path:
    """The walk-through's output folder: ``path``, else ``$ROOMKIT_WALKTHROUGH_OUT``, else
    ``out/walkthrough`` of the checkout (or of the current directory outside a checkout)."""
    if path is not None and str(path):
        out = Path(path).expanduser()
    elif os.environ.get(OUT_ENV):
        out = Path(os.environ[OUT_ENV]).expanduser()
    else:
        out = (repo_root() or Path.cwd()) / DEFAULT_OUT
    out = out.resolve()
    if create:
        out.mkdir(parents=True, exist_ok=True)
    return out


# -- deployment ------------------------------------------------------------------------------------
def default_spec(name: str = DEFAULT_NAME, out_dir: str | os.PathLike[str] | None = None,
                 **settings: Any) -> Any:
    """The walk-through's deployment spec: ``name``, the detector config chosen in notebook 01
    (``<out_dir>/config.json``; the defaults when it is absent) and any other spec setting."""
    from roomkit.aws.spec import DeploymentSpec

    params = {k: v for k, v in settings.items() if v is not None}
    if "model_config" not in params and "model_data_url" not in params:
        config = output_dir(out_dir) / "config.json"
        params["model_config"] = str(config) if config.is_file() else {}
    return DeploymentSpec.from_params({"name": name, **params})


def ensure_deployment(session: Any, manifest: str | os.PathLike[str], spec: Any = None, *,
                      progress: bool = False) -> Any:
    """The deployment notebook 03 made, ready to use.

    Reads ``manifest`` and checks its endpoint is InService. In local mode, when the manifest is
    missing or its endpoint is gone (the local AWS it lived in has stopped), the deployment is
    (re)created idempotently from the manifest's spec, else ``spec``, else :func:`default_spec`.
    In aws mode both cases are errors that say to run notebook 03: nothing is deployed behind
    your back on a real account.
    """
    from roomkit.aws.deploy import deploy
    from roomkit.aws.spec import DeploymentSpec
    from roomkit.aws.deployment import Deployment

    manifest = Path(manifest)
    deployment = Deployment.load(manifest) if manifest.is_file() else None
    if deployment is not None:
        if deployment.mode != session.mode:
            raise ConfigError(f"{manifest} records a {deployment.mode}-mode deployment but this notebook "
                              f"runs in {session.mode} mode")
        status = endpoint_status(session, deployment.endpoint_name)
        if status == "InService":
            return deployment
        if session.mode != "local":
            raise ConfigError(f"endpoint {deployment.endpoint_name} from {manifest} is "
                              f"{status or 'gone'}: run 03_deploy_async_endpoint.ipynb again")
        spec = DeploymentSpec.from_dict(deployment.spec) if deployment.spec else spec
        why = f"endpoint {deployment.endpoint_name} is not in this local AWS"
    else:
        if session.mode != "local":
            raise ConfigError(f"no deployment manifest at {manifest}: run 03_deploy_async_endpoint.ipynb first")
        why = f"no deployment manifest at {manifest.name}"
    spec = spec if spec is not None else default_spec(out_dir=manifest.parent)
    print(f"local mode: {why}; deploying {spec.name} (idempotent)")
    return deploy(spec, session, progress=progress, manifest=manifest)


# -- results ---------------------------------------------------------------------------------------


def make_broken_plan(directory: str | os.PathLike[str], source: str | os.PathLike[str] | None = None,
                     keep_bytes: int = 2048) -> Path:
    """A truncated copy of a sample PNG (``broken_upload.png``): a realistic bad input whose
    failure (and its reason) the results table should show."""
    if source is None:
        source = next(s.path for s in load_samples() if s.path.suffix.lower() == ".png")
    data = Path(source).read_bytes()[:keep_bytes]
    path = Path(directory) / "broken_upload.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def wait_for(predicate: Any, timeout: float, interval: float = 0.5) -> bool:
    """Poll ``predicate()`` until it is truthy or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


# -- submission results (04) ---------------------------------------------------------------------------
def submission_inputs(inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None,
                      out_dir: str | os.PathLike[str], *, include_broken: bool = True) -> list[str]:
    """What notebook 04 submits: ``inputs`` (a path or ``s3://`` prefix, or a list of them; None
    = the sample plans), plus a truncated PNG when ``include_broken`` (see :func:`make_broken_plan`)."""
    if inputs is None:
        items = [str(samples_dir())]
    elif isinstance(inputs, (str, os.PathLike)):
        items = [str(inputs)]
    else:
        items = [str(i) for i in inputs]
    if not items:
        raise ConfigError("inputs is empty: give plan files, folders or s3:// prefixes (None = the samples)")
    if include_broken:
        items.append(str(make_broken_plan(output_dir(out_dir) / "inputs")))
    return items


