"""Recognition statistics over a year of regional data (issues #7 and #17): 1.5M doctors'
decisions at 80 receiving institutions, 20 departments each, the demo catalog's 34 items with
prices for each (by grade, one change in July), every day of 2025; reminders shown before
three decisions in five, and reminders no decision followed (some opened, most ignored) for a
tenth as many visits. Target: each query <= 200 ms.

The decisions are written straight into the index (through the server they would take hours),
then `huren recognition rebuild-statistics` derives the units from them exactly as the server
keeps them, and prices them. The queries go through the HTTP API as an operator (the whole
region) and as one institution's admin.

No anchor exists (Orthanc and dcm4chee have no recognition); the baseline in the same run is
the first version's way: one SQL statement recounting the units from the decisions.

    HUREN_BIN=<release huren> .venv/bin/python bench/recognition_stats.py [decisions] [--reuse]

`--reuse` runs the queries again on the previous run's data, when there is one.
"""
import datetime
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import ENV, HUREN, WORK, free_port, wait_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "crates" / "huren" / "demo" / "catalog"
ADMIN = "bench-admin-token"
KEYS = {"HUREN__MPI__SM4_KEY": "0123456789abcdeffedcba9876543210",
        "HUREN__MPI__INDEX_KEY": "00112233445566778899aabbccddeeff",
        "HUREN_BOOTSTRAP_ADMIN_TOKEN": ADMIN}
INSTITUTIONS = 80
DEPARTMENTS = [f"科室{n:02d}" for n in range(20)]
REASONS = ["01", "02", "03", "04", "05", "06", "98", "99"]
REPEATS = 30


def run(*args, stdin=None):
    out = subprocess.run([str(HUREN), *map(str, args)], capture_output=True, text=True, input=stdin,
                         env=dict(ENV, **KEYS))
    if out.returncode:
        raise RuntimeError(out.stderr[-400:])
    return out.stdout.strip()


def fill(d, decisions):
    """Institutions and catalog through the CLI; persons and decisions straight into SQLite."""
    rnd = random.Random(7)
    levels = ["三级"] * 2 + ["二级"] * 5 + ["一级"] * 3
    for n in range(INSTITUTIONS):
        run("institution", "add", "--data-dir", d, "--code", f"h{n:03d}", "--name", f"医院{n:03d}",
            "--level", levels[n % 10], "--city", "重庆" if n % 2 else "成都", "--region", "川渝",
            "--valid-from", "2024-01-01")
    run("catalog", "import", "--data-dir", d, "--file", CATALOG / "items.csv", "--label", "v1",
        "--effective-from", "2024-01-01")
    db = sqlite3.connect(d / "index.sqlite")
    items = [r[0] for r in db.execute(
        "SELECT code FROM catalog_item WHERE version_id = (SELECT MAX(id) FROM catalog_version)")]
    # Every item priced: by grade in the region, and a price change on 1 July for half of them.
    prices = d / "prices.csv"
    lines = ["item_code,price_region,institution_grade,price_yuan,valid_from,valid_to"]
    for k, item in enumerate(items):
        base = 20 + 13 * k
        lines += [f"{item},川渝,三级,{base * 1.2:.2f},2024-01-01,", f"{item},川渝,*,{base:.2f},2024-01-01,"]
        if k % 2:
            lines.append(f"{item},川渝,*,{base * 1.1:.2f},2025-07-01,")
    prices.write_text("\n".join(lines) + "\n")
    run("catalog", "prices", "--data-dir", d, "--file", prices)
    ids = dict(db.execute("SELECT code, id FROM institution"))
    persons = decisions // 5
    db.executemany("INSERT INTO person (public_id, created_at) VALUES (?, 0)",
                   ((f"bench-{n}",) for n in range(persons)))
    first = datetime.date(2025, 1, 1)
    # Larger hospitals decide more (Zipf-like), common items more often.
    inst_weights = [1 / (k + 1) ** 0.8 for k in range(INSTITUTIONS)]
    item_weights = [1 / (k + 1) for k in range(len(items))]
    inst_pick = rnd.choices(range(INSTITUTIONS), inst_weights, k=decisions)
    item_pick = rnd.choices(range(len(items)), item_weights, k=decisions)

    def rows():
        for n in range(decisions):
            day = first + datetime.timedelta(days=n * 365 // decisions)
            at = int(datetime.datetime(day.year, day.month, day.day, 9).timestamp()) + n % 30000
            inst = f"h{inst_pick[n]:03d}"
            performer = f"h{(inst_pick[n] + 1 + n % 7) % INSTITUTIONS:03d}"
            item = items[item_pick[n]]
            recognizable = rnd.random() < 0.85
            recognize = recognizable and rnd.random() < 0.8
            reason = None if recognize else rnd.choices(REASONS, [30, 20, 15, 10, 2, 8, 10, 5])[0]
            yield (at, day.isoformat(), ids[inst], rnd.choice(DEPARTMENTS), "bench", rnd.randrange(persons) + 1,
                   f"V{n // 2}", "lab_result", f"R{n}", performer, item,
                   "recognizable" if recognizable else "reference_only", "{}", "v1",
                   "recognize" if recognize else "re_examine", reason, "", int(reason not in ("98", "99")))

    db.executemany(
        """INSERT INTO recognition_decision (decided_at, decided_on, institution_id, department, actor, person_id,
               visit_number, result_kind, result_ref, performing_institution, item, engine_verdict, engine_decision,
               catalog_version, decision, reason, record_sentence, counted)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""", rows())
    # Reminders: one before three decisions in five (listing the decided result), and a tenth
    # as many visits whose reminder no decision followed (a fifth of those opened).
    db.execute("""INSERT INTO recognition_reminder (id, shown_at, shown_on, institution_id, department, actor,
                      person_id, visit, moment, ordered_item)
                  SELECT id, decided_at - 60, decided_on, institution_id, department, 'bench', person_id,
                         visit_number, 'order', item
                    FROM recognition_decision WHERE id % 5 < 3""")
    db.execute("""INSERT INTO recognition_reminder_result (reminder_id, result_kind, result_ref, item, engine_verdict)
                  SELECT r.id, 'lab_result', d.result_ref, d.item, d.engine_verdict
                    FROM recognition_reminder r JOIN recognition_decision d ON d.id = r.id""")
    base = db.execute("SELECT MAX(id) FROM recognition_reminder").fetchone()[0] or 0

    def lonely():
        for n in range(decisions // 10):
            day = first + datetime.timedelta(days=n * 365 // (decisions // 10))
            at = int(datetime.datetime(day.year, day.month, day.day, 10).timestamp()) + n % 30000
            inst = ids[f"h{inst_pick[n]:03d}"]
            yield (base + 1 + n, at, day.isoformat(), inst, rnd.choice(DEPARTMENTS), "bench",
                   rnd.randrange(persons) + 1, f"L{n}", "order", items[item_pick[n]])

    db.executemany("""INSERT INTO recognition_reminder (id, shown_at, shown_on, institution_id, department, actor,
                          person_id, visit, moment, ordered_item) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""", lonely())
    db.execute("""INSERT INTO recognition_reminder_result (reminder_id, result_kind, result_ref, item, engine_verdict,
                      opened_at)
                  SELECT id, 'imaging_study', 'S' || id, ordered_item,
                         CASE WHEN id % 7 = 0 THEN 'reference_only' ELSE 'recognizable' END,
                         CASE WHEN id % 5 = 0 THEN shown_at + 300 END
                    FROM recognition_reminder WHERE id > ?""", (base,))
    db.commit()
    db.close()


# The first version's way: every query recounts the units with a window function (the decided
# ones; the reminder-only units would add a second pass).
RECOUNT = """
WITH unit AS (
  SELECT d.institution_id, COALESCE(d.ordered_item, d.item) AS item, d.decision,
         ROW_NUMBER() OVER (PARTITION BY d.institution_id, COALESCE(d.visit_number, 'decision:' || d.id),
                                         COALESCE(d.ordered_item, d.item)
                            ORDER BY d.decided_at DESC, d.id DESC) AS rn
    FROM recognition_decision d
   WHERE d.superseded_by IS NULL
     AND d.decided_on >= ? AND d.decided_on <= ?)
SELECT item, decision, COUNT(*) FROM unit WHERE rn = 1 GROUP BY item, decision"""


def serve(d):
    """`huren serve` on the data directory; (process, HTTP port) once it listens."""
    http = free_port()
    proc = subprocess.Popen([str(HUREN), "serve", "--data-dir", str(d), "--http", f"127.0.0.1:{http}",
                             "--dimse", f"127.0.0.1:{free_port()}"],
                            env=dict(ENV, RUST_LOG="warn", **KEYS), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(http)
    return proc, http


def timed(fn, repeats=REPEATS):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"p50_ms": round(statistics.median(times), 1), "p99_ms": round(times[int(len(times) * 0.99) - 1], 1),
            "max_ms": round(times[-1], 1)}


def main():
    args = [a for a in sys.argv[1:] if a != "--reuse"]
    decisions = int(args[0]) if args else 1_500_000
    d = WORK / "recognition-stats"
    if "--reuse" in sys.argv and (d / "index.sqlite").exists():
        # The queries again on the last run's data (after a change to the reading side only).
        fill_s = rebuild_s = None
        with sqlite3.connect(d / "index.sqlite") as db:
            ((units,),) = db.execute("SELECT COUNT(*) FROM recognition_unit WHERE item <> ''").fetchall()
    else:
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        t = time.perf_counter()
        fill(d, decisions)
        fill_s = round(time.perf_counter() - t, 1)
        t = time.perf_counter()
        units = int(run("recognition", "rebuild-statistics", "--data-dir", d).split()[0])
        rebuild_s = round(time.perf_counter() - t, 1)
        run("user", "add", "--data-dir", d, "--username", "iadmin", "--name", "管理员", "--role",
            "institution_admin", "--institution", "h000", "--password-stdin", stdin="a-long-password-1\n")
    results = {"decisions": decisions, "units": units, "fill_s": fill_s, "rebuild_and_price_s": rebuild_s}
    proc, http = serve(d)
    try:
        base = f"http://127.0.0.1:{http}/api/recognition/statistics"
        operator = {"Authorization": f"Bearer {ADMIN}"}
        cookie = requests.post(f"http://127.0.0.1:{http}/api/session",
                               json={"username": "iadmin", "password": "a-long-password-1"}).cookies["huren_session"]
        year = {"from": "2025-01-01", "until": "2025-12-31"}
        ragged = {"from": "2025-01-17", "until": "2025-12-14"}
        check = requests.get(base, params={**year, "by": "item"}, headers=operator).json()
        results["year total"] = {k: check["total"][k] for k in (
            "units", "recognized", "reexamined", "not_counted", "opened", "ignored", "eligible", "rate",
            "eligible_rate", "overall_rate", "coverage", "ignore_rate", "savings_yuan", "unpriced")}
        assert check["total"]["units"] == units, (check["total"]["units"], units)
        for label, params, auth in [
            ("region, year, by item", {**year, "by": "item"}, {"headers": operator}),
            ("region, year, by institution", {**year, "by": "institution"}, {"headers": operator}),
            ("region, year, by department", {**year, "by": "department"}, {"headers": operator}),
            ("region, year, by month", {**year, "by": "month"}, {"headers": operator}),
            ("region, 17 Jan-14 Dec, by item", {**ragged, "by": "item"}, {"headers": operator}),
            ("region, 17 Jan-14 Dec, by department", {**ragged, "by": "department"}, {"headers": operator}),
            ("region, 20 Mar-10 Sep, by department", {"from": "2025-03-20", "until": "2025-09-10",
                                                      "by": "department"}, {"headers": operator}),
            ("region, year, by item, CSV", {**year, "by": "item", "format": "csv"}, {"headers": operator}),
            ("one institution's admin, year, by department", {**year, "by": "department"},
             {"cookies": {"huren_session": cookie}}),
        ]:
            def one():
                r = requests.get(base, params=params, **auth)
                assert r.status_code == 200, r.text
            one()
            results[label] = timed(one)
        db = sqlite3.connect(f"file:{d / 'index.sqlite'}?mode=ro", uri=True)
        results["baseline: recount from decisions, year, by item (sqlite3)"] = timed(
            lambda: db.execute(RECOUNT, ("2025-01-01", "2025-12-31")).fetchall(), repeats=5)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(json.dumps(results, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
