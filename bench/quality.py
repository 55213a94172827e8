"""Image quality control throughput (issue #8 item 4; docs/quality.md, docs/benchmarks.md).

1. Scorers: the full CT scorer set over 512×512 slices on one core, through
   `huren quality score --threads 1` (file parsing included). Native slices, then a real JPEG
   2000 CT (pydicom-data 693_J2KR) to show the cost of decoding.
2. Ingest with scoring on against scoring off: the same 512×512 CT slices over C-STORE
   (DCMTK storescu, two associations), a fresh archive each time, off and on alternating three
   times (medians compared).
3. Paced ingest: 200 CT slices/s with scoring on for `--seconds` (default 600, the issue's ten
   minutes). The backlog's age is sampled every second, and the time to drain it after the last
   slice is measured.

    HUREN_BIN=<release huren> .venv/bin/python bench/quality.py [--seconds 600] [--slices 3000]

Disk: ten minutes at 200 slices/s is 120,000 slices of 0.5 MB, 60 GB sent and 60 GB stored, more
than a small machine has. So the paced run keeps both bounded, outside the server:
- each second's slices are made just before they are sent, from byte templates (only the UIDs
  change), in memory-backed storage when there is some, and removed once sent;
- a stored slice's file is removed by this harness once its scoring job is done. The server is
  not told; its index keeps the rows. Nothing is read back, so ingest and scoring do exactly
  the work they would otherwise.
"""
import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import ENV, HUREN, WORK, free_port, wait_port  # noqa: E402

Q = WORK / "quality"
DATA = Path(pydicom.__file__).resolve().parents[1] / "data_store" / "data"


def slice_file(path, study, series, n, rng):
    """A 512×512 water phantom slice in air with some noise, signed 16-bit HU."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.Modality, ds.StudyDate, ds.PatientID, ds.PatientName = "CT", "20250301", "QB1", "Zhou^Qi=周^琦"
    ds.InstitutionName, ds.InstanceNumber = "Bench", n
    ds.Rows = ds.Columns = 512
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleIntercept, ds.RescaleSlope = 0, 1
    ds.PixelSpacing, ds.SliceThickness, ds.KVP, ds.ConvolutionKernel, ds.CTDIvol = [0.7, 0.7], 1.25, 120, "B30f", 9.5
    ds.ImageOrientationPatient, ds.ImagePositionPatient = [1, 0, 0, 0, 1, 0], [-180, -180, -1.25 * n]
    y, x = np.mgrid[0:512, 0:512] - 256
    hu = np.where(np.hypot(x, y) < 220, 40.0, -1000.0) + rng.normal(0, 12, (512, 512))
    ds.PixelData = np.round(hu).astype("<i2").tobytes()
    ds.save_as(path, enforce_file_format=True)


def slices(directory, count, seed):
    """`count` slices in one series, in four sub-directories (for parallel senders)."""
    rng = np.random.default_rng(seed)
    study, series = generate_uid(), generate_uid()
    for k in range(4):
        (directory / str(k)).mkdir(parents=True, exist_ok=True)
    for n in range(count):
        slice_file(directory / str(n % 4) / f"{n:06}.dcm", study, series, n + 1, rng)


def run(*args, env=None):
    out = subprocess.run([str(HUREN), *map(str, args)], capture_output=True, text=True, env=env or ENV)
    if out.returncode:
        raise RuntimeError(out.stderr[-400:])
    return out.stdout


def scorer_rate(files, runs=3):
    """Slices per second on one core, each of `runs` runs (the median is the figure): per second
    of the scoring process's CPU (user + system, from the kernel's accounting of the finished
    child), and per second of wall time. On this shared machine the wall figure also carries
    other guests' load; the CPU figure is the scorers' cost per core."""
    import resource
    # Read once first: the measure is the scorers' CPU per core, not the disk.
    for f in files:
        Path(f).read_bytes()
    cpu_rates, wall_rates = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        out = run("quality", "score", "--threads", "1", *files)
        dt = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        assert all("error" not in json.loads(line) for line in out.splitlines())
        cpu_rates.append(round(len(files) / cpu, 1))
        wall_rates.append(round(len(files) / dt, 1))
    return {"per CPU second": [cpu_rates, sorted(cpu_rates)[len(cpu_rates) // 2]],
            "per wall second": [wall_rates, sorted(wall_rates)[len(wall_rates) // 2]]}


class Server:
    def __init__(self, workers):
        self.dir = Q / f"server-{workers}"
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        run("institution", "add", "--data-dir", self.dir, "--code", "bench", "--name", "Bench", "--level", "三级")
        run("ae", "add", "--data-dir", self.dir, "--institution", "bench", "--ae-title", "STORESCU", "--host", "127.0.0.1")
        self.dimse, self.http = free_port(), free_port()
        env = dict(ENV, RUST_LOG="warn", HUREN__ARCHIVE__STABLE_AFTER_SECS="5")
        if workers is not None:  # None: the default (half the cores)
            env["HUREN__QUALITY__WORKERS"] = str(workers)
        self.proc = subprocess.Popen([str(HUREN), "serve", "--data-dir", str(self.dir), "--http", f"127.0.0.1:{self.http}",
                                      "--dimse", f"127.0.0.1:{self.dimse}", "--ae-title", "HUREN"], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.dimse)

    def backlog(self):
        db = sqlite3.connect(f"file:{self.dir / 'index.sqlite'}?mode=ro", uri=True, timeout=30)
        try:
            n, oldest = db.execute("SELECT COUNT(*), MIN(enqueued_at) FROM qc_job WHERE state IN ('queued', 'running')").fetchone()
        finally:
            db.close()
        return n, (time.time() - oldest) if oldest else 0.0

    def send(self, dirs):
        """One storescu (one association) per entry of `dirs`, at once; an entry is a directory
        or a list of them."""
        procs = [subprocess.Popen(["/usr/bin/storescu", "-aet", "STORESCU", "-aec", "HUREN", "+sd", "+r", "127.0.0.1",
                                   str(self.dimse), *map(str, d if isinstance(d, list) else [d])],
                                  env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for d in dirs]
        for p in procs:
            _, err = p.communicate()
            assert p.returncode == 0, (p.returncode, err[-500:])

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


def ingest_rate(workers, data, count):
    s = Server(workers)
    try:
        t = time.perf_counter()
        s.send([data / "0", data / "1"])
        s.send([data / "2", data / "3"])
        rate = count / (time.perf_counter() - t)
        drained = None
        if workers != 0:
            t = time.perf_counter()
            while s.backlog()[0]:
                time.sleep(0.5)
            drained = round(time.perf_counter() - t, 1)
        return round(rate, 1), drained
    finally:
        s.stop()


# Placeholder UIDs of a fixed length (2.25 + 39 digits, PS3.5 B.2), replaced byte for byte.
PLACEHOLDER = {kind: ("2.25." + digit * 39).encode() for kind, digit in (("sop", "1"), ("study", "2"), ("series", "3"))}


def templates(count=8):
    """`count` slices with different noise, as bytes, with placeholder UIDs in their headers;
    returns (bytes, length of the part before the pixel data)."""
    out = []
    with tempfile.TemporaryDirectory() as t:
        rng = np.random.default_rng(99)
        for k in range(count):
            path = Path(t) / f"{k}.dcm"
            slice_file(path, PLACEHOLDER["study"].decode(), PLACEHOLDER["series"].decode(), k + 1, rng)
            ds = pydicom.dcmread(path)
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = PLACEHOLDER["sop"].decode()
            ds.save_as(path, enforce_file_format=True)
            data = path.read_bytes()
            out.append((data, len(data) - 512 * 512 * 2))
    return out


def fresh_uid(rng):
    return f"2.25.{int(rng.integers(10 ** 8, 10 ** 9)):d}{int(rng.integers(10 ** 14, 10 ** 15)):d}{int(rng.integers(10 ** 14, 10 ** 15)):d}".encode()


def make_batch(directory, per_second, shapes, rng):
    """One study of `per_second` slices in four sub-directories, from the templates."""
    study, series = fresh_uid(rng), fresh_uid(rng)
    for k in range(4):
        (directory / str(k)).mkdir(parents=True, exist_ok=True)
    for n in range(per_second):
        data, head = shapes[n % len(shapes)]
        header = (data[:head].replace(PLACEHOLDER["sop"], fresh_uid(rng)).replace(PLACEHOLDER["study"], study)
                  .replace(PLACEHOLDER["series"], series))
        (directory / str(n % 4) / f"{n:06}.dcm").write_bytes(header + data[head:])


class Reclaimer(threading.Thread):
    """Removes the stored files of scored slices (bench only; see the module's note on disk).
    With scoring off (`every`), every stored file is removed."""

    def __init__(self, server, every=False):
        super().__init__(daemon=True)
        self.every = every
        self.server, self.last, self.removed, self.stopping = server, 0, 0, threading.Event()
        self.gone = set()

    def run(self):
        while not self.stopping.wait(2.0):
            self.sweep()

    def sweep(self):
        db = sqlite3.connect(f"file:{self.server.dir / 'index.sqlite'}?mode=ro", uri=True, timeout=30)
        try:
            if self.every:
                rows = db.execute("SELECT id, blob_key FROM instance WHERE id > ?", (self.last,)).fetchall()
                for iid, key in rows:
                    (self.server.dir / key).unlink(missing_ok=True)
                    self.removed += 1
                    self.last = max(self.last, iid)
                return
            # One snapshot for both reads: a job finishing between them would otherwise fall
            # below the watermark unseen, and its file would stay.
            db.execute("BEGIN")
            rows = db.execute("SELECT i.id, i.blob_key FROM qc_job j JOIN instance i ON i.id = j.instance_id "
                              "WHERE j.state = 'done' AND j.instance_id > ?", (self.last,)).fetchall()
            (waiting,) = db.execute("SELECT MIN(instance_id) FROM qc_job WHERE state IN ('queued', 'running') "
                                    "AND instance_id > ?", (self.last,)).fetchone()
        finally:
            db.close()
        # Jobs finish out of order: everything below the oldest waiting job is done and removed;
        # above it, what was removed is remembered.
        for iid, key in rows:
            if iid not in self.gone:
                try:
                    (self.server.dir / key).unlink()
                    self.removed += 1
                except FileNotFoundError:
                    pass
                self.gone.add(iid)
        if waiting is not None:
            self.last = waiting - 1
        elif rows:
            self.last = max(r[0] for r in rows)
        self.gone = {i for i in self.gone if i > self.last}


def paced(seconds, per_second=200, workers=None):
    """Sends `per_second` fresh slices every second (two storescu at once, 100 slices each).
    `workers` 0 is the scoring-off anchor."""
    shm = Path("/dev/shm")
    root = Path(tempfile.mkdtemp(prefix="huren-paced-", dir=shm if shm.is_dir() else Q))
    shapes, rng = templates(), np.random.default_rng(1000)
    ahead = 3
    for b in range(ahead):
        make_batch(root / f"{b:04}", per_second, shapes, rng)
    s = Server(workers)
    reclaim = Reclaimer(s, every=workers == 0)
    reclaim.start()
    ages, late, worst_send = [], 0, 0.0
    try:
        start = time.perf_counter()
        for b in range(seconds):
            due = start + b
            while time.perf_counter() < due:
                time.sleep(0.01)
            if time.perf_counter() > due + 1:
                late += 1
            t = time.perf_counter()
            batch = root / f"{b:04}"
            s.send([[batch / "0", batch / "1"], [batch / "2", batch / "3"]])
            worst_send = max(worst_send, time.perf_counter() - t)
            shutil.rmtree(root / f"{b:04}")
            if b + ahead < seconds:
                make_batch(root / f"{b + ahead:04}", per_second, shapes, rng)
            ages.append(s.backlog()[1])
        sent_in = time.perf_counter() - start
        t = time.perf_counter()
        while workers != 0 and s.backlog()[0]:
            time.sleep(0.5)
        drained = time.perf_counter() - t
        reclaim.stopping.set()
        reclaim.join()
        reclaim.sweep()
        db = sqlite3.connect(f"file:{s.dir / 'index.sqlite'}?mode=ro", uri=True, timeout=30)
        try:
            jobs = dict(db.execute("SELECT state, COUNT(*) FROM qc_job GROUP BY state").fetchall())
            errors = db.execute("SELECT error, COUNT(*) FROM qc_job WHERE error IS NOT NULL GROUP BY error LIMIT 5").fetchall()
        finally:
            db.close()
        minutes = [round(max(ages[m:m + 60]), 1) for m in range(0, len(ages), 60)]
        return {"seconds": seconds, "slices": seconds * per_second, "achieved slices/s": round(seconds * per_second / max(sent_in, seconds), 1),
                "batches late": late, "slowest second's send s": round(worst_send, 2),
                "stored files removed by the harness": reclaim.removed, "jobs by state": jobs,
                "job errors": errors} | ({} if workers == 0 else {
                    "max backlog age s": round(max(ages), 1), "max backlog age per minute s": minutes,
                    "drain after last slice s": round(drained, 1)})
    finally:
        reclaim.stopping.set()
        s.stop()
        shutil.rmtree(root, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--slices", type=int, default=3000)
    ap.add_argument("--paced-only", action="store_true", help="only the paced run (part 3)")
    ap.add_argument("--scorers-only", action="store_true", help="only the scorer rates (part 1)")
    args = ap.parse_args()
    Q.mkdir(parents=True, exist_ok=True)
    if args.paced_only:
        print(json.dumps({"paced 200/s, scoring off": paced(args.seconds, workers=0),
                          "paced 200/s, scoring on": paced(args.seconds)}, indent=1, ensure_ascii=False))
        return
    data = Q / "ct"
    shutil.rmtree(data, ignore_errors=True)
    slices(data, args.slices, 7)
    files = sorted(str(p) for p in data.rglob("*.dcm"))[:300]
    # The slices just written are still being flushed to disk; that work is not the scorers'.
    os.sync()
    j2k = Q / "j2k"
    j2k.mkdir(exist_ok=True)
    for k in range(60):
        shutil.copy(DATA / "693_J2KR.dcm", j2k / f"{k}.dcm")
    results = {
        "cores": os.cpu_count(),
        "scorers, native 512x512, slices/s on one core (runs; median)": scorer_rate(files),
        "scorers, JPEG 2000 512x512 (decode included), slices/s on one core (runs; median)":
            scorer_rate(sorted(str(p) for p in j2k.glob("*.dcm"))),
    }
    if args.scorers_only:
        print(json.dumps(results, indent=1, ensure_ascii=False))
        return
    # Off and on alternate, three times each: this machine's disk and CPU vary from run to run
    # by more than the difference measured.
    offs, ons, drains = [], [], []
    for _ in range(3):
        offs.append(ingest_rate(0, data, args.slices)[0])
        on, drained = ingest_rate(None, data, args.slices)
        ons.append(on)
        drains.append(drained)
    off, on = sorted(offs)[1], sorted(ons)[1]
    results["ingest, scoring off, slices/s (runs; median)"] = [offs, off]
    results["ingest, scoring on, slices/s (runs; median)"] = [ons, on]
    results["ingest on / off (medians)"] = round(on / off, 3)
    results["backlog drained after ingest, s (runs)"] = drains
    shutil.rmtree(data, ignore_errors=True)
    print(json.dumps(results, ensure_ascii=False), file=sys.stderr, flush=True)
    # The anchor first: the same paced ingest with scoring off.
    results["paced 200/s, scoring off"] = paced(args.seconds, workers=0)
    print(json.dumps(results, ensure_ascii=False), file=sys.stderr, flush=True)
    results["paced 200/s, scoring on"] = paced(args.seconds)
    print(json.dumps(results, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
