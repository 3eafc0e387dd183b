"""One process publishing to, or consuming from, the embedded broker (tests/ipvas/test_broker.py).

    python -m tests.ipvas.broker_peer publish ROOT PREFIX COUNT
    python -m tests.ipvas.broker_peer consume ROOT OUT_FILE STOP_FILE

A consumer takes messages until STOP_FILE exists and the queue has stayed empty
for a second, writing each message's id on its own line of OUT_FILE.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from queue import Empty

from kombu import Connection

TRANSPORT = "ipvas.broker:FilesystemTransport"


def connection(root: str, transport: str = TRANSPORT) -> Connection:
    for sub in ("queue", "control"):
        Path(root, sub).mkdir(parents=True, exist_ok=True)
    options = {
        "data_folder_in": f"{root}/queue",
        "data_folder_out": f"{root}/queue",
        "control_folder": f"{root}/control",
        "processed_folder": f"{root}/processed",
        "store_processed": False,
        "polling_interval": 0.01,
    }
    return Connection("filesystem://", transport=transport, transport_options=options)


def publish(root: str, prefix: str, count: int) -> None:
    with connection(root) as conn:
        queue = conn.SimpleQueue("default")
        for n in range(count):
            # A body of some size, so that a reader racing a writer would catch it half written.
            queue.put({"id": f"{prefix}-{n}", "padding": "x" * 20_000})


def consume(root: str, out_file: str, stop_file: str) -> None:
    idle_since = time.monotonic()
    with connection(root) as conn, open(out_file, "w") as out:
        queue = conn.SimpleQueue("default")
        while True:
            try:
                message = queue.get(timeout=0.1)
            except Empty:
                if os.path.exists(stop_file) and time.monotonic() - idle_since > 1:
                    return
                continue
            out.write(message.payload["id"] + "\n")
            out.flush()
            message.ack()
            idle_since = time.monotonic()


if __name__ == "__main__":
    role, *args = sys.argv[1:]
    if role == "publish":
        publish(args[0], args[1], int(args[2]))
    elif role == "consume":
        consume(args[0], args[1], args[2])
    else:
        sys.exit(f"unknown role {role!r}")
