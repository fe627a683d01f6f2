"""End to end in local mode: deploy → submit every sample plan → wait → results, plus the CLI
and Batch Transform. Nothing is faked: LocalAWS runs moto's server, the real ``roomkit serve``
and the local async runtime that publishes SageMaker's notifications.
"""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from roomkit.aws import submit as sub
from roomkit.aws.jobs import load_jobs
from roomkit.plans.response import Detection

pytestmark = pytest.mark.slow

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"
PLAN_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".pdf", ".webp", ".bmp"}


def sample_plans() -> list[Path]:
    return sorted(p for p in SAMPLES.iterdir() if p.suffix.lower() in PLAN_SUFFIXES)


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    from roomkit.aws.deploy import DeploymentSpec, deploy
    from roomkit.local import LocalAWS

    if not sample_plans():
        pytest.skip("data/samples has no plans")
    state = tmp_path_factory.mktemp("local") / "state.json"
    with LocalAWS(state_file=state, trigger=False) as aws:
        session = aws.session()
        deployment = deploy(DeploymentSpec(name="rk-submit-e2e", model_config={}), session, progress=False)
        yield aws, session, deployment, state


def direct(path: Path) -> Detection:
    """What the detector gives on this machine, through the same response rounding."""
    import roomkit

    return Detection.from_response(roomkit.detect_rooms(path).to_response())


def assert_same_rooms(got: Detection, want: Detection, label: str) -> None:
    assert (got.width, got.height) == (want.width, want.height), label
    assert len(got.rooms) == len(want.rooms), f"{label}: {len(got.rooms)} rooms async, {len(want.rooms)} direct"
    for a, b in zip(got.rooms, want.rooms):
        assert a.id == b.id and len(a.polygon) == len(b.polygon), label
        for (x0, y0), (x1, y1) in zip(a.polygon, b.polygon):
            assert abs(x0 - x1) < 1e-6 and abs(y0 - y1) < 1e-6, label


def test_every_sample_through_the_endpoint_matches_direct_detection(local, tmp_path):
    aws, session, deployment, _ = local
    plans = sample_plans()
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(plans[0].read_bytes()[:200])  # a truncated PNG: decodes to nothing
    twin = tmp_path / "twin" / plans[1].name  # the same bytes under another path
    twin.parent.mkdir()
    shutil.copy(plans[1], twin)

    jobs = sub.submit([*plans, corrupt, twin], deployment, session, progress=False)
    assert len(jobs) == len(plans) + 2 and not any(j.error for j in jobs)
    assert jobs[-1].inference_id == jobs[1].inference_id and jobs[-1].reused

    # The runtime works through the backlog a couple at a time: the last ones cannot be done yet.
    early = sub.wait(jobs, deployment, session, timeout=0.5, poll_interval=0.5, progress=False)
    assert early.timed_out and early.pending
    assert all(j.input in early.summary() for j in early.pending[:10])

    done = sub.wait(early, deployment, session, timeout=180, poll_interval=1, progress=False)
    assert done.done and not done.timed_out
    rows = sub.results(done, deployment, session)
    by_input = {r.input: r for r in rows}

    bad = by_input[str(corrupt)]
    assert bad.status == "failed" and bad.detection is None
    assert "undecodable_image" in bad.error or "truncated" in bad.error.lower(), bad.error
    assert "client error (400)" in bad.error

    for path in plans:
        row = by_input[str(path)]
        assert row.status == "success", (path.name, row.error)
        want = direct(path)
        assert row.rooms == len(want.rooms)
        assert_same_rooms(row.detection, want, path.name)
        assert row.processing_time_ms > 0 and row.latency_s >= 0
    assert by_input[str(twin)].rooms == by_input[str(plans[1])].rooms
    assert aws.runtime.stats()[deployment.endpoint_name]["completed"] >= len(plans)

    # A plan submitted again: reused by default, a fresh invocation with rerun=True.
    again = sub.submit([plans[2]], deployment, session, previous=jobs, progress=False)
    assert again[0].reused and again[0].inference_id == jobs[2].inference_id
    fresh = sub.submit([plans[2]], deployment, session, previous=jobs, rerun=True, progress=False)
    assert not fresh[0].reused and fresh[0].inference_id != jobs[2].inference_id
    assert sub.plan_key_from_inference_id(fresh[0].inference_id) == sub.plan_key_from_inference_id(jobs[2].inference_id)
    rows2 = sub.results(sub.wait(again + fresh, deployment, session, timeout=60, poll_interval=1, progress=False),
                        deployment, session)
    assert [r.status for r in rows2] == ["success", "success"]
    assert rows2[0].output_location != rows2[1].output_location
    assert_same_rooms(rows2[1].detection, rows2[0].detection, plans[2].name)


def test_cli_submit_wait_and_results(local, tmp_path, monkeypatch, capsys):
    from roomkit.cli import main

    aws, session, deployment, state = local
    monkeypatch.setenv("ROOMKIT_LOCAL_STATE", str(state))
    manifest = deployment.save(tmp_path / "d.json")
    plan = sample_plans()[0]
    out_csv = tmp_path / "results.csv"

    code = main(["submit", "--deployment", str(manifest), str(plan), "--wait", "--timeout", "120",
                 "--poll-interval", "1", "--csv", str(out_csv), "--no-progress"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert plan.name in text and "success" in text
    ledger = tmp_path / "d.jobs.json"
    assert [j.input for j in load_jobs(ledger)] == [str(plan)]
    with out_csv.open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["status"] == "success" and int(rows[0]["rooms"]) == len(direct(plan).rooms)

    # Submitting the same plan again reuses the finished job; `results` reads the ledger.
    assert main(["submit", "-d", str(manifest), str(plan), "--no-progress"]) == 0
    assert "reused 1" in capsys.readouterr().out
    assert len(load_jobs(ledger)) == 1
    assert main(["results", "-d", str(manifest)]) == 0
    assert plan.name in capsys.readouterr().out

    # A corrupt plan makes the exit status 1 and its reason is printed.
    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 64)
    code = main(["submit", "-d", str(manifest), str(corrupt), "--wait", "--timeout", "60",
                 "--poll-interval", "1", "--no-progress"])
    text = capsys.readouterr().out
    assert code == 1 and "failed" in text and "broken.jpg" in text


def test_transform_writes_batch_outputs_and_the_same_rows(local):
    aws, session, deployment, _ = local
    plans = [p for p in sample_plans() if p.suffix == ".png"][:2] + [p for p in sample_plans() if p.suffix == ".jpg"][:1]
    result = sub.transform(plans, deployment, session, progress=False)
    assert result.status == "Completed" and len(result.job_names) == 2  # one job per content type
    sm = session.client("sagemaker")
    for name in result.job_names:
        desc = sm.describe_transform_job(TransformJobName=name)
        assert desc["ModelName"] == deployment.model_name
        assert desc["TransformInput"]["SplitType"] == "None"
    s3 = session.client("s3")
    for path, row in zip(plans, result.rows):
        assert row.status == "success", row.error
        assert row.output_location.startswith(result.output_uri) and row.output_location.endswith(f"{path.name}.out")
        bucket, key = row.output_location[5:].split("/", 1)
        s3.head_object(Bucket=bucket, Key=key)
        assert_same_rooms(row.detection, direct(path), path.name)
