"""Image quality control throughput (issue #8 item 4; docs/quality.md, docs/benchmarks.md).

1. Scorers: the full CT scorer set over 512×512 slices on one core, through
   `huren quality score --threads 1` (file parsing included). Native slices, then a real JPEG
   2000 CT (pydicom-data 693_J2KR) to show the cost of decoding.
2. Ingest with scoring on against scoring off: the same 512×512 CT slices over C-STORE
   (DCMTK storescu, two associations), a fresh archive each time, off and on alternating three
   times (medians compared).
3. Paced ingest: 200 CT slices/s with scoring on for `--seconds` (default 60). The backlog's
   age is sampled every second, and the time to drain it after the last slice is measured.

    HUREN_BIN=<release huren> .venv/bin/python bench/quality.py [--seconds 600] [--slices 3000]

Disk: each 512×512 slice is 0.5 MB, sent once and stored once; ten minutes at 200/s would need
about 120 GB, so the default run is one minute.
"""
import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
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


def scorer_rate(files):
    t = time.perf_counter()
    out = run("quality", "score", "--threads", "1", *files)
    dt = time.perf_counter() - t
    assert all("error" not in json.loads(line) for line in out.splitlines())
    return round(len(files) / dt, 1)


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
        procs = [subprocess.Popen(["/usr/bin/storescu", "-aet", "STORESCU", "-aec", "HUREN", "+sd", "+r", "127.0.0.1",
                                   str(self.dimse), str(d)], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for d in dirs]
        for p in procs:
            _, err = p.communicate()
            assert p.returncode == 0, err[-500:]

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


def paced(seconds, per_second=200):
    """Sends `per_second` fresh slices every second (one storescu per second's batch)."""
    batches = Q / "paced"
    shutil.rmtree(batches, ignore_errors=True)
    for b in range(seconds):
        d = batches / f"{b:04}"
        slices(d, per_second, 1000 + b)
    s = Server(None)
    ages, late = [], 0
    try:
        start = time.perf_counter()
        for b in range(seconds):
            due = start + b
            while time.perf_counter() < due:
                time.sleep(0.01)
            if time.perf_counter() > due + 1:
                late += 1
            s.send([batches / f"{b:04}" / str(k) for k in range(2)])
            s.send([batches / f"{b:04}" / str(k) for k in range(2, 4)])
            ages.append(s.backlog()[1])
        sent_in = time.perf_counter() - start
        t = time.perf_counter()
        while s.backlog()[0]:
            time.sleep(0.5)
        return {"seconds": seconds, "slices": seconds * per_second, "achieved slices/s": round(seconds * per_second / sent_in, 1),
                "batches late": late, "max backlog age s": round(max(ages), 1),
                "drain after last slice s": round(time.perf_counter() - t, 1)}
    finally:
        s.stop()
        shutil.rmtree(batches, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--slices", type=int, default=3000)
    args = ap.parse_args()
    Q.mkdir(parents=True, exist_ok=True)
    data = Q / "ct"
    shutil.rmtree(data, ignore_errors=True)
    slices(data, args.slices, 7)
    files = sorted(str(p) for p in data.rglob("*.dcm"))[:300]
    j2k = Q / "j2k"
    j2k.mkdir(exist_ok=True)
    for k in range(60):
        shutil.copy(DATA / "693_J2KR.dcm", j2k / f"{k}.dcm")
    results = {
        "cores": os.cpu_count(),
        "scorers, native 512x512, slices/s on one core": scorer_rate(files),
        "scorers, JPEG 2000 512x512 (decode included), slices/s on one core": scorer_rate(sorted(str(p) for p in j2k.glob("*.dcm"))),
    }
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
    results["paced 200/s, scoring on"] = paced(args.seconds)
    print(json.dumps(results, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
