"""The doctor's workstation (issue #19), timed on this machine:

1. the patient page for a person with 201 results (100 CT studies over DIMSE and 100 lab
   results over FHIR at the county hospital, one CT at the city hospital), requested by 20
   concurrent doctors' sessions (wrk, 30 s): server time p50/p99; and the page's weight (HTML,
   CSS, JS; as sent and gzip-compressed);
2. from clicking a 500-slice 512×512 CT on the timeline to its first image drawn in OHIF, in
   headless Chromium with a cold cache (a new browser context each time), median of 5, split
   into the time spent waiting on huren's DICOMweb requests, loading the viewer's files, and
   the rest (the viewer's own work: starting, decoding, drawing). The patient page starts
   OHIF in a hidden frame while it is read; the click is timed right after the page loads
   and after five seconds of reading.

No anchor: Orthanc and dcm4chee have no patient page with recognition, and the viewer is the
same OHIF build a site would put in front of them.

    HUREN_BIN=<release huren> .venv/bin/python bench/workstation.py [--runs 5] [--seconds 30]
"""
import argparse
import datetime
import gzip
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import requests
from pydicom.uid import generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import ENV, HUREN, WORK, free_port, make_image, wait_port  # noqa: E402
from recognition import KEYS, resident_id, run, seed_patient, setup_region  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic", "--use-gl=swiftshader", "--enable-unsafe-swiftshader"]

# Installed in every page of a context before its scripts: the moment cornerstone first draws an
# image (its IMAGE_RENDERED event, caught on the way down to the viewport element).
FIRST_DRAWN = """
window.__firstDrawn = null;
window.addEventListener('CORNERSTONE_IMAGE_RENDERED', () => {
  if (window.__firstDrawn === null) window.__firstDrawn = performance.timeOrigin + performance.now();
}, true);
"""


def seed(base, dimse, county_token, city_token, ct_dir, number):
    # Lab values that vary, with a reference range: the page draws trends.
    seed_patient(base, dimse, county_token, number, first_ct_days_ago=1,
                 lab=lambda i: {"valueQuantity": {"value": 4.0 + (i % 7) * 0.5, "unit": "mmol/L"},
                                "referenceRange": [{"low": {"value": 3.9}, "high": {"value": 6.1}}]})
    # The 500-slice CT, newest on the timeline, sent by the county's PACS with DCMTK.
    out = subprocess.run(["/usr/bin/storescu", "-aet", "COUNTY", "-aec", "HUREN", "+sd", "127.0.0.1", str(dimse),
                          str(ct_dir)], capture_output=True, text=True, env=ENV, timeout=900)
    assert out.returncode == 0, out.stderr[-500:]
    visit = {"visit_number": "V1", "patient_id": "CY1", "doctor": "doc"}
    assert requests.post(f"{base}/api/encounters", json=visit,
                         headers={"Authorization": f"Bearer {city_token}"}).status_code == 200


def make_ct(ct_dir, number):
    """500 slices of 512×512 with a disc whose radius changes along the series."""
    study, series = generate_uid(), generate_uid()
    yy, xx = np.mgrid[:512, :512]
    import pydicom
    for i in range(500):
        p = ct_dir / f"{i:03}.dcm"
        make_image(p, ("CX1", "Sun^Lizhen=孙^丽珍"), study, series, 512, 512, i + 1)
        ds = pydicom.dcmread(p)
        r = 60 + 150 * abs(np.sin(i / 40))
        ds.PixelData = np.where((yy - 256) ** 2 + (xx - 256) ** 2 < r * r, 1100, 24).astype(np.uint16).tobytes()
        ds.StudyDate = datetime.date.today().strftime("%Y%m%d")
        ds.StudyDescription, ds.BodyPartExamined = "胸部CT平扫", "CHEST"
        ds.ImagePositionPatient = [-250, -250, i * 1.25]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.SliceThickness = [0.98, 0.98], 1.25
        other = pydicom.Dataset()
        other.PatientID, other.IssuerOfPatientID, other.TypeOfPatientID = number, "身份证", "TEXT"
        ds.OtherPatientIDsSequence = [other]
        ds.save_as(p, enforce_file_format=True)
    return study


def qc_drained(d, timeout=600):
    """Waits until image quality control has graded everything sent (its workers share this
    machine's two cores with the browser here; on site they run on the server, not on the
    doctor's PC), and says how long that took."""
    import sqlite3
    start = time.time()
    while time.time() - start < timeout:
        c = sqlite3.connect(f"file:{d / 'index.sqlite'}?mode=ro", uri=True)
        try:
            (waiting,) = c.execute("SELECT COUNT(*) FROM qc_job WHERE state IN ('queued', 'running')").fetchone()
            (ungraded,) = c.execute("SELECT COUNT(*) FROM study s LEFT JOIN qc_study q ON q.study_id = s.id "
                                    "WHERE s.modalities = 'CT' AND q.aggregated_at IS NULL").fetchone()
        finally:
            c.close()
        if waiting == 0 and ungraded == 0:
            return round(time.time() - start, 1)
        time.sleep(1)
    raise RuntimeError("quality control did not finish")


def launch(base, city_token):
    r = requests.post(f"{base}/api/launch", json={"doctor": "doc", "patient_id": "CY1"},
                      headers={"Authorization": f"Bearer {city_token}"})
    assert r.status_code == 201, r.text
    return r.json()["url"]


def page_load(base, city_token, seconds):
    landing = requests.get(launch(base, city_token), allow_redirects=False)
    path, cookie = landing.headers["location"], landing.cookies["huren_session"]
    page = requests.get(base + path, cookies={"huren_session": cookie})
    assert page.status_code == 200
    html = page.content
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
    weight = {"html": (len(html), len(gzip.compress(html, 6)))}
    for a in assets:
        raw = requests.get(base + a, headers={"Accept-Encoding": "identity"}).content
        sent = requests.get(base + a, headers={"Accept-Encoding": "gzip"}, stream=True)
        wire = len(sent.raw.read())
        weight[a] = (len(raw), wire if sent.headers.get("content-encoding") == "gzip" else len(gzip.compress(raw, 6)))
    entries = len(re.findall(r'<li class="entry', page.text))
    out = subprocess.run(["wrk", "-t", "2", "-c", "20", "-d", f"{seconds}s", "--latency",
                          "-H", f"Cookie: huren_session={cookie}", "-H", "Accept-Encoding: gzip", base + path],
                         capture_output=True, text=True).stdout
    pick = lambda label: next((line.split()[1] for line in out.splitlines() if line.split()[:1] == [label]), "?")  # noqa: E731
    rps = next((line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec")), "0")
    errors = next((line.strip() for line in out.splitlines() if "Non-2xx" in line), "")
    paced = paced_load(base + path, cookie, seconds)
    total_raw = sum(v[0] for v in weight.values())
    total_gz = sum(v[1] for v in weight.values())
    return {"timeline entries": entries, "req/s": float(rps), "p50": pick("50%"), "p90": pick("90%"),
            "p99": pick("99%"), "errors": errors, "paced: 20 doctors, one page a second each": paced,
            "weight bytes (as sent uncompressed, gzip)": {k: list(v) for k, v in weight.items()},
            "weight total": [total_raw, total_gz]}


def paced_load(url, cookie, seconds, doctors=20, every=1.0):
    """20 doctors each opening the page once a second (staggered), each page timed from
    request to last byte: the server time at a doctor's pace, beside wrk's back-to-back load."""
    import threading
    times, lock = [], threading.Lock()
    start = time.time() + 0.5

    def doctor(k):
        s = requests.Session()
        s.cookies.set("huren_session", cookie)
        n = 0
        while True:
            due = start + k * every / doctors + n * every
            if due > start + seconds:
                return
            time.sleep(max(0.0, due - time.time()))
            t = time.perf_counter()
            r = s.get(url, headers={"Accept-Encoding": "gzip"})
            dt = (time.perf_counter() - t) * 1000
            assert r.status_code == 200
            with lock:
                times.append(dt)
            n += 1
    threads = [threading.Thread(target=doctor, args=(k,)) for k in range(doctors)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    times.sort()
    q = lambda p: round(times[min(len(times) - 1, int(p * len(times)))], 1)  # noqa: E731
    return {"pages": len(times), "p50 ms": q(0.5), "p90 ms": q(0.9), "p99 ms": q(0.99), "max ms": round(times[-1], 1)}


def click_to_image(base, city_token, study, runs, read_ms):
    """Click 打开影像 `read_ms` after the patient page has loaded (the viewer starts in a hidden
    frame meanwhile) and time until the first image is drawn in that frame."""
    import io

    from PIL import Image
    from playwright.sync_api import sync_playwright
    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for n in range(runs):
            context = browser.new_context(viewport={"width": 1280, "height": 800})  # a cold cache
            context.add_init_script(FIRST_DRAWN)
            page = context.new_page()
            page.goto(launch(base, city_token))
            link = page.locator(f"a.open-images[data-study='{study}']")
            link.wait_for()
            page.wait_for_timeout(read_ms)
            clicked = page.evaluate("Date.now()")
            link.click()
            # Polled from here: the viewer's CSP (rightly) refuses the page-side eval that
            # wait_for_function needs.
            deadline, drawn, frame = time.time() + 120, None, None
            while drawn is None and time.time() < deadline:
                frame = next((f for f in page.frames if "/viewer/viewer" in f.url), None)
                if frame is not None:
                    drawn = frame.evaluate("window.__firstDrawn")
                page.wait_for_timeout(20)
            assert drawn is not None, "no image drawn within 120 s"
            timing = frame.evaluate("""() => {
                const start = performance.timeOrigin;
                return performance.getEntriesByType('resource').map(e => ({
                    url: e.name, start: start + e.startTime, end: start + e.responseEnd,
                    bytes: e.transferSize}));
            }""")
            viewer_bytes = sum(e["bytes"] for e in timing if "/viewer/" in e["url"] and e["end"] <= drawn)
            # What the viewport shows at that moment is an image, not a blank canvas.
            el = page.frame_locator("#viewer-frame").locator(".cornerstone-viewport-element, [data-viewport-uid]").first
            px = np.asarray(Image.open(io.BytesIO(el.screenshot())).convert("L"), dtype=np.float64)

            def busy(pred):
                spans = sorted((max(e["start"], clicked), min(e["end"], drawn)) for e in timing if pred(e["url"]))
                total, edge = 0.0, clicked
                for a, b in spans:
                    a = max(a, edge)
                    if b > a:
                        total += b - a
                        edge = b
                return total
            out.append({"click to first image ms": round(drawn - clicked),
                        "waiting on huren DICOMweb ms": round(busy(lambda u: "/dicom-web/" in u)),
                        "loading viewer files ms": round(busy(lambda u: "/viewer/" in u and "/dicom-web/" not in u)),
                        "viewer files transferred kB (compressed)": round(viewer_bytes / 1024),
                        "image std": round(float(px.std()), 1)})
            context.close()
        browser.close()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--only", choices=["page", "viewer"], help="measure one of the two")
    args = ap.parse_args()
    d = WORK / "workstation"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    setup_region(d)
    county_token = run("token", "create", "--data-dir", d, "--institution", "county")
    city_token = run("token", "create", "--data-dir", d, "--institution", "city")
    ct_dir = WORK / "data" / "workstation-ct"
    shutil.rmtree(ct_dir, ignore_errors=True)
    ct_dir.mkdir(parents=True)
    http, dimse = free_port(), free_port()
    proc = subprocess.Popen([str(HUREN), "serve", "--data-dir", str(d), "--http", f"127.0.0.1:{http}",
                             "--dimse", f"127.0.0.1:{dimse}", "--ae-title", "HUREN"],
                            # Studies are graded 5 s after their last image (qc_drained waits for it).
                            env=dict(ENV, RUST_LOG="warn", HUREN__ARCHIVE__STABLE_AFTER_SECS="5", **KEYS),
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_port(http), wait_port(dimse)
        base = f"http://127.0.0.1:{http}"
        # One person: the CT carries the same identity number as the other results.
        number = resident_id()
        study = make_ct(ct_dir, number)
        seed(base, dimse, county_token, city_token, ct_dir, number)
        out = {"QC of the seeded studies finished after s": qc_drained(d)}
        if args.only != "viewer":
            out["patient page (20 concurrent sessions)"] = page_load(base, city_token, args.seconds)
        if args.only != "page":
            # Clicked as soon as the page is there (the viewer still starting), and after the
            # page has been read for five seconds (the viewer started).
            for label, read_ms in [("click at once", 300), ("click after reading the page 5 s", 5000)]:
                clicks = click_to_image(base, city_token, study, args.runs, read_ms)
                median = statistics.median(c["click to first image ms"] for c in clicks)
                out[f"first CT image, {label}"] = {"median ms": median, "runs": clicks}
        print(json.dumps(out, indent=1, ensure_ascii=False))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(ct_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
