"""Cross-check with code we did not write: the AWS CLI's own CloudTrail validation
(`awscli.customizations.cloudtrail.validation`, what `aws cloudtrail validate-logs` runs)
against RSA-signed digests the vault rendered in CloudTrail's format, served by a real
S3-compatible server (moto) with the signatures as object metadata.

CloudTrail's ListPublicKeys has no local stand-in, so the exported key list is handed to
awscli's PublicKeyProvider through a small object with the same `list_public_keys` call.
"""
import gzip
import io
import json
import os
import socket
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import botocore.session
import pytest
from awscli.customizations.cloudtrail.validation import CloudTrailValidateLogs, S3ClientProvider

from conftest import Vault, binary, free_port

ACCOUNT, REGION, TRAIL, BUCKET, GROUP = "123456789012", "us-east-1", "audit-app", "trail-bucket", "audit/app"


class Moto:
    """moto's S3 server from the test virtualenv on a free loopback port."""

    def __init__(self):
        self.port = free_port()
        moto = Path(sys.executable).with_name("moto_server")
        cmd = [str(moto)] if moto.exists() else [sys.executable, "-m", "moto.server"]
        self.proc = subprocess.Popen([*cmd, "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("moto_server did not start")
                time.sleep(0.1)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


class ExportedKeys:
    """Stands in for the CloudTrail client: ListPublicKeys from the export's key list."""

    def __init__(self, path: Path):
        self.keys = json.loads(path.read_text())["PublicKeyList"]

    def list_public_keys(self, StartTime=None, EndTime=None):
        return {"PublicKeyList": [dict(k) for k in self.keys]}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A vault signing with RSA, a few digest periods of events, exported as a trail."""
    tmp = tmp_path_factory.mktemp("ct")
    v = Vault(tmp / "vault", "--seal-age", "1s", "--digest-period", "2s", "--signing-algorithm", "rsa").start()
    try:
        c = v.boto3()
        c.create_log_group(logGroupName=GROUP)
        c.create_log_stream(logGroupName=GROUP, logStreamName="s")
        for b in range(3):
            now = int(time.time() * 1000)
            c.put_log_events(logGroupName=GROUP, logStreamName="s",
                             logEvents=[{"timestamp": now + i, "message": f'{{"b":{b},"i":{i}}}'} for i in range(40)])
            time.sleep(2.3)
        time.sleep(4.5)
    finally:
        v.stop()
    out = tmp / "export"
    p = subprocess.run([binary(), "export-cloudtrail-digests", "--data", str(v.data), "--out", str(out),
                        "--group", GROUP, "--bucket", BUCKET, "--account", ACCOUNT, "--region", REGION,
                        "--trail", TRAIL], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    return out


def upload(s3, out: Path, skip=()):
    """Every exported object to the bucket; a digest's sidecar becomes its metadata."""
    s3.create_bucket(Bucket=BUCKET)
    for f in sorted(out.rglob("*")):
        key = f.relative_to(out).as_posix()
        if not f.is_file() or key.endswith(".metadata.json") or key == "list-public-keys.json" or key in skip:
            continue
        meta_file = f.with_name(f.name + ".metadata.json")
        meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
        s3.put_object(Bucket=BUCKET, Key=key, Body=f.read_bytes(), Metadata=meta)


def digest_keys(out: Path):
    return sorted(f.relative_to(out).as_posix() for f in out.rglob("*.json.gz"))


def awscli_validate(moto_url: str, out: Path):
    """awscli's validate-logs command object, its S3 clients pointed at moto."""
    os.environ["AWS_ENDPOINT_URL_S3"] = moto_url
    session = botocore.session.Session()
    session.set_credentials("testing", "testing")
    cmd = CloudTrailValidateLogs(session)
    cmd.trail_arn = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/{TRAIL}"
    cmd.is_verbose = True
    cmd.s3_bucket, cmd.s3_prefix, cmd.account_id = BUCKET, None, None
    now = datetime.now(timezone.utc)
    cmd.start_time, cmd.end_time = now - timedelta(hours=1), now
    cmd._source_region = REGION
    cmd.s3_client_provider = S3ClientProvider(session, REGION)
    cmd.organization_client = None
    cmd.cloudtrail_client = ExportedKeys(out / "list-public-keys.json")
    text = io.StringIO()
    with redirect_stdout(text), redirect_stderr(text):
        cmd._call()
    return cmd, text.getvalue()


@pytest.fixture
def s3():
    m = Moto()
    client = boto3.client("s3", endpoint_url=m.url, region_name=REGION,
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    yield m.url, client
    m.stop()
    os.environ.pop("AWS_ENDPOINT_URL_S3", None)


def test_export_has_cloudtrail_shape(exported):
    keys = digest_keys(exported)
    assert len(keys) >= 3, keys
    for k in keys:
        assert k.startswith(f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/{REGION}/")
        assert k.split("/")[-1].startswith(f"{ACCOUNT}_CloudTrail-Digest_{REGION}_{TRAIL}_{REGION}_")
        meta = json.loads((exported / (k + ".metadata.json")).read_text())
        assert meta["signature-algorithm"] == "SHA256withRSA" and len(meta["signature"]) == 512
    d = json.loads(gzip.decompress((exported / keys[-1]).read_bytes()))
    assert list(d)[:7] == ["awsAccountId", "digestStartTime", "digestEndTime", "digestS3Bucket",
                           "digestS3Object", "digestPublicKeyFingerprint", "digestSignatureAlgorithm"]
    assert d["previousDigestS3Object"] == keys[-2] and d["previousDigestHashAlgorithm"] == "SHA-256"
    assert b"\\/" in gzip.decompress((exported / keys[-1]).read_bytes()), "AWS escapes '/'"
    listed = [f for k in keys for f in json.loads(gzip.decompress((exported / k).read_bytes()))["logFiles"]]
    assert listed and all(f["s3Bucket"] == BUCKET for f in listed)
    # Our own validate-cloudtrail accepts the export too (the sidecars are its input format).
    p = subprocess.run([binary(), "validate-cloudtrail", "--path", str(exported), "--keys", str(exported)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr


def test_awscli_accepts_a_clean_chain(exported, s3):
    url, client = s3
    upload(client, exported)
    cmd, text = awscli_validate(url, exported)
    n_digests = len(digest_keys(exported))
    n_logs = len(list(exported.rglob("*.parquet.gz")))
    assert n_logs >= 2
    assert (cmd._valid_digests, cmd._invalid_digests) == (n_digests, 0), text
    assert (cmd._valid_logs, cmd._invalid_logs) == (n_logs, 0), text
    assert f"{n_digests}/{n_digests} digest files valid" in text, text


def test_awscli_rejects_a_tampered_log_file(exported, s3):
    url, client = s3
    upload(client, exported)
    log = sorted(exported.rglob("*.parquet.gz"))[0]
    raw = bytearray(gzip.decompress(log.read_bytes()))
    raw[len(raw) // 2] ^= 1
    key = log.relative_to(exported).as_posix()
    client.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(bytes(raw)))
    cmd, text = awscli_validate(url, exported)
    assert cmd._invalid_logs == 1 and cmd._invalid_digests == 0, text
    assert f"Log file\ts3://{BUCKET}/{key}\tINVALID: hash value doesn't match" in text, text


def test_awscli_rejects_a_tampered_digest(exported, s3):
    url, client = s3
    upload(client, exported)
    key = digest_keys(exported)[-2]
    d = json.loads(gzip.decompress((exported / key).read_bytes()))
    d["digestStartTime"] = d["digestEndTime"]  # any edit to the signed content
    meta = json.loads((exported / (key + ".metadata.json")).read_text())
    client.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(json.dumps(d).encode()), Metadata=meta)
    cmd, text = awscli_validate(url, exported)
    assert cmd._invalid_digests >= 1, text
    assert f"Digest file\ts3://{BUCKET}/{key}\tINVALID: signature verification failed" in text, text


def test_awscli_reports_a_deleted_digest(exported, s3):
    url, client = s3
    key = digest_keys(exported)[-2]
    upload(client, exported, skip={key})
    cmd, text = awscli_validate(url, exported)
    assert cmd._invalid_digests >= 1, text
    assert f"Digest file\ts3://{BUCKET}/{key}\tINVALID: not found" in text, text
