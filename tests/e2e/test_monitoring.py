"""Monitoring end to end: the CIS pack installed with the CLI, CloudTrail records put with the
AWS CLI, an alarm driving a real webhook receiver and a command, the transition recorded in
the protected trailvault/alarms group, and the alarm back to OK (signed OK notification) once
the breaching datapoint has left the evaluation window."""
import hashlib
import hmac
import http.server
import json
import subprocess
import threading
import time

from conftest import binary


class Receiver(http.server.BaseHTTPRequestHandler):
    received = []
    ok_received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        (Receiver.ok_received if self.path == "/ok" else Receiver.received).append((dict(self.headers.items()), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def cli(vault, *args):
    env = vault.env()
    env["TRAILVAULT_ENDPOINT"] = vault.url
    p = subprocess.run([binary(), *args], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def signed(secret, headers, body):
    want = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    sig = {k.lower(): v for k, v in headers.items()}["x-trailvault-signature"]
    return hmac.compare_digest(sig, want)


# The pack is installed with 10-second periods so the test sees the way back to OK quickly. An
# alarm looks at N + 2 = 3 periods (30 s), and metric data is kept per minute (a minute's data
# sits at the minute's start), so the logins must be put early in a minute for the ALARM to
# last long enough to observe; it returns to OK 30 s after that minute started.
PERIOD_S = 10
PUT_BEFORE_SECOND = 12


def test_failed_console_logins_fire_the_cis_alarm_then_return_to_ok(vault, tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Receiver.received.clear()
    Receiver.ok_received.clear()
    marker = tmp_path / "command-ran"
    try:
        secret = "s3cret-for-tests"
        hook = cli(vault, "alarms", "webhook", "ops", f"http://127.0.0.1:{server.server_port}/hook",
                   "--secret", secret).strip()
        cmd = cli(vault, "alarms", "command", "disable-key", "--", "sh", "-c",
                  f'echo "$TRAILVAULT_ALARM_NAME $TRAILVAULT_ALARM_NEW_STATE" >> {marker}').strip()
        ok_hook = cli(vault, "alarms", "webhook", "ops-ok", f"http://127.0.0.1:{server.server_port}/ok",
                      "--secret", secret).strip()
        assert hook == "arn:trailvault:webhook:ops" and cmd == "arn:trailvault:command:disable-key"
        vault.aws("create-log-group", "--log-group-name", "org/cloudtrail")
        vault.aws("create-log-stream", "--log-group-name", "org/cloudtrail", "--log-stream-name", "s")
        out = cli(vault, "rules", "install", "cis-aws", "--group", "org/cloudtrail", "--action", hook, "--action", cmd,
                  "--ok-action", ok_hook, "--period", str(PERIOD_S))
        assert "15 metric filters" in out

        if time.time() % 60 >= PUT_BEFORE_SECOND:
            time.sleep(60 - time.time() % 60 + 0.2)
        now = int(time.time() * 1000)
        minute_start = now - now % 60_000
        failed = {"eventVersion": "1.09", "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin",
                  "userIdentity": {"type": "IAMUser", "userName": "mallory"}, "errorMessage": "Failed authentication",
                  "sourceIPAddress": "203.0.113.66"}
        events = [{"timestamp": now + i, "message": json.dumps(failed)} for i in range(3)]
        vault.aws("put-log-events", "--log-group-name", "org/cloudtrail", "--log-stream-name", "s",
                  "--log-events", json.dumps(events))

        deadline = time.time() + 20
        state = None
        while time.time() < deadline:
            alarms = json.loads(cli(vault, "alarms", "list", "--output", "json"))
            state = {a["AlarmName"]: a["StateValue"] for a in alarms}
            if state.get("cis-aws-console-auth-failures") == "ALARM" and Receiver.received and marker.exists():
                break
            time.sleep(0.3)
        assert state.get("cis-aws-console-auth-failures") == "ALARM", state
        # Only that control breached.
        assert [n for n, s in state.items() if s == "ALARM"] == ["cis-aws-console-auth-failures"]
        time.sleep(1.5)  # any duplicate delivery would have arrived by now
        assert len(Receiver.received) == 1, Receiver.received
        headers, body = Receiver.received[0]
        want = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        sig = {k.lower(): v for k, v in headers.items()}["x-trailvault-signature"]
        assert hmac.compare_digest(sig, want)
        assert signed(secret, headers, body)
        note = json.loads(body)
        assert note["alarmName"] == "cis-aws-console-auth-failures" and note["newState"] == "ALARM"
        assert marker.read_text().splitlines() == ["cis-aws-console-auth-failures ALARM"]

        recorded = vault.boto3().filter_log_events(logGroupName="trailvault/alarms")["events"]
        transitions = [json.loads(e["message"]) for e in recorded]
        assert any(t["alarmName"] == "cis-aws-console-auth-failures" and t["newState"] == "ALARM" for t in transitions)
        p = vault.aws("delete-log-group", "--log-group-name", "trailvault/alarms", check=False)
        assert p.returncode != 0, "the alarms group holds evidence and cannot be deleted"

        # The metric the alarm watched is a time series the CLI lists and reads.
        listed = [json.loads(l) for l in cli(vault, "metrics", "list", "--namespace", "CISBenchmark", "--output", "json").splitlines()]
        assert {"Namespace": "CISBenchmark", "MetricName": "ConsoleAuthenticationFailures", "Dimensions": []} in listed
        points = [json.loads(l) for l in cli(vault, "metrics", "get", "CISBenchmark", "ConsoleAuthenticationFailures",
                                            "--from", "1h", "--period", "3600", "--statistic", "Sum", "--output", "json").splitlines()]
        assert sum(p["Sum"] for p in points) == 3, points
        table = cli(vault, "metrics", "get", "CISBenchmark", "ConsoleAuthenticationFailures", "--from", "1h", "--period", "3600")
        assert table.splitlines()[0].split() == ["TIME", "Sum"], table

        # After the window (3 periods from the minute the logins fall in) the alarm is OK again,
        # and the OK action got exactly one signed ALARM -> OK notification.
        def back_to_ok():
            return [(h, b) for h, b in Receiver.ok_received
                    if json.loads(b)["alarmName"] == "cis-aws-console-auth-failures"
                    and json.loads(b)["oldState"] == "ALARM"]
        deadline = minute_start / 1000 + 3 * PERIOD_S + 10
        while time.time() < deadline and not back_to_ok():
            time.sleep(0.3)
        alarms = json.loads(cli(vault, "alarms", "list", "--output", "json"))
        state = {a["AlarmName"]: a["StateValue"] for a in alarms}
        assert state["cis-aws-console-auth-failures"] == "OK", state
        time.sleep(1.5)  # any duplicate delivery would have arrived by now
        ok_notes = back_to_ok()
        assert len(ok_notes) == 1, Receiver.ok_received
        headers, body = ok_notes[0]
        assert signed(secret, headers, body)
        note = json.loads(body)
        assert note["newState"] == "OK"
        assert time.time() >= minute_start / 1000 + 3 * PERIOD_S, "OK before the window ended"
        assert len(Receiver.received) == 1, "no second ALARM notification"
        assert marker.read_text().splitlines() == ["cis-aws-console-auth-failures ALARM"]
        recorded = vault.boto3().filter_log_events(logGroupName="trailvault/alarms")["events"]
        transitions = [json.loads(e["message"]) for e in recorded]
        mine = [(t["oldState"], t["newState"]) for t in transitions
                if t["alarmName"] == "cis-aws-console-auth-failures"]
        assert [new for _, new in mine][-2:] == ["ALARM", "OK"] and mine[-1] == ("ALARM", "OK"), mine
    finally:
        server.shutdown()
