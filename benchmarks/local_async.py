"""Local async mode against calling the server directly: 200 sample plans.

Prints the wall time from the first InvokeEndpointAsync to the last SNS notification, the same
200 plans POSTed straight to the serving process's /invocations with the same concurrency, the
overhead per job of the async path (S3 in/out, queue, notification) over the direct call, and
the runtime's queue depth over time (the local ApproximateBacklogSize).

    python benchmarks/local_async.py [--count 200] [--rounds 3] [--workers 2] [--samples data/samples]

Both paths run ``--rounds`` times, alternating which goes first, and the median overhead is
reported: on a shared 2-core VM one pass of either varies by ±10 %, as much as the effect measured.

Target (issue 5): overhead ≤ 15 % on 2 cores; the queue never grows without bound (it drains to
0 and its peak is at most the number submitted).

Reading the figures: it also prints the CPU per plan of the serving processes and of this
process (moto's S3/SNS/SQS, the botocore clients, the runtime, the submitting client). With the
serving workers saturating both cores, that second figure is the overhead: the client's
InvokeEndpointAsync and its SQS reads go through botocore and HTTP as they would on AWS; the
runtime reads the input, writes the output and publishes the notification on moto's backends
directly (as SageMaker does inside AWS), and moto delivers SNS to SQS. On AWS all of that but the
client runs on other machines. The notification reader reads like ``roomkit.wait``: after a
partial batch it pauses ``--batch-window`` s (default 0.25 s) so that notifications are read ten
at a time; ``--batch-window 0`` polls for every notification (about 6 ms more CPU per job here).
The relative overhead shrinks as plans get heavier. Other
processes on the machine skew both timings, so the load average is printed before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import urllib3

ROOT = Path(__file__).resolve().parents[1]
TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".tif": "image/tiff",
         ".tiff": "image/tiff", ".pdf": "application/pdf"}


def _load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) of the live processes of process group ``pgid``."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load_plans(folder: Path, count: int) -> list[tuple[str, bytes, str]]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in TYPES)
    if not files:
        sys.exit(f"no sample plans in {folder}")
    plans = [(p.name, p.read_bytes(), TYPES[p.suffix.lower()]) for p in files]
    return [plans[i % len(plans)] for i in range(count)]


def direct(server_url: str, plans, concurrency: int) -> float:
    http = urllib3.PoolManager(maxsize=concurrency)

    def one(plan) -> int:
        resp = http.request("POST", server_url + "/invocations", body=plan[1],
                            headers={"Content-Type": plan[2]}, timeout=300)
        return resp.status

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        statuses = list(pool.map(one, plans))
    elapsed = time.perf_counter() - start
    bad = [s for s in statuses if s != 200]
    if len(bad) > len(plans) // 10:
        print(f"warning: {len(bad)} direct calls did not answer 200: {sorted(set(bad))}")
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2, help="serving workers (= concurrency)")
    ap.add_argument("--samples", type=Path, default=ROOT / "data" / "samples")
    ap.add_argument("--submit-threads", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3,
                    help="direct/async pairs, alternating which goes first; the median is reported")
    ap.add_argument("--batch-window", type=float, default=0.25,
                    help="seconds the notification reader pauses after a partial batch, as "
                         "roomkit.wait does by default (0: a poll per notification)")
    args = ap.parse_args()

    from roomkit.local import LocalAWS

    plans = load_plans(args.samples, args.count)
    distinct = {name: (name, body, ctype) for name, body, ctype in plans}
    print(f"{len(plans)} plans ({len(distinct)} distinct samples from {args.samples}), "
          f"{args.workers} serving workers, {os.cpu_count()} CPUs, load average {_load()}")

    with LocalAWS(workers=args.workers, trigger=False) as aws:
        session = aws.session()
        s3, sm, sns, sqs = (session.client(s) for s in ("s3", "sagemaker", "sns", "sqs"))
        runtime = session.client("sagemaker-runtime")
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        ok = sns.create_topic(Name="bench-ok")["TopicArn"]
        err = sns.create_topic(Name="bench-err")["TopicArn"]
        queue = sqs.create_queue(QueueName="bench-notes")["QueueUrl"]
        qarn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for topic in (ok, err):
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn, Attributes={"RawMessageDelivery": "true"})
        sm.create_model(ModelName="bench", ExecutionRoleArn="arn:aws:iam::123456789012:role/bench",
                        PrimaryContainer={"Image": aws.image_uri})
        sm.create_endpoint_config(
            EndpointConfigName="bench",
            ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": "bench",
                                 "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}],
            AsyncInferenceConfig={
                "OutputConfig": {"S3OutputPath": f"s3://{bucket}/out", "S3FailurePath": f"s3://{bucket}/fail",
                                 "NotificationConfig": {"SuccessTopic": ok, "ErrorTopic": err}},
                "ClientConfig": {"MaxConcurrentInvocationsPerInstance": args.workers}})
        sm.create_endpoint(EndpointName="bench", EndpointConfigName="bench")

        # warm both paths (each worker imports the detector lazily)
        direct(aws.server_url, list(distinct.values()) * 2, args.workers)
        for i, (name, body, ctype) in enumerate(plans):
            s3.put_object(Bucket=bucket, Key=f"in/{i:04d}-{name}", Body=body, ContentType=ctype)
        pgid = aws.server.pid

        def async_pass() -> tuple[float, float, list[tuple[float, int]], dict[str, dict], list[str]]:
            depths: list[tuple[float, int]] = []
            received: dict[str, dict] = {}
            done = threading.Event()
            start = time.perf_counter()

            def monitor() -> None:
                while not done.is_set():
                    depths.append((time.perf_counter() - start, aws.queue_depth("bench")))
                    time.sleep(0.25)

            def reader() -> None:
                while len(received) < len(plans):
                    msgs = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                               WaitTimeSeconds=1).get("Messages", [])
                    for m in msgs:
                        note = json.loads(m["Body"])
                        received[note["inferenceId"]] = note
                    if msgs:
                        sqs.delete_message_batch(QueueUrl=queue, Entries=[
                            {"Id": str(k), "ReceiptHandle": m["ReceiptHandle"]} for k, m in enumerate(msgs)])
                    if 0 < len(msgs) < 10 and args.batch_window > 0:
                        time.sleep(args.batch_window)  # let a batch gather: one poll per batch
                done.set()

            def submit(i: int) -> str:
                name, _, ctype = plans[i]
                return runtime.invoke_endpoint_async(EndpointName="bench", ContentType=ctype,
                                                     InputLocation=f"s3://{bucket}/in/{i:04d}-{name}")["InferenceId"]

            threads = [threading.Thread(target=monitor), threading.Thread(target=reader)]
            for t in threads:
                t.start()
            with ThreadPoolExecutor(args.submit_threads) as pool:
                ids = list(pool.map(submit, range(len(plans))))
            t_submitted = time.perf_counter() - start
            if not done.wait(timeout=600):
                raise SystemExit(f"error: only {len(received)} of {len(plans)} notifications arrived")
            elapsed = time.perf_counter() - start
            for t in threads:
                t.join()
            depths.append((time.perf_counter() - start, aws.queue_depth("bench")))
            return elapsed, t_submitted, depths, received, ids

        n = len(plans)
        rows = []
        for r in range(args.rounds):
            # Alternate which path goes first, so that drift in the machine's speed cancels out.
            order = ("direct", "async") if r % 2 == 0 else ("async", "direct")
            for path in order:
                cpu_a = (group_cpu(pgid), self_cpu())
                if path == "direct":
                    t_direct = direct(aws.server_url, plans, args.workers)
                else:
                    t_async, t_submitted, depths, received, ids = async_pass()
                cpu_b = (group_cpu(pgid), self_cpu())
                if path == "direct":
                    cpu_direct = [1000 * (b - a) / n for a, b in zip(cpu_a, cpu_b)]
                else:
                    cpu_async = [1000 * (b - a) / n for a, b in zip(cpu_a, cpu_b)]
            failed = [x for x in received.values() if x["invocationStatus"] != "Completed"]
            assert set(received) == set(ids) and len(ids) == n
            overhead = t_async - t_direct
            peak = max(d for _, d in depths)
            rows.append(overhead / t_direct)
            print(f"round {r + 1}: direct {1000 * t_direct / n:6.1f} ms/plan, async to last note "
                  f"{1000 * t_async / n:6.1f} ms/plan (all submitted after {t_submitted:.2f} s, "
                  f"{len(failed)} failed): overhead {1000 * overhead / n:+6.1f} ms/job ({100 * overhead / t_direct:+.1f} %)")
            print(f"         CPU per plan: serving {cpu_direct[0]:6.1f} ms direct, {cpu_async[0]:6.1f} ms async; "
                  f"this process (moto, runtime, client) {cpu_direct[1]:5.1f} ms direct, {cpu_async[1]:5.1f} ms async")
            step = max(1, len(depths) // 12)
            print("         queue depth (s: jobs): " + ", ".join(f"{t:.1f}: {d}" for t, d in depths[::step])
                  + f"; peak {peak} of {n}, final {depths[-1][1]}")

    median = statistics.median(rows)
    print(f"overhead per job, median of {len(rows)} rounds: {100 * median:+.1f} % "
          f"(rounds: {', '.join(f'{100 * x:+.1f} %' for x in rows)}; target <= 15 %: "
          f"{'met' if median <= 0.15 else 'MISSED'}); load average now {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
