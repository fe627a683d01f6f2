"""The sagemaker-runtime protocol of the local runtime, through boto3 and raw HTTP.

Every error a user can provoke must reach boto3 as the ClientError code AWS uses, with a
message saying what is wrong; successful calls must return what boto3's model expects.
"""
from __future__ import annotations

import json

import pytest
import urllib3
from botocore.exceptions import ClientError

from local_testkit import CORRUPT_PNG, make_endpoint, plan_png, put_input, read_notifications, s3_read
from roomkit.local import LocalAWS


@pytest.fixture(scope="module")
def aws():
    with LocalAWS(workers=2, trigger=False) as local:
        yield local


@pytest.fixture(scope="module")
def endpoint(aws):
    return make_endpoint(aws.session(), concurrency=2)


@pytest.fixture(scope="module")
def realtime(aws):
    return make_endpoint(aws.session(), asynchronous=False)


@pytest.fixture(scope="module")
def runtime(aws):
    return aws.session().client("sagemaker-runtime")


def _code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


def test_session_points_every_service_at_loopback(aws):
    session = aws.session()
    assert session.mode == "local"
    assert aws.endpoint_url("s3").startswith("http://127.0.0.1:")
    assert aws.endpoint_url("sagemaker-runtime").startswith("http://127.0.0.1:")
    assert aws.endpoint_url("sagemaker-runtime") != aws.endpoint_url("sagemaker")
    env = aws.env()
    assert env["AWS_ENDPOINT_URL"] == aws.endpoint_url("sqs")
    assert env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] == aws.endpoint_url("sagemaker-runtime")
    assert env["AWS_ACCESS_KEY_ID"] == "testing" and env["AWS_REGION"] == "us-east-1"


def test_image_is_registered_with_a_docker_v2_manifest(aws):
    ecr = aws.session().client("ecr")
    repo, tag = aws.image_uri.rsplit("/", 1)[1].split(":")
    assert (repo, tag) == ("roomkit", "local")
    detail = ecr.describe_images(repositoryName=repo, imageIds=[{"imageTag": tag}])["imageDetails"][0]
    assert detail["imageManifestMediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    manifest = json.loads(ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": tag}])
                          ["images"][0]["imageManifest"])
    assert manifest["schemaVersion"] == 2 and manifest["layers"][0]["digest"].startswith("sha256:")
    assert aws.image_uri.startswith(f"{aws.account_id}.dkr.ecr.us-east-1.amazonaws.com/")


def test_accepts_with_202_locations_and_the_given_inference_id(aws, endpoint, runtime):
    src = put_input(aws.session(), endpoint.bucket, "in/p.png", plan_png())
    resp = runtime.invoke_endpoint_async(EndpointName=endpoint.name, InputLocation=src,
                                         ContentType="image/png", InferenceId="my-id-1")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert resp["InferenceId"] == "my-id-1"
    assert resp["OutputLocation"] == f"{endpoint.output_path}/my-id-1.out"
    assert resp["FailureLocation"] == f"{endpoint.failure_path}/my-id-1-error.out"
    notes = read_notifications(aws.session(), endpoint.queue_url, 1, timeout=30)
    assert [n["inferenceId"] for n in notes] == ["my-id-1"]
    body, ctype = s3_read(aws.session(), resp["OutputLocation"])
    assert ctype.startswith("application/json") and json.loads(body)["status"] == "success"


def test_filename_and_output_path_extension_name_the_output(aws, endpoint, runtime):
    src = put_input(aws.session(), endpoint.bucket, "in/f.png", plan_png())
    resp = runtime.invoke_endpoint_async(EndpointName=endpoint.name, InputLocation=src, ContentType="image/png",
                                         S3OutputPathExtension="batch-7/run_1", Filename="plan-f.json")
    assert resp["OutputLocation"] == f"{endpoint.output_path}/batch-7/run_1/plan-f.json"
    assert resp["FailureLocation"] == f"{endpoint.failure_path}/batch-7/run_1/{resp['InferenceId']}-error.out"
    read_notifications(aws.session(), endpoint.queue_url, 1, timeout=30)
    assert json.loads(s3_read(aws.session(), resp["OutputLocation"])[0])["detected_rooms"]


def test_inline_body_is_processed_without_an_input_object(aws, endpoint, runtime):
    resp = runtime.invoke_endpoint_async(EndpointName=endpoint.name, Body=plan_png(), ContentType="image/png")
    notes = read_notifications(aws.session(), endpoint.queue_url, 1, timeout=30)
    assert notes[0]["invocationStatus"] == "Completed"
    assert "inputLocation" not in notes[0]["requestParameters"]
    assert json.loads(s3_read(aws.session(), resp["OutputLocation"])[0])["status"] == "success"


def test_unknown_endpoint_is_a_validation_error(aws, runtime):
    with pytest.raises(ClientError) as exc:
        runtime.invoke_endpoint_async(EndpointName="no-such-endpoint", InputLocation="s3://x-bucket/a.png")
    assert _code(exc.value) == "ValidationError"
    assert exc.value.response["Error"]["Message"] == \
        f"Endpoint no-such-endpoint of account {aws.account_id} not found."
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as exc:
        runtime.invoke_endpoint(EndpointName="no-such-endpoint", Body=b"x", ContentType="image/png")
    assert _code(exc.value) == "ValidationError"


def test_missing_input_object_is_refused_at_once(aws, endpoint, runtime):
    with pytest.raises(ClientError) as exc:
        runtime.invoke_endpoint_async(EndpointName=endpoint.name,
                                      InputLocation=f"s3://{endpoint.bucket}/in/never-uploaded.png")
    assert _code(exc.value) == "ValidationError"
    assert "does not exist" in exc.value.response["Error"]["Message"]


def test_async_call_on_a_realtime_endpoint_and_vice_versa(aws, endpoint, realtime, runtime):
    src = put_input(aws.session(), endpoint.bucket, "in/rt.png", plan_png())
    with pytest.raises(ClientError) as exc:
        runtime.invoke_endpoint_async(EndpointName=realtime.name, InputLocation=src)
    assert _code(exc.value) == "ValidationError"
    assert "not configured for asynchronous inference" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        runtime.invoke_endpoint(EndpointName=endpoint.name, Body=plan_png(), ContentType="image/png")
    assert _code(exc.value) == "ValidationError"
    assert "InvokeEndpointAsync" in exc.value.response["Error"]["Message"]


def test_realtime_invoke_returns_the_model_answer(realtime, runtime):
    resp = runtime.invoke_endpoint(EndpointName=realtime.name, Body=plan_png(), ContentType="image/png",
                                   CustomAttributes="trace=abc")
    assert resp["ContentType"].startswith("application/json")
    assert resp["InvokedProductionVariant"] == "AllTraffic"
    doc = json.loads(resp["Body"].read())
    assert doc["status"] == "success" and doc["image"] == {"width": 200, "height": 160}


def test_realtime_model_error_carries_the_original_status_and_body(aws, realtime, runtime):
    with pytest.raises(ClientError) as exc:
        runtime.invoke_endpoint(EndpointName=realtime.name, Body=CORRUPT_PNG, ContentType="image/png")
    err = exc.value.response
    assert _code(exc.value) == "ModelError"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert err["OriginalStatusCode"] == 400
    assert json.loads(err["OriginalMessage"])["status"] == "error"
    assert "Received client error (400) from primary" in err["Error"]["Message"]
    assert err["LogStreamArn"].endswith(f"/aws/sagemaker/Endpoints/{realtime.name}")


def _raw(aws, path: str, headers: dict[str, str], body: bytes = b"") -> urllib3.BaseHTTPResponse:
    return urllib3.request("POST", aws.endpoint_url("sagemaker-runtime") + path, headers=headers, body=body)


@pytest.mark.parametrize(
    ("header", "value", "member", "constraint"),
    [
        ("RequestTTLSeconds", "59", "requestTTLSeconds", "greater than or equal to 60"),
        ("RequestTTLSeconds", "21601", "requestTTLSeconds", "less than or equal to 21600"),
        ("RequestTTLSeconds", "soon", "requestTTLSeconds", "must be an integer"),
        ("InvocationTimeoutSeconds", "0", "invocationTimeoutSeconds", "greater than or equal to 1"),
        ("InvocationTimeoutSeconds", "3601", "invocationTimeoutSeconds", "less than or equal to 3600"),
        ("Inference-Id", "x" * 65, "inferenceId", "length less than or equal to 64"),
        ("Inference-Id", "tab\tinside", "inferenceId", "regular expression pattern"),
        ("Filename", "a.b.c", "filename", "regular expression pattern"),
        ("Filename", "x" * 33, "filename", "length less than or equal to 32"),
        ("S3OutputPathExtension", "s3://elsewhere", "s3OutputPathExtension", "regular expression pattern"),
        ("InputLocation", "ftp://bucket/key", "inputLocation", "regular expression pattern"),
    ],
)
def test_bad_header_values_are_validation_errors(aws, endpoint, header, value, member, constraint):
    headers = {"X-Amzn-SageMaker-InputLocation": f"s3://{endpoint.bucket}/in/p.png",
               f"X-Amzn-SageMaker-{header}": value}
    resp = _raw(aws, f"/endpoints/{endpoint.name}/async-invocations", headers)
    assert resp.status == 400
    assert resp.headers["x-amzn-ErrorType"] == "ValidationError"
    message = resp.json()["Message"]
    assert message.startswith("1 validation error detected: ")
    assert f"at '{member}' failed to satisfy constraint" in message and constraint in message


def test_several_bad_headers_are_reported_together(aws, endpoint):
    resp = _raw(aws, f"/endpoints/{endpoint.name}/async-invocations", {
        "X-Amzn-SageMaker-InputLocation": f"s3://{endpoint.bucket}/in/p.png",
        "X-Amzn-SageMaker-RequestTTLSeconds": "1", "X-Amzn-SageMaker-InvocationTimeoutSeconds": "99999"})
    assert resp.status == 400 and resp.json()["Message"].startswith("2 validation errors detected: ")


def test_bad_header_through_boto3_is_a_validation_error(aws, endpoint, runtime):
    # botocore checks ranges but not patterns: the service must refuse this one.
    with pytest.raises(ClientError) as exc:
        runtime.invoke_endpoint_async(EndpointName=endpoint.name, InputLocation=f"s3://{endpoint.bucket}/in/p.png",
                                      Filename="../../escape")
    assert _code(exc.value) == "ValidationError" and "'filename'" in exc.value.response["Error"]["Message"]


def test_neither_input_location_nor_body(aws, endpoint):
    resp = _raw(aws, f"/endpoints/{endpoint.name}/async-invocations", {})
    assert resp.status == 400 and resp.headers["x-amzn-ErrorType"] == "ValidationError"
    assert "Exactly one of InputLocation and Body" in resp.json()["Message"]


def test_unknown_route_is_an_unknown_operation(aws):
    resp = _raw(aws, "/endpoints/x/not-an-operation", {})
    assert resp.status == 404 and resp.headers["x-amzn-ErrorType"] == "UnknownOperationException"


def test_queue_introspection_route(aws, endpoint):
    resp = urllib3.request("GET", aws.endpoint_url("sagemaker-runtime") + "/_roomkit/queues")
    assert resp.status == 200
    stats = resp.json()["endpoints"]
    assert endpoint.name in stats and stats[endpoint.name]["completed"] >= 1


def test_non_ascii_input_keys_resolve(aws, endpoint, runtime):
    # botocore sends header values as UTF-8; the runtime must read the key the client meant
    src = put_input(aws.session(), endpoint.bucket, "in/plan ü 東京.png", plan_png())
    resp = runtime.invoke_endpoint_async(EndpointName=endpoint.name, InputLocation=src, ContentType="image/png")
    note = read_notifications(aws.session(), endpoint.queue_url, 1, timeout=30)[0]
    assert note["inferenceId"] == resp["InferenceId"] and note["invocationStatus"] == "Completed"
    assert note["requestParameters"]["inputLocation"] == src
