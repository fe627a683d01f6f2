"""Upload trigger: the handler's event handling, and deploy_trigger / remove_trigger on moto.

S3 is moto's server throughout. ``InvokeEndpointAsync`` goes through botocore's Stubber, which
checks every request against the service model and lets each test say exactly which calls
happen (moto's own runtime would accept any endpoint name, so "missing endpoint" needs it).
"""
from __future__ import annotations

import ast
import io
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from urllib.parse import quote_plus, unquote_plus

import pytest
from botocore.stub import ANY, Stubber

from moto_fixtures import aws, moto_url, push_image  # noqa: F401  (fixtures)
from roomkit.aws import iam, trigger
from roomkit.aws.deploy import deploy, deploy_trigger, remove_trigger, teardown
from roomkit.aws.spec import DeploymentSpec
from roomkit.errors import ConfigError
from roomkit.aws.trigger import TriggerConfig, process_event
from roomkit.aws.trigger_deploy import package_handler

BUCKET = "uploads-bkt"
CONFIG = TriggerConfig(endpoint_name="plans", input_prefix="blueprints/")


@pytest.fixture
def s3(aws):
    client = aws.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def runtime(aws):
    client = aws.client("sagemaker-runtime")
    with Stubber(client) as stub:
        client.stub = stub
        yield client
        stub.assert_no_pending_responses()


def expect_invoke(runtime, key, content_type, *, endpoint="plans", bucket=BUCKET, inference_id=ANY):
    runtime.stub.add_response(
        "invoke_endpoint_async",
        {"InferenceId": "x", "OutputLocation": f"s3://{bucket}/out/x.out", "FailureLocation": f"s3://{bucket}/fail/x-error.out"},
        {"EndpointName": endpoint, "InputLocation": f"s3://{bucket}/{key}", "ContentType": content_type,
         "Accept": "application/json", "InferenceId": inference_id},
    )


def s3_event(key, *, bucket=BUCKET, etag="abc", sequencer=None, version=None, name="ObjectCreated:Put"):
    obj = {"key": quote_plus(key, safe="/"), "size": 3, "eTag": etag}
    if sequencer:
        obj["sequencer"] = sequencer
    if version:
        obj["versionId"] = version
    return {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
                         "eventName": name, "s3": {"bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                                                   "object": obj}}]}


def sqs_event(*bodies):
    return {"Records": [{"messageId": f"m{i}", "receiptHandle": "r", "eventSource": "aws:sqs",
                         "body": body if isinstance(body, str) else json.dumps(body)} for i, body in enumerate(bodies)]}


def sns_envelope(message):
    return {"Type": "Notification", "MessageId": "n1", "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
            "Message": json.dumps(message)}


def statuses(out):
    return [r["status"] for r in out["results"]]


# -- configuration ---------------------------------------------------------------------------------
@pytest.mark.parametrize("env, message", [
    ({}, "ENDPOINT_NAME is not set"),
    ({"ENDPOINT_NAME": "plans_1"}, "ENDPOINT_NAME must be a SageMaker endpoint name"),
    ({"ENDPOINT_NAME": "p", "REQUEST_TTL_SECONDS": "30"}, "REQUEST_TTL_SECONDS must be between 60 and 21600"),
    ({"ENDPOINT_NAME": "p", "INVOCATION_TIMEOUT_SECONDS": "soon"}, "INVOCATION_TIMEOUT_SECONDS must be an integer"),
    ({"ENDPOINT_NAME": "p", "PLAN_SUFFIXES": ".png,.gif"}, "PLAN_SUFFIXES must be a comma-separated subset"),
    ({"ENDPOINT_NAME": "p", "CHECK_CONTENT_TYPE": "maybe"}, "CHECK_CONTENT_TYPE must be true or false"),
    ({"ENDPOINT_NAME": "p", "INPUT_PREFIX": "/abs/"}, "INPUT_PREFIX must be an S3 key prefix"),
    ({"ENDPOINT_NAME": "p", "CLAIMS_PREFIX": "blueprints/claims/"}, "CLAIMS_PREFIX .* must lie outside INPUT_PREFIX"),
])
def test_config_errors_name_the_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        TriggerConfig.from_env(env)


def test_config_round_trips_through_env():
    config = TriggerConfig.from_env({"ENDPOINT_NAME": "plans", "PLAN_SUFFIXES": "png, PDF", "REQUEST_TTL_SECONDS": "600",
                                     "CLAIMS_PREFIX": "off", "INPUT_BUCKET": "uploads-bkt"})
    assert config.suffixes == (".png", ".pdf") and config.claims_prefix is None and config.request_ttl_seconds == 600
    assert TriggerConfig.from_env(config.to_env()) == config


def test_cold_start_rejects_bad_environment_at_import():
    env = {"AWS_LAMBDA_FUNCTION_NAME": "f", "PATH": "/usr/bin", "INPUT_PREFIX": "blueprints/"}
    proc = subprocess.run([sys.executable, "-c", "import roomkit.aws.trigger"], env=env, capture_output=True, text=True)
    assert proc.returncode != 0 and "ENDPOINT_NAME is not set" in proc.stderr


# -- keys, types, envelopes ------------------------------------------------------------------------
@pytest.mark.parametrize("key, content_type", [
    ("blueprints/floor plan 1.png", "image/png"),
    ("blueprints/a+b=c&d.jpg", "image/jpeg"),
    ("blueprints/étage/über große Küche.PNG", "image/png"),
    ("blueprints/deep/nested/level/three/plan.pdf", "application/pdf"),
    ("blueprints/literal%20percent.tiff", "image/tiff"),
    ("blueprints/平面图 #2.jpeg", "image/jpeg"),
])
def test_tricky_keys_are_decoded_and_sent_with_their_content_type(s3, runtime, key, content_type):
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"abc")  # no Content-Type: the extension decides
    expect_invoke(runtime, key, content_type)
    out = process_event(s3_event(key), CONFIG, sagemaker_runtime=runtime, s3=s3)
    assert statuses(out) == ["submitted"] and out["results"][0]["key"] == key
    assert out["batchItemFailures"] == []


@pytest.mark.parametrize("key, content_type, reason", [
    ("blueprints/readme.txt", None, "not a plan type"),
    ("blueprints/plan", None, "no extension"),
    ("blueprints/plan.png", "text/plain", "Content-Type text/plain is not a plan type"),
    ("blueprints/sub/", None, "folder marker"),
    ("elsewhere/plan.png", None, "outside prefix"),
])
def test_non_plan_objects_are_skipped_without_invoking(s3, runtime, key, content_type, reason):
    extra = {"ContentType": content_type} if content_type else {}
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"abc", **extra)
    out = process_event(s3_event(key), CONFIG, sagemaker_runtime=runtime, s3=s3)
    assert statuses(out) == ["skipped"] and reason in out["results"][0]["reason"]


def test_object_content_type_wins_over_extension_and_never_json(s3, runtime):
    s3.put_object(Bucket=BUCKET, Key="blueprints/scan.jpg", Body=b"abc", ContentType="image/png")
    expect_invoke(runtime, "blueprints/scan.jpg", "image/png")
    process_event(s3_event("blueprints/scan.jpg"), CONFIG, sagemaker_runtime=runtime, s3=s3)
    s3.put_object(Bucket=BUCKET, Key="blueprints/raw.png", Body=b"abc", ContentType="application/json")
    out = process_event(s3_event("blueprints/raw.png"), CONFIG, sagemaker_runtime=runtime, s3=s3)
    assert statuses(out) == ["skipped"]


def test_deleted_object_other_bucket_and_removal_events_are_skipped(s3, runtime):
    config = TriggerConfig(endpoint_name="plans", bucket=BUCKET)
    out = process_event(s3_event("blueprints/gone.png"), config, sagemaker_runtime=runtime, s3=s3)
    assert out["results"][0]["reason"] == "object no longer exists"
    out = process_event(s3_event("blueprints/x.png", bucket="someone-else"), config, sagemaker_runtime=runtime, s3=s3)
    assert "is not uploads-bkt" in out["results"][0]["reason"]
    out = process_event(s3_event("blueprints/x.png", name="ObjectRemoved:Delete"), config, sagemaker_runtime=runtime, s3=s3)
    assert out["results"] == []


def test_every_envelope_gives_the_same_single_job(s3, runtime):
    key = "blueprints/Flur 1.png"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"abc", ContentType="image/png")
    event = s3_event(key, sequencer="0055AED6DCD90281E5")
    envelopes = [
        event,                                                     # S3 -> Lambda
        sqs_event(event),                                          # S3 -> SQS -> Lambda
        {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps(event)}}]},  # S3 -> SNS -> Lambda
        sqs_event(sns_envelope(event)),                            # S3 -> SNS -> SQS -> Lambda
    ]
    expect_invoke(runtime, key, "image/png")
    outs = [process_event(e, CONFIG, sagemaker_runtime=runtime, s3=s3) for e in envelopes]
    assert [statuses(o) for o in outs] == [["submitted"], ["duplicate"], ["duplicate"], ["duplicate"]]
    assert len({o["results"][0]["inference_id"] for o in outs}) == 1
    assert all(len(o["results"][0]["inference_id"]) <= 64 for o in outs)


def test_eventbridge_and_test_events(s3, runtime):
    key = "blueprints/raw key+plus.png"  # EventBridge does not URL-encode keys
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"abc")
    expect_invoke(runtime, key, "image/png")
    event = {"version": "0", "detail-type": "Object Created", "source": "aws.s3",
             "detail": {"bucket": {"name": BUCKET}, "object": {"key": key, "size": 3, "etag": "e1", "sequencer": "01"},
                        "reason": "PutObject"}}
    assert statuses(process_event(event, CONFIG, sagemaker_runtime=runtime, s3=s3)) == ["submitted"]
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET}
    out = process_event(sqs_event(test_event), CONFIG, sagemaker_runtime=runtime, s3=s3)
    assert out == {"batchItemFailures": [], "results": []}


# -- duplicates, failures --------------------------------------------------------------------------
def test_redelivery_is_skipped_but_a_new_upload_of_the_same_key_runs(s3, runtime):
    key = "blueprints/plan.png"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"v1")
    expect_invoke(runtime, key, "image/png")
    first = process_event(s3_event(key, sequencer="01"), CONFIG, sagemaker_runtime=runtime, s3=s3)
    again = process_event(s3_event(key, sequencer="01"), CONFIG, sagemaker_runtime=runtime, s3=s3)
    assert statuses(first) == ["submitted"] and statuses(again) == ["duplicate"]
    assert "already submitted as" in again["results"][0]["reason"]
    expect_invoke(runtime, key, "image/png")
    newer = process_event(s3_event(key, sequencer="02"), CONFIG, sagemaker_runtime=runtime, s3=s3)
    assert statuses(newer) == ["submitted"]
    assert newer["results"][0]["inference_id"] != first["results"][0]["inference_id"]
    claim = json.loads(s3.get_object(Bucket=BUCKET, Key=f".roomkit/trigger-claims/{first['results'][0]['inference_id']}.json")
                       ["Body"].read())
    assert claim["state"] == "submitted" and claim["output_location"].startswith("s3://")


def test_in_flight_claim_is_retried_and_stale_claim_taken_over(s3, runtime):
    key = "blueprints/plan.png"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"v1")
    event = s3_event(key, sequencer="07")
    inference_id = trigger.inference_id_for(trigger.S3Object(bucket=BUCKET, key=key, sequencer="07"))
    claim_key = f".roomkit/trigger-claims/{inference_id}.json"
    s3.put_object(Bucket=BUCKET, Key=claim_key, Body=json.dumps({"state": "claimed", "at": time.time()}).encode())
    busy = process_event(sqs_event(event), CONFIG, sagemaker_runtime=runtime, s3=s3)
    assert statuses(busy) == ["failed"] and busy["batchItemFailures"] == [{"itemIdentifier": "m0"}]
    s3.put_object(Bucket=BUCKET, Key=claim_key, Body=json.dumps({"state": "claimed", "at": time.time() - 3600}).encode())
    expect_invoke(runtime, key, "image/png", inference_id=inference_id)
    assert statuses(process_event(event, CONFIG, sagemaker_runtime=runtime, s3=s3)) == ["submitted"]


def test_mixed_batch_reports_only_the_bad_messages(s3, runtime):
    for key in ("blueprints/a.png", "blueprints/b.png"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"abc")
    expect_invoke(runtime, "blueprints/a.png", "image/png")
    runtime.stub.add_client_error("invoke_endpoint_async", "ThrottlingException", "Rate exceeded", 400)
    event = sqs_event(s3_event("blueprints/a.png"), "{not json", s3_event("notes/readme.md"), s3_event("blueprints/b.png"))
    out = process_event(event, CONFIG, sagemaker_runtime=runtime, s3=s3)
    assert statuses(out) == ["submitted", "failed", "skipped", "failed"]
    assert out["batchItemFailures"] == [{"itemIdentifier": "m1"}, {"itemIdentifier": "m3"}]
    assert "ThrottlingException: Rate exceeded" in out["results"][3]["reason"]
    # the failed one left no claim behind, so its retry goes through
    expect_invoke(runtime, "blueprints/b.png", "image/png")
    assert statuses(process_event(sqs_event(s3_event("blueprints/b.png")), CONFIG, sagemaker_runtime=runtime, s3=s3)) == ["submitted"]


def test_missing_endpoint_fails_the_record_with_the_reason(s3, runtime):
    s3.put_object(Bucket=BUCKET, Key="blueprints/a.png", Body=b"abc")
    runtime.stub.add_client_error("invoke_endpoint_async", "ValidationException",
                                  "Endpoint plans of account 123456789012 not found.", 400)
    out = process_event(s3_event("blueprints/a.png"), CONFIG, sagemaker_runtime=runtime, s3=s3)
    assert statuses(out) == ["failed"]
    assert out["results"][0]["reason"] == ("InvokeEndpointAsync on plans failed: ValidationException: "
                                          "Endpoint plans of account 123456789012 not found.")
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=".roomkit/").get("KeyCount") == 0


def test_handler_uses_plain_boto3_from_the_environment(aws, s3, monkeypatch, moto_url):
    for name, value in {"AWS_ENDPOINT_URL": moto_url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "ENDPOINT_NAME": "plans", "INPUT_PREFIX": "blueprints/"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(trigger, "_STATE", {})
    s3.put_object(Bucket=BUCKET, Key="blueprints/a.png", Body=b"abc")
    out = trigger.handler(sqs_event(s3_event("blueprints/a.png")), None)
    assert out == {"batchItemFailures": []}  # the SQS contract, nothing else
    assert trigger.handler(s3_event("blueprints/a.png"), None)["results"][0]["status"] == "duplicate"
    with pytest.raises(trigger.TriggerFailed, match="unreadable event"):
        trigger.handler({"Records": [{"eventSource": "aws:kinesis"}]}, None)


# -- packaging -------------------------------------------------------------------------------------
def test_handler_zip_is_three_files_and_imports_without_cv2_numpy_or_boto3(tmp_path):
    data = package_handler()
    assert data == package_handler()  # reproducible
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert sorted(names) == ["roomkit/__init__.py", "roomkit/errors.py", "roomkit/aws/trigger.py"]
    (tmp_path / "fn.zip").write_bytes(data)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import roomkit.aws.trigger as t; "
            "assert t.__file__.startswith(sys.argv[1]), t.__file__; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('cv2', 'numpy', 'boto3', 'botocore')]; "
            "assert not bad, bad; print(t.TriggerConfig.from_env({'ENDPOINT_NAME': 'x'}).endpoint_name)")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "fn.zip")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "x"
    tree = ast.parse(Path(trigger.__file__).read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= {"__future__", "hashlib", "json", "logging", "os", "re", "time", "dataclasses", "typing",
                        "urllib", "roomkit", "boto3", "botocore"}


# -- deploy_trigger / remove_trigger ---------------------------------------------------------------
@pytest.fixture
def deployment(aws):
    spec = DeploymentSpec.from_dict({"name": "rk-trig", "image_uri": push_image(aws), "model_config": {}})
    return deploy(spec, aws, progress=False)


def _drain(aws, url, wait=1):
    sqs = aws.client("sqs")
    bodies = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait).get("Messages", [])
        if not got:
            return bodies
        for m in got:
            bodies.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_local_trigger_queue_gets_exactly_the_plan_uploads_and_keeps_other_notifications(aws, deployment, tmp_path):
    s3, sqs = aws.client("s3"), aws.client("sqs")
    other = sqs.create_queue(QueueName="audit")["QueueUrl"]
    other_arn = sqs.get_queue_attributes(QueueUrl=other, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket=deployment.bucket, NotificationConfiguration={"QueueConfigurations": [
        {"Id": "audit", "QueueArn": other_arn, "Events": ["s3:ObjectRemoved:*"]}]})
    trig = deploy_trigger(deployment, aws, progress=False, manifest=tmp_path / "d.json")
    assert deployment.trigger is trig and trig.target == "sqs"
    env = json.loads(sqs.list_queue_tags(QueueUrl=trig.queue_url)["Tags"]["roomkit:trigger-env"])
    config = TriggerConfig.from_env(env)
    assert config.endpoint_name == deployment.endpoint_name and config.input_prefix == "blueprints/"
    assert config.bucket == deployment.bucket
    notif = s3.get_bucket_notification_configuration(Bucket=deployment.bucket)["QueueConfigurations"]
    assert "audit" in [n["Id"] for n in notif]
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=trig.queue_url, AttributeNames=["Policy"])["Attributes"]["Policy"])
    assert policy["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"] == f"arn:aws:s3:::{deployment.bucket}"
    attrs = sqs.get_queue_attributes(QueueUrl=trig.queue_url, AttributeNames=["All"])["Attributes"]
    assert json.loads(attrs["RedrivePolicy"])["deadLetterTargetArn"] == trig.dead_letter_queue_arn
    # the execution role may now read the upload prefix
    extra = aws.client("iam").get_role_policy(RoleName=deployment.role_name, PolicyName="roomkit-trigger-input")
    doc = extra["PolicyDocument"] if isinstance(extra["PolicyDocument"], dict) else json.loads(extra["PolicyDocument"])
    assert doc["Statement"][0]["Resource"] == f"arn:aws:s3:::{deployment.bucket}/blueprints/*"

    _drain(aws, trig.queue_url)  # S3's test event
    for key in ("blueprints/a.png", "blueprints/B.PDF", "blueprints/notes.txt", "other/c.png", "blueprints/d.jpeg"):
        s3.put_object(Bucket=deployment.bucket, Key=key, Body=b"abc")
    keys = [unquote_plus(r["s3"]["object"]["key"]) for body in _drain(aws, trig.queue_url) for r in body.get("Records", [])]
    assert sorted(keys) == ["blueprints/B.PDF", "blueprints/a.png", "blueprints/d.jpeg"]

    again = deploy_trigger(deployment, aws, progress=False)  # idempotent
    assert again.queue_url == trig.queue_url
    ids = [n["Id"] for n in s3.get_bucket_notification_configuration(Bucket=deployment.bucket)["QueueConfigurations"]]
    assert len(ids) == len(set(ids)) == 1 + len(trig.notification_ids)

    removed = remove_trigger(deployment, aws, progress=False)
    assert any("bucket notification" in line for line in removed)
    assert sum(line.startswith("removed queue") for line in removed) == 2  # trigger queue + its DLQ
    left = s3.get_bucket_notification_configuration(Bucket=deployment.bucket)["QueueConfigurations"]
    assert [n["Id"] for n in left] == ["audit"]
    assert remove_trigger(deployment, aws, progress=False) == []


def test_trigger_prefix_may_not_overlap_results(aws, deployment):
    with pytest.raises(ConfigError, match="overlaps the output path"):
        deploy_trigger(deployment, aws, prefix="async-outputs/", progress=False)


def test_lambda_trigger_function_role_permission_and_teardown(aws, deployment):
    trig = deploy_trigger(deployment, aws, target="lambda", progress=False)
    lam, iam_client, s3 = aws.client("lambda"), aws.client("iam"), aws.client("s3")
    fn = lam.get_function(FunctionName=trig.function_name)["Configuration"]
    assert fn["Handler"] == "roomkit.aws.trigger.handler" and fn["Runtime"].startswith("python3")
    assert TriggerConfig.from_env(fn["Environment"]["Variables"]).endpoint_name == deployment.endpoint_name
    # role: only the one endpoint, the upload prefix, the claims, its logs; no wildcard resources
    role = iam_client.get_role(RoleName=trig.role_name)["Role"]
    assert iam.allows_service(role["AssumeRolePolicyDocument"], "lambda.amazonaws.com")
    doc = iam_client.get_role_policy(RoleName=trig.role_name, PolicyName="roomkit-trigger")["PolicyDocument"]
    doc = doc if isinstance(doc, dict) else json.loads(doc)
    assert iam.wildcard_findings(doc, allowed=()) == []
    for st in doc["Statement"]:
        resources = [st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"]
        assert all(r != "*" for r in resources)
    invoke = next(st for st in doc["Statement"] if st["Action"] == "sagemaker:InvokeEndpointAsync")
    assert invoke["Resource"] == deployment.endpoint_arn
    # events it gives up on go to its dead-letter queue, which its role may write to
    config = lam.get_function_event_invoke_config(FunctionName=trig.function_name)
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == trig.dead_letter_queue_arn
    assert config["MaximumRetryAttempts"] == 2
    dlq_statement = next(st for st in doc["Statement"] if st["Action"] == "sqs:SendMessage")
    assert dlq_statement["Resource"] == trig.dead_letter_queue_arn
    # S3 may invoke it, from this bucket and account only
    (permission,) = json.loads(lam.get_policy(FunctionName=trig.function_name)["Policy"])["Statement"]
    assert permission["Principal"] == {"Service": "s3.amazonaws.com"}
    assert permission["Condition"]["ArnLike"]["AWS:SourceArn"] == f"arn:aws:s3:::{deployment.bucket}"
    assert permission["Condition"]["StringEquals"]["AWS:SourceAccount"] == deployment.account_id
    configs = s3.get_bucket_notification_configuration(Bucket=deployment.bucket)["LambdaFunctionConfigurations"]
    assert {c["LambdaFunctionArn"] for c in configs} == {trig.function_arn} and len(configs) == len(trig.notification_ids)
    # re-deploy updates in place
    assert deploy_trigger(deployment, aws, target="lambda", progress=False).function_arn == trig.function_arn

    removed = teardown(deployment, aws, everything=True, progress=False)
    assert f"removed function {trig.function_name}" in removed and f"removed role {trig.role_name}" in removed
    assert lam.list_functions()["Functions"] == []
    assert aws.client("sqs").list_queues().get("QueueUrls", []) == []
    assert [r["RoleName"] for r in iam_client.list_roles()["Roles"]] == []
    assert s3.list_buckets()["Buckets"] == []


# -- local mode end to end -------------------------------------------------------------------------
SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"


@pytest.mark.slow
def test_local_mode_each_uploaded_sample_gives_exactly_one_result_and_notification(tmp_path):
    from roomkit.local import LocalAWS
    from roomkit.aws.notifications import parse_notification

    samples = sorted(p for p in SAMPLES.iterdir() if p.suffix.lower() in trigger.PLAN_TYPES)
    assert len(samples) >= 3
    with LocalAWS(workers=2, trigger_interval_s=0.2) as local:
        session = local.session()
        dep = deploy(DeploymentSpec(name="rk-e2e", image_uri=local.image_uri), session, progress=False)
        deploy_trigger(dep, session, progress=False)
        s3, sqs = session.client("s3"), session.client("sqs")
        expected = {}
        for i, path in enumerate(samples):
            # spaces, '+', '=' and nesting in the keys; Content-Type on every other object. (Non-ASCII
            # keys are covered by the unit tests above: the local runtime reads header values as
            # Latin-1, so an InputLocation with 'ü' does not resolve there.)
            key = f"blueprints/batch {i % 3}/plan+{i} v=1 {path.name}"
            extra = {"ContentType": trigger.PLAN_TYPES[path.suffix.lower()]} if i % 2 else {}
            s3.put_object(Bucket=dep.bucket, Key=key, Body=path.read_bytes(), **extra)
            expected[f"s3://{dep.bucket}/{key}"] = path
        s3.put_object(Bucket=dep.bucket, Key="blueprints/readme.txt", Body=b"not a plan")

        notes, deadline = [], time.monotonic() + 150
        while time.monotonic() < deadline and len(notes) < len(expected):
            got = sqs.receive_message(QueueUrl=dep.notification_queue_url, MaxNumberOfMessages=10,
                                      WaitTimeSeconds=1).get("Messages", [])
            for m in got:
                note = parse_notification(m["Body"])
                if note is not None:
                    notes.append(note)
                sqs.delete_message(QueueUrl=dep.notification_queue_url, ReceiptHandle=m["ReceiptHandle"])
        time.sleep(2.0)  # anything duplicated would arrive now
        for m in sqs.receive_message(QueueUrl=dep.notification_queue_url, MaxNumberOfMessages=10,
                                     WaitTimeSeconds=1).get("Messages", []):
            notes.append(parse_notification(m["Body"]))

        assert sorted(n.input_location for n in notes) == sorted(expected), "one notification per plan"
        assert len({n.inference_id for n in notes}) == len(expected)
        assert [n for n in notes if n.status != "success"] == []
        outputs = [o["Key"] for o in s3.list_objects_v2(Bucket=dep.bucket, Prefix="async-outputs/").get("Contents", [])]
        assert len(outputs) == len(expected)
        body = json.loads(s3.get_object(Bucket=dep.bucket, Key=outputs[0])["Body"].read())
        assert body["status"] == "ok" or "detected_rooms" in body
        teardown(dep, session, everything=True, progress=False)
