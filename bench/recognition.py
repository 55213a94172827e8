"""Recognition reminders under load (issue #7 item 3): a patient with 200 results (100 CT
studies over DIMSE and 100 lab results over FHIR, at the county hospital), the city's HIS asking
for the doctor with an open encounter, 20 concurrent callers (wrk), at encounter time and at
order time, 65 s each (longer than the 60 s institution cache, so a refresh falls inside).
Target: p99 <= 200 ms. No anchor exists: Orthanc and dcm4chee have no recognition.

    HUREN_BIN=<release huren> .venv/bin/python bench/recognition.py
"""
import datetime
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import ENV, HUREN, WORK, free_port, wait_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "crates" / "huren" / "demo" / "catalog"
KEYS = {"HUREN__MPI__SM4_KEY": "0123456789abcdeffedcba9876543210",
        "HUREN__MPI__INDEX_KEY": "00112233445566778899aabbccddeeff"}


def run(*args):
    out = subprocess.run([str(HUREN), *map(str, args)], capture_output=True, text=True, env=dict(ENV, **KEYS))
    if out.returncode:
        raise RuntimeError(out.stderr[-400:])
    return out.stdout.strip()


def resident_id():
    # The sequence's last digit is odd for a man (GB 11643): the records say M.
    body = "500101" + "19600101" + f"{random.randrange(100):02d}{random.randrange(5) * 2 + 1}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights)) % 11]


def ct(pid, number, day):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientID, ds.PatientName, ds.PatientBirthDate, ds.PatientSex = pid, "Sun^Lizhen=孙^丽珍", "19600101", "M"
    other = Dataset()
    other.PatientID, other.IssuerOfPatientID, other.TypeOfPatientID = number, "身份证", "TEXT"
    ds.OtherPatientIDsSequence = [other]
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.Modality, ds.StudyDate, ds.StudyDescription, ds.BodyPartExamined = "CT", day, "胸部CT平扫", "CHEST"
    ds.Rows = ds.Columns = 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelData = bytes(128)
    return ds


def setup_region(d):
    """The city and county hospitals (both in 重庆, the county's PACS and the city's), the demo
    catalog with its study rules and the 川渝HR scope, and the city's doctor `doc`."""
    run("institution", "add", "--data-dir", d, "--code", "city", "--name", "市人民医院", "--level", "三级",
        "--city", "重庆", "--identifier-system", "urn:oid:1.2.156.1")
    run("institution", "add", "--data-dir", d, "--code", "county", "--name", "县人民医院", "--level", "二级",
        "--city", "重庆")
    run("ae", "add", "--data-dir", d, "--institution", "county", "--ae-title", "COUNTY", "--host", "127.0.0.1")
    run("ae", "add", "--data-dir", d, "--institution", "city", "--ae-title", "CITY", "--host", "127.0.0.1")
    run("catalog", "import", "--data-dir", d, "--file", CATALOG / "items.csv", "--label", "v1",
        "--effective-from", "2024-01-01")
    run("catalog", "rules", "--data-dir", d, "--file", CATALOG / "study-rules.csv")
    with tempfile.TemporaryDirectory() as t:
        (Path(t) / "s.csv").write_text("label,covers\n川渝HR,city:重庆;city:成都\n")
        run("catalog", "scopes", "--data-dir", d, "--file", Path(t) / "s.csv")
    with tempfile.TemporaryFile(mode="w+") as pw:
        pw.write("a-long-password-1\n")
        pw.seek(0)
        subprocess.run([str(HUREN), "user", "add", "--data-dir", str(d), "--username", "doc", "--name", "王丽",
                        "--role", "doctor", "--institution", "city", "--password-stdin"], stdin=pw, check=True,
                       capture_output=True, env=ENV)


def seed_patient(base, dimse, county_token, number, first_ct_days_ago=0,
                 lab=lambda i: {"valueQuantity": {"value": 5.0, "unit": "mmol/L"}}):
    """One person with 201 results: 100 county CTs over DIMSE (every third day from
    `first_ct_days_ago`), one city CT today, and 100 county lab results over FHIR (one a day;
    `lab(i)` gives the i-th one's value fields)."""
    today = datetime.date.today()
    ae = AE(ae_title="COUNTY")
    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2", ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", dimse, ae_title="HUREN")
    for i in range(100):
        day = (today - datetime.timedelta(days=i * 3 + first_ct_days_ago)).strftime("%Y%m%d")
        assert assoc.send_c_store(ct("CX1", number, day)).Status == 0
    assoc.release()
    city = AE(ae_title="CITY")
    city.add_requested_context("1.2.840.10008.5.1.4.1.1.2", ExplicitVRLittleEndian)
    a = city.associate("127.0.0.1", dimse, ae_title="HUREN")
    assert a.send_c_store(ct("CY1", number, today.strftime("%Y%m%d"))).Status == 0
    a.release()
    county = {"Authorization": f"Bearer {county_token}", "Content-Type": "application/fhir+json"}
    for i in range(100):
        day = (today - datetime.timedelta(days=i)).isoformat()
        obs = {"resourceType": "Observation", "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": ["2345-7", "2885-2", "1751-7"][i % 3]}]},
               "subject": {"identifier": {"system": "urn:huren:institution:county", "value": "CX1"}},
               "effectiveDateTime": f"{day}T08:00:00+08:00", "issued": f"{day}T10:00:00+08:00", **lab(i)}
        r = requests.post(f"{base}/fhir/Observation", json=obs, headers=county)
        assert r.status_code == 201, r.text


def main():
    d = WORK / "recognition"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    setup_region(d)
    with tempfile.TemporaryDirectory() as t:
        (Path(t) / "m.csv").write_text("institution,kind,local_system,local_code,item_code\ncity,order,,L2345,LAB-GLU\n")
        run("catalog", "mappings", "--data-dir", d, "--file", Path(t) / "m.csv")
    county_token = run("token", "create", "--data-dir", d, "--institution", "county")
    city_token = run("token", "create", "--data-dir", d, "--institution", "city")
    http, dimse = free_port(), free_port()
    proc = subprocess.Popen([str(HUREN), "serve", "--data-dir", str(d), "--http", f"127.0.0.1:{http}",
                             "--dimse", f"127.0.0.1:{dimse}", "--ae-title", "HUREN"],
                            env=dict(ENV, RUST_LOG="warn", **KEYS), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_port(http), wait_port(dimse)
        base = f"http://127.0.0.1:{http}"
        seed_patient(base, dimse, county_token, resident_id())
        visit = {"visit_number": "V1", "patient_id": "CY1", "doctor": "doc"}
        assert requests.post(f"{base}/api/encounters", json=visit,
                             headers={"Authorization": f"Bearer {city_token}"}).status_code == 200
        his = {"Authorization": f"Bearer {city_token}", "X-Huren-On-Behalf-Of": "doc", "Content-Type": "application/json"}
        results = {}
        for moment, body in [("encounter", {"patient_id": "CY1"}), ("order", {"patient_id": "CY1", "order_code": "L2345"})]:
            check = requests.post(f"{base}/api/recognition/reminders", json=body, headers=his).json()
            lua = Path(tempfile.mkstemp(suffix=".lua")[1])
            lua.write_text('wrk.method = "POST"\nwrk.body = ' + json.dumps(json.dumps(body)) + "\n" +
                           "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in his.items()))
            out = subprocess.run(["wrk", "-t", "2", "-c", "20", "-d", "65s", "--latency", "-s", str(lua),
                                  f"{base}/api/recognition/reminders"], capture_output=True, text=True).stdout
            lua.unlink()
            pick = lambda label: next((l.split()[1] for l in out.splitlines() if l.split()[:1] == [label]), "?")  # noqa: E731
            rps = next((l.split()[1] for l in out.splitlines() if l.startswith("Requests/sec")), "0")
            non2xx = next((l.strip() for l in out.splitlines() if "Non-2xx" in l), "")
            results[moment] = {"results in answer": len(check["results"]), "recognizable": check["recognizable"],
                               "req/s": float(rps), "p50": pick("50%"), "p99": pick("99%"), "errors": non2xx}
        print(json.dumps({"patient results": 201, **results}, indent=1, ensure_ascii=False))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
