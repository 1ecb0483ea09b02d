"""Subscription filters end to end with boto3 and the real binary: file destinations get only
matching events, a restart neither loses nor repeats deliveries (a destination that could not
accept holds its checkpoint and is caught up from the vault after the restart), the third
filter of a group is refused, and GET /metrics serves the Prometheus text format."""
import json
import re
import time
import urllib.request

import botocore.exceptions
import pytest

GROUP = "app/web"
STREAM = "web-1"


def put(logs, *messages):
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName=GROUP, logStreamName=STREAM,
                        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(messages)])


def delivered(path):
    """(eventId, message) per delivered event, in file order."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        env = json.loads(line)
        assert env["messageType"] == "DATA_MESSAGE"
        assert env["logGroup"] == GROUP and env["logStream"] == STREAM
        assert len(env["subscriptionFilters"]) == 1
        out += [(e["id"], e["message"]) for e in env["logEvents"]]
    return out


def wait_for(what, predicate, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_subscriptions_deliver_once_across_a_restart(vault, tmp_path):
    logs = vault.boto3()
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName=STREAM)
    put(logs, "ERROR before any filter")

    errors = tmp_path / "errors.jsonl"
    logs.put_subscription_filter(logGroupName=GROUP, filterName="errors", filterPattern="ERROR",
                                 destinationArn=f"file://{errors}")
    # This destination's directory does not exist yet: deliveries fail and are retried.
    later = tmp_path / "later" / "all.jsonl"
    logs.put_subscription_filter(logGroupName=GROUP, filterName="everything", filterPattern="",
                                 destinationArn=f"file://{later}")
    with pytest.raises(botocore.exceptions.ClientError) as err:
        logs.put_subscription_filter(logGroupName=GROUP, filterName="third", filterPattern="",
                                     destinationArn=f"file://{tmp_path}/third.jsonl")
    assert err.value.response["Error"]["Code"] == "LimitExceededException"
    described = logs.describe_subscription_filters(logGroupName=GROUP)["subscriptionFilters"]
    assert [(f["filterName"], f["filterPattern"]) for f in described] == [("errors", "ERROR"), ("everything", "")]

    put(logs, "ERROR one", "INFO fine", "ERROR two")
    put(logs, "WARN noise")
    wait_for("the first deliveries", lambda: len(delivered(errors)) == 2)
    time.sleep(0.5)
    first = delivered(errors)
    assert [m for _, m in first] == ["ERROR one", "ERROR two"]
    assert not later.exists()

    vault.stop()
    later.parent.mkdir()
    vault.start()
    logs = vault.boto3()
    put(logs, "ERROR three", "INFO after restart")

    wait_for("delivery after the restart", lambda: len(delivered(errors)) == 3)
    # The held-back destination is caught up from the vault: everything since its creation.
    wait_for("catch-up", lambda: len(delivered(later)) == 6)
    time.sleep(1.0)  # a duplicate would have arrived by now
    after = delivered(errors)
    assert after[:2] == first
    assert [m for _, m in after] == ["ERROR one", "ERROR two", "ERROR three"]
    assert len({i for i, _ in after}) == 3
    everything = delivered(later)
    assert [m for _, m in everything] == [
        "ERROR one", "INFO fine", "ERROR two", "WARN noise", "ERROR three", "INFO after restart"]
    assert len({i for i, _ in everything}) == 6

    logs.delete_subscription_filter(logGroupName=GROUP, filterName="everything")
    assert [f["filterName"] for f in logs.describe_subscription_filters(logGroupName=GROUP)["subscriptionFilters"]] == ["errors"]


def test_metrics_endpoint_is_prometheus_text(vault):
    logs = vault.boto3()
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName=STREAM)
    put(logs, "ERROR one", "INFO two")
    with urllib.request.urlopen(f"{vault.url}/metrics", timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    m = re.search(r'^trailvault_stored_bytes\{group="app/web"\} (\d+)$', text, re.M)
    assert m and int(m.group(1)) > 0, text
    assert re.search(r"^trailvault_events_acknowledged_total 2$", text, re.M), text
    assert "# TYPE trailvault_tail_unsealed_bytes gauge" in text
    for line in text.splitlines():
        if line and not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])
