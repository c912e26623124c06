#!/usr/bin/env python3
"""A reference worker for one agency, over gRPC with grpcio (docs/integration.md).

It reads its agency's inbox (`AgencyGateway.Inbox`) and, for each item:

- NEW_TASK: accepts the task, hands the case on to `--hand-on` if given, and completes it;
- INFO_ANSWER: completes the task the answer was for;
- anything else (accepted, completed, sent back, resolved, withdrawn...): notes it;

then acknowledges it (`Ack`). It takes each item in at most once, by its `event_id`: the ids
it has handled are kept in SQLite (`--state`), recorded only after the work is stored and
before the ack, so a redelivered item (lost ack, crash, reconnect) is acknowledged without
being acted on again. Every write's idempotency key is derived from the item's event id, so
even work redone after a crash before that record writes nothing twice.

    python3 worker.py --adapter http://127.0.0.1:PORT --token T --agency MOIC
    python3 worker.py --adapter https://127.0.0.1:PORT --ca ca.pem --token T --agency MOIC \\
                      --state moic.sqlite3 --hand-on MOF

The stubs are generated at start from the contract in `proto/` (grpcio-tools) into a
temporary directory: nothing generated is kept. It prints one JSON line per item and runs
until it is stopped.
"""

import argparse
import importlib.resources
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import grpc
from grpc_tools import protoc

PROTO_DIR = Path(__file__).resolve().parent.parent.parent / "proto"
PROTO_FILES = ["onedoor/v1/gateway.proto", "onedoor/v1/case.proto", "onedoor/v1/event.proto"]

# Writes answered UNAVAILABLE or ABORTED are retried by grpcio itself (the channel's retry
# policy) with the same request, hence the same idempotency key: a retry of a write that
# landed returns its first receipt.
SERVICE_CONFIG = json.dumps({"methodConfig": [{
    "name": [{"service": "onedoor.v1.AgencyGateway"}],
    "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.2s", "maxBackoff": "5s",
                    "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE", "ABORTED"]},
}]})

# Refusals that another try cannot change (the case moved on: resolved, withdrawn, the task
# closed): the item is recorded as refused and acknowledged, not retried forever.
FINAL_REFUSALS = {grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.PERMISSION_DENIED,
                  grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT,
                  grpc.StatusCode.ALREADY_EXISTS}
# Kinds that end a task this agency held: the local task is closed, nothing is written.
CLOSING_KINDS = {"TASK_TAKEN_BACK", "CASE_RESOLVED", "CASE_WITHDRAWN"}


def load_stubs():
    """Compiles the contract into a temporary directory and imports it."""
    out = tempfile.mkdtemp(prefix="onedoor-stubs-")
    include = str(importlib.resources.files("grpc_tools") / "_proto")
    status = protoc.main(["grpc_tools.protoc", f"-I{PROTO_DIR}", f"-I{include}",
                          f"--python_out={out}", f"--grpc_python_out={out}", *PROTO_FILES])
    if status != 0:
        sys.exit(f"worker: protoc failed on {PROTO_DIR}")
    sys.path.insert(0, out)
    from onedoor.v1 import gateway_pb2, gateway_pb2_grpc  # noqa: E402 (generated above)
    return gateway_pb2, gateway_pb2_grpc


class Store:
    """The event ids this worker has taken in, with what it did (the ministry's database)."""

    def __init__(self, path):
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS handled (event_id TEXT PRIMARY KEY,"
                        " case_id TEXT, kind TEXT, result TEXT, at REAL)")
        self.db.commit()

    def seen(self, event_id):
        row = self.db.execute("SELECT 1 FROM handled WHERE event_id = ?", (event_id,))
        return row.fetchone() is not None

    def record(self, event_id, case_id, kind, result):
        # The primary key makes a second record of the same id fail instead of doubling it.
        with self.db:
            self.db.execute("INSERT INTO handled VALUES (?, ?, ?, ?, ?)",
                            (event_id, case_id, kind, json.dumps(result), time.time()))


class Worker:
    def __init__(self, args, pb, pb_grpc):
        self.args, self.pb = args, pb
        target = args.adapter.split("://", 1)[-1].rstrip("/")
        options = [("grpc.service_config", SERVICE_CONFIG), ("grpc.enable_retries", 1)]
        if args.adapter.startswith("https://"):
            roots = Path(args.ca).read_bytes() if args.ca else None
            if args.tls_server_name:
                options.append(("grpc.ssl_target_name_override", args.tls_server_name))
            channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(roots), options)
        else:
            channel = grpc.insecure_channel(target, options)
        self.stub = pb_grpc.AgencyGatewayStub(channel)
        self.store = Store(args.state)

    def metadata(self, traceparent=None):
        pairs = [("authorization", f"Bearer {self.args.token}")]
        if traceparent:
            # The calls about an item continue the case's trace.
            pairs.append(("traceparent", traceparent))
        return pairs

    def act(self, item, kind):
        """Does the agency's part for `item`; the writes it made, by event kind."""
        pb, event, key = self.pb, item.event, item.event.event_id
        meta, actor, writes = self.metadata(item.traceparent), "reference-worker-python", []
        if kind == "NEW_TASK":
            self.stub.Accept(pb.AcceptRequest(case_id=event.case_id, idempotency_key=f"accept:{key}",
                                              actor=actor), metadata=meta, timeout=30)
            writes.append("accepted")
            if self.args.hand_on:
                self.stub.HandOff(pb.HandOffRequest(
                    case_id=event.case_id, to_agency=self.args.hand_on, actor=actor,
                    instructions=f"passed on by {self.args.agency}",
                    idempotency_key=f"hand-on:{key}"), metadata=meta, timeout=30)
                writes.append("handed_off")
        if kind in ("NEW_TASK", "INFO_ANSWER"):
            self.stub.Complete(pb.CompleteRequest(case_id=event.case_id, outcome=self.args.outcome,
                                                  idempotency_key=f"complete:{key}", actor=actor),
                               metadata=meta, timeout=30)
            writes.append("completed")
        return writes

    def handle(self, item):
        event = item.event
        kind = self.pb.InboxItemKind.Name(item.kind).removeprefix("INBOX_ITEM_KIND_")
        line = {"event": event.event_id, "kind": kind, "case": event.case_id,
                "attempt": item.delivery_attempt, "trace": item.traceparent}
        if self.store.seen(event.event_id):
            line = {"duplicate": event.event_id, "attempt": item.delivery_attempt}
        else:
            try:
                line["writes"] = self.act(item, kind)
                if kind in CLOSING_KINDS:
                    line["closed_task"] = event.case_id
            except grpc.RpcError as error:
                if error.code() not in FINAL_REFUSALS:
                    raise  # not acknowledged: the item comes again
                line["refused"] = {"code": error.code().name, "message": error.details()}
            # Recorded once the work is stored, acknowledged once recorded.
            self.store.record(event.event_id, event.case_id, kind, line)
            if self.args.crash_before_ack:
                print(json.dumps(line), flush=True)
                os._exit(3)
        self.stub.Ack(self.pb.AckRequest(event_ids=[event.event_id]),
                      metadata=self.metadata(item.traceparent), timeout=30)
        print(json.dumps(line), flush=True)

    def run(self):
        """Reads the inbox forever, reconnecting when the stream ends or fails."""
        failures = 0
        while True:
            try:
                # wait_for_ready: while the adapter is down, grpcio's own connection back-off
                # paces the reconnection.
                for item in self.stub.Inbox(self.pb.InboxRequest(), metadata=self.metadata(),
                                            wait_for_ready=True):
                    self.handle(item)
                    failures = 0
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.UNAUTHENTICATED:
                    sys.exit(f"worker: {error.details()}")
                print(json.dumps({"stream": error.code().name, "message": error.details()}),
                      file=sys.stderr, flush=True)
                failures += 1
            # A stream the adapter ended or refused (the bus unreachable): try again, waiting
            # longer after each failure in a row, up to 30 s.
            time.sleep(min(30.0, 0.5 * 2 ** failures) if failures else 0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--adapter", required=True,
                        help="the agency's adapter: http://HOST:PORT, or https:// with TLS")
    parser.add_argument("--token", required=True, help="the agency's bearer token")
    parser.add_argument("--agency", required=True, help="the agency's code, e.g. MOIC")
    parser.add_argument("--ca", help="CA certificate (PEM) the adapter's TLS certificate is from")
    parser.add_argument("--tls-server-name", help="name to check the adapter's certificate for")
    parser.add_argument("--state", default=":memory:",
                        help="SQLite file of handled event ids (kept across restarts)")
    parser.add_argument("--hand-on", help="after accepting a new task, hand the case on to this agency")
    parser.add_argument("--outcome", default="approved", help="the outcome each task completes with")
    parser.add_argument("--crash-before-ack", action="store_true",
                        help="for tests: exit abruptly after recording the first new item, before its ack")
    args = parser.parse_args()
    pb, pb_grpc = load_stubs()
    Worker(args, pb, pb_grpc).run()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
