"""``roomkit deploy``, ``roomkit teardown`` and ``roomkit trigger``: the endpoint's lifecycle.

``deploy`` reads a YAML/JSON :class:`~roomkit.aws.spec.DeploymentSpec`, creates or updates
everything and writes the deployment manifest the other commands take (default: beside the
spec, ``<spec stem>.deployment.json``). ``teardown`` removes the endpoint (``--all``: also the
trigger, queue, topics, role and buckets roomkit created). ``trigger deploy|remove`` manages the
upload trigger. Each prints what it did; ``--mode`` defaults to ``local`` for ``deploy`` and to
the manifest's mode for the others.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ORDER = 42


def register(subparsers: argparse._SubParsersAction) -> None:
    d = subparsers.add_parser(
        "deploy",
        help="create or update an endpoint from a deployment spec (YAML/JSON)",
        description=(
            "Create or reuse the bucket, topics, queue, role, model, endpoint config, endpoint and "
            "autoscaling a spec describes, wait until the endpoint is InService and write the "
            "deployment manifest. Re-running with an unchanged spec changes nothing."
        ),
    )
    d.add_argument("spec", type=Path, help="deployment spec (.yaml, .yml or .json)")
    _session_args(d, default_mode="local")
    d.add_argument("--manifest", type=Path, default=None, metavar="JSON",
                   help="where to write the deployment manifest (default: <spec stem>.deployment.json beside the spec)")
    d.add_argument("--timeout", type=float, default=1800.0, metavar="S", help="max wait for InService (default 1800)")
    d.add_argument("--force-update", action="store_true", help="roll the endpoint to a new config even if unchanged")
    d.add_argument("--no-progress", action="store_true", help="no progress output")
    d.add_argument("--model", type=Path, default=None, metavar="DIR",
                   help="learned model directory (model.onnx + model.json, from `roomkit train`) to pack into "
                        "model.tar.gz with the spec's model_config (default: the shipped weights when its "
                        "backend is learned or hybrid)")
    d.set_defaults(func=run_deploy)

    t = subparsers.add_parser(
        "teardown",
        help="delete a deployment's endpoint (--all: everything it created)",
        description=(
            "Deregister autoscaling, delete the alarm, endpoint, endpoint configs and models. With "
            "--all also the upload trigger, notification queue, topics, IAM role and the buckets "
            "roomkit created, with their contents. Safe to re-run."
        ),
    )
    t.add_argument("--deployment", "-d", required=True, type=Path, metavar="JSON", help="deployment manifest")
    t.add_argument("--all", action="store_true", dest="everything", help="also delete data, queue, topics, role, trigger")
    _session_args(t, default_mode=None)
    t.set_defaults(func=run_teardown)

    g = subparsers.add_parser(
        "trigger",
        help="run every plan uploaded under a prefix through the endpoint",
        description="Deploy or remove the S3 upload trigger of a deployment (Lambda in aws mode, SQS in local mode).",
    )
    gsub = g.add_subparsers(dest="trigger_command", metavar="ACTION", help="what to do")
    gsub.required = True
    gd = gsub.add_parser("deploy", help="create or update the trigger")
    gd.add_argument("--deployment", "-d", required=True, type=Path, metavar="JSON", help="deployment manifest")
    gd.add_argument("--prefix", default="blueprints/", help="watched key prefix in the deployment bucket (default blueprints/)")
    gd.add_argument("--suffix", action="append", default=None, metavar=".EXT",
                    help="plan suffix to watch (repeatable; default .png .jpg .jpeg .tif .tiff .pdf)")
    gd.add_argument("--ttl", type=int, default=None, metavar="S", help="RequestTTLSeconds of each invocation")
    gd.add_argument("--invocation-timeout", type=int, default=None, metavar="S", help="InvocationTimeoutSeconds")
    gd.add_argument("--target", choices=("lambda", "sqs"), default=None,
                    help="lambda (default in aws mode) or sqs (default in local mode)")
    _session_args(gd, default_mode=None)
    gd.set_defaults(func=run_trigger_deploy)
    gr = gsub.add_parser("remove", help="remove the trigger (notifications, function or queue, roles)")
    gr.add_argument("--deployment", "-d", required=True, type=Path, metavar="JSON", help="deployment manifest")
    _session_args(gr, default_mode=None)
    gr.set_defaults(func=run_trigger_remove)


def _session_args(p: argparse.ArgumentParser, *, default_mode: str | None) -> None:
    p.add_argument("--mode", choices=("local", "aws"), default=default_mode,
                   help=f"local (loopback AWS of `roomkit local up`) or aws (default: {default_mode or 'the manifest mode'})")
    p.add_argument("--region", default=None, help="AWS region (default: the configured one / the manifest's)")
    p.add_argument("--profile", default=None, help="AWS profile (aws mode)")


def _session(args: argparse.Namespace, *, mode: str | None = None, region: str | None = None):
    import roomkit.aws

    return roomkit.aws.session(args.mode or mode or "local", region=args.region or region, profile=args.profile)


def _load(args: argparse.Namespace):
    from roomkit.aws.deployment import Deployment

    deployment = Deployment.load(args.deployment)
    if args.mode and args.mode != deployment.mode:
        print(f"note: manifest was deployed in {deployment.mode} mode, using --mode {args.mode}", file=sys.stderr)
    return deployment, _session(args, mode=deployment.mode, region=deployment.region)


def run_deploy(args: argparse.Namespace) -> int:
    from roomkit.aws.deploy import deploy
    from roomkit.aws.spec import DeploymentSpec

    spec = DeploymentSpec.from_file(args.spec)
    manifest = args.manifest or args.spec.with_name(f"{args.spec.stem}.deployment.json")
    session = _session(args)
    dep = deploy(spec, session, progress=not args.no_progress, timeout=args.timeout,
                 force_update=args.force_update, manifest=manifest, model_dir=args.model)
    print(f"endpoint   {dep.endpoint_name} ({dep.kind}, {session.mode} mode, {dep.region})")
    print(f"config     {dep.endpoint_config_name}")
    print(f"inputs     {dep.input_uri}")
    if dep.output_path:
        print(f"outputs    {dep.output_path}")
        print(f"failures   {dep.failure_path}")
    if dep.notification_queue_url:
        print(f"queue      {dep.notification_queue_url}")
    print(f"manifest   {manifest}")
    return 0


def run_teardown(args: argparse.Namespace) -> int:
    from roomkit.aws.deploy import teardown

    deployment, session = _load(args)
    had_trigger = deployment.trigger is not None
    removed = teardown(deployment, session, everything=args.everything, progress=False)
    for line in removed:
        print(line)
    if not removed:
        print(f"nothing left to remove for {deployment.name}")
    if had_trigger and deployment.trigger is None:
        deployment.save(args.deployment)  # the manifest no longer names a trigger
    return 0


def run_trigger_deploy(args: argparse.Namespace) -> int:
    from roomkit.aws.trigger_deploy import deploy_trigger

    deployment, session = _load(args)
    trig = deploy_trigger(
        deployment, session, prefix=args.prefix, suffixes=tuple(args.suffix) if args.suffix else None,
        request_ttl_seconds=args.ttl, invocation_timeout_seconds=args.invocation_timeout, target=args.target,
        progress=False, manifest=args.deployment,
    )
    where = trig.function_arn or trig.queue_url
    print(f"uploads to s3://{trig.bucket}/{trig.prefix} ({', '.join(trig.suffixes)}) -> {where} -> {deployment.endpoint_name}")
    return 0


def run_trigger_remove(args: argparse.Namespace) -> int:
    from roomkit.aws.trigger_deploy import remove_trigger

    deployment, session = _load(args)
    removed = remove_trigger(deployment, session, progress=False, manifest=args.deployment)
    for line in removed:
        print(line)
    if not removed:
        print("no trigger to remove")
    return 0
