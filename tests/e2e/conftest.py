"""Fixtures for end-to-end tests: the real trailvault binary, the real AWS CLI and boto3."""
import os
import socket
import subprocess
import time
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]


def binary() -> str:
    explicit = os.environ.get("TRAILVAULT_BIN")
    if explicit:
        return explicit
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return str(target / "debug" / "trailvault")


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Vault:
    """A trailvault server process on a free loopback port."""

    def __init__(self, data: Path, *flags: str):
        self.data = data
        self.flags = flags
        self.proc = None
        self.port = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, port: int = None):
        """Starts the server; `port` keeps a restarted vault at an address others point to."""
        self.port = port or free_port()
        log = open(str(self.data) + ".log", "ab")
        self.proc = subprocess.Popen(
            [binary(), "serve", "--data", str(self.data), "--listen", f"127.0.0.1:{self.port}", *self.flags],
            stdout=log, stderr=log,
        )
        deadline = time.time() + 60  # a loaded CI machine; RSA key generation on first start
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"vault exited with {self.proc.returncode}; see {self.data}.log")
                time.sleep(0.05)
        # Never leave a server running behind a failed fixture.
        self.proc.kill()
        self.proc.wait()
        raise RuntimeError(f"vault did not start listening; see {self.data}.log")

    def stop(self, sig: int = 15):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)

    def env(self) -> dict:
        env = dict(os.environ)
        env.update({
            "AWS_SHARED_CREDENTIALS_FILE": str(self.data / "credentials"),
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_PAGER": "",
        })
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            env.pop(k, None)
        return env

    def aws(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = ["aws", "logs", "--endpoint-url", self.url, "--output", "json", *args]
        p = subprocess.run(cmd, env=self.env(), capture_output=True, text=True, timeout=60)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr}")
        return p

    def boto3(self, **kw):
        session = boto3.session.Session(
            aws_access_key_id=self.key_id(), aws_secret_access_key=self.secret(), region_name="us-east-1")
        return session.client("logs", endpoint_url=self.url, **kw)

    def _creds(self) -> dict:
        out = {}
        for line in (self.data / "credentials").read_text().splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                out[k.strip()] = v.strip()
        return out

    def key_id(self) -> str:
        return self._creds()["aws_access_key_id"]

    def secret(self) -> str:
        return self._creds()["aws_secret_access_key"]


@pytest.fixture
def vault(tmp_path):
    v = Vault(tmp_path / "vault", "--seal-age", "1s").start()
    yield v
    v.stop()
