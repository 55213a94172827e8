"""DIMSE ingest only, huren beside Orthanc in one run (issue 22's working measure): the 500-slice
CT and the 2,000 small instances of `bench.py --quick`, over 1 and 4 associations.

Usage (from the repository root, after `bash bench/run.sh` has installed the tools once):
    HUREN_BIN=target/release/huren .venv/bin/python bench/ingest.py [huren] [orthanc] [old]
`old` runs a second huren build named by HUREN_OLD_BIN (before/after in the same run).
Prints instances per second per measure and server; ROUNDS=n alternates the servers n times
and prints the medians.
"""
import json
import os
import statistics
import sys
import time
from pathlib import Path

import bench

which = sys.argv[1:] or ["huren", "orthanc"]
HUREN = bench.HUREN
ct, small = bench.generate(True)
ct1 = bench.split_dirs(ct, 1, bench.WORK / "split" / "ct1")
ct4 = bench.split_dirs(ct, 4, bench.WORK / "split" / "ct4")
small4 = sorted(p for p in small.iterdir() if p.is_dir())
n_small = sum(len(list(d.glob("*.dcm"))) for d in small4)


def settle(server):
    """Set the last run's data aside (`bench.retire`: deleting it just before would make ext4
    search past its freed inodes) and let the disk finish its write-back, which the next run's
    syncs would otherwise wait behind (the second of two identical builds ran 20–40 % slower)."""
    bench.retire(server.dir)
    os.sync()
    time.sleep(3)


def measure(name):
    if name == "orthanc":
        server = bench.Orthanc()
    else:
        bench.HUREN = Path(os.environ["HUREN_OLD_BIN"]) if name == "old" else HUREN
        server = bench.Huren()
    r = {}
    settle(server)
    server.start()
    r["CT 500, 1 assoc"] = 500 / bench.storescu(server.dimse, server.aet, ct1)
    r["small, 1 assoc"] = n_small / bench.storescu(server.dimse, server.aet, [small])
    server.stop()
    settle(server)
    server.start()
    r["CT 500, 4 assoc"] = 500 / bench.storescu(server.dimse, server.aet, ct4)
    r["small, 4 assoc"] = n_small / bench.storescu(server.dimse, server.aet, small4)
    server.stop()
    settle(server)
    return r


# Rounds alternate the servers (A B A B …) so that a slow minute of the shared disk falls on
# both; the median of the rounds is reported.
rounds = int(os.environ.get("ROUNDS", "1"))
bench.purge_retired()
results = {name: [] for name in which}
for k in range(rounds):
    for name in which:
        r = measure(name)
        results[name].append(r)
        print(f"round {k + 1}", name, json.dumps({m: round(v) for m, v in r.items()}), flush=True)
for name, rs in results.items():
    med = {m: round(statistics.median(r[m] for r in rs)) for m in rs[0]}
    print("median", name, json.dumps(med), flush=True)
bench.purge_retired(wait=False)
