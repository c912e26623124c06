#!/usr/bin/env python3
"""A reference worker for onedoor's HTTP/JSON face (docs/http-json.md), with Python's requests.

It plays both sides of one hand-off, as two ministry systems would:

1. the front office opens a case and hands it to a ministry;
2. the ministry's worker reads its inbox (Server-Sent Events), de-duplicates by event id,
   accepts and completes the task, and acknowledges the item only after that;
3. the front office reads the `completed` event from its own inbox, acknowledges it, and reads
   the case.

Every write carries an idempotency key derived from what it answers (the run id, the event
id), so running it again, or retrying after a timeout, 503 or 409, writes nothing twice.

    python3 worker.py --endpoints .onedoor/endpoints.json --front ODSC-VTE-SAYSETTHA --ministry MOIC
    python3 worker.py --front-url http://127.0.0.1:PORT --front-token T \
                      --ministry-url http://127.0.0.1:PORT2 --ministry-token T2 --ministry MOIC

It prints one JSON line: the case id, its trace id and its status.

With `--serve` it is the ministry's worker alone, as a ministry would run it: it reads the
inbox for ever (reconnecting when the stream ends), accepts and completes each new task,
completes the task an information answer is for, notes every other item, and acknowledges each
one; a refusal no retry can change (the case moved on: withdrawn, resolved) is noted and
acknowledged. It prints one JSON line per item.

    python3 worker.py --serve --ministry-url http://127.0.0.1:PORT --ministry-token T --ministry MOIC
"""

import argparse
import json
import sys
import time
import uuid

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

# ABORTED, UNAVAILABLE, DEADLINE_EXCEEDED: retried with the same body, hence the same
# idempotency key, so a retry of a write that landed gets the first receipt. urllib3 backs off
# exponentially (0.2 s, 0.4 s, ...) between tries; every onedoor call is a POST, which it
# retries only when told to.
RETRIES = Retry(total=4, status_forcelist=(409, 503, 504), allowed_methods=frozenset({"POST"}),
                backoff_factor=0.2, raise_on_status=False)


# Refusals that another try cannot change: the item is noted and acknowledged, not retried.
FINAL_REFUSALS = {"FAILED_PRECONDITION", "PERMISSION_DENIED", "NOT_FOUND", "INVALID_ARGUMENT",
                  "ALREADY_EXISTS"}


class CallFailed(RuntimeError):
    """A call answered with the one error shape: its gRPC code name and message."""

    def __init__(self, method, status, error):
        self.code, self.message = error.get("code"), error.get("message")
        super().__init__(f"{method}: {status} {self.code}: {self.message}"
                         f" (field {error.get('field')}, trace {error.get('traceparent')})")


class Gateway:
    """One agency's adapter, over HTTP/JSON."""

    def __init__(self, url, token, ca=None):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.session.mount(self.url, HTTPAdapter(max_retries=RETRIES))
        # Per request, not on the session: requests lets REQUESTS_CA_BUNDLE override a
        # session's verify, and the bus's own CA must win.
        self.verify = ca if ca else True

    def call(self, method, body):
        answer = self.session.post(f"{self.url}/v1/{method}", json=body, timeout=30,
                                   verify=self.verify)
        if answer.status_code == 200:
            return answer.json()
        raise CallFailed(method, answer.status_code, answer.json())

    def inbox(self):
        """Yields inbox items as they arrive; an `error` event raises."""
        with self.session.post(f"{self.url}/v1/Inbox", stream=True, timeout=(10, 60),
                               verify=self.verify,
                               headers={"Accept": "text/event-stream"}) as stream:
            if stream.status_code != 200:
                error = stream.json()
                raise RuntimeError(f"Inbox: {stream.status_code} {error['code']}: {error['message']}")
            event, data = "message", []
            for line in stream.iter_lines(decode_unicode=True):
                if line.startswith(":"):
                    continue  # keep-alive
                if line.startswith("event:"):
                    event = line[len("event:"):].strip()
                elif line.startswith("data:"):
                    data.append(line[len("data:"):].lstrip())
                elif line == "" and data:
                    payload = json.loads("\n".join(data))
                    if event == "error":
                        raise RuntimeError(f"Inbox: {payload['code']}: {payload['message']}")
                    yield payload
                    event, data = "message", []


def ministry_takes(ministry, case_id, seen):
    """Works the ministry's inbox until the task on `case_id` is done and acknowledged."""
    for item in ministry.inbox():
        event = item["event"]
        event_id = event["eventId"]
        if event_id not in seen and "handedOff" in event:
            # The work, idempotent by the event it answers: a redelivery writes nothing new.
            act(ministry, event, "NEW_TASK")
        seen.add(event_id)
        # Acknowledge only once the work is stored: an item lost before this comes again.
        ministry.call("Ack", {"eventIds": [event_id]})
        if event["caseId"] == case_id:
            return


def act(ministry, event, kind):
    """The ministry's part for one item; the writes it made. Keys come from the event id."""
    case_id, event_id, writes = event["caseId"], event["eventId"], []
    if kind == "NEW_TASK":
        ministry.call("Accept", {"caseId": case_id, "idempotencyKey": f"accept-{event_id}",
                                 "actor": "reference-worker"})
        writes.append("accepted")
    if kind in ("NEW_TASK", "INFO_ANSWER"):
        ministry.call("Complete", {"caseId": case_id, "outcome": "approved",
                                   "idempotencyKey": f"complete-{event_id}",
                                   "actor": "reference-worker"})
        writes.append("completed")
    return writes


def handle(ministry, item, seen):
    """One item, taken in at most once by its event id, then acknowledged."""
    event = item["event"]
    event_id = event["eventId"]
    kind = item.get("kind", "").removeprefix("INBOX_ITEM_KIND_")
    attempt = item.get("deliveryAttempt", 1)
    line = {"event": event_id, "kind": kind, "case": event["caseId"], "attempt": attempt}
    if event_id in seen:
        line = {"duplicate": event_id, "attempt": attempt}
    else:
        try:
            line["writes"] = act(ministry, event, kind)
        except CallFailed as error:
            if error.code not in FINAL_REFUSALS:
                raise  # not acknowledged: the item comes again
            line["refused"] = {"code": error.code, "message": error.message}
        seen.add(event_id)
    ministry.call("Ack", {"eventIds": [event_id]})
    print(json.dumps(line), flush=True)


def serve(ministry):
    """Reads the ministry's inbox for ever, reconnecting when the stream ends or fails."""
    seen, failures = set(), 0
    while True:
        try:
            for item in ministry.inbox():
                handle(ministry, item, seen)
                failures = 0
        except (requests.RequestException, RuntimeError) as error:
            print(json.dumps({"stream": str(error)}), file=sys.stderr, flush=True)
            failures += 1
        # Waiting longer after each failure in a row, up to 30 s.
        time.sleep(min(30.0, 0.5 * 2 ** failures) if failures else 0)


def front_learns(front, case_id):
    """Reads the front office's inbox until the `completed` event of `case_id`; acks each item."""
    for item in front.inbox():
        event = item["event"]
        front.call("Ack", {"eventIds": [event["eventId"]]})
        if event["caseId"] == case_id and "completed" in event:
            return event["completed"]["outcome"]


def gateways(args):
    if args.endpoints:
        with open(args.endpoints, encoding="utf-8") as file:
            endpoints = json.load(file)
        ca = endpoints.get("tls_ca_cert")

        def gateway(code):
            agency = endpoints["agencies"][code]
            return Gateway(agency.get("json") or agency["grpc"], agency["token"], ca)

        return gateway(args.front) if not args.serve else None, gateway(args.ministry)
    front = None if args.serve else Gateway(args.front_url, args.front_token, args.ca)
    return front, Gateway(args.ministry_url, args.ministry_token, args.ca)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--endpoints", help="endpoints.json written by `onedoor up`")
    parser.add_argument("--front", default="ODSC-VTE-SAYSETTHA")
    parser.add_argument("--ministry", default="MOIC")
    parser.add_argument("--front-url")
    parser.add_argument("--front-token")
    parser.add_argument("--ministry-url")
    parser.add_argument("--ministry-token")
    parser.add_argument("--ca", help="CA certificate (PEM) when the adapters serve TLS")
    parser.add_argument("--service", default="enterprise-registration")
    parser.add_argument("--run-id", default=str(uuid.uuid4()),
                        help="names this run's writes: the same id again writes nothing new")
    parser.add_argument("--serve", action="store_true",
                        help="be the ministry's worker alone: read its inbox until stopped")
    args = parser.parse_args()
    front, ministry = gateways(args)
    if args.serve:
        serve(ministry)

    receipt = front.call("OpenCase", {"service": args.service, "citizenRef": f"REF-{args.run_id[:8]}",
                                      "summary": "reference worker case",
                                      "idempotencyKey": f"open-{args.run_id}"})
    case_id = receipt["caseId"]
    front.call("HandOff", {"caseId": case_id, "toAgency": args.ministry,
                           "instructions": "please review", "idempotencyKey": f"hand-{args.run_id}"})
    ministry_takes(ministry, case_id, seen=set())
    outcome = front_learns(front, case_id)
    view = front.call("GetCase", {"caseId": case_id})
    print(json.dumps({"caseId": case_id, "traceId": receipt["traceId"], "status": view["status"],
                      "outcome": outcome, "events": len(view["events"])}))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
