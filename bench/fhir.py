"""FHIR Observation search on a large index (issue #5 target: first page ≤ 50 ms at 1M
observations; a published FHIR server took 17–18 s at 1.5M). `huren bench-fill
--orders-per-patient` builds the index through the same submission use case FHIR creates and
HL7 messages use (no fsync while filling); then each search is timed one request at a time
(curl, 30 runs: median and worst) and under wrk's 8 closed-loop clients for 10 s.

Usage (from the repository root, after `bash bench/run.sh` has built huren):
    HUREN_BIN=<target>/release/huren .venv/bin/python bench/fhir.py [--patients 10000] [--orders 5]
"""
import argparse
import os
import shutil
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import bench  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--orders", type=int, default=5)
    args = ap.parse_args()
    total = args.patients * args.orders * 20
    server = bench.Huren()
    server.dir = bench.WORK / f"huren-fhir-{total}"
    marker = server.dir / "filled"
    if not marker.exists():
        shutil.rmtree(server.dir, ignore_errors=True)
        server.dir.mkdir(parents=True)
        bench.run([bench.HUREN, "institution", "add", "--data-dir", server.dir, "--code", "bench", "--name", "Bench",
                   "--level", "三级"])
        t0 = time.perf_counter()
        bench.run([bench.HUREN, "bench-fill", "--data-dir", server.dir, "--institution", "bench",
                   "--patients", args.patients, "--orders-per-patient", args.orders])
        marker.write_text(f"{time.perf_counter() - t0:.0f}")
    size = sum(f.stat().st_size for f in server.dir.glob("index.sqlite*")) / 2**20
    print(f"{total} observations, filled in {marker.read_text()} s, index {size:.0f} MiB")
    server.start(fresh=False)
    try:
        import requests
        base = f"http://127.0.0.1:{server.http}/fhir"
        h = server.headers
        issuer = "urn:huren:institution:bench"
        person = requests.get(f"{base}/Patient", params={"identifier": f"{issuer}|L000123"}, headers=h).json()
        person = person["entry"][0]["resource"]["id"]
        first = requests.get(f"{base}/Observation", params={"code": "http://loinc.org|2345-7", "_count": 50},
                             headers=h).json()
        page2 = next(link["url"] for link in first["link"] if link["relation"] == "next")
        searches = [
            ("patient (100 results)", f"Observation?patient={person}&_count=50"),
            ("subject.identifier (record number)", f"Observation?subject.identifier={urllib.parse.quote(issuer + '|L000123')}"),
            ("code (1/20 of all)", "Observation?code=http%3A%2F%2Floinc.org%7C2345-7&_count=50"),
            ("code, second page (next link)", page2.split("/fhir/", 1)[1]),
            ("code + one month", "Observation?code=http%3A%2F%2Floinc.org%7C2345-7&date=ge2025-06-01&date=lt2025-07-01"),
            ("one day, all codes", "Observation?date=2025-03-15&_count=50"),
            ("patient + code", f"Observation?patient={person}&code=http%3A%2F%2Floinc.org%7C2345-7"),
            ("DiagnosticReport by patient", f"DiagnosticReport?patient={person}"),
        ]
        print("| search | entries | one at a time: median / worst of 30 | 8 clients: req/s, p50 / p99 |")
        print("|---|---|---|---|")
        for label, q in searches:
            url = f"{base}/{q}"
            n = len(requests.get(url, headers=h).json().get("entry", []))
            times = sorted(bench.timed_get(url, h)[1] for _ in range(30))
            w = bench.wrk(url, h)
            print(f"| {label} | {n} | {times[15] * 1000:.1f} ms / {times[-1] * 1000:.1f} ms | "
                  f"{w['rps']:.0f}, {w['p50']} / {w['p99']} {w['errors']} |")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
