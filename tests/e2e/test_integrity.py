"""Tamper evidence with the real binary: digests written by the running vault, validated
offline on a copy; tampering and a truncated tail are caught."""
import json
import shutil
import subprocess
import time

from conftest import Vault, binary


def validate(*args):
    return subprocess.run([binary(), "validate", *args], capture_output=True, text=True, timeout=300)


def test_offline_validation_catches_tampering_and_truncation(tmp_path):
    v = Vault(tmp_path / "vault", "--seal-age", "1s", "--digest-period", "2s", "--validate-every", "2s").start()
    try:
        c = v.boto3()
        c.create_log_group(logGroupName="audit/trail")
        c.create_log_stream(logGroupName="audit/trail", logStreamName="s")
        for b in range(3):
            now = int(time.time() * 1000)
            c.put_log_events(logGroupName="audit/trail", logStreamName="s",
                             logEvents=[{"timestamp": now + i, "message": f'{{"b":{b},"i":{i}}}'} for i in range(50)])
            time.sleep(2.2)
        time.sleep(3)
        env = v.env()
        env["TRAILVAULT_ENDPOINT"] = v.url
        last = None
        for _ in range(40):
            status = subprocess.run([binary(), "integrity-status", "--output", "json"], env=env,
                                    capture_output=True, text=True, timeout=60)
            assert status.returncode == 0, status.stderr
            last = json.loads(status.stdout).get("lastValidation")
            if last and last["digestsTotal"] > 0:
                break
            time.sleep(0.5)
        assert last["valid"] is True and last["digestsTotal"] > 0, last
    finally:
        v.stop()
    data = v.data
    ok = validate("--data", str(data), "--verbose")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "digest files valid" in ok.stdout and "INVALID" not in ok.stdout

    # An auditor's offline copy with exported keys validates the same way.
    keys = tmp_path / "auditor-keys"
    subprocess.run([binary(), "export-keys", "--data", str(data), "--out", str(keys)], check=True,
                   capture_output=True, text=True)
    copy = tmp_path / "copy"
    shutil.copytree(data, copy, copy_function=shutil.copy2)
    shutil.rmtree(copy / "keys")
    assert validate("--path", str(copy), "--keys", str(keys)).returncode == 0

    # One flipped byte in a segment.
    seg = sorted((copy / "segments").rglob("*.parquet"))[0]
    raw = bytearray(seg.read_bytes())
    raw[len(raw) // 2] ^= 1
    seg.write_bytes(bytes(raw))
    bad = validate("--path", str(copy), "--keys", str(keys))
    assert bad.returncode != 0 and "INVALID" in bad.stdout

    # Truncating the newest digests is caught against a checkpoint exported earlier.
    checkpoint = tmp_path / "checkpoint.txt"
    subprocess.run([binary(), "export-checkpoint", "--data", str(data), "--output", str(checkpoint)], check=True,
                   capture_output=True, text=True)
    digests = sorted(p for p in (data / "digests").rglob("*.json"))
    newest = max(digests, key=lambda p: p.name)
    newest.unlink()
    sig = newest.with_name(newest.name + ".sig")
    if sig.exists():
        sig.unlink()
    for cp in (data / "checkpoints").rglob("*"):
        if cp.is_file():
            cp.unlink()
    truncated = validate("--data", str(data), "--checkpoint", str(checkpoint))
    assert truncated.returncode != 0, truncated.stdout


def scrape(v) -> dict:
    """The vault's /metrics as {series: value} (unsigned GET, as Prometheus scrapes)."""
    import urllib.request
    text = urllib.request.urlopen(v.url + "/metrics", timeout=10).read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            out[series] = float(value)
    return out


def wait_metrics(v, pred, timeout=40):
    deadline = time.time() + timeout
    m = scrape(v)
    while not pred(m) and time.time() < deadline:
        time.sleep(0.5)
        m = scrape(v)
    return m


def test_validation_status_is_a_prometheus_metric(tmp_path):
    v = Vault(tmp_path / "vault", "--seal-age", "1s", "--digest-period", "2s", "--validate-every", "2s").start()
    try:
        c = v.boto3()
        c.create_log_group(logGroupName="audit/metrics")
        c.create_log_stream(logGroupName="audit/metrics", logStreamName="s")
        now = int(time.time() * 1000)
        c.put_log_events(logGroupName="audit/metrics", logStreamName="s",
                         logEvents=[{"timestamp": now + i, "message": f'{{"i":{i}}}'} for i in range(50)])
        # A clean chain: one validation has finished, valid, with the sealed segment checked.
        m = wait_metrics(v, lambda m: m.get('trailvault_validation_segments{result="valid"}', 0) >= 1)
        assert m["trailvault_validation_completed"] == 1, m
        assert m["trailvault_validation_valid"] == 1 and m["trailvault_validation_failures"] == 0, m
        assert m['trailvault_validation_digests{result="valid"}'] >= 1, m
        assert abs(m["trailvault_validation_last_run_timestamp_seconds"] - time.time()) < 60, m
        # One flipped byte in the stored segment: the next run reports it.
        seg = sorted((v.data / "segments").rglob("*.parquet"))[0]
        raw = bytearray(seg.read_bytes())
        raw[len(raw) // 2] ^= 1
        seg.write_bytes(bytes(raw))
        m = wait_metrics(v, lambda m: m.get("trailvault_validation_failures", 0) >= 1)
        assert m["trailvault_validation_valid"] == 0, m
        assert m['trailvault_validation_segments{result="invalid"}'] >= 1, m
    finally:
        v.stop()
