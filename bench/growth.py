"""Issue 22, item 5: does ingest slow down as the index grows? The same 2,000 small instances
(`bench.py --quick`'s set) over 4 associations into an empty index and into a copy of the 1M-instance benchmark index
(`bench.py --only-large` builds it), alternating, in one run.

Usage (from bench/, after `bash bench/run.sh` or `bench.py --only-large` built the large index):
    HUREN_BIN=… ../.venv/bin/python growth.py [rounds]
Prints instances per second per round and the medians.
"""
import json
import os
import shutil
import statistics
import sys
import time

import bench

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 2
large = bench.WORK / "huren-large-500000"
if not (large / "filled").exists():
    sys.exit("the 1M-instance index is missing: run `bench.py --only-large` first")
# The fill keeps no object bytes, so its quality jobs could only fail, one by one, and its
# studies would all turn stable at the first start: both are work an index that grew by
# ingest has long done. Settled once, so that they do not run during the measurement.
settled = large / "settled"
if not settled.exists():
    import sqlite3
    db = sqlite3.connect(large / "index.sqlite")
    db.execute("UPDATE qc_job SET state = 'failed', error = 'bench-fill keeps no object bytes' WHERE state = 'queued'")
    db.execute("UPDATE study SET stable_at = last_instance_at WHERE stable_at IS NULL")
    db.commit()
    db.close()
    settled.write_text("qc jobs failed, studies stable")
ct, small = bench.generate(True)
small4 = sorted(p for p in small.iterdir() if p.is_dir())
n = sum(len(list(d.glob("*.dcm"))) for d in small4)
bench.purge_retired()
rates = {"empty index": [], "1M-instance index": []}
written = {label: [] for label in rates}


def io(pid):
    """Bytes the server passed to write calls (object files, WAL frames, checkpoints)."""
    for line in open(f"/proc/{pid}/io"):
        if line.startswith("wchar"):
            return int(line.split()[1])
    return 0

for k in range(rounds):
    for label in rates:
        server = bench.Huren()
        bench.retire(server.dir)
        if label == "empty index":
            server.start()
        else:
            server.dir.mkdir(parents=True)
            for f in ("index.sqlite", "index.sqlite-wal", "system.token"):
                if (large / f).exists():
                    shutil.copy(large / f, server.dir / f)
            # The AE the benchmark sends from, as `Huren.start` registers it for a fresh index.
            bench.run([bench.HUREN, "ae", "add", "--data-dir", server.dir, "--institution", "bench",
                       "--ae-title", "STORESCU", "--host", "127.0.0.1"])
            server.start(fresh=False)
        os.sync()
        time.sleep(3)
        before = io(server.proc.pid)
        rate = n / bench.storescu(server.dimse, server.aet, small4)
        per = (io(server.proc.pid) - before) / n
        server.stop()
        rates[label].append(rate)
        written[label].append(per)
        print(f"round {k + 1}", label, round(rate), "inst/s,", round(per), "bytes written per instance", flush=True)
    bench.retire(bench.WORK / "huren")
bench.purge_retired(wait=False)
print(json.dumps({label: round(statistics.median(r)) for label, r in rates.items()}))
print(json.dumps({label + ", bytes written per instance": round(statistics.median(w)) for label, w in written.items()}))
