"""The CloudWatch Logs API of trailvault, driven by the unmodified AWS CLI and boto3."""
import json
import stat
import time
import urllib.request

import botocore
import pytest

from conftest import Vault


def now_ms() -> int:
    return int(time.time() * 1000)


def error_code(exc) -> str:
    return exc.response["Error"]["Code"]


def test_first_start_writes_a_private_credentials_file(vault):
    creds = vault.data / "credentials"
    mode = stat.S_IMODE(creds.stat().st_mode)
    assert mode == 0o600, oct(mode)
    text = creds.read_text()
    assert "[default]" in text.splitlines()
    assert "aws_access_key_id" in text and "aws_secret_access_key" in text


def test_aws_cli_round_trip(vault):
    vault.aws("create-log-group", "--log-group-name", "app/web")
    vault.aws("create-log-stream", "--log-group-name", "app/web", "--log-stream-name", "s1")
    t = now_ms()
    events = [{"timestamp": t + i, "message": f"GET /index.html 200 user{i}"} for i in range(50)]
    events.append({"timestamp": t + 60, "message": "ERROR disk full"})
    vault.aws("put-log-events", "--log-group-name", "app/web", "--log-stream-name", "s1",
              "--log-events", json.dumps(events))
    groups = json.loads(vault.aws("describe-log-groups", "--log-group-name-prefix", "app/").stdout)["logGroups"]
    assert [g["logGroupName"] for g in groups] == ["app/web"]
    everything = json.loads(vault.aws("describe-log-groups").stdout)["logGroups"]
    assert {g["logGroupName"] for g in everything} == {"app/web", "trailvault/alarms"}
    assert groups[0]["arn"].endswith(":log-group:app/web:*")
    streams = json.loads(vault.aws("describe-log-streams", "--log-group-name", "app/web").stdout)["logStreams"]
    assert streams[0]["logStreamName"] == "s1"
    assert streams[0]["firstEventTimestamp"] == t and streams[0]["lastEventTimestamp"] == t + 60

    got = json.loads(vault.aws("get-log-events", "--log-group-name", "app/web", "--log-stream-name", "s1",
                               "--start-from-head").stdout)
    assert [e["message"] for e in got["events"]] == [e["message"] for e in events]
    assert all("ingestionTime" in e for e in got["events"])

    filtered = json.loads(vault.aws("filter-log-events", "--log-group-name", "app/web",
                                    "--filter-pattern", "ERROR").stdout)
    assert [e["message"] for e in filtered["events"]] == ["ERROR disk full"]
    assert filtered["events"][0]["logStreamName"] == "s1" and filtered["events"][0]["eventId"]


def test_get_log_events_pages_forward_and_backward_with_tokens(vault):
    c = vault.boto3()
    c.create_log_group(logGroupName="g")
    c.create_log_stream(logGroupName="g", logStreamName="s")
    t = now_ms()
    c.put_log_events(logGroupName="g", logStreamName="s",
                     logEvents=[{"timestamp": t + i, "message": f"m{i}"} for i in range(25)])
    page = c.get_log_events(logGroupName="g", logStreamName="s", startFromHead=True, limit=10)
    seen = [e["message"] for e in page["events"]]
    while True:
        nxt = c.get_log_events(logGroupName="g", logStreamName="s", limit=10,
                               nextToken=page["nextForwardToken"], startFromHead=True)
        if not nxt["events"]:
            assert nxt["nextForwardToken"] == page["nextForwardToken"], "at the end the same token comes back"
            break
        seen += [e["message"] for e in nxt["events"]]
        page = nxt
    assert seen == [f"m{i}" for i in range(25)]
    # Default (no startFromHead) is the newest page; backward tokens walk to older events.
    newest = c.get_log_events(logGroupName="g", logStreamName="s", limit=10)
    assert [e["message"] for e in newest["events"]] == [f"m{i}" for i in range(15, 25)]
    older = c.get_log_events(logGroupName="g", logStreamName="s", limit=10,
                             nextToken=newest["nextBackwardToken"])
    assert [e["message"] for e in older["events"]] == [f"m{i}" for i in range(5, 15)]
    # Time range: start inclusive, end exclusive.
    ranged = c.get_log_events(logGroupName="g", logStreamName="s", startTime=t + 3, endTime=t + 6, startFromHead=True)
    assert [e["message"] for e in ranged["events"]] == ["m3", "m4", "m5"]


def test_filter_log_events_paginates_across_streams(vault):
    c = vault.boto3()
    c.create_log_group(logGroupName="g")
    t = now_ms()
    for s in ("a", "b", "c"):
        c.create_log_stream(logGroupName="g", logStreamName=s)
        c.put_log_events(logGroupName="g", logStreamName=s,
                         logEvents=[{"timestamp": t + i, "message": f"{s} {i}"} for i in range(30)])
    pages = c.get_paginator("filter_log_events").paginate(logGroupName="g", PaginationConfig={"PageSize": 7})
    events = [e for p in pages for e in p["events"]]
    assert len(events) == 90
    assert len({e["eventId"] for e in events}) == 90
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)
    only = c.filter_log_events(logGroupName="g", logStreamNames=["a", "c"])["events"]
    assert {e["logStreamName"] for e in only} == {"a", "c"}
    prefixed = c.filter_log_events(logGroupName="g", logStreamNamePrefix="b", startTime=t + 10, endTime=t + 20)["events"]
    assert [e["message"] for e in prefixed] == [f"b {i}" for i in range(10, 20)]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.filter_log_events(logGroupName="g", logStreamNames=["a"], logStreamNamePrefix="a")
    assert error_code(e.value) == "InvalidParameterException"


def test_describe_log_groups_paginates_and_filters(vault):
    c = vault.boto3()
    for i in range(7):
        c.create_log_group(logGroupName=f"team{i % 2}/svc{i}")
    names = [g["logGroupName"] for p in c.get_paginator("describe_log_groups").paginate(
        logGroupNamePrefix="team", PaginationConfig={"PageSize": 3}) for g in p["logGroups"]]
    assert names == sorted(names) and len(names) == 7
    pref = c.describe_log_groups(logGroupNamePrefix="team1/")["logGroups"]
    assert {g["logGroupName"] for g in pref} == {"team1/svc1", "team1/svc3", "team1/svc5"}
    pat = c.describe_log_groups(logGroupNamePattern="svc4")["logGroups"]
    assert [g["logGroupName"] for g in pat] == ["team0/svc4"]


def test_retention_and_tags(vault):
    c = vault.boto3()
    c.create_log_group(logGroupName="audit/sox", tags={"owner": "secops"})
    c.put_retention_policy(logGroupName="audit/sox", retentionInDays=2557)
    g = c.describe_log_groups(logGroupNamePrefix="audit/sox")["logGroups"][0]
    assert g["retentionInDays"] == 2557
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.put_retention_policy(logGroupName="audit/sox", retentionInDays=2)
    assert error_code(e.value) == "InvalidParameterException"
    c.delete_retention_policy(logGroupName="audit/sox")
    assert "retentionInDays" not in c.describe_log_groups(logGroupNamePrefix="audit/sox")["logGroups"][0]

    arn = g["logGroupArn"]
    c.tag_resource(resourceArn=arn, tags={"env": "prod", "class": "sox"})
    assert c.list_tags_for_resource(resourceArn=arn)["tags"] == {"owner": "secops", "env": "prod", "class": "sox"}
    c.untag_resource(resourceArn=arn, tagKeys=["env"])
    assert c.list_tags_log_group(logGroupName="audit/sox")["tags"] == {"owner": "secops", "class": "sox"}
    c.tag_log_group(logGroupName="audit/sox", tags={"x": "1"})
    c.untag_log_group(logGroupName="audit/sox", tags=["owner"])
    assert c.list_tags_for_resource(resourceArn=arn)["tags"] == {"class": "sox", "x": "1"}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.tag_resource(resourceArn=arn, tags={f"k{i}": "v" for i in range(60)})
    assert error_code(e.value) in ("TooManyTagsException", "InvalidParameterException")


def test_resource_errors_have_cloudwatch_codes(vault):
    c = vault.boto3()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_log_stream(logGroupName="nope", logStreamName="s")
    assert error_code(e.value) == "ResourceNotFoundException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    c.create_log_group(logGroupName="g")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_log_group(logGroupName="g")
    assert error_code(e.value) == "ResourceAlreadyExistsException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.put_log_events(logGroupName="g", logStreamName="missing",
                         logEvents=[{"timestamp": now_ms(), "message": "x"}])
    assert error_code(e.value) == "ResourceNotFoundException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_log_group(logGroupName="bad name with spaces")
    assert error_code(e.value) == "InvalidParameterException"


def test_deleting_evidence_is_refused(vault):
    c = vault.boto3()
    c.create_log_group(logGroupName="g")
    c.create_log_stream(logGroupName="g", logStreamName="s")
    c.create_log_stream(logGroupName="g", logStreamName="empty")
    c.put_log_events(logGroupName="g", logStreamName="s", logEvents=[{"timestamp": now_ms(), "message": "evidence"}])
    for call in (lambda: c.delete_log_group(logGroupName="g"),
                 lambda: c.delete_log_stream(logGroupName="g", logStreamName="s")):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert error_code(e.value) == "ValidationException"
        assert "never deletes evidence" in e.value.response["Error"]["Message"]
    p = vault.aws("delete-log-group", "--log-group-name", "g", check=False)
    assert p.returncode != 0 and "never deletes evidence" in p.stderr
    c.delete_log_stream(logGroupName="g", logStreamName="empty")
    c.create_log_group(logGroupName="unused")
    c.delete_log_group(logGroupName="unused")
    assert c.filter_log_events(logGroupName="g")["events"][0]["message"] == "evidence"


def test_batch_limits_and_skipped_events(vault):
    c = vault.boto3()
    c.create_log_group(logGroupName="g")
    c.create_log_stream(logGroupName="g", logStreamName="s")
    t = now_ms()
    day = 86_400_000
    out = c.put_log_events(logGroupName="g", logStreamName="s", logEvents=[
        {"timestamp": t - 15 * day, "message": "too old"},
        {"timestamp": t, "message": "fine"},
        {"timestamp": t + 3 * 3_600_000, "message": "too new"},
    ])
    assert out["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 1, "tooNewLogEventStartIndex": 2}
    assert [e["message"] for e in c.filter_log_events(logGroupName="g")["events"]] == ["fine"]

    def refused(events):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            c.put_log_events(logGroupName="g", logStreamName="s", logEvents=events)
        assert error_code(e.value) == "InvalidParameterException", e.value.response
        return e.value.response["Error"]["Message"]

    # 1,048,576 bytes counted as message bytes + 26 each: 5 events of 210,000 bytes is over.
    refused([{"timestamp": t, "message": "x" * 210_000} for _ in range(5)])
    refused([{"timestamp": t, "message": "x" * 262_144}])
    refused([{"timestamp": t, "message": "x"} for _ in range(10_001)])
    assert "chronological" in refused([{"timestamp": t, "message": "b"}, {"timestamp": t - 1, "message": "a"}])
    # Exactly at the limits is accepted.
    c.put_log_events(logGroupName="g", logStreamName="s",
                     logEvents=[{"timestamp": t, "message": "x" * (262_144 - 26)}])
    c.put_log_events(logGroupName="g", logStreamName="s",
                     logEvents=[{"timestamp": t, "message": "y"} for _ in range(10_000)])
    # Sequence tokens are accepted and ignored.
    c.put_log_events(logGroupName="g", logStreamName="s", sequenceToken="whatever",
                     logEvents=[{"timestamp": t, "message": "z"}])


def raw_post(vault: Vault, body: bytes, target="Logs_20140328.DescribeLogGroups", headers=None):
    req = urllib.request.Request(vault.url + "/", data=body, method="POST", headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def signed_post(vault: Vault, body: bytes, target: str, secret=None, key_id=None):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    req = AWSRequest(method="POST", url=vault.url + "/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target})
    SigV4Auth(Credentials(key_id or vault.key_id(), secret or vault.secret()), "logs", "us-east-1").add_auth(req)
    return raw_post(vault, body, target, dict(req.headers.items()))


def test_unsigned_and_badly_signed_requests_are_refused(vault):
    status, body = raw_post(vault, b"{}")
    assert status == 400 and body["__type"] == "MissingAuthenticationTokenException"
    status, body = signed_post(vault, b"{}", "Logs_20140328.DescribeLogGroups", secret="wrong" * 8)
    assert status == 400 and body["__type"] == "InvalidSignatureException"
    status, body = signed_post(vault, b"{}", "Logs_20140328.DescribeLogGroups", key_id="TVAKUNKNOWNUNKNOWN00")
    assert status == 400 and body["__type"] == "UnrecognizedClientException"
    bad = vault.boto3()
    bad._request_signer._credentials = botocore.credentials.Credentials(vault.key_id(), "nope")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bad.describe_log_groups()
    assert error_code(e.value) == "InvalidSignatureException"


def test_bad_input_gets_precise_errors_and_keeps_good_events(vault):
    c = vault.boto3()
    c.create_log_group(logGroupName="g")
    c.create_log_stream(logGroupName="g", logStreamName="s")
    c.put_log_events(logGroupName="g", logStreamName="s", logEvents=[{"timestamp": now_ms(), "message": "good"}])
    status, body = signed_post(vault, b"{not json", "Logs_20140328.PutLogEvents")
    assert status == 400 and body["__type"] == "SerializationException"
    status, body = signed_post(vault, b'{"logGroupName":"g","logStreamName":"s","logEvents":[{"timestamp":1,"message":"\xff\xfe"}]}',
                               "Logs_20140328.PutLogEvents")
    assert status == 400 and body["__type"] in ("SerializationException", "InvalidParameterException")
    status, body = signed_post(vault, b"{}", "Logs_20140328.NoSuchAction")
    assert status == 400 and body["__type"] == "UnknownOperationException"
    status, body = signed_post(vault, b'{"logGroupName": 5}', "Logs_20140328.CreateLogGroup")
    assert status == 400 and body["__type"] in ("SerializationException", "InvalidParameterException")
    assert [e["message"] for e in c.filter_log_events(logGroupName="g")["events"]] == ["good"]


def test_events_survive_restart_and_sealing(tmp_path):
    v = Vault(tmp_path / "vault", "--seal-age", "1s").start()
    try:
        c = v.boto3()
        c.create_log_group(logGroupName="g")
        c.create_log_stream(logGroupName="g", logStreamName="s")
        t = now_ms()
        c.put_log_events(logGroupName="g", logStreamName="s",
                         logEvents=[{"timestamp": t + i, "message": f"before seal {i}"} for i in range(100)])
        time.sleep(2.5)  # sealed by age
        c.put_log_events(logGroupName="g", logStreamName="s",
                         logEvents=[{"timestamp": t + 100 + i, "message": f"tail {i}"} for i in range(100)])
        before = c.get_log_events(logGroupName="g", logStreamName="s", startFromHead=True)["events"]
        assert len(before) == 200
        assert list((v.data / "segments").rglob("*.parquet")), "a segment was sealed"
    finally:
        v.stop()
    v.start()
    try:
        after = v.boto3().get_log_events(logGroupName="g", logStreamName="s", startFromHead=True)["events"]
        assert [e["message"] for e in after] == [e["message"] for e in before]
    finally:
        v.stop()
