#!/usr/bin/env python3
"""A reference receiver for onedoor inbox webhooks, Python standard library only.

It verifies each POST's Standard Webhooks signature, refuses stale timestamps, and handles
each item once: the item's `webhook-id` (the event id) is recorded in the same SQLite
transaction as the work, so a redelivery is answered 200 and done nothing with.

Settings (environment):
  WEBHOOK_SECRETS  one or more `whsec_...` secrets separated by spaces (two while rotating)
  HOST, PORT       where to listen (default 127.0.0.1:8080; PORT=0 picks a free port)
  DB               the SQLite file of handled ids (default ./onedoor-webhook.sqlite3)

Prints one JSON line per request on stdout ({"accepted": id, ...}, {"duplicate": id},
{"rejected": id, "why": ...}) after a first line `listening on http://HOST:PORT/`.
"""

import base64
import hashlib
import hmac
import json
import os
import sqlite3
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_SECONDS = 5 * 60
MAX_BODY_BYTES = 1 << 20  # inbox items are a few KiB; refuse anything absurd
PRINT_LOCK = threading.Lock()


def load_secrets(text):
    keys = []
    for secret in text.split():
        if not secret.startswith("whsec_"):
            raise SystemExit("WEBHOOK_SECRETS: each secret starts with whsec_")
        keys.append(base64.b64decode(secret[len("whsec_"):], validate=True))
    if not keys:
        raise SystemExit("WEBHOOK_SECRETS is empty")
    return keys


def verify(keys, msg_id, timestamp, body, header):
    """None when a v1 signature in `header` is by one of `keys`, else why not."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return "webhook-timestamp is not a number"
    if abs(time.time() - sent_at) > TOLERANCE_SECONDS:
        return "webhook-timestamp is more than 5 minutes off"
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = [
        base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()) for key in keys
    ]
    for part in header.split(" "):
        version, _, signature = part.partition(",")
        if version != "v1":
            continue
        if any(hmac.compare_digest(signature.encode(), e) for e in expected):
            return None
    return "no signature matches"


def say(**fields):
    with PRINT_LOCK:
        print(json.dumps(fields), flush=True)


class Handler(BaseHTTPRequestHandler):
    keys = []
    db_path = ""

    def log_message(self, *args):  # stdout is for the JSON lines
        pass

    def answer(self, status, **fields):
        # {"outcome": "processed"|"duplicate"} on a 2xx tells `onedoor conformance` whether
        # the item was acted on (docs/integration.md); the adapter ignores the body.
        body = json.dumps(fields).encode() if fields else b""
        self.send_response(status)
        if body:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        msg_id = self.headers.get("webhook-id", "")
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            say(rejected=msg_id, why="body too large")
            return self.answer(413, error="body too large")
        body = self.rfile.read(length)
        why = verify(
            self.keys,
            msg_id,
            self.headers.get("webhook-timestamp", ""),
            body,
            self.headers.get("webhook-signature", ""),
        )
        if why:
            say(rejected=msg_id, why=why)
            return self.answer(401, error=why)
        try:
            item = json.loads(body)
            event = item.get("event", {})
        except (ValueError, AttributeError):
            say(rejected=msg_id, why="body is not an inbox item")
            return self.answer(400, error="body is not an inbox item")
        with sqlite3.connect(self.db_path) as db:  # one transaction: work + "seen"
            seen = db.execute(
                "INSERT OR IGNORE INTO handled (webhook_id) VALUES (?)", (msg_id,)
            ).rowcount == 0
            if seen:
                say(duplicate=msg_id)
            else:
                # The ministry's own work goes here, in this transaction.
                say(
                    accepted=msg_id,
                    case=event.get("caseId"),
                    attempt=item.get("deliveryAttempt"),
                )
        self.answer(200, outcome="duplicate" if seen else "processed")


def main():
    Handler.keys = load_secrets(os.environ.get("WEBHOOK_SECRETS", ""))
    Handler.db_path = os.environ.get("DB", "onedoor-webhook.sqlite3")
    with sqlite3.connect(Handler.db_path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS handled (webhook_id TEXT PRIMARY KEY)")
    host = os.environ.get("HOST", "127.0.0.1")
    server = ThreadingHTTPServer((host, int(os.environ.get("PORT", "8080"))), Handler)
    print(f"listening on http://{host}:{server.server_address[1]}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
