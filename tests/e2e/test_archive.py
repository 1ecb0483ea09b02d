"""The archive is open: DuckDB reads an imported vault's segment files directly, with no
trailvault code in between, and finds every record byte-exact beside its normalized columns."""
import gzip
import json
import re
import subprocess
from pathlib import Path

import duckdb

from conftest import binary

# Between two records of a CloudTrail file: the array's punctuation and whitespace only.
SEPARATOR = re.compile(r'\A(\{\s*"Records"\s*:\s*\[)?[\s,]*\Z')


def tool(name: str) -> str:
    return str(Path(binary()).parent / name)


def test_duckdb_reads_imported_segments_byte_exact(tmp_path):
    tree = tmp_path / "tree"
    # 3 MB: several files, accounts, regions and hours; more rows than one Parquet page holds.
    subprocess.run([tool("gen-cloudtrail"), str(tree), "--mb", "3", "--seed", "7",
                    "--records-per-file", "200"], check=True, capture_output=True, timeout=120)
    data = tmp_path / "vault"
    out = subprocess.run([binary(), "import", "--data", str(data), "--no-progress", str(tree / "AWSLogs")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    counts = re.search(r"records: (\d+) read = (\d+) stored \+ 0 quarantined", out.stdout)
    assert counts and counts[1] == counts[2], out.stdout

    files = {}
    for f in sorted(tree.rglob("*.json.gz")):
        files[f] = gzip.decompress(f.read_bytes()).decode()
    records = {r["eventID"]: r for text in files.values() for r in json.loads(text)["Records"]}
    assert len(records) == int(counts[1])

    segments = sorted(data.rglob("group=import%2Fcloudtrail/**/*.parquet"))
    assert segments
    con = duckdb.connect()
    rows = con.execute(
        "SELECT message, source, event_time, account, region, service, action, activity, actor_arn, "
        "src_ip, user_agent, outcome, error_code, request_id, source_event_id, read_only "
        "FROM read_parquet(?, hive_partitioning = false)",
        [[str(s) for s in segments]],
    ).fetchall()
    assert len(rows) == len(records)

    messages = {}
    for (message, source, event_time, account, region, service, action, activity, actor_arn,
         src_ip, user_agent, outcome, error_code, request_id, event_id, read_only) in rows:
        r = json.loads(message)
        assert records[r["eventID"]] == r
        assert event_id == r["eventID"]
        messages[event_id] = message
        assert source == "cloudtrail"
        assert event_time.strftime("%Y-%m-%dT%H:%M:%SZ") == r["eventTime"]
        assert account == r["recipientAccountId"]
        assert region == r["awsRegion"]
        assert service == r["eventSource"]
        assert action == r["eventName"]
        assert activity in ("create", "read", "update", "delete", "other")
        assert actor_arn == r["userIdentity"].get("arn")
        assert src_ip == r["sourceIPAddress"] or src_ip is None
        assert user_agent == r.get("userAgent")
        assert outcome == ("failure" if "errorCode" in r else "success")
        assert error_code == r.get("errorCode")
        assert request_id == r.get("requestID")
        assert read_only == r.get("readOnly")

    # Byte-exact: each file is its stored messages in order, joined by the array's punctuation.
    for f, text in files.items():
        pos = 0
        for r in json.loads(text)["Records"]:
            message = messages[r["eventID"]]
            at = text.find(message, pos)
            assert at >= 0 and SEPARATOR.match(text[pos:at]), f"{f}: {r['eventID']} not verbatim"
            pos = at + len(message)
        assert re.fullmatch(r"\s*\]\s*\}\s*", text[pos:]), f
