"""The back office's dashboards over a year for 1,000 institutions (issue #20): the operators'
statistics page (`/stats`) and the QC centre's page (`/qc`), each as a regional operator sees
it, timed as whole page requests on loopback (server time plus a loopback round trip). Target:
<= 200 ms each.

The data: a year (2025) of doctors' decisions at 1,000 receiving institutions (Zipf-like
sizes, 20 departments each; reminders as in bench/recognition_stats.py, whose fill this
reuses), priced and rolled up by `huren recognition rebuild-statistics` exactly as the server
keeps them; and a year of graded studies at the same institutions (CT, DR, MR, US; grades
and scores spread as a region's are), written straight into the index as the QC workers
would leave them.

No anchor: Orthanc and dcm4chee have no recognition statistics or quality dashboards. The API
answers behind each page are timed beside the page, so the rendering's share is visible.

    HUREN_BIN=<release huren> .venv/bin/python bench/dashboards.py [decisions] [studies] [--reuse]
        [--institutions N] [--repeats N] [--work DIR]

`--reuse` times the pages again on the previous run's data. The suite runs a bounded smoke of
it (tests/e2e/test_bench_smoke.py: 20 institutions, a few thousand rows, the debug binary),
which checks that every page answers, not how fast.
"""
import datetime
import json
import random
import shutil
import sqlite3
import sys
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import recognition_stats as rs  # noqa: E402
from bench import WORK  # noqa: E402

INSTITUTIONS = 1000
PASSWORD = "a-long-password-1"
MODALITIES = [("CT", 40), ("DX", 35), ("MR", 15), ("US", 10)]


def fill_quality(d, studies):
    """A year of graded studies: one patient record per institution holds them (the pages
    never read patients), each study with its qc_study row as aggregation leaves it."""
    rnd = random.Random(11)
    db = sqlite3.connect(d / "index.sqlite")
    ids = [i for (i,) in db.execute("SELECT id FROM institution WHERE code LIKE 'h%' ORDER BY code")]
    patients = {}
    for i in ids:
        cur = db.execute("INSERT INTO patient (issuer, patient_id, updated_at) VALUES (?, 'QC', 0)",
                         (f"urn:huren:institution:{i}",))
        patients[i] = cur.lastrowid
    weights = [1 / (k + 1) ** 0.8 for k in range(len(ids))]
    pick = rnd.choices(range(len(ids)), weights, k=studies)
    mods = rnd.choices([m for m, _ in MODALITIES], [w for _, w in MODALITIES], k=studies)
    first = datetime.date(2025, 1, 1)

    def study_rows():
        for n in range(studies):
            day = first + datetime.timedelta(days=n * 365 // studies)
            inst = ids[pick[n]]
            yield (n + 1, patients[inst], f"2.25.{10**9 + n}", inst, day.strftime("%Y%m%d"), mods[n], 1, 1,
                   1735689600 + n, 0, 1735689600 + n)

    db.executemany("""INSERT INTO study (id, patient_id, study_uid, institution_id, study_date, modalities,
                          num_series, num_instances, last_instance_at, stable_after_secs, stable_at)
                      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""", study_rows())

    def qc_rows():
        for n in range(studies):
            # Most studies good, a tail of poor ones; some uncalibrated, some incomplete.
            score = max(0.0, min(100.0, rnd.gauss(86, 9) - (25 if rnd.random() < 0.03 else 0)))
            grade = "A" if score >= 85 else "B" if score >= 70 else "C" if score >= 60 else "reject"
            yield (n + 1, 0, 1735689600 + n, 1735689600 + n, round(score, 1), grade,
                   int(rnd.random() < 0.9), 1 + n % 300, 0, int(rnd.random() > 0.02), 0)

    db.executemany("""INSERT INTO qc_study (study_id, dirty, changed_at, aggregated_at, score, grade, calibrated,
                          images, excluded, complete, not_assessable)
                      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""", qc_rows())
    db.commit()
    db.execute("ANALYZE")
    db.close()


def option(name, default):
    """`--name value` from the command line, else `default`."""
    if name in sys.argv:
        return sys.argv[sys.argv.index(name) + 1]
    return default


def main():
    global INSTITUTIONS
    INSTITUTIONS = int(option("--institutions", INSTITUTIONS))
    repeats = int(option("--repeats", 20))
    named = {"--institutions", "--repeats", "--work"}
    args = [a for i, a in enumerate(sys.argv[1:], 1)
            if a != "--reuse" and a not in named and sys.argv[i - 1] not in named]
    decisions = int(args[0]) if args else 2_000_000
    studies = int(args[1]) if len(args) > 1 else 1_000_000
    d = Path(option("--work", WORK)) / "dashboards"
    results = {"institutions": INSTITUTIONS, "decisions": decisions, "graded studies": studies}
    if not ("--reuse" in sys.argv and (d / "index.sqlite").exists()):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        rs.INSTITUTIONS = INSTITUTIONS
        t = rs.time.perf_counter()
        rs.fill(d, decisions)
        fill_quality(d, studies)
        results["fill_s"] = round(rs.time.perf_counter() - t, 1)
        t = rs.time.perf_counter()
        results["units"] = int(rs.run("recognition", "rebuild-statistics", "--data-dir", d).split()[0])
        results["rebuild_and_price_s"] = round(rs.time.perf_counter() - t, 1)
        rs.run("user", "add", "--data-dir", d, "--username", "ops", "--name", "运营", "--role",
               "regional_operator", "--institution", "h000", "--password-stdin", stdin=PASSWORD + "\n")
    proc, http = rs.serve(d)
    try:
        base = f"http://127.0.0.1:{http}"
        s = requests.Session()
        r = s.post(f"{base}/api/session", json={"username": "ops", "password": PASSWORD})
        assert r.status_code == 201, r.text
        year = {"from": "2025-01-01", "until": "2025-12-31"}
        # Each page, then the API call behind it.
        for label, path, params, expect in [
            ("statistics page, year, by institution", "/stats", {**year, "by": "institution"}, "h000"),
            ("statistics page, year, by department", "/stats", {**year, "by": "department"}, "科室"),
            ("statistics page, year, by item", "/stats", {**year, "by": "item"}, "stats"),
            ("statistics page, year, by month", "/stats", {**year, "by": "month"}, "2025-12"),
            ("statistics API, year, by institution", "/api/recognition/statistics", {**year, "by": "institution"},
             "h000"),
            ("QC page, year, by institution", "/qc", {**year, "by": "institution"}, "h000"),
            ("QC page, year, by modality", "/qc", {**year, "by": "modality"}, "MR"),
            ("QC page, year, by month", "/qc", {**year, "by": "month"}, "2025-12"),
            ("QC API, year, by institution", "/api/quality/statistics", {**year, "by": "institution"}, "h000"),
        ]:
            def one():
                r = s.get(base + path, params=params)
                assert r.status_code == 200 and expect in r.text, (r.status_code, r.text[:300])
            one()
            results[label] = rs.timed(one, repeats=repeats)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(json.dumps(results, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
