"""What is durable when a C-STORE response leaves (docs/ingest.md, "Durability"), watched from
outside with strace: the object file is fsync'd after it was written, then its directory, then
the index's WAL for its row, and the response is written only after all three.
SIGKILL tests cannot show this (the page cache survives a killed process); the order is what
survives a power cut."""
import os
import re
import subprocess
import time

import pytest
from pynetdicom.sop_class import CTImageStorage

from conftest import STORAGE
from helpers import associate, ct


@pytest.mark.skipif(STORAGE != "file", reason="objects in S3: durable when the PUT is answered (test_s3.py)")
def test_syncs_come_before_the_response(fresh_server, tmp_path):
    s = fresh_server()
    out = tmp_path / "trace.txt"
    tids = [f"-p{t}" for t in os.listdir(f"/proc/{s.proc.pid}/task")]
    tracer = subprocess.Popen(["strace", "-f", "-y", "-qq", "-e", "trace=fsync,fdatasync,write,writev,sendto,sendmsg",
                               "-o", str(out), *tids], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)
    try:
        assoc = associate(s.dimse_port, contexts=[(CTImageStorage, ["1.2.840.10008.1.2.1"])])
        sent = [ct(rows=64, cols=64) for _ in range(5)]
        for ds in sent:
            assert assoc.send_c_store(ds).Status == 0
        assoc.release()
    finally:
        tracer.terminate()
        _, err = tracer.communicate(timeout=20)
    lines = out.read_text().splitlines()
    assert lines, err
    # Each object file written, fsync'd, its directory fsync'd, the WAL fsync'd, then a write
    # to the socket.
    events = []
    for line in lines:
        m = re.search(r"\b(syncfs|fsync|fdatasync|write|writev|sendto|sendmsg)\((\d+)<([^>]*)>", line)
        if not m:
            continue
        call, target = m.group(1), m.group(3)
        if call in ("fsync", "fdatasync") and target.endswith(".dcm"):
            events.append("sync-object")
        elif call in ("fsync", "fdatasync") and "/objects/" in target and not target.endswith(".dcm"):
            events.append("sync-dir")
        elif call in ("fsync", "fdatasync") and target.endswith("-wal"):
            events.append("sync-wal")
        elif call in ("write", "writev") and target.endswith(".dcm"):
            events.append("object")
        elif call in ("write", "writev", "sendto", "sendmsg") and ("TCP" in target or "socket" in target):
            events.append("socket")
    stored = [e for e in events if e == "object"]
    assert len(stored) == len(sent), events
    # Walk the events: every object must be followed by its own sync, its directory's, then a
    # WAL sync, before the next socket write (its response).
    pending = None
    answered = 0
    for e in events:
        if e == "object":
            pending = "object"
        elif e == "sync-object" and pending == "object":
            pending = "file"
        elif e == "sync-dir" and pending == "file":
            pending = "dir"
        elif e == "sync-wal" and pending == "dir":
            pending = None
        elif e == "socket" and pending is not None:
            raise AssertionError(f"a response left before its object was durable: {events}")
        elif e == "socket":
            answered += 1
    assert answered >= len(sent), events
