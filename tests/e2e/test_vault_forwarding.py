"""A subscription filter delivering to another trailvault: two real vaults, the destination
defined with `trailvault alarms vault` (the key to write with stays out of every answer), only
matching events arrive in the other vault's group, and neither the destination going down nor
the source restarting loses or repeats an event."""
import json
import subprocess
import time

from conftest import Vault, binary

GROUP = "app/web"
STREAM = "web-1"
CENTRAL_GROUP = "central/edge-1"
CENTRAL_STREAM = "app-web"


def put(logs, *messages):
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName=GROUP, logStreamName=STREAM,
                        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(messages)])
    time.sleep(0.01)  # later puts get later timestamps: arrival order is timestamp order


def arrived(central):
    """Messages stored in the central vault's group, oldest first ([] before it exists)."""
    logs = central.boto3()
    if not logs.describe_log_groups(logGroupNamePrefix=CENTRAL_GROUP)["logGroups"]:
        return []
    out, token = [], None
    while True:
        kw = {"logGroupName": CENTRAL_GROUP, **({"nextToken": token} if token else {})}
        page = logs.filter_log_events(**kw)
        out += [(e["timestamp"], e["message"]) for e in page["events"]]
        token = page.get("nextToken")
        if not token:
            return [m for _, m in sorted(out)]


def wait_for(what, predicate, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_matching_events_reach_the_other_vault_once_across_restarts(vault, tmp_path):
    edge = vault
    central = Vault(tmp_path / "central", "--seal-age", "1s").start()
    try:
        env = edge.env()
        env.update({"TRAILVAULT_ENDPOINT": edge.url,
                    "TRAILVAULT_DESTINATION_ACCESS_KEY_ID": central.key_id(),
                    "TRAILVAULT_DESTINATION_SECRET_ACCESS_KEY": central.secret()})
        p = subprocess.run([binary(), "alarms", "vault", "central", central.url,
                            "--group", CENTRAL_GROUP, "--stream", CENTRAL_STREAM],
                           env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        arn = p.stdout.strip()
        assert arn == "arn:trailvault:vault:central"

        logs = edge.boto3()
        logs.create_log_group(logGroupName=GROUP)
        logs.create_log_stream(logGroupName=GROUP, logStreamName=STREAM)
        logs.put_subscription_filter(logGroupName=GROUP, filterName="errors-to-central",
                                     filterPattern='{ $.level = "ERROR" }', destinationArn=arn)
        described = logs.describe_subscription_filters(logGroupName=GROUP)["subscriptionFilters"]
        assert [f["destinationArn"] for f in described] == [arn]
        assert central.secret() not in json.dumps(described, default=str)

        def ev(level, n):
            return json.dumps({"level": level, "n": n})

        put(logs, ev("ERROR", 1), ev("INFO", 2), ev("ERROR", 3))
        put(logs, ev("WARN", 4), "ERROR but not JSON")
        wait_for("the first forward", lambda: len(arrived(central)) == 2)

        # The destination goes down: the events wait in the edge vault and arrive later.
        central.stop()
        put(logs, ev("ERROR", 5), ev("INFO", 6))
        time.sleep(1.0)
        central.start(central.port)
        wait_for("delivery after the destination came back", lambda: len(arrived(central)) == 3)

        # The source restarts: its durable checkpoint neither loses nor repeats.
        edge.stop()
        edge.start()
        logs = edge.boto3()
        put(logs, ev("ERROR", 7), ev("DEBUG", 8))
        wait_for("delivery after the source restarted", lambda: len(arrived(central)) == 4)
        time.sleep(1.5)  # a duplicate would have arrived by now

        want = [ev("ERROR", n) for n in (1, 3, 5, 7)]
        assert arrived(central) == want
        streams = central.boto3().describe_log_streams(logGroupName=CENTRAL_GROUP)["logStreams"]
        assert [s["logStreamName"] for s in streams] == [CENTRAL_STREAM]
        assert central.secret() not in (tmp_path / "vault.log").read_text(errors="replace")
    finally:
        central.stop()
