"""Shared fixtures for the deploy/trigger tests: moto's server on a free 127.0.0.1 port.

One server per test module (starting it costs ~1 s); every test gets a clean slate through
moto's reset API and a local-mode :class:`roomkit.aws.AwsSession` pointing at it.
"""
from __future__ import annotations

import json
import logging
import socket
import urllib.request

import pytest

import roomkit.aws

DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
OCI = "application/vnd.oci.image.manifest.v1+json"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def moto_url():
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        inner = getattr(server, "_server", None)
        if inner is not None:
            inner.server_close()


@pytest.fixture
def aws(moto_url):
    """A local-mode session on a freshly reset moto server."""
    req = urllib.request.Request(moto_url + "/moto-api/reset", data=b"", method="POST")
    urllib.request.urlopen(req, timeout=10).read()
    return roomkit.aws.session(mode="local", endpoints={"default": moto_url})


def push_image(session, repository: str = "roomkit", tag: str = "local", media_type: str = DOCKER_V2) -> str:
    """Register an image manifest in moto's ECR (with a layer, so digests differ) and return its URI."""
    ecr = session.client("ecr")
    try:
        ecr.create_repository(repositoryName=repository)
    except ecr.exceptions.RepositoryAlreadyExistsException:
        pass
    oci = media_type.startswith("application/vnd.oci")
    layer = "sha256:" + __import__("hashlib").sha256(f"{repository}:{tag}:{media_type}".encode()).hexdigest()
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json" if oci else "application/vnd.docker.container.image.v1+json",
            "size": 1469,
            "digest": "sha256:" + "1" * 64,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip" if oci else "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "size": 2811478,
            "digest": layer,
        }],
    }
    try:
        ecr.put_image(repositoryName=repository, imageManifest=json.dumps(manifest), imageTag=tag,
                      imageManifestMediaType=media_type)
    except ecr.exceptions.ImageAlreadyExistsException:
        pass
    account = session.account_id()
    return f"{account}.dkr.ecr.{session.region}.amazonaws.com/{repository}:{tag}"


@pytest.fixture(scope="module")
def moto():
    """Local mode's own moto server (:class:`roomkit.local.moto_server.MotoServer`, with its
    indexed SQS queues) on loopback, one per test module."""
    from roomkit.local.moto_server import MotoServer

    server = MotoServer().start()
    try:
        yield server
    finally:
        server.stop()

