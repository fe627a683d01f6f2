"""Backlogs in local mode: N distinct small plans through submit → wait → results (issue 22).

    python benchmarks/backlog.py [--sizes 1000,5000,10000] [--workers 2] [--submit-workers 8]

For each N, a fresh local-mode process (what ``roomkit local up`` runs: moto, the async runtime;
the serving processes are its children) gets an async deployment, and a fresh client process runs
``submit`` (a generator of N paths), ``wait`` and ``results``. Printed per N:

- the time of each phase and of the whole (submit → last result), plans per second;
- ``lag``: how long ``wait`` ran after the runtime wrote the last completion (the drain cost
  proper; the rest of ``wait`` is the endpoint still working through the backlog);
- peak RSS of the client process and of the local-mode process, separately;
- CPU per plan outside detection: the client, and the local-mode process split into moto
  (CPU inside its WSGI application), the runtime's API (inside its WSGI application:
  InvokeEndpointAsync), the runtime's job threads (reading inputs, calling the container,
  writing outputs, publishing notifications into moto's SNS → SQS) and the rest (werkzeug's
  HTTP handling around the applications, other threads); for reference, the serving processes
  (detection plus their HTTP server);
- checks: outputs under the batch prefix, completions, duplicates, failures (each must be N
  or 0) and notifications left in the queue.

At the end the time ratio between the two largest sizes (e.g. 10k/5k) shows whether the cost
grows linearly (2.0 for twice the plans). Plans are 400 px wide synthetic plans
(:mod:`roomkit.qa.synth`), 40 drawings made distinct by one pixel each, cached in ``--plans-dir``.
The endpoint runs the detector alone (``read_text: false``): what is measured is the queue, the
client and the local runtime at scale, not the text reading (5-6× the detection's CPU per plan,
timed by ``benchmarks/accuracy.py``). The machine's other load skews every timing: the load
average is printed with each run.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 400
BASES = 40


# -- plans -----------------------------------------------------------------------------------
def make_plans(folder: Path, count: int) -> None:
    """``count`` distinct 400-px-wide PNG plans ``00000.png``…; existing ones are kept."""
    import cv2

    from roomkit.qa.synth import generate_plan

    folder.mkdir(parents=True, exist_ok=True)
    missing = [i for i in range(count) if not (folder / f"{i:05d}.png").exists()]
    if not missing:
        return
    print(f"drawing {len(missing)} plans into {folder} …", flush=True)
    bases = []
    for b in range(BASES):
        image = generate_plan([22, b], "clean", size=(WIDTH, WIDTH + 80)).image
        h, w = image.shape[:2]
        bases.append(cv2.resize(image, (WIDTH, max(1, round(h * WIDTH / w))), interpolation=cv2.INTER_AREA))
    for i in missing:
        image = bases[i % BASES].copy()
        # plan i differs from every other in the last bit of a few top-row pixels (invisible)
        for bit in range(16):
            if (i >> bit) & 1:
                image[0, bit] ^= 1
        ok, buf = cv2.imencode(".png", image)
        assert ok
        (folder / f"{i:05d}.png").write_bytes(buf.tobytes())


# -- /proc sampling --------------------------------------------------------------------------
TICK = os.sysconf("SC_CLK_TCK")


def _stat(path: str) -> list[str] | None:
    try:
        with open(path) as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _comm(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return ""


class Sampler:
    """Inside the local-mode process, every half second: CPU per live thread (by Python thread
    name, so the runtime's job threads ``roomkit-async-<endpoint>`` are told apart) and CPU of
    the serving processes (this process's children, each leading its own process group)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.threads: dict[int, tuple[str, float]] = {}  # native id -> (kind, cpu s)
        self.serving: dict[int, float] = {}  # pid -> cpu s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="backlog-sampler", daemon=True)

    def start(self) -> "Sampler":
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def _loop(self) -> None:
        n = 0
        while not self._stop.wait(0.5):
            n += 1
            self.sample(rescan=n % 20 == 0)

    @staticmethod
    def _kind(thread: threading.Thread) -> str:
        if thread.name == "backlog-sampler":
            return "sampler"
        if thread.name.startswith("roomkit-async"):
            return "runtime jobs"
        return "other"

    def sample(self, rescan: bool = True) -> None:
        for thread in threading.enumerate():
            if thread.native_id is None:
                continue
            st = _stat(f"/proc/{self.pid}/task/{thread.native_id}/stat")
            if st is not None:
                self.threads[thread.native_id] = (self._kind(thread), (int(st[11]) + int(st[12])) / TICK)
        if rescan:  # the serving processes change rarely: look for them every 10 s
            procs, leaders = [], set()
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    st = _stat(f"/proc/{entry}/stat")
                    if st is not None:
                        procs.append((int(entry), st))
                        if int(st[1]) == self.pid:
                            leaders.add(int(entry))
            for pid, st in procs:
                if int(st[2]) in leaders:
                    self.serving.setdefault(pid, 0.0)
        for pid in self.serving:
            st = _stat(f"/proc/{pid}/stat")
            if st is not None:
                self.serving[pid] = (int(st[11]) + int(st[12])) / TICK

    def by_kind(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for kind, cpu in self.threads.values():
            out[kind] = out.get(kind, 0.0) + cpu
        return out


def _cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def _peak_rss_mb() -> float:
    """This process's own peak RSS (``VmHWM``). ``ru_maxrss`` is carried over from the parent
    across fork and exec on Linux, so a client started by a parent that drew the plans read that
    parent's peak (~40 MB more) before it had done anything."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(app, kind: str, totals: dict, lock: threading.Lock):
    """A WSGI app that adds the CPU its requests cost (this thread's) to ``totals[kind]``."""
    def wrapped(environ, start_response):
        t0 = time.thread_time()
        try:
            return list(app(environ, start_response))
        finally:
            with lock:
                totals[kind] += time.thread_time() - t0
    return wrapped


def host(args: argparse.Namespace) -> int:
    """The local-mode process: LocalAWS and an async deployment; CPU and memory figures at exit."""
    from roomkit.aws.deploy import DeploymentSpec, deploy
    from roomkit.local import LocalAWS

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    work = Path(args.work)
    with LocalAWS(workers=args.workers, trigger=False, state_file=work / "state.json") as aws:
        # The detector alone (read_text off): this measures the queue and the client at scale;
        # reading the text multiplies the endpoint's work per plan (benchmarks/accuracy.py times it).
        deploy(DeploymentSpec(name="rk-backlog", model_config={"read_text": False}), aws.session(), progress=False,
               manifest=work / "deployment.json")
        # CPU inside each server's WSGI application, per request (its threads are short-lived)
        in_app = {"moto": 0.0, "runtime API": 0.0}
        app_lock = threading.Lock()
        for kind, server in (("moto", aws.moto._server), ("runtime API", aws.runtime_server._server)):
            server.app = _timed(server.app, kind, in_app, app_lock)  # type: ignore[union-attr]
        sampler = Sampler().start()
        base_cpu, base_threads = _cpu(), sampler.by_kind()
        base_serving = sum(sampler.serving.values())
        (work / "ready").write_text("ready")
        stop.wait()
        sampler.stop()
        threads = {k: v - base_threads.get(k, 0.0) for k, v in sampler.by_kind().items()}
        threads.update(in_app)
        report = {
            "local_cpu_s": _cpu() - base_cpu - threads.pop("sampler", 0.0),
            "local_threads_s": threads,
            "serving_cpu_s": sum(sampler.serving.values()) - base_serving,
            "local_peak_rss_mb": _peak_rss_mb(),
        }
    (work / "host.json").write_text(json.dumps(report))
    return 0


# -- one size --------------------------------------------------------------------------------
def run_size(n: int, args: argparse.Namespace, plans: Path) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"roomkit-backlog-{n}-"))
    env = dict(os.environ, ROOMKIT_LOCAL_STATE=str(work / "state.json"), PYTHONPATH=str(ROOT / "lib"))
    log = open(work / "local.log", "w")
    local = subprocess.Popen([sys.executable, __file__, "--host", "--work", str(work), "--workers", str(args.workers)],
                             stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not (work / "ready").exists():
            if local.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"local mode did not start (see {work / 'local.log'})")
            time.sleep(0.2)
        load_before = os.getloadavg()
        out = work / "client.json"
        client_run = subprocess.run(
            [sys.executable, __file__, "--client", "--n", str(n), "--plans-dir", str(plans), "--work", str(work),
             "--submit-workers", str(args.submit_workers), "--out", str(out)],
            env=env, timeout=args.timeout)
        load_after = os.getloadavg()
        if client_run.returncode != 0:
            raise SystemExit(f"client failed for N={n} (exit {client_run.returncode})")
        local.send_signal(signal.SIGTERM)
        local.wait(timeout=120)
        report = json.loads(out.read_text())
        report.update(json.loads((work / "host.json").read_text()))
        report.update(n=n, load=f"{load_before[0]:.1f} → {load_after[0]:.1f}")
        return report
    finally:
        if local.poll() is None:
            os.killpg(local.pid, signal.SIGKILL)
            local.wait()
        log.close()


def client(args: argparse.Namespace) -> int:
    """The submitting process: deploy, then submit → wait → results, timed; a JSON report."""
    import roomkit.aws
    from roomkit.aws.submit import results, submit, target_of, wait

    session = roomkit.aws.session("local")
    deployment = target_of(Path(args.work) / "deployment.json")
    plans = Path(args.plans_dir)
    paths = (plans / f"{i:05d}.png" for i in range(args.n))

    cpu = _cpu
    rss = _peak_rss_mb

    r0, c0, t0 = rss(), cpu(), time.perf_counter()
    jobs = submit(paths, deployment, session, max_workers=args.submit_workers, progress=False)
    r1, c1, t1 = rss(), cpu(), time.perf_counter()
    done = wait(jobs, deployment, session, timeout=3 * 3600, progress=False)
    r2, c2, t2 = rss(), cpu(), time.perf_counter()
    rows = results(done, deployment, session)
    c3, t3 = cpu(), time.perf_counter()

    last = max((c.completed_at for c in done.completions.values() if c.completed_at), default=None)
    lag = None
    if last is not None:
        from datetime import datetime, timezone

        lag = (datetime.now(timezone.utc) - last).total_seconds() - (t3 - t2)
    s3, sqs = session.client("s3"), session.client("sqs")
    batch = jobs[0].batch
    outputs = 0
    if batch:
        bucket, _, key = jobs[0].output_location[5:].partition("/")
        prefix = key.rsplit("/", 1)[0] + "/"
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            outputs += len(page.get("Contents", []))
    attrs = sqs.get_queue_attributes(QueueUrl=deployment.queue_url, AttributeNames=["All"])["Attributes"]
    left = int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
    report = {
        "submit_s": t1 - t0, "wait_s": t2 - t1, "results_s": t3 - t2, "total_s": t3 - t0,
        "lag_s": lag,
        "client_cpu": {"submit": c1 - c0, "wait": c2 - c1, "results": c3 - c2},
        "client_peak_rss_mb": rss(),
        "client_rss_mb": {"start": r0, "submit": r1, "wait": r2},
        "jobs": len(jobs), "submit_errors": sum(1 for j in jobs if j.error),
        "completions": len(done.completions), "duplicates": done.duplicates,
        "from_s3": sum(1 for c in done.completions.values() if c.source == "s3"),
        "succeeded": sum(1 for r in rows if r.status == "success"),
        "failed": sum(1 for r in rows if r.status == "failed"),
        "outputs": outputs, "queue_left": left, "batch": batch,
    }
    Path(args.out).write_text(json.dumps(report))
    return 0


def show(r: dict) -> None:
    n = r["n"]
    client_cpu = sum(r["client_cpu"].values())
    outside = (client_cpu + r["local_cpu_s"]) / n * 1000
    print(f"\nN = {n:,}   (load average {r['load']})")
    print(f"  submit {r['submit_s']:8.1f} s   wait {r['wait_s']:7.1f} s (lag after the last completion "
          f"{r['lag_s']:.1f} s)   results {r['results_s']:6.1f} s   total {r['total_s']:8.1f} s "
          f"= {n / r['total_s']:.1f} plans/s;  wait = {100 * r['wait_s'] / r['total_s']:.0f} % of total")
    steps = r.get("client_rss_mb", {})
    by_phase = ", ".join(f"after {k} {v:.0f}" for k, v in steps.items() if k != "start")
    print(f"  peak RSS: client {r['client_peak_rss_mb']:.0f} MB (before submit {steps.get('start', 0):.0f}, "
          f"{by_phase}, after results = peak), local mode {r['local_peak_rss_mb']:.0f} MB")
    cc = r["client_cpu"]
    kinds = r["local_threads_s"]
    known = sum(kinds.get(k, 0.0) for k in ("moto", "runtime API", "runtime jobs"))
    split = ", ".join(f"{k} {kinds.get(k, 0.0) / n * 1000:.1f}" for k in ("moto", "runtime API", "runtime jobs"))
    print(f"  CPU per plan outside detection: {outside:.1f} ms = client {client_cpu / n * 1000:.1f} "
          f"(submit {cc['submit'] / n * 1000:.1f}, wait {cc['wait'] / n * 1000:.1f}, results "
          f"{cc['results'] / n * 1000:.1f}) + local mode {r['local_cpu_s'] / n * 1000:.1f} ({split}, "
          f"HTTP handling outside the apps and other threads {(r['local_cpu_s'] - known) / n * 1000:.1f})")
    print(f"  serving processes (detection + HTTP): {r['serving_cpu_s'] / n * 1000:.1f} ms per plan")
    ok = (r["outputs"] == n and r["completions"] == n and r["succeeded"] == n and r["duplicates"] == 0
          and r["submit_errors"] == 0 and r["queue_left"] == 0)
    print(f"  outputs {r['outputs']}, completions {r['completions']} ({r['from_s3']} from S3), succeeded "
          f"{r['succeeded']}, failed {r['failed']}, duplicates {r['duplicates']}, submit errors "
          f"{r['submit_errors']}, left in queue {r['queue_left']}: {'OK' if ok else 'MISMATCH'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,5000,10000", help="comma-separated plan counts")
    ap.add_argument("--workers", type=int, default=2, help="serving worker processes")
    ap.add_argument("--submit-workers", type=int, default=8)
    ap.add_argument("--plans-dir", type=Path, default=Path(tempfile.gettempdir()) / "roomkit-backlog-plans")
    ap.add_argument("--timeout", type=float, default=4 * 3600)
    ap.add_argument("--json", type=Path, help="also write the reports here")
    ap.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--host", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "lib"))
    if args.client:
        return client(args)
    if args.host:
        return host(args)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    make_plans(args.plans_dir, max(sizes))
    reports = []
    for n in sizes:
        report = run_size(n, args, args.plans_dir)
        show(report)
        reports.append(report)
    if len(reports) >= 2:
        a, b = sorted(reports, key=lambda r: r["n"])[-2:]
        print(f"\n{b['n']:,}/{a['n']:,} total time ratio: {b['total_s'] / a['total_s']:.2f} "
              f"(plans ratio {b['n'] / a['n']:.1f}); wait ratio {b['wait_s'] / max(a['wait_s'], 1e-9):.2f}")
    if args.json:
        args.json.write_text(json.dumps(reports, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
