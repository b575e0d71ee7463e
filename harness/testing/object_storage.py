"""A real S3 API on this machine for the ``s3://`` output_dir tests: moto's server mode.

The bot is pointed at it exactly as a deployment points it at an S3-compatible store (see
:mod:`credit_bot.notebook_store`): the standard AWS environment — fake credentials here — and
``AWS_ENDPOINT_URL_S3``, which papermill's S3 handler (boto3) and s3fs both read. Nothing in the
bot's code knows it is talking to moto.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "fake-access-key-for-moto",
    "AWS_SECRET_ACCESS_KEY": "fake-secret-key-for-moto",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass(frozen=True)
class S3Server:
    """A running moto S3 server and the environment that points AWS clients at it."""

    endpoint_url: str

    @property
    def environment(self) -> dict[str, str]:
        return {**FAKE_AWS, "AWS_ENDPOINT_URL_S3": self.endpoint_url}

    def client(self) -> Any:
        """A boto3 S3 client of the test's own, to look at what the bot wrote."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, **_client_credentials())

    def new_bucket(self) -> str:
        """A fresh, empty bucket (one per test keeps tests apart)."""
        name = f"credit-bot-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        listed = self.client().list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listed.get("Contents", []))


def _client_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": FAKE_AWS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": FAKE_AWS["AWS_SECRET_ACCESS_KEY"],
        "region_name": FAKE_AWS["AWS_DEFAULT_REGION"],
    }


@contextmanager
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on a free loopback port, and this process's AWS environment pointed at it.

    The environment stays for the block: papermill's S3 handler keeps its boto3 session for the
    life of the process, so one server per test session is the way to use it.
    """
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    running = S3Server(f"http://{host}:{port}")
    saved = {key: os.environ.get(key) for key in running.environment}
    os.environ.update(running.environment)
    try:
        yield running
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()
