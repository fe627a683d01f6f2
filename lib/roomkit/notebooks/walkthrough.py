"""Conveniences the operator notebooks call, so that each notebook cell stays one or two lines.

The notebooks in ``notebooks/`` run top to bottom in two situations, and this module is what
makes both work with the same cells:

* under ``roomkit notebooks run`` (papermill), which starts one local AWS for the whole
  sequence, records its endpoints in the state file named by ``$ROOMKIT_LOCAL_STATE`` and passes
  ``out_dir``; :func:`connect` then finds that local AWS, and every notebook shares it;
* alone (JupyterLab, or nbval re-executing one notebook): :func:`connect` starts a local AWS
  scoped to the kernel, and :func:`ensure_deployment` re-creates the deployment of notebook 03
  from its manifest when the local AWS that held it is gone (local mode only: in aws mode a
  missing endpoint is an error that says to run 03).

Nothing here hides AWS calls behind a different vocabulary: it calls :mod:`roomkit.aws.deploy`,
:mod:`roomkit.aws.submit` and :mod:`roomkit.qa.evaluate` and formats what they return.
"""
from __future__ import annotations

import atexit
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import urlparse

from roomkit.errors import ConfigError

__all__ = [
    "OUT_ENV",
    "DEFAULT_NAME",
    "output_dir",
    "samples_dir",
    "Sample",
    "load_samples",
    "PlanRun",
    "detect_samples",
    "room_count_table",
    "ConfigComparison",
    "compare_configs",
    "connect",
    "running_local_state",
    "stop_local",
    "default_spec",
    "preflight",
    "ensure_deployment",
    "EndpointSummary",
    "endpoint_summary",
    "save_results",
    "load_result_detections",
    "make_broken_plan",
]

# Where the walk-through writes (config.json, model.tar.gz, the manifest, results, the report)
# when a notebook's ``out_dir`` parameter is left at None.
OUT_ENV = "ROOMKIT_WALKTHROUGH_OUT"
DEFAULT_OUT = Path("out") / "walkthrough"
DEFAULT_NAME = "roomkit-demo"


# -- paths -----------------------------------------------------------------------------------------
def repo_root() -> Path | None:
    """The checkout holding this package (``<root>/lib/roomkit``), if it is one."""
    here = Path(__file__).resolve().parent
    root = here.parent.parent
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


def samples_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """``path``, else ``data/samples`` of the checkout (see ``roomkit demo --samples``)."""
    from roomkit.cli.demo import find_samples

    return find_samples(Path(path).expanduser() if path else None).resolve()


# -- samples and in-process detection ---------------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    """One plan image and, when a ``<stem>.json`` lies beside it, its ground truth."""

    name: str
    path: Path
    truth: Any = None  # roomkit.qa.evaluate.GroundTruth | None


def load_samples(directory: str | os.PathLike[str] | None = None,
                 names: Sequence[str] | None = None) -> list[Sample]:
    """The plans of ``directory`` (default: the repository's samples), sorted by name.

    ``names`` keeps only those stems, in the order given; an unknown name is an error that
    lists the ones available.
    """
    from roomkit.cli.detect import expand_paths
    from roomkit.qa.evaluate import load_truth
    from roomkit.errors import InputError

    folder = samples_dir(directory)
    files, _ = expand_paths([folder])
    by_name = {f.stem: f for f in files}
    if names is not None:
        missing = [n for n in names if n not in by_name]
        if missing:
            raise InputError(f"no sample named {', '.join(missing)} in {folder} "
                             f"(have: {', '.join(sorted(by_name))})")
        files = [by_name[n] for n in names]
    samples = []
    for f in files:
        truth_path = f.with_suffix(".json")
        samples.append(Sample(f.stem, f, load_truth(truth_path) if truth_path.is_file() else None))
    if not samples:
        raise InputError(f"no plan images in {folder}")
    return samples


@dataclass
class PlanRun:
    """The detector's answer for one sample (or why there is none)."""

    sample: Sample
    detection: Any = None  # roomkit.plans.response.Detection
    image: Any = None  # decoded BGR array, kept for drawing when asked
    error: str | None = None

    @property
    def name(self) -> str:
        return self.sample.name


def detect_samples(samples: Iterable[Sample], config: Any = None, *, keep_images: bool = False) -> list[PlanRun]:
    """Run :func:`roomkit.detect_rooms` on each sample in this process (errors are recorded)."""
    from roomkit.cli.detect import detect_file
    from roomkit.detector.config import DetectorConfig

    config = config if config is not None else DetectorConfig()
    if isinstance(config, Mapping):
        config = DetectorConfig.from_dict(config)
    runs = []
    for sample in samples:
        result = detect_file(sample.path, config, keep_image=keep_images)
        runs.append(PlanRun(sample, result.detection, result.image, result.error))
    return runs


def room_count_table(runs: Sequence[PlanRun]) -> str:
    """``plan  rooms  truth`` per plan: deterministic text (no timings), fit for nbval."""
    width = max([len("plan")] + [len(r.name) for r in runs])
    lines = [f"{'plan':<{width}}  {'rooms':>5}  {'truth':>5}", "-" * (width + 14)]
    for r in runs:
        truth = "-" if r.sample.truth is None else str(len(r.sample.truth.rooms))
        found = "error" if r.detection is None else str(len(r.detection.rooms))
        line = f"{r.name:<{width}}  {found:>5}  {truth:>5}"
        if r.error:
            line += f"  ({r.error})"
        lines.append(line)
    total = sum(len(r.detection.rooms) for r in runs if r.detection is not None)
    truth_total = sum(len(r.sample.truth.rooms) for r in runs if r.sample.truth is not None)
    lines.append("-" * (width + 14))
    lines.append(f"{'total':<{width}}  {total:>5}  {truth_total:>5}")
    return "\n".join(lines)


def _score(runs: Sequence[PlanRun]) -> Any:
    from roomkit.qa.evaluate import Summary, score_plan
    from roomkit.plans.response import Detection

    scores = []
    for r in runs:
        if r.sample.truth is None:
            continue
        det = r.detection if r.detection is not None else Detection(width=r.sample.truth.width,
                                                                    height=r.sample.truth.height)
        scores.append(score_plan(det, r.sample.truth, name=r.name, note="error" if r.error else ""))
    return Summary(tuple(scores))


@dataclass
class ConfigComparison:
    """Several detector configurations run on the same samples, scored against ground truth."""

    configs: dict[str, Any]  # label -> DetectorConfig
    runs: dict[str, list[PlanRun]]
    summaries: dict[str, Any]  # label -> roomkit.qa.evaluate.Summary

    @property
    def best(self) -> str:
        """The label with the highest pooled F1@0.5 (ties: the first given)."""
        return max(self.summaries, key=lambda k: (round(self.summaries[k].f1(0.5), 6), -list(self.summaries).index(k)))

    def table(self) -> str:
        """Rooms found and F1@0.5 per plan and configuration, then each one's summary line."""
        labels = list(self.configs)
        names = [r.name for r in self.runs[labels[0]]]
        width = max([len("plan")] + [len(n) for n in names])
        col = max(12, *(len(lb) for lb in labels))
        head = f"{'plan':<{width}}  {'truth':>5}  " + "  ".join(f"{lb:>{col}}" for lb in labels)
        lines = [head, "-" * len(head)]
        per_label = {lb: {s.name: s for s in self.summaries[lb].plans} for lb in labels}
        for i, name in enumerate(names):
            truth = self.runs[labels[0]][i].sample.truth
            cells = []
            for lb in labels:
                run = self.runs[lb][i]
                rooms = "err" if run.detection is None else str(len(run.detection.rooms))
                score = per_label[lb].get(name)
                f1 = "" if score is None else f" F1 {score.f1(0.5):.2f}"
                cells.append(f"{rooms + f1:>{col}}")
            lines.append(f"{name:<{width}}  {'-' if truth is None else len(truth.rooms):>5}  " + "  ".join(cells))
        lines.append("-" * len(head))
        for lb in labels:
            lines.append(f"{lb}: {self.summaries[lb].line()}")
        return "\n".join(lines)


def compare_configs(samples: Sequence[Sample], configs: Mapping[str, Any], *,
                    keep_images: bool = False, known: Mapping[str, list[PlanRun]] | None = None) -> ConfigComparison:
    """Run each labelled configuration (DetectorConfig or dict of overrides of the defaults).

    ``known`` supplies runs already made for some labels (same samples, same order), which are
    reused instead of detecting again."""
    from roomkit.detector.config import DetectorConfig

    resolved: dict[str, Any] = {}
    for label, cfg in configs.items():
        resolved[label] = cfg if isinstance(cfg, DetectorConfig) else DetectorConfig().with_overrides(cfg or {})
    known = known or {}
    runs = {lb: list(known[lb]) if lb in known else detect_samples(samples, cfg, keep_images=keep_images)
            for lb, cfg in resolved.items()}
    for lb, given in runs.items():
        if [r.name for r in given] != [s.name for s in samples]:
            raise ConfigError(f"runs given for {lb!r} are not for these samples")
    return ConfigComparison(resolved, runs, {lb: _score(r) for lb, r in runs.items()})


# -- AWS / local AWS -------------------------------------------------------------------------------
_LOCAL: Any = None  # the kernel-scoped roomkit.local.LocalAWS started by connect(), if any


def _answers(url: str, timeout: float = 1.0) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 80), timeout=timeout):
            return True
    except OSError:
        return False


def running_local_state() -> dict[str, Any] | None:
    """The state of a running shared local AWS (``roomkit local up`` or ``roomkit notebooks
    run``), or None when the state file is missing, stale or its services do not answer."""
    from roomkit.aws import local_state_path

    path = local_state_path()
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not isinstance(state.get("endpoints"), dict):
        return None
    pid = state.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    urls = [u for u in state["endpoints"].values() if isinstance(u, str)]
    if not urls or not all(_answers(u) for u in urls):
        return None
    return state


def connect(mode: str = "local", region: str | None = None, profile: str | None = None, *,
            quiet: bool = False, share: bool = True) -> Any:
    """The :class:`roomkit.aws.AwsSession` a notebook uses.

    ``mode="aws"``: your credentials and ``region``. ``mode="local"``: the shared local AWS if one
    runs (``roomkit local up``, or the one ``roomkit notebooks run`` started), else a local AWS
    started now in this kernel and stopped when the kernel exits. With ``share`` it is recorded in
    the state file (``$ROOMKIT_LOCAL_STATE``), so notebooks opened in other kernels use it — and
    see its deployment — while this kernel runs.
    """
    import roomkit.aws as aws_factory

    if mode == "aws":
        from botocore.exceptions import BotoCoreError, ClientError

        session = aws_factory.session("aws", region=region or None, profile=profile or None)
        try:
            account = session.account_id()
        except (BotoCoreError, ClientError) as exc:
            raise ConfigError(
                f"aws mode needs usable AWS credentials ({exc}): configure them (aws configure, "
                "aws sso login, AWS_PROFILE) or run the notebook with mode = \"local\"") from None
        if not quiet:
            print(f"aws mode: account {account}, region {session.region}")
        return session
    if mode != "local":
        raise ConfigError(f"mode must be 'local' or 'aws', got {mode!r}")
    state = running_local_state()
    if state is not None:
        if not quiet:
            print(f"local mode: using the running local AWS (pid {state['pid']}, region {state.get('region')})")
        return aws_factory.session("local", region=state.get("region"), endpoints=state["endpoints"])
    global _LOCAL
    if _LOCAL is None:
        from roomkit.local import reaper
        from roomkit.local import LocalAWS

        reaper.ensure()  # a killed kernel (nbval, jupyter) must not leave its servers running
        state_file = aws_factory.local_state_path() if share else None
        local = LocalAWS(region=region or aws_factory.DEFAULT_LOCAL_REGION, state_file=state_file)
        local.start()
        _LOCAL = local
        atexit.register(stop_local)
        if not quiet:
            print("local mode: no shared local AWS was running, so this kernel started one"
                  + (" and shares it with notebooks in other kernels" if share else "")
                  + "; it stops with this kernel (`roomkit local up` keeps one independent of kernels)")
    return _LOCAL.session()


def stop_local() -> None:
    """Stop the kernel-scoped local AWS started by :func:`connect` (no-op when there is none)."""
    global _LOCAL
    local, _LOCAL = _LOCAL, None
    if local is not None:
        local.stop(grace_s=0)


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


@dataclass
class Check:
    name: str
    ok: bool
    detail: str

    def __str__(self) -> str:
        return f"[{'ok' if self.ok else 'FAIL'}] {self.name}: {self.detail}"


def preflight(spec: Any, session: Any) -> list[Check]:
    """What :func:`roomkit.aws.deploy.deploy` will verify, checked up front and reported one per line:
    caller identity, the image (exists, Docker v2 manifest), the model configuration or artifact,
    the execution role when one is given. Nothing is created."""
    import importlib

    from roomkit.detector.config import DetectorConfig
    from roomkit.aws.spec import load_model_config
    from roomkit.errors import RoomkitError

    dp = importlib.import_module("roomkit.aws.deploy")  # the module (``roomkit.aws.deploy`` is also a function)
    checks: list[Check] = []

    def attempt(name: str, fn: Any) -> Any:
        try:
            detail = fn()
            checks.append(Check(name, True, detail))
        except RoomkitError as exc:
            checks.append(Check(name, False, exc.message))
        except Exception as exc:  # a botocore error: show its message rather than a traceback
            checks.append(Check(name, False, f"{type(exc).__name__}: {exc}"))

    account: list[str] = []

    def identity() -> str:
        account.append(session.account_id())
        return f"{session.mode} mode, region {session.region}"

    attempt("identity", identity)
    if account:
        image_uri = spec.image_uri or (
            f"{account[0]}.dkr.ecr.{session.region}.amazonaws.com/{dp.LOCAL_IMAGE_REPOSITORY}:{dp.LOCAL_IMAGE_TAG}"
            if session.mode == "local" else None)

        def image() -> str:
            if image_uri is None:
                raise ConfigError("image_uri is required in aws mode (the ECR image built in notebook 02)")
            found = dp.preflight_image(session.client("ecr"), image_uri, session.region)
            return f"{image_uri.rsplit('/', 1)[-1]} {found.get('imageManifestMediaType')}"

        attempt("image", image)

    def model_config() -> str:
        data = load_model_config(spec.model_config)
        DetectorConfig.from_dict(data)  # raises ConfigError naming the bad key/value
        return "valid: " + (", ".join(f"{k}={v}" for k, v in sorted(data.items())) or "detector defaults")

    def model_artifact() -> str:
        dp.preflight_artifact(session.client("s3"), spec.model_data_url)
        return spec.model_data_url

    if spec.model_config is not None:
        attempt("model config", model_config)
    else:
        attempt("model artifact", model_artifact)
    if spec.role_arn:
        def role() -> str:
            dp.preflight_role(session.client("iam"), spec.role_arn, lambda _: None)
            return spec.role_arn

        attempt("execution role", role)
    return checks


def _endpoint_status(session: Any, name: str) -> str | None:
    from botocore.exceptions import ClientError

    try:
        return session.client("sagemaker").describe_endpoint(EndpointName=name)["EndpointStatus"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("ValidationException", "ResourceNotFound"):
            return None
        raise


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
        status = _endpoint_status(session, deployment.endpoint_name)
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


@dataclass
class EndpointSummary:
    """What is deployed, read back from SageMaker and Application Auto Scaling."""

    endpoint_name: str
    status: str | None
    endpoint_config: dict[str, Any] = field(default_factory=dict)
    scalable_targets: list[dict[str, Any]] = field(default_factory=list)
    scaling_policies: list[dict[str, Any]] = field(default_factory=list)
    alarms: list[str] = field(default_factory=list)

    def text(self) -> str:
        """Deterministic lines (no ARNs, account ids or times), for nbval."""
        lines = [f"endpoint {self.endpoint_name}: {self.status or 'not found'}"]
        for v in self.endpoint_config.get("ProductionVariants", []):
            lines.append(f"variant {v.get('VariantName')}: {v.get('InstanceType', 'serverless')}, "
                         f"initial instances {v.get('InitialInstanceCount', '-')}")
        async_cfg = self.endpoint_config.get("AsyncInferenceConfig")
        if async_cfg:
            out = async_cfg.get("OutputConfig", {})
            notes = out.get("NotificationConfig", {})
            lines.append("async: max concurrent invocations per instance "
                         f"{async_cfg.get('ClientConfig', {}).get('MaxConcurrentInvocationsPerInstance')}, "
                         f"success+error topics {'set' if notes.get('SuccessTopic') and notes.get('ErrorTopic') else 'missing'}, "
                         f"failure path {'set' if out.get('S3FailurePath') else 'missing'}")
        for t in self.scalable_targets:
            lines.append(f"autoscaling: {t['MinCapacity']}-{t['MaxCapacity']} instances")
        for p in sorted(self.scaling_policies, key=lambda p: p["PolicyName"]):
            lines.append(f"policy {p['PolicyName']}: {p['PolicyType']}")
        for a in sorted(self.alarms):
            lines.append(f"alarm {a}")
        return "\n".join(lines)


def endpoint_summary(session: Any, deployment: Any) -> EndpointSummary:
    """Describe the endpoint, its config and its scaling set-up."""
    sm = session.client("sagemaker")
    status = _endpoint_status(session, deployment.endpoint_name)
    summary = EndpointSummary(deployment.endpoint_name, status)
    if status is None:
        return summary
    desc = sm.describe_endpoint(EndpointName=deployment.endpoint_name)
    config = sm.describe_endpoint_config(EndpointConfigName=desc["EndpointConfigName"])
    summary.endpoint_config = {k: v for k, v in config.items() if k != "ResponseMetadata"}
    resource = f"endpoint/{deployment.endpoint_name}/variant/{deployment.variant_name}"
    aas = session.client("application-autoscaling")
    summary.scalable_targets = aas.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[resource])["ScalableTargets"]
    summary.scaling_policies = aas.describe_scaling_policies(
        ServiceNamespace="sagemaker", ResourceId=resource)["ScalingPolicies"]
    if deployment.alarm_name:
        found = session.client("cloudwatch").describe_alarms(AlarmNames=[deployment.alarm_name])["MetricAlarms"]
        summary.alarms = [a["AlarmName"] for a in found]
    return summary


# -- results ---------------------------------------------------------------------------------------
def save_results(rows: Sequence[Any], directory: str | os.PathLike[str]) -> Path:
    """Write each successful row's response as ``<stem>.json`` (what ``roomkit eval --pred`` and
    notebook 05 read), failures as ``<stem>.error.txt``, and ``results.csv`` with one line per
    plan. Older files there are replaced, so the folder always shows the last submission."""
    import csv

    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    for old in list(folder.glob("*.json")) + list(folder.glob("*.error.txt")):
        old.unlink()
    for row in rows:
        stem = Path(urlparse(row.input).path if "://" in row.input else row.input).stem
        if row.detection is not None:
            (folder / f"{stem}.json").write_text(json.dumps(row.detection.to_response(), indent=2) + "\n",
                                                 encoding="utf-8")
        elif row.error:
            (folder / f"{stem}.error.txt").write_text(row.error + "\n", encoding="utf-8")
    with open(folder / "results.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["plan", "status", "rooms", "processing_time_ms", "latency_s", "error"])
        for row in rows:
            writer.writerow([Path(row.input).name, row.status, row.rooms, row.processing_time_ms,
                             None if row.latency_s is None else round(row.latency_s, 3), row.error or ""])
    return folder


def load_result_detections(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """``{stem: Detection}`` from a folder written by :func:`save_results`."""
    from roomkit.qa.evaluate import load_prediction

    out = {}
    for path in sorted(Path(directory).glob("*.json")):
        det, note = load_prediction(path)
        if not note:
            out[path.stem] = det
    return out


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


# -- QA views (drawn by roomkit.qa.viz) ---------------------------------------------------------------
def qa_entries(runs: Sequence[PlanRun]) -> list[Any]:
    """:class:`roomkit.qa.viz.QAEntry` per run (image, detection, ground truth, score), for
    ``viz.plot_gallery`` and ``viz.write_report``. Runs made with ``keep_images=True`` are drawn
    from memory, others are read from their file again."""
    from roomkit.qa.viz import QAEntry

    return [QAEntry(name=r.name, image=r.image if r.image is not None else r.sample.path,
                    detection=r.detection, truth=r.sample.truth, note=r.error or "").scored()
            for r in runs]


def detections_for_qa(results_dir: str | os.PathLike[str], samples: Sequence[Sample],
                      config: str | os.PathLike[str] | None = None) -> tuple[dict[str, Any], str]:
    """What notebook 05 shows: the endpoint's results saved by notebook 04 when ``results_dir``
    holds any, else the detector run here with ``config`` (``config.json`` from notebook 01, or
    the defaults). Returns ``({stem: Detection}, sentence saying which)``."""
    from roomkit.detector.config import DetectorConfig

    folder = Path(results_dir)
    found = load_result_detections(folder) if folder.is_dir() else {}
    if found:
        return found, f"results of the deployed endpoint ({len(found)} plans, saved by notebook 04 in {folder.name}/)"
    cfg_path = Path(config) if config else None
    cfg = DetectorConfig.from_json(cfg_path) if cfg_path and cfg_path.is_file() else DetectorConfig()
    runs = detect_samples(samples, cfg)
    origin = "config.json from notebook 01" if cfg_path and cfg_path.is_file() else "the default configuration"
    return ({r.name: r.detection for r in runs if r.detection is not None},
            f"no endpoint results in {folder.name}/ (run notebook 04 first to QA the endpoint): "
            f"detected here with {origin}")


def curve_of(entries: Sequence[Any], *, iou: float = 0.5) -> list[Any]:
    """The confidence-threshold curve (:func:`roomkit.qa.evaluate.threshold_curve`) of QA entries."""
    from roomkit.qa.evaluate import threshold_curve
    from roomkit.plans.response import Detection

    pairs = [(e.detection if e.detection is not None else Detection(e.truth.width, e.truth.height), e.truth)
             for e in entries if e.truth is not None]
    return threshold_curve(pairs, iou=iou)


def most_changed(comparison: ConfigComparison, a: str, b: str, n: int = 2) -> list[str]:
    """The ``n`` plans whose F1@0.5 (then room count) differs most between configurations."""
    sa = {s.name: s for s in comparison.summaries[a].plans}
    sb = {s.name: s for s in comparison.summaries[b].plans}
    rooms = {lb: {r.name: (len(r.detection.rooms) if r.detection else 0) for r in comparison.runs[lb]}
             for lb in (a, b)}

    def key(name: str) -> tuple[float, int, str]:
        df1 = abs(sa[name].f1(0.5) - sb[name].f1(0.5)) if name in sa and name in sb else 0.0
        return (-round(df1, 6), -abs(rooms[a][name] - rooms[b][name]), name)

    return sorted(rooms[a], key=key)[:n]


def compare_entries(comparison: ConfigComparison, names: Sequence[str]) -> list[Any]:
    """QA entries of the named plans under each configuration, side by side (``plan · label``)."""
    from dataclasses import replace

    entries = []
    for name in names:
        for label, runs in comparison.runs.items():
            run = next((r for r in runs if r.name == name), None)
            if run is None:
                raise ConfigError(f"no plan {name!r} in the comparison")
            entries.append(replace(qa_entries([run])[0], name=f"{name} · {label}"))
    return entries


# -- image URI hand-over (02 -> 03) ------------------------------------------------------------------
IMAGE_RECORD = "image.json"


def record_image(out_dir: str | os.PathLike[str], image_uri: str | None, *, how: str) -> Path:
    """Remember which image notebook 02 produced (``None``: none was built here)."""
    path = output_dir(out_dir) / IMAGE_RECORD
    path.write_text(json.dumps({"image_uri": image_uri, "how": how}, indent=2) + "\n", encoding="utf-8")
    return path


def recorded_image(out_dir: str | os.PathLike[str] | None = None) -> str | None:
    """The image URI notebook 02 built and pushed, or None."""
    try:
        return json.loads((output_dir(out_dir, create=False) / IMAGE_RECORD).read_text(encoding="utf-8")).get("image_uri")
    except (OSError, ValueError, AttributeError):
        return None


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


def outcome_counts(rows: Sequence[Any]) -> str:
    """``N plans: a succeeded, b failed, c pending`` — deterministic, for nbval."""
    from collections import Counter

    counts = Counter(r.status for r in rows)
    return (f"{len(rows)} plans: {counts.get('success', 0)} succeeded, {counts.get('failed', 0)} failed, "
            f"{counts.get('pending', 0)} pending")


def results_table(rows: Sequence[Any]) -> Any:
    """The results as a pandas DataFrame indexed by plan file name (no S3 URIs, no detection)."""
    from roomkit.aws.jobs import to_dataframe

    frame = to_dataframe(rows)
    frame.insert(0, "plan", [Path(urlparse(r.input).path if "://" in r.input else r.input).name for r in rows])
    keep = ["plan", "status", "rooms", "width", "height", "processing_time_ms", "latency_s", "error"]
    frame = frame[keep].set_index("plan")
    for column in ("rooms", "width", "height"):  # integers, with <NA> for failed plans
        frame[column] = frame[column].astype("Int64")
    frame["error"] = frame["error"].fillna("")
    return frame


def latency_figure(rows: Sequence[Any]) -> Any:
    """Histogram of submit→completion latency beside the detector's own processing time."""
    from matplotlib.figure import Figure

    latency = [r.latency_s for r in rows if r.latency_s is not None]
    processing = [r.processing_time_ms / 1000.0 for r in rows if r.processing_time_ms is not None]
    fig = Figure(figsize=(9, 3.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    ax1.hist(latency, bins=min(20, max(5, len(latency))), color="#4c72b0")
    ax1.set_xlabel("seconds from submit to completion")
    ax1.set_ylabel("plans")
    ax1.set_title("end-to-end latency (queue + processing)", fontsize=10)
    ax2.hist(processing, bins=min(20, max(5, len(processing))), color="#55a868")
    ax2.set_xlabel("seconds inside the container")
    ax2.set_title("detector processing time", fontsize=10)
    return fig


# -- upload trigger (04b) --------------------------------------------------------------------------------
@dataclass
class UploadResult:
    key: str
    status: str = "waiting"  # waiting | submitted | success | failed
    inference_id: str | None = None
    rooms: int | None = None
    seconds: float | None = None
    error: str | None = None
    notified: bool = False


def upload_plans(session: Any, deployment: Any, plans: Sequence[str | os.PathLike[str]], *,
                 prefix: str | None = None) -> list[str]:
    """``put_object`` each plan under the trigger's prefix (with its Content-Type); the keys."""
    from roomkit.aws.inputs import content_type_for

    trigger = deployment.trigger
    if trigger is None and prefix is None:
        raise ConfigError("this deployment has no upload trigger: run deploy_trigger first")
    prefix = prefix if prefix is not None else trigger.prefix
    s3 = session.client("s3")
    keys = []
    for plan in plans:
        path = Path(plan)
        body = path.read_bytes()
        key = f"{prefix}{path.name}"
        s3.put_object(Bucket=deployment.bucket, Key=key, Body=body,
                      ContentType=content_type_for(path.name, body[:64]) or "application/octet-stream")
        keys.append(key)
    return keys


def watch_uploads(session: Any, deployment: Any, keys: Sequence[str], *, timeout: float = 300.0,
                  interval: float = 1.0, echo: Any = print,
                  claims_prefix: str | None = None) -> list[UploadResult]:
    """Follow uploaded plans until each has a result (or ``timeout``): the trigger's claim
    records say which invocation a key became, S3 holds its output or failure object, and the
    deployment's notification queue says when SageMaker announced it. Prints a line per event."""
    from roomkit.aws.notifications import parse_notification
    from roomkit.plans.response import Detection
    from roomkit.aws.trigger import DEFAULT_CLAIMS_PREFIX

    s3 = session.client("s3")
    sqs = session.client("sqs") if deployment.notification_queue_url else None
    claims_prefix = claims_prefix or DEFAULT_CLAIMS_PREFIX
    by_key = {k: UploadResult(k) for k in keys}
    started = time.monotonic()
    locations: dict[str, tuple[str | None, str | None]] = {}

    def elapsed() -> float:
        return round(time.monotonic() - started, 1)

    def read(uri: str | None) -> bytes | None:
        if not uri:
            return None
        bucket, _, key = uri[len("s3://"):].partition("/")
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None
        except Exception as exc:  # noqa: BLE001 - 404 from head-less get on some S3 implementations
            if "404" in str(exc) or "NoSuchKey" in str(exc):
                return None
            raise

    while time.monotonic() - started < timeout:
        waiting = [r for r in by_key.values() if r.status in ("waiting", "submitted")]
        unclaimed = [r for r in waiting if r.inference_id is None]
        if unclaimed:
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=deployment.bucket, Prefix=claims_prefix)
            for page in pages:
                for obj in page.get("Contents", []):
                    claim = json.loads(read(f"s3://{deployment.bucket}/{obj['Key']}") or b"{}")
                    result = by_key.get(claim.get("key", ""))
                    if result is not None and result.inference_id is None and claim.get("state") == "submitted":
                        result.inference_id = claim.get("inference_id")
                        result.status = "submitted"
                        locations[result.key] = (claim.get("output_location"), claim.get("failure_location"))
                        echo(f"[{elapsed():>5.1f} s] {Path(result.key).name}: invoked by the trigger "
                             f"({result.inference_id[:15]}…)")
        for result in [r for r in by_key.values() if r.status == "submitted"]:
            out_uri, fail_uri = locations[result.key]
            body = read(out_uri)
            if body is not None:
                det = Detection.from_response(json.loads(body))
                result.status, result.rooms, result.seconds = "success", len(det.rooms), elapsed()
                echo(f"[{elapsed():>5.1f} s] {Path(result.key).name}: result with {result.rooms} rooms")
                continue
            body = read(fail_uri)
            if body is not None:
                result.status, result.seconds = "failed", elapsed()
                result.error = body.decode("utf-8", "replace")[:300]
                echo(f"[{elapsed():>5.1f} s] {Path(result.key).name}: failed: {result.error}")
        if sqs is not None:
            msgs = sqs.receive_message(QueueUrl=deployment.notification_queue_url, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=0, VisibilityTimeout=5).get("Messages", [])
            ids = {r.inference_id: r for r in by_key.values() if r.inference_id}
            inputs = {f"s3://{deployment.bucket}/{r.key}": r for r in by_key.values()}
            for msg in msgs:
                note = parse_notification(msg["Body"])
                result = None if note is None else (ids.get(note.inference_id) or inputs.get(note.input_location or ""))
                if result is not None:
                    if not result.notified:
                        echo(f"[{elapsed():>5.1f} s] {Path(result.key).name}: {note.status} notification")
                    result.notified = True
                    sqs.delete_message(QueueUrl=deployment.notification_queue_url, ReceiptHandle=msg["ReceiptHandle"])
        if all(r.status in ("success", "failed") and (r.notified or sqs is None) for r in by_key.values()):
            break
        time.sleep(interval)
    return list(by_key.values())
