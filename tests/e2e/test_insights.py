"""Logs Insights through the real AWS CLI, boto3 and `trailvault query`, against the real binary."""
import json
import subprocess
import time

import botocore
import pytest

from conftest import binary

ACCOUNT_FIELD = "@log"


def now_s() -> int:
    return int(time.time())


def cloudtrail(name: str, user: str, ip: str, failed: bool = False) -> str:
    record = {
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "userName": user},
        "eventSource": "signin.amazonaws.com" if name == "ConsoleLogin" else "ec2.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": ip,
    }
    if failed:
        record["errorMessage"] = "Failed authentication"
        record["responseElements"] = {"ConsoleLogin": "Failure"}
    return json.dumps(record)


def seed(client, group: str, records: list, t0_ms: int):
    client.create_log_group(logGroupName=group)
    client.create_log_stream(logGroupName=group, logStreamName="trail")
    events = [{"timestamp": t0_ms + i, "message": m} for i, m in enumerate(records)]
    client.put_log_events(logGroupName=group, logStreamName="trail", logEvents=events)


def wait_boto3(client, query_id: str) -> dict:
    deadline = time.time() + 60
    while time.time() < deadline:
        got = client.get_query_results(queryId=query_id)
        if got["status"] not in ("Scheduled", "Running"):
            return got
        time.sleep(0.1)
    raise AssertionError(f"query {query_id} never ended")


def as_dicts(results: list) -> list:
    return [{f["field"]: f["value"] for f in row} for row in results]


@pytest.fixture
def trails(vault):
    """Two CloudTrail groups: failed logins from two addresses, one sealed before the rest."""
    c = vault.boto3()
    t0 = (now_s() - 300) * 1000
    seed(c, "trail/a", [cloudtrail("ConsoleLogin", "alice", "203.0.113.7", True)] * 3, t0)
    # The vault seals after 1 s: these first events are read back from a sealed segment.
    time.sleep(1.5)
    c.put_log_events(logGroupName="trail/a", logStreamName="trail", logEvents=[
        {"timestamp": t0 + 10, "message": cloudtrail("ConsoleLogin", "alice", "198.51.100.2", True)},
        {"timestamp": t0 + 11, "message": cloudtrail("ConsoleLogin", "alice", "198.51.100.2")},
    ])
    seed(c, "trail/b", [cloudtrail("ConsoleLogin", "bob", "203.0.113.7", True),
                        cloudtrail("RunInstances", "bob", "192.0.2.1")], t0 + 20)
    return t0 // 1000


FAILS_BY_IP = ('filter eventName = "ConsoleLogin" and errorMessage = "Failed authentication"'
               ' | stats count(*) as fails by sourceIPAddress | sort fails desc')


def test_aws_cli_start_query_and_get_query_results(vault, trails):
    started = json.loads(vault.aws(
        "start-query", "--log-group-names", "trail/a", "trail/b",
        "--start-time", str(trails), "--end-time", str(now_s()),
        "--query-string", FAILS_BY_IP).stdout)
    query_id = started["queryId"]
    deadline = time.time() + 60
    while True:
        got = json.loads(vault.aws("get-query-results", "--query-id", query_id).stdout)
        if got["status"] not in ("Scheduled", "Running"):
            break
        assert time.time() < deadline
        time.sleep(0.2)
    assert got["status"] == "Complete", got
    assert as_dicts(got["results"]) == [
        {"sourceIPAddress": "203.0.113.7", "fails": "4"},
        {"sourceIPAddress": "198.51.100.2", "fails": "1"},
    ]
    assert got["statistics"]["recordsScanned"] == 7.0
    assert got["statistics"]["recordsMatched"] == 5.0

    listed = json.loads(vault.aws("describe-queries", "--log-group-name", "trail/a").stdout)
    assert [q["queryId"] for q in listed["queries"]] == [query_id]
    assert listed["queries"][0]["status"] == "Complete"


def test_boto3_fields_limit_and_auto_fields(vault, trails):
    c = vault.boto3()
    arn = "arn:aws:logs:us-east-1:000000000000:log-group:trail/b"
    query_id = c.start_query(
        logGroupIdentifiers=[arn, "trail/a"], startTime=trails, endTime=now_s(),
        queryString="fields @timestamp, @log, userIdentity.userName, eventName | sort @timestamp desc",
        limit=2)["queryId"]
    got = wait_boto3(c, query_id)
    assert got["status"] == "Complete"
    rows = as_dicts(got["results"])
    assert len(rows) == 2
    assert rows[0]["eventName"] == "RunInstances" and rows[0]["userIdentity.userName"] == "bob"
    assert rows[0]["@log"].endswith(":trail/b")
    assert all("@ptr" in r for r in rows)
    assert isinstance(got["statistics"]["bytesScanned"], float)


def test_malformed_query_has_its_location(vault, trails):
    c = vault.boto3()
    text = "fields @message\n| sortt @timestamp"
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        c.start_query(logGroupName="trail/a", startTime=trails, endTime=now_s(), queryString=text)
    err = exc.value.response
    assert err["Error"]["Code"] == "MalformedQueryException"
    location = err["queryCompileError"]["location"]
    assert location["startCharOffset"] == text.index("sortt")
    assert location["endCharOffset"] > location["startCharOffset"]
    assert isinstance(c.exceptions.MalformedQueryException, type)

    p = vault.aws("start-query", "--log-group-name", "trail/a", "--start-time", str(trails),
                  "--end-time", str(now_s()), "--query-string", text, check=False)
    assert p.returncode != 0
    assert "MalformedQueryException" in p.stderr


def test_unsupported_language_and_unknown_query(vault, trails):
    c = vault.boto3()
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        c.start_query(logGroupName="trail/a", startTime=trails, endTime=now_s(),
                      queryString="SELECT 1", queryLanguage="SQL")
    assert exc.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "not supported" in exc.value.response["Error"]["Message"]
    for call in (c.get_query_results, c.stop_query):
        with pytest.raises(c.exceptions.ResourceNotFoundException):
            call(queryId="0000-no-such-query")


def test_stop_query_and_describe_queries(vault, trails):
    c = vault.boto3()
    query_id = c.start_query(logGroupName="trail/b", startTime=trails, endTime=now_s(),
                             queryString="stats count(*) by eventName")["queryId"]
    got = wait_boto3(c, query_id)
    assert got["status"] == "Complete"
    # A query that has ended cannot be stopped.
    with pytest.raises(c.exceptions.InvalidParameterException):
        c.stop_query(queryId=query_id)
    pages = c.get_paginator("describe_queries").paginate(PaginationConfig={"PageSize": 1})
    ids = [q["queryId"] for page in pages for q in page["queries"]]
    assert ids == [query_id]
    done = c.describe_queries(status="Complete")["queries"]
    assert done[0]["queryString"] == "stats count(*) by eventName"
    assert done[0]["logGroupName"] == "trail/b"


def run_cli(vault, *args: str) -> subprocess.CompletedProcess:
    cmd = [binary(), "query", "--endpoint", vault.url, *args]
    return subprocess.run(cmd, env=vault.env(), capture_output=True, text=True, timeout=60)


def test_trailvault_query_prints_csv_json_and_a_table(vault, trails):
    since = str(trails * 1000)
    p = run_cli(vault, "--group", "trail/a", "--group", "trail/b", "--from", since,
                "--output", "csv", FAILS_BY_IP)
    assert p.returncode == 0, p.stderr
    # (Text mode reads the CSV's CRLF line ends as newlines.)
    assert p.stdout.splitlines() == ["sourceIPAddress,fails", "203.0.113.7,4", "198.51.100.2,1"]

    p = run_cli(vault, "--group", "trail/b", "--from", since, "--output", "json",
                "stats count(*) as n by eventName | sort eventName")
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    assert as_dicts(got["results"]) == [{"eventName": "ConsoleLogin", "n": "1"},
                                        {"eventName": "RunInstances", "n": "1"}]

    p = run_cli(vault, "--group", "trail/a", "--from", since,
                "fields sourceIPAddress | filter sourceIPAddress like /198/ | limit 1")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["| sourceIPAddress |", "|-----------------|",
                                     "| 198.51.100.2    |"]


def test_trailvault_query_points_at_a_syntax_error(vault, trails):
    p = run_cli(vault, "--group", "trail/a", "--from", "1h", "fields @message\n| sortt @timestamp")
    assert p.returncode != 0
    lines = p.stderr.splitlines()
    at = next(i for i, l in enumerate(lines) if l.endswith("| | sortt @timestamp"))
    assert lines[at + 1].endswith("|   ^^^^^"), p.stderr
