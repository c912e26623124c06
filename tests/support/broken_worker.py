#!/usr/bin/env python3
"""A deliberately broken pull worker, for `tests/cli_conformance_pull.rs`: the reference gRPC
worker (`examples/grpc-python/worker.py`, imported, not copied) with the faults named in BROKEN
(comma-separated), each one mistake `onedoor conformance --worker-cmd` must catch and name.

  act-twice        forgets the event ids it handled and keys every write afresh, so a
                   redelivered or repeated item is worked again
  crash-on-large   exits when a task's instructions exceed 1000 bytes
  stop-on-refusal  treats every refusal as worth retrying, so an item it cannot act on (its
                   case withdrawn) is never acknowledged

It takes the reference worker's flags.
"""

import importlib.util
import os
import sys
import uuid
from pathlib import Path

WORKER = Path(__file__).resolve().parents[2] / "examples" / "grpc-python" / "worker.py"
FAULTS = set(filter(None, os.environ.get("BROKEN", "").split(",")))

spec = importlib.util.spec_from_file_location("reference_worker", WORKER)
reference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reference)


class ForgetfulStore(reference.Store):
    def seen(self, event_id):
        return False

    def record(self, event_id, case_id, kind, result):
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO handled VALUES (?, ?, ?, ?, ?)",
                            (event_id, case_id, kind, str(result), 0))


class BrokenWorker(reference.Worker):
    def __init__(self, args, pb, pb_grpc):
        super().__init__(args, pb, pb_grpc)
        if "act-twice" in FAULTS:
            self.store = ForgetfulStore(args.state)

    def act(self, item, kind):
        instructions = item.event.handed_off.instructions if item.event.HasField("handed_off") else ""
        if "crash-on-large" in FAULTS and len(instructions.encode()) > 1000:
            sys.exit("broken worker: instructions too long for my column")
        if "act-twice" not in FAULTS:
            return super().act(item, kind)
        # A fresh event id in every key: the adapter cannot tell a retry from new work.
        event_id = item.event.event_id
        item.event.event_id = str(uuid.uuid4())
        try:
            return super().act(item, kind)
        finally:
            item.event.event_id = event_id


if "stop-on-refusal" in FAULTS:
    reference.FINAL_REFUSALS = set()
reference.Worker = BrokenWorker

if __name__ == "__main__":
    try:
        reference.main()
    except KeyboardInterrupt:
        sys.exit(130)
