"""Local async mode against calling the server directly: 200 sample plans.

Prints the wall time from the first InvokeEndpointAsync to the last SNS notification, the same
200 plans POSTed straight to the serving process's /invocations with the same concurrency, the
overhead per job of the async path (S3 in/out, queue, notification) over the direct call, and
the runtime's queue depth over time (the local ApproximateBacklogSize).

    python benchmarks/local_async.py [--count 200] [--workers 2] [--samples data/samples]

Target (issue 5): overhead ≤ 15 % on 2 cores; the queue never grows without bound (it drains to
0 and its peak is at most the number submitted).

Reading the figures: it also prints the CPU per plan of the serving processes and of this
process (moto's S3/SNS/SQS, the botocore clients, the runtime, the submitting client). With the
serving workers saturating both cores, that second figure is the overhead: the client's
InvokeEndpointAsync and its SQS reads go through botocore and HTTP as they would on AWS; the
runtime reads the input, writes the output and publishes the notification on moto's backends
directly (as SageMaker does inside AWS), and moto delivers SNS to SQS. On AWS all of that but the
client runs on other machines. The relative overhead shrinks as plans get heavier. Other
processes on the machine skew both timings, so the load average is printed before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
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
        pgid = aws.server.pid
        cpu0 = (group_cpu(pgid), self_cpu())
        t_direct = direct(aws.server_url, plans, args.workers)
        cpu1 = (group_cpu(pgid), self_cpu())

        for i, (name, body, ctype) in enumerate(plans):
            s3.put_object(Bucket=bucket, Key=f"in/{i:04d}-{name}", Body=body, ContentType=ctype)
        cpu2 = (group_cpu(pgid), self_cpu())

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
                msgs = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
                for m in msgs:
                    note = json.loads(m["Body"])
                    received[note["inferenceId"]] = note
                if msgs:
                    sqs.delete_message_batch(QueueUrl=queue, Entries=[
                        {"Id": str(k), "ReceiptHandle": m["ReceiptHandle"]} for k, m in enumerate(msgs)])
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
        if not done.wait(timeout=max(600, 20 * t_direct)):
            print(f"error: only {len(received)} of {len(plans)} notifications arrived")
            return 1
        t_async = time.perf_counter() - start
        for t in threads:
            t.join()
        depths.append((time.perf_counter() - start, aws.queue_depth("bench")))
        cpu3 = (group_cpu(pgid), self_cpu())

    failed = [n for n in received.values() if n["invocationStatus"] != "Completed"]
    assert set(received) == set(ids)
    overhead = t_async - t_direct
    peak = max(d for _, d in depths)
    print(f"direct /invocations : {t_direct:7.2f} s  ({1000 * t_direct / len(plans):6.1f} ms/plan)")
    print(f"async, to last note : {t_async:7.2f} s  ({1000 * t_async / len(plans):6.1f} ms/plan); "
          f"all {len(plans)} submitted after {t_submitted:.2f} s; {len(failed)} failed")
    print(f"overhead per job    : {1000 * overhead / len(plans):7.1f} ms  "
          f"({100 * overhead / t_direct:+.1f} %, target <= 15 %: {'met' if overhead <= 0.15 * t_direct else 'MISSED'})")
    n = len(plans)
    print(f"CPU per plan        : serving processes {1000 * (cpu1[0] - cpu0[0]) / n:6.1f} ms direct, "
          f"{1000 * (cpu3[0] - cpu2[0]) / n:6.1f} ms async; this process (moto, runtime, client) "
          f"{1000 * (cpu1[1] - cpu0[1]) / n:5.1f} ms direct, {1000 * (cpu3[1] - cpu2[1]) / n:5.1f} ms async")
    step = max(1, len(depths) // 12)
    print("queue depth (s: jobs): " + ", ".join(f"{t:.1f}: {d}" for t, d in depths[::step]))
    print(f"queue depth peak {peak} (of {len(plans)} submitted), final {depths[-1][1]}; "
          f"load average now {_load()} (other processes on this machine skew both timings)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
