"""``roomkit submit``, ``roomkit results`` and ``roomkit transform``: batches through a deployment.

``submit`` uploads and invokes, and records the job handles in a jobs file (default: beside the
deployment manifest, ``<manifest stem>.jobs.json``); plans already finished there are reused
unless ``--rerun``. ``results`` reads that file back (optionally waiting) and prints one row per
plan, or writes them as CSV. Exit status: 0 all succeeded, 1 some failed, 3 some still pending
(2 is a usage/configuration error, as for every roomkit command).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

ORDER = 45

EXIT_OK, EXIT_FAILED, EXIT_PENDING = 0, 1, 3


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "submit",
        help="upload plans and invoke the async endpoint once per plan",
        description=(
            "Upload local plans (files or folders) under the deployment's input prefix, or use "
            "s3:// objects/prefixes in place, and call InvokeEndpointAsync once per plan. The job "
            "handles are added to the jobs file; a plan that already finished there (same bytes, "
            "endpoint and custom attributes) is not sent again unless --rerun."
        ),
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="plan file, folder, s3://bucket/key or s3://bucket/prefix/")
    _common(p)
    p.add_argument("--rerun", action="store_true", help="invoke again even for plans already finished")
    p.add_argument("--ttl", type=int, default=None, metavar="S", help="RequestTTLSeconds (60-21600; default 6 h)")
    p.add_argument("--invocation-timeout", type=int, default=None, metavar="S",
                   help="InvocationTimeoutSeconds (1-3600; default 15 min)")
    p.add_argument("--custom-attributes", default=None, metavar="TEXT", help="CustomAttributes for the container")
    p.add_argument("--workers", type=int, default=8, metavar="N", help="parallel uploads/invocations (default 8)")
    p.add_argument("--no-inline", dest="inline", action="store_false",
                   help="upload every plan to S3 first (default: plans up to 128,000 bytes go inside the request)")
    p.add_argument("--wait", action="store_true", help="wait for the results and print them")
    _wait_args(p)
    p.set_defaults(func=run_submit)

    r = subparsers.add_parser(
        "results",
        help="collect the results of submitted plans into a table (or CSV)",
        description="Read the jobs file, look up each job's output or failure in S3 and print a row per plan.",
    )
    _common(r)
    r.add_argument("--wait", action="store_true", help="wait for unfinished jobs first")
    _wait_args(r)
    r.set_defaults(func=run_results)

    t = subparsers.add_parser(
        "transform",
        help="run the deployment's model over many plans as a Batch Transform job",
        description=(
            "Batch Transform for large backlogs: one record per object, outputs at "
            "<output>/<input key>.out, collected into the same table as `roomkit results`. In "
            "local mode the objects go through the endpoint's model on the local runtime."
        ),
    )
    t.add_argument("paths", nargs="+", metavar="PATH", help="plan file, folder, s3:// object or prefix")
    t.add_argument("--deployment", "-d", required=True, type=Path, metavar="JSON", help="deployment manifest")
    t.add_argument("--mode", choices=("local", "aws"), default=None, help="default: the manifest's mode")
    t.add_argument("--region", default=None, help="default: the manifest's region")
    t.add_argument("--profile", default=None, help="AWS profile (aws mode)")
    t.add_argument("--output-uri", default=None, metavar="S3URI",
                   help="S3OutputPath of the job (default: under the deployment's output path)")
    t.add_argument("--output", dest="output_uri", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # old name
    t.add_argument("--instance-type", default=None, metavar="TYPE",
                   help="transform instance type (default: the endpoint's)")
    t.add_argument("--instance-count", type=int, default=None, metavar="N",
                   help="transform instances (default: the endpoint's initial count)")
    t.add_argument("--timeout", type=float, default=6 * 3600, metavar="S",
                   help="how long to wait for the job to finish (default 21600)")
    t.add_argument("--csv", type=Path, default=None, metavar="FILE", help="also write the results as CSV")
    t.add_argument("--no-progress", action="store_true", help="no progress output")
    t.set_defaults(func=run_transform)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--deployment", "-d", required=True, type=Path, metavar="JSON",
                   help="deployment manifest written by `roomkit deploy`")
    p.add_argument("--jobs", type=Path, default=None, metavar="JSON",
                   help="jobs file (default: <manifest stem>.jobs.json beside the manifest)")
    p.add_argument("--mode", choices=("local", "aws"), default=None, help="default: the manifest's mode")
    p.add_argument("--region", default=None, help="default: the manifest's region")
    p.add_argument("--profile", default=None, help="AWS profile (aws mode)")
    p.add_argument("--csv", type=Path, default=None, metavar="FILE", help="also write the results as CSV")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _wait_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timeout", type=float, default=3600.0, metavar="S", help="how long --wait waits (default 3600)")
    p.add_argument("--poll-interval", type=float, default=5.0, metavar="S",
                   help="queue long-poll / S3 poll period (default 5)")
    p.add_argument("--fallback-after", type=float, default=60.0, metavar="S",
                   help="poll S3 when no notification arrived for this long (default 60)")


# ---------------------------------------------------------------------------------------------
def _context(args: argparse.Namespace) -> tuple[Any, Any]:
    import roomkit.aws
    from roomkit.aws.target import load_manifest

    deployment = load_manifest(args.deployment)
    mode = args.mode or getattr(deployment, "mode", None) or "local"
    region = args.region or getattr(deployment, "region", None)
    session = roomkit.aws.session(mode, region=region, profile=args.profile if mode == "aws" else None)
    return deployment, session


def jobs_path(args: argparse.Namespace) -> Path:
    if args.jobs is not None:
        return args.jobs
    manifest: Path = args.deployment
    return manifest.with_name(manifest.stem + ".jobs.json")


def run_submit(args: argparse.Namespace) -> int:
    from roomkit.aws.jobs import load_jobs
    from roomkit.aws.submit import SubmitInterrupted, submit

    deployment, session = _context(args)
    ledger = jobs_path(args)
    previous = load_jobs(ledger) if ledger.exists() else []
    try:
        jobs = submit(
            args.paths, deployment, session,
            ttl_seconds=args.ttl, invocation_timeout_seconds=args.invocation_timeout,
            custom_attributes=args.custom_attributes, rerun=args.rerun, previous=previous,
            max_workers=args.workers, inline=args.inline, progress=not args.no_progress,
        )
    except SubmitInterrupted as stop:
        _record(previous, stop.jobs, ledger)
        print(f"interrupted: {len(stop.jobs)} plan(s) already submitted are recorded in {ledger}",
              file=sys.stderr)
        raise
    _record(previous, jobs, ledger)
    reused = sum(1 for j in jobs if j.reused)
    errors = [j for j in jobs if j.error]
    print(f"submitted {len(jobs) - reused - len(errors)} plan(s) to {_endpoint(deployment)}, "
          f"reused {reused}, could not submit {len(errors)}; jobs in {ledger}")
    for job in errors:
        print(f"  {job.input}: {job.error}", file=sys.stderr)
    if not args.wait:
        return EXIT_FAILED if errors else EXIT_OK
    return _collect(jobs, deployment, session, args, wait_first=True)


def _record(previous: list, jobs: list, ledger: Path) -> None:
    """Add new job handles to the jobs file (reused ones are already there)."""
    from roomkit.aws.jobs import save_jobs

    known = {j.inference_id for j in previous}
    new = []
    for job in jobs:
        if job.inference_id not in known:
            known.add(job.inference_id)
            new.append(job)
    save_jobs([*previous, *new], ledger)


def run_results(args: argparse.Namespace) -> int:
    from roomkit.aws.jobs import load_jobs

    deployment, session = _context(args)
    jobs = load_jobs(jobs_path(args))
    return _collect(jobs, deployment, session, args, wait_first=args.wait)


def run_transform(args: argparse.Namespace) -> int:
    from roomkit.aws.transform import transform

    deployment, session = _context(args)
    result = transform(
        args.paths, deployment, session, output_uri=args.output_uri, instance_type=args.instance_type,
        instance_count=args.instance_count, timeout=args.timeout, progress=not args.no_progress,
    )
    print(f"transform job(s) {', '.join(result.job_names)}: {result.status}; outputs under {result.output_uri}")
    for name, reason in result.failure_reasons.items():
        print(f"  {name}: {reason}", file=sys.stderr)
    return _report(result.rows, args.csv)


def _collect(jobs: list, deployment: Any, session: Any, args: argparse.Namespace, *, wait_first: bool) -> int:
    from roomkit.aws.submit import results, wait

    source: Any = jobs
    if wait_first:
        done = wait(jobs, deployment, session, timeout=args.timeout, poll_interval=args.poll_interval,
                    fallback_after=args.fallback_after, progress=not args.no_progress)
        if done.pending:
            print(done.summary(), file=sys.stderr)
        source = done
    return _report(results(source, deployment, session), args.csv)


def _report(rows: list, csv: Path | None) -> int:
    from roomkit.aws.jobs import latency_stats, to_dataframe

    print(format_table(rows))
    stats = latency_stats(rows)
    if stats.count:
        print(f"latency (submit -> done): {stats}")
    if csv is not None:
        csv.parent.mkdir(parents=True, exist_ok=True)
        to_dataframe(rows).to_csv(csv, index=False)
        print(f"wrote {csv}")
    statuses = {r.status for r in rows}
    if "failed" in statuses:
        return EXIT_FAILED
    if "pending" in statuses:
        return EXIT_PENDING
    return EXIT_OK


def format_table(rows: Sequence[Any]) -> str:
    """A plain-text table: plan, status, rooms, their types (text read), model ms, latency, error."""
    header = ("plan", "status", "rooms", "types", "model ms", "latency s", "error")
    lines = [header]
    for r in rows:
        lines.append((
            Path(r.input).name if not str(r.input).startswith("s3://") else r.input,
            r.status,
            "" if r.rooms is None else str(r.rooms),
            getattr(r, "room_types", None) or "",
            "" if r.processing_time_ms is None else f"{r.processing_time_ms:.0f}",
            "" if r.latency_s is None else f"{r.latency_s:.1f}",
            (r.error or "")[:100],
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    out = []
    for line in lines:
        cells = [line[i].ljust(widths[i]) for i in range(len(widths))] + [line[-1]]
        out.append("  ".join(cells).rstrip())
    counts = {s: sum(1 for r in rows if r.status == s) for s in ("success", "failed", "pending")}
    out.append(f"{len(rows)} plan(s): " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    return "\n".join(out)


def _endpoint(deployment: Any) -> str:
    from roomkit.aws.target import target_of

    return target_of(deployment).endpoint_name
