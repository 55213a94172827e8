"""huren vs Orthanc 1.10.1 / DICOMweb 1.7 vs the practical limits, side by side in one run.

Usage (from the repository root): bash bench/run.sh [--quick]
Loopback only; every DCMTK tool and Orthanc run with TCP_NODELAY=1.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pydicom
import requests
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / ".work"
# Benchmarks measure the archive, not its per-principal rate limit (one token drives wrk).
ENV = dict(os.environ, TCP_NODELAY="1", HUREN__HTTP__RATE_LIMIT_PER_SEC="0")
HUREN = Path(os.environ.get("HUREN_BIN", ROOT / "target" / "release" / "huren"))
TOKEN = "bench-admin"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} did not open")


def make_image(path, patient, study, series, rows, cols, n, modality="CT", sop_class="1.2.840.10008.5.1.4.1.1.2", seed=0):
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.Modality = modality
    ds.PatientID, ds.PatientName = patient
    ds.PatientBirthDate, ds.PatientSex = "19700101", "M"
    ds.StudyDate = f"2025{1 + seed % 12:02}{1 + seed % 28:02}"
    ds.StudyTime = "101500"
    ds.AccessionNumber = f"A{seed}"
    ds.InstanceNumber = n
    ds.ImagePositionPatient = [0, 0, n]
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleIntercept, ds.RescaleSlope, ds.WindowCenter, ds.WindowWidth = -1024, 1, 40, 400
    ds.PixelData = (np.arange(rows * cols, dtype=np.uint16) % 4096).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)


def generate(quick):
    ct = WORK / "data" / "ct500"
    ct_marker = WORK / "data" / "ct500.done"
    if not ct_marker.exists():
        shutil.rmtree(ct, ignore_errors=True)
        ct.mkdir(parents=True)
        study, series = generate_uid(), generate_uid()
        for i in range(500):
            make_image(ct / f"{i:03}.dcm", ("CT500", "Li^Ming=李^明"), study, series, 512, 512, i + 1)
        ct_marker.write_text(study)
    n_patients = 200 if quick else 2000
    # Each size in its own directory: the quick runs and the full ones do not regenerate (or
    # mistake) each other's set.
    small = WORK / "data" / f"small-{n_patients}"
    marker = WORK / "data" / f"small.done-{n_patients}"
    if not marker.exists():
        shutil.rmtree(small, ignore_errors=True)
        for k in range(4):
            (small / str(k)).mkdir(parents=True)
        i = 0
        for p in range(n_patients):
            for s in range(2):
                study, series = generate_uid(), generate_uid()
                for n in range(5):
                    make_image(small / str(i % 4) / f"{i:06}.dcm", (f"P{p:06}", f"Wang^{p}=王^{p}"), study, series, 32, 32, n + 1,
                               modality="CR", sop_class="1.2.840.10008.5.1.4.1.1.1", seed=p)
                    i += 1
        marker.write_text(str(i))
    return ct, small


def retire(d):
    """Set a server's data aside instead of deleting it just before a measurement. ext4 skips
    the inodes of files deleted within the last minute or five when it allocates new ones
    (`recently_deleted` in ext4's inode allocator), and with the 20,000 files of the run before
    just freed that search took an eighth of huren's ingest profile: a cost of the benchmark
    deleting its own data, not of serving. Retired data is deleted by `purge_retired`, between
    runs."""
    if d.exists():
        dest = WORK / "retired" / f"{d.name}-{time.time_ns()}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        d.rename(dest)


def purge_retired(wait=True):
    """Delete retired data, then (with `wait`) let ext4's one-minute window for recently
    deleted inodes pass before anything is measured."""
    old = WORK / "retired"
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.sync()
        if wait:
            time.sleep(65)


def peak_rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1])
    return 0


class Huren:
    name = "huren"

    def __init__(self):
        self.dir = WORK / "huren"
        self.http, self.dimse = free_port(), free_port()

    def start(self, fresh=True):
        if fresh:
            retire(self.dir)
            self.dir.mkdir(parents=True)
            run([HUREN, "institution", "add", "--data-dir", self.dir, "--code", "bench", "--name", "Bench", "--level", "三级"])
            run([HUREN, "ae", "add", "--data-dir", self.dir, "--institution", "bench", "--ae-title", "STORESCU", "--host", "127.0.0.1"])
        # The hospital system's own token sends and reads: operators' tokens read no patient
        # data, so the reads below go through the institution's reach as a PACS's would. Made
        # before the server starts (its start-up statistics pass holds the index for a while).
        saved = self.dir / "system.token"
        if fresh or not saved.exists():
            saved.write_text(run([HUREN, "token", "create", "--data-dir", self.dir, "--institution", "bench"]).strip())
        self.stow_token = saved.read_text()
        self.headers = {"Authorization": f"Bearer {self.stow_token}"}
        env = dict(ENV, HUREN_BOOTSTRAP_ADMIN_TOKEN=TOKEN, RUST_LOG="warn")
        self.proc = subprocess.Popen([HUREN, "serve", "--data-dir", self.dir, "--http", f"127.0.0.1:{self.http}",
                                      "--dimse", f"127.0.0.1:{self.dimse}", "--ae-title", "HUREN"],
                                     env=env, stdout=subprocess.DEVNULL, stderr=open(self.dir / "server.log", "ab"))
        wait_port(self.http), wait_port(self.dimse)
        self.aet = "HUREN"
        self.base = f"http://127.0.0.1:{self.http}/dicom-web"

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


class Orthanc:
    name = "Orthanc 1.10.1 / DICOMweb 1.7"

    def __init__(self):
        self.dir = WORK / "orthanc"
        self.http, self.dimse = free_port(), free_port()

    def start(self, fresh=True):
        if fresh:
            retire(self.dir)
            self.dir.mkdir(parents=True)
        cfg = {
            "Name": "bench", "StorageDirectory": str(self.dir / "storage"), "IndexDirectory": str(self.dir / "index"),
            "StorageCompression": False, "HttpPort": self.http, "DicomPort": self.dimse, "DicomAet": "ORTHANC",
            "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "DicomAlwaysAllowStore": True,
            "DicomCheckCalledAet": False, "DicomCheckModalityHost": False, "SaveJobs": False, "HttpTimeout": 60,
            "Plugins": ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True, "StudiesMetadata": "Full", "SeriesMetadata": "Full"},
        }
        (self.dir / "orthanc.json").write_text(json.dumps(cfg))
        self.proc = subprocess.Popen(["/usr/sbin/Orthanc", str(self.dir / "orthanc.json")], env=ENV,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.http), wait_port(self.dimse)
        self.headers = {}
        self.stow_token = None
        self.aet = "ORTHANC"
        self.base = f"http://127.0.0.1:{self.http}/dicom-web"

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)


def run(cmd, **kw):
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=ENV, **kw)
    if out.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {out.stderr[-500:]}")
    return out.stdout


def storescu(server_port, aet, dirs):
    """One storescu per directory, in parallel; returns wall-clock seconds."""
    t0 = time.perf_counter()
    procs = [subprocess.Popen(["/usr/bin/storescu", "-aet", "STORESCU", "-aec", aet, "+sd", "+r", "127.0.0.1", str(server_port), str(d)],
                              env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for d in dirs]
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(err[-500:])
    return time.perf_counter() - t0


def split_files(files, n, dest):
    """`files` dealt round-robin into n directories of hard links."""
    shutil.rmtree(dest, ignore_errors=True)
    dirs = []
    for k in range(n):
        d = dest / str(k)
        d.mkdir(parents=True)
        for f in files[k::n]:
            os.link(f, d / f.name)
        dirs.append(d)
    return dirs


def split_dirs(src, n, dest):
    return split_files(sorted(src.glob("*.dcm")), n, dest)


def storescp_limit(ct_dirs, fork):
    out = WORK / "storescp-out"
    retire(out)
    out.mkdir(parents=True)
    port = free_port()
    args = ["/usr/bin/storescp", "-aet", "STORESCP", "-od", str(out)] + (["--fork"] if fork else []) + [str(port)]
    p = subprocess.Popen(args, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    try:
        return storescu(port, "STORESCP", ct_dirs)
    finally:
        p.terminate()
        p.wait()
        retire(out)


def fsync_limit(n=500, writers=1, size=512 * 1024):
    d = WORK / "fsync"
    retire(d)
    d.mkdir(parents=True)
    payload = os.urandom(size)

    def write(k):
        for i in range(k, n, writers):
            p = d / f"{i}.bin"
            with open(p, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            fd = os.open(d, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=write, args=(k,)) for k in range(writers)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    dt = time.perf_counter() - t0
    retire(d)
    return n / dt


def stow_bodies(ct_dirs):
    """One multipart/related body per directory (the CT split four ways)."""
    bodies = []
    for k, d in enumerate(ct_dirs):
        path = WORK / "stow" / f"body{k}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            with open(path, "wb") as out:
                for f in sorted(d.glob("*.dcm")):
                    out.write(b"--huren-bench\r\nContent-Type: application/dicom\r\n\r\n")
                    out.write(f.read_bytes())
                    out.write(b"\r\n")
                out.write(b"--huren-bench--\r\n")
        bodies.append(path)
    return bodies


def stow(server, bodies):
    """Parallel STOW-RS requests, one per body; returns wall-clock seconds."""
    auth = ["-H", f"Authorization: Bearer {server.stow_token}"] if server.stow_token else []
    t0 = time.perf_counter()
    procs = [subprocess.Popen(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", *auth,
                               "-H", 'Content-Type: multipart/related; type="application/dicom"; boundary=huren-bench',
                               "--data-binary", f"@{b}", f"{server.base}/studies"], stdout=subprocess.PIPE, text=True) for b in bodies]
    codes = [p.communicate()[0] for p in procs]
    dt = time.perf_counter() - t0
    if any(c not in ("200", "202") for c in codes):
        raise RuntimeError(f"STOW answered {codes}")
    return dt


def timed_get(url, headers, accept=None):
    h = dict(headers)
    if accept:
        h["Accept"] = accept
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total} %{size_download}"]
                         + sum((["-H", f"{k}: {v}"] for k, v in h.items()), []) + [url], capture_output=True, text=True)
    code, t, size = out.stdout.split()
    return int(code), float(t), int(size)


def wrk(url, headers, seconds=10, clients=8):
    args = ["wrk", "-t", str(min(2, clients)), "-c", str(clients), "-d", f"{seconds}s", "--latency"] + sum((["-H", f"{k}: {v}"] for k, v in headers.items()), []) + [url]
    out = subprocess.run(args, capture_output=True, text=True).stdout
    def pick(label):
        for line in out.splitlines():
            parts = line.split()
            if parts and parts[0] == label:
                return parts[1]
        return "?"
    rps = next((l.split()[1] for l in out.splitlines() if l.startswith("Requests/sec")), "0")
    non2xx = next((l for l in out.splitlines() if "Non-2xx" in l), "")
    return {"rps": float(rps), "p50": pick("50%"), "p99": pick("99%"), "errors": non2xx.strip()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="2,000 small instances instead of 20,000")
    ap.add_argument("--large-patients", type=int, default=500_000,
                    help="patients in huren's large index (× 2 studies × 1 instance); 0 skips it")
    ap.add_argument("--only-large", action="store_true", help="run only the large-index QIDO measurement")
    args = ap.parse_args()
    if args.only_large:
        WORK.mkdir(parents=True, exist_ok=True)
        print(json.dumps(large_index(args.large_patients), indent=1))
        return
    WORK.mkdir(parents=True, exist_ok=True)
    purge_retired()
    print("generating data…", flush=True)
    ct, small = generate(args.quick)
    study_uid = (WORK / "data" / "ct500.done").read_text()
    ct1 = split_dirs(ct, 1, WORK / "split" / "ct1")
    ct4 = split_dirs(ct, 4, WORK / "split" / "ct4")
    small4 = sorted(p for p in small.iterdir() if p.is_dir())
    n_small = sum(len(list(d.glob("*.dcm"))) for d in small4)
    # Many senders at once (issue 22, item 2): the same small instances over 16 and 64
    # associations, each its own study set.
    small_many = {n: split_files(sorted(small.rglob("*.dcm")), n, WORK / "split" / f"small{n}") for n in (16, 64)}
    results = {}
    results["limits"] = {
        "storescp CT 1 assoc (inst/s)": 500 / storescp_limit(ct1, False),
        "storescp --fork CT 4 assoc (inst/s)": 500 / storescp_limit(ct4, True),
        "fsync'd 512 KB writes, 1 writer (/s)": fsync_limit(500, 1),
        "fsync'd 512 KB writes, 4 writers (/s)": fsync_limit(500, 4),
        # The bound for small objects: the sender against a receiver that does not sync, and
        # what a file the size of a small instance costs to write durably.
        "storescp small 1 assoc (inst/s)": n_small / storescp_limit([small], False),
        "fsync'd 4 KB writes, 1 writer (/s)": fsync_limit(2000, 1, 4096),
        "fsync'd 4 KB writes, 4 writers (/s)": fsync_limit(2000, 4, 4096),
    }
    print(json.dumps(results["limits"], indent=1), flush=True)
    for server in (Huren(), Orthanc()):
        r = {}
        server.start()
        r["a. CT 500, 1 assoc (inst/s)"] = 500 / storescu(server.dimse, server.aet, ct1)
        r["h. peak RSS during (a), MiB"] = peak_rss_kib(server.proc.pid) / 1024
        server.stop()
        server.start()
        r["a. CT 500, 4 assoc (inst/s)"] = 500 / storescu(server.dimse, server.aet, ct4)
        r["b. small, 1 assoc (inst/s)"] = n_small / storescu(server.dimse, server.aet, [small])  # +sd +r recurses
        server.stop()
        server.start()
        r["c. STOW-RS CT 500, 4 parallel requests (inst/s)"] = 500 / stow(server, stow_bodies(ct4))
        server.stop()
        for n, dirs in small_many.items():
            server.start()
            r[f"b. small, {n} assoc (inst/s)"] = n_small / storescu(server.dimse, server.aet, dirs)
            r[f"h. peak RSS during (b) over {n} assoc, MiB"] = peak_rss_kib(server.proc.pid) / 1024
            server.stop()
        server.start()
        r["b. small, 4 assoc (inst/s)"] = n_small / storescu(server.dimse, server.aet, small4)
        r["a2. CT 500 again for (e–g), 4 assoc (inst/s)"] = 500 / storescu(server.dimse, server.aet, ct4)
        # A fresh process for the reads, so peak RSS reflects (d) and (e), not the ingest.
        server.stop()
        server.start(fresh=False)
        pid = server.proc.pid
        h = server.headers
        # d. QIDO at this size (8 closed-loop clients, limit=101).
        for label, q in QIDO_QUERIES:
            w = wrk(f"{server.base}/studies?limit=101&{q}", h)
            r[f"d. QIDO {label}: req/s"] = w["rps"]
            r[f"d. QIDO {label}: p50 / p99"] = f'{w["p50"]} / {w["p99"]}' + (f' ({w["errors"]})' if w["errors"] else "")
        series = requests.get(f"{server.base}/studies/{study_uid}/series", headers=h).json()[0]["0020000E"]["Value"][0]
        # e. WADO-RS retrieve of the whole CT study.
        code, t, size = timed_get(f"{server.base}/studies/{study_uid}", h, 'multipart/related; type="application/dicom"; transfer-syntax=*')
        r["e. study retrieve (s)"] = t if code == 200 else f"HTTP {code}"
        r["e. bytes"] = size
        r["h. peak RSS during (e), MiB"] = peak_rss_kib(pid) / 1024
        # f. series metadata warm (after a first request) and cold (after restart).
        url = f"{server.base}/studies/{study_uid}/series/{series}/metadata"
        timed_get(url, h)
        code, warm, _ = timed_get(url, h)
        r["f. series metadata warm (s)"] = warm if code == 200 else f"HTTP {code}"
        server.stop()
        server.start(fresh=False)
        code, cold, _ = timed_get(url, h)
        r["f. series metadata cold (s)"] = cold if code == 200 else f"HTTP {code}"
        inst = requests.get(f"{server.base}/studies/{study_uid}/series/{series}/instances?limit=1", headers=h).json()[0]["00080018"]["Value"][0]
        code, t, _ = timed_get(f"{server.base}/studies/{study_uid}/series/{series}/instances/{inst}/frames/1", h,
                               "multipart/related; type=application/octet-stream; transfer-syntax=*")
        r["g. one frame (s)"] = t if code == 200 else f"HTTP {code}"
        code, t, _ = timed_get(f"{server.base}/studies/{study_uid}/series/{series}/instances/{inst}/frames/1/rendered", h, "image/jpeg")
        r["g. one rendered frame (s)"] = t if code == 200 else f"HTTP {code}"
        server.stop()
        results[server.name] = r
        print(server.name, json.dumps(r, indent=1), flush=True)
    if args.large_patients:
        results["huren, large index"] = large_index(args.large_patients)
        print(json.dumps(results["huren, large index"], indent=1), flush=True)
    (WORK / "results.json").write_text(json.dumps(results, indent=1))
    purge_retired(wait=False)
    print_table(results)


QIDO_QUERIES = [("by PatientID", "PatientID=P000123"), ("by PatientName wildcard", "PatientName=Wang%5E12*"),
                ("by StudyDate range", "StudyDate=20250301-20250331")]


def large_index(patients):
    """d. QIDO on a large index: `huren bench-fill` builds it through the ingest use case
    (no object files, no fsync), then the same three queries as at 20k."""
    server = Huren()
    server.dir = WORK / f"huren-large-{patients}"
    r = {"instances": patients * 2}
    marker = server.dir / "filled"
    if not marker.exists():
        shutil.rmtree(server.dir, ignore_errors=True)
        server.dir.mkdir(parents=True)
        run([HUREN, "institution", "add", "--data-dir", server.dir, "--code", "bench", "--name", "Bench", "--level", "三级"])
        t0 = time.perf_counter()
        run([HUREN, "bench-fill", "--data-dir", server.dir, "--institution", "bench", "--patients", patients])
        r["fill (s)"] = time.perf_counter() - t0
        marker.write_text(str(r["fill (s)"]))
    else:
        r["fill (s)"] = float(marker.read_text())
    r["index size (MiB)"] = sum(f.stat().st_size for f in server.dir.glob("index.sqlite*")) / 2**20
    server.start(fresh=False)
    try:
        for label, q in QIDO_QUERIES:
            w = wrk(f"{server.base}/studies?limit=101&{q}", server.headers)
            r[f"d. QIDO {label}: req/s"] = w["rps"]
            r[f"d. QIDO {label}: p50 / p99"] = f'{w["p50"]} / {w["p99"]}' + (f' ({w["errors"]})' if w["errors"] else "")
    finally:
        server.stop()
    return r


def print_table(results):
    hu, orth = results["huren"], results["Orthanc 1.10.1 / DICOMweb 1.7"]
    print("\n| measure | huren | Orthanc | ratio |\n|---|---|---|---|")
    for k in hu:
        a, b = hu[k], orth.get(k)
        ratio = ""
        if isinstance(a, float) and isinstance(b, float) and a and b:
            faster_is_bigger = "inst/s" in k or "req/s" in k
            ratio = f"{(a / b) if faster_is_bigger else (b / a):.2f}×"
        fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)
        print(f"| {k} | {fmt(a)} | {fmt(b)} | {ratio} |")
    for k, v in results["limits"].items():
        print(f"| limit: {k} | {v:.0f} | | |")


if __name__ == "__main__":
    sys.exit(main())
