#!/usr/bin/env python3
"""A deliberately broken webhook receiver, for `tests/cli_conformance.rs`: each fault named in
BROKEN (comma-separated) is one mistake `onedoor conformance` must catch and name.

  skip-signature      accepts anything, signed or not, old or new
  act-twice           does the work again for a webhook-id it already handled
  refuse-out-of-order answers 409 to a notice about a task it has not been given yet
  crash-on-large      answers 500 to a body over 4 KiB
  slow                answers a valid item only after SLOW_SECONDS (the fault under test,
                      not a wait for anything)

WEBHOOK_SECRETS holds the `whsec_...` secret. Listens on 127.0.0.1, PORT=0 for a free port;
prints `listening on http://127.0.0.1:PORT/` first.
"""

import base64
import hashlib
import hmac
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = set(filter(None, os.environ.get("BROKEN", "").split(",")))
KEY = base64.b64decode(os.environ["WEBHOOK_SECRETS"].strip()[len("whsec_"):])
SEEN = set()
TASKS = set()
LOCK = threading.Lock()


def signed_well(headers, body):
    ts = headers.get("webhook-timestamp", "")
    if not ts.isdigit() or abs(time.time() - int(ts)) > 300:
        return False
    msg = headers.get("webhook-id", "").encode() + b"." + ts.encode() + b"." + body
    mac = base64.b64encode(hmac.new(KEY, msg, hashlib.sha256).digest()).decode()
    return any(
        hmac.compare_digest("v1," + mac, part)
        for part in headers.get("webhook-signature", "").split(" ")
    )


class Broken(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, **fields):
        body = json.dumps(fields).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except BrokenPipeError:  # `slow`: the sender gave up waiting, as it should
            pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if "skip-signature" not in FAULTS and not signed_well(self.headers, body):
            return self.reply(401, error="bad signature")
        if "crash-on-large" in FAULTS and len(body) > 4096:
            return self.reply(500, error="value too long for column")
        if "slow" in FAULTS:
            time.sleep(float(os.environ.get("SLOW_SECONDS", "2")))
        event = json.loads(body).get("event", {})
        case = event.get("caseId")
        with LOCK:
            if "handedOff" in event:
                TASKS.add(case)
            elif "refuse-out-of-order" in FAULTS and case not in TASKS:
                return self.reply(409, error="no task on this case")
            msg_id = self.headers.get("webhook-id")
            if msg_id in SEEN and "act-twice" not in FAULTS:
                return self.reply(200, outcome="duplicate")
            SEEN.add(msg_id)
        self.reply(200, outcome="processed")


def main():
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "0"))), Broken)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
