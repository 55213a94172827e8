"""Issue 22, item 6: a small WADO-RS retrieve on one idle keep-alive connection, where Nagle's
algorithm and the client's delayed ACK can hold back the tail of a response written in several
pieces. huren, huren built without TCP_NODELAY on HTTP sockets (HUREN_OLD_BIN), and Orthanc,
in one run.

Usage (from bench/, after `bash bench/run.sh` installed the tools once):
    HUREN_BIN=… HUREN_OLD_BIN=… ../.venv/bin/python nodelay.py [huren] [old] [orthanc]
Prints requests per second and p50/p99 latency of wrk with one connection, for the whole
instance (application/dicom) and for its metadata.
"""
import json
import os
import sys
from pathlib import Path

import requests

import bench

which = sys.argv[1:] or ["huren", "old", "orthanc"]
bench.WORK.mkdir(parents=True, exist_ok=True)
one = bench.WORK / "data" / "one-small"
one.mkdir(parents=True, exist_ok=True)
study, series = "1.2.826.0.1.3680043.10.1138.77.1", "1.2.826.0.1.3680043.10.1138.77.2"
f = one / "one.dcm"
bench.make_image(f, ("P000077", "Wang^77=王^77"), study, series, 32, 32, 1)
HUREN = bench.HUREN
for name in which:
    if name == "orthanc":
        server = bench.Orthanc()
    else:
        bench.HUREN = Path(os.environ["HUREN_OLD_BIN"]) if name == "old" else HUREN
        server = bench.Huren()
    server.start()
    try:
        bench.storescu(server.dimse, server.aet, [one])
        # make_image names the SOP Instance UID from the series UID and the number.
        base = f"{server.base}/studies/{study}/series/{series}/instances/"
        uids = [e["00080018"]["Value"][0] for e in requests.get(f"{server.base}/studies/{study}/series/{series}/instances", headers=server.headers, timeout=10).json()]
        inst = base + uids[0]
        r = {"size (bytes)": f.stat().st_size}
        for label, url, accept in [("instance", inst, "multipart/related; type=\"application/dicom\""),
                                   ("metadata", inst + "/metadata", "application/dicom+json")]:
            w = bench.wrk(url, dict(server.headers, Accept=accept), seconds=5, clients=1)
            r[label] = f'{w["rps"]:.0f} req/s, p50 {w["p50"]}, p99 {w["p99"]}' + (f' ({w["errors"]})' if w["errors"] else "")
        print(name, json.dumps(r, ensure_ascii=False), flush=True)
    finally:
        server.stop()
