"""Monitoring end to end: the CIS pack installed with the CLI, CloudTrail records put with the
AWS CLI, an alarm driving a real webhook receiver and a command, and the transition recorded in
the protected trailvault/alarms group."""
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

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((dict(self.headers.items()), body))
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


def test_failed_console_logins_fire_the_cis_alarm(vault, tmp_path):
    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Receiver.received.clear()
    marker = tmp_path / "command-ran"
    try:
        secret = "s3cret-for-tests"
        hook = cli(vault, "alarms", "webhook", "ops", f"http://127.0.0.1:{server.server_port}/hook",
                   "--secret", secret).strip()
        cmd = cli(vault, "alarms", "command", "disable-key", "--", "sh", "-c",
                  f'echo "$TRAILVAULT_ALARM_NAME $TRAILVAULT_ALARM_NEW_STATE" >> {marker}').strip()
        assert hook == "arn:trailvault:webhook:ops" and cmd == "arn:trailvault:command:disable-key"
        vault.aws("create-log-group", "--log-group-name", "org/cloudtrail")
        vault.aws("create-log-stream", "--log-group-name", "org/cloudtrail", "--log-stream-name", "s")
        out = cli(vault, "rules", "install", "cis-aws", "--group", "org/cloudtrail", "--action", hook, "--action", cmd)
        assert "15 metric filters" in out

        now = int(time.time() * 1000)
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
        note = json.loads(body)
        assert note["alarmName"] == "cis-aws-console-auth-failures" and note["newState"] == "ALARM"
        assert marker.read_text().splitlines() == ["cis-aws-console-auth-failures ALARM"]

        recorded = vault.boto3().filter_log_events(logGroupName="trailvault/alarms")["events"]
        transitions = [json.loads(e["message"]) for e in recorded]
        assert any(t["alarmName"] == "cis-aws-console-auth-failures" and t["newState"] == "ALARM" for t in transitions)
        p = vault.aws("delete-log-group", "--log-group-name", "trailvault/alarms", check=False)
        assert p.returncode != 0, "the alarms group holds evidence and cannot be deleted"
    finally:
        server.shutdown()
