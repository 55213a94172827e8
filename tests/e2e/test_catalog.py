"""The recognition catalog (issue #5 item 8): versions loaded from CSV, effective prices, code
mappings (order codes and lab codes, LOINC), study rules, the unmapped-studies report, and the
items shown on results (timeline, FHIR)."""
import csv
import io
import uuid

import requests
from fhirclient.models.observation import Observation

from conftest import ADMIN, ROOT, cli, region_reader
from helpers import ct
from test_persons import store

H = {"Authorization": f"Bearer {ADMIN}"}
DEMO = ROOT / "crates" / "huren" / "demo" / "catalog"
ITEMS = (DEMO / "items.csv").read_text()


def admin_post(s, path, body, **params):
    return requests.post(f"{s.url}/api/admin/catalog/{path}", data=body.encode(), params=params,
                         headers={**H, "Content-Type": "text/csv"})


def api(s, path, **params):
    return requests.get(f"{s.url}/api/catalog/{path}", params=params, headers=H)


def test_versions_prices_mappings(fresh_server, tmp_path):
    s = fresh_server()
    r = admin_post(s, "versions", ITEMS, label="v1", effective_from="2024-01-01")
    assert r.status_code == 201, r.text
    assert r.json()["items"] == ITEMS.count("\n") - 1
    # A label names one version; a file with bad lines is refused whole, each line named.
    assert admin_post(s, "versions", ITEMS, label="v1", effective_from="2024-01-01").status_code == 422
    bad = ITEMS.replace("LAB-GLU,lab,临床化学,葡萄糖,Glucose,,,,2345-7,30", "LAB-GLU,lab,临床化学,葡萄糖,Glucose,,,,2345-7,0") \
        .replace("IMG-US-ABD,imaging,超声,腹部超声常规检查,Abdomen routine ultrasound,US", "IMG-US-ABD,imaging,超声,腹部超声常规检查,Abdomen routine ultrasound,")
    r = admin_post(s, "versions", bad, label="v-bad", effective_from="2024-06-01")
    assert r.status_code == 422 and "line 11" in r.json()["detail"] and "line 15" in r.json()["detail"]
    # A later version takes effect on its day, not before.
    v2 = ITEMS.replace("LAB-K,lab,临床化学,钾,Potassium,,,,2823-3,7", "LAB-K,lab,临床化学,钾,Potassium,,,,2823-3,3")
    assert admin_post(s, "versions", v2, label="v2", effective_from="2099-01-01").status_code == 201
    assert [v["label"] for v in api(s, "versions").json()] == ["v1", "v2"]
    current = api(s, "items").json()
    assert current["version"]["label"] == "v1"
    assert {i["code"]: i["validity_days"] for i in current["items"]}["LAB-K"] == 7
    assert {i["code"]: i["validity_days"] for i in api(s, "items", version="v2").json()["items"]}["LAB-K"] == 3

    # Prices by the institution's grade that day (city is 三级, county 二级, both registered
    # today), effective-dated; loaded with the CLI.
    prices = tmp_path / "prices.csv"
    prices.write_text("item_code,price_region,institution_grade,price_yuan,valid_from,valid_to\n"
                      "IMG-CT-CHEST-PLAIN,*,三级,150,2024-01-01,2099-01-01\n"
                      "IMG-CT-CHEST-PLAIN,*,三级,145.5,2099-01-01,\n"
                      "IMG-CT-CHEST-PLAIN,*,*,120.00,2024-01-01,\n")
    assert cli(s.data_dir, "catalog", "prices", "--file", str(prices)) == "3 prices"
    price = lambda inst, day: api(s, "price", institution=inst, item="IMG-CT-CHEST-PLAIN", date=day)  # noqa: E731
    assert price("city", "2098-12-31").json()["price_yuan"] == "150.00"
    assert price("city", "2099-01-01").json()["price_fen"] == 14550
    assert price("county", "2099-01-01").json()["price_yuan"] == "120.00"
    # Before the city was registered its grade is unknown: only the any-grade price applies.
    assert price("city", "2024-06-01").json()["price_yuan"] == "120.00"
    assert price("county", "2023-12-31").status_code == 404
    bad_prices = tmp_path / "bad.csv"
    bad_prices.write_text("item_code,price_region,institution_grade,price_yuan,valid_from,valid_to\nNOPE,*,*,1,2024-01-01,\n")
    try:
        cli(s.data_dir, "catalog", "prices", "--file", str(bad_prices))
        raise AssertionError("an unknown item was accepted")
    except RuntimeError as e:
        assert "NOPE" in str(e)

    # Order codes (for order-time reminders) and lab codes map to items; LOINC maps by itself.
    maps = ("institution,kind,local_system,local_code,item_code\n"
            "city,order,,F0101,IMG-CT-CHEST-PLAIN\n"
            "county,lab,L,HBSAG,LAB-HBSAG\n")
    assert admin_post(s, "mappings", maps).json() == {"rows": 2}
    look = lambda **q: api(s, "lookup", **q)  # noqa: E731
    assert look(institution="city", kind="order", code="F0101").json() == {"item_code": "IMG-CT-CHEST-PLAIN"}
    assert look(institution="county", kind="lab", system="L", code="HBSAG").json() == {"item_code": "LAB-HBSAG"}
    assert look(institution="town", kind="lab", system="L", code="HBSAG").status_code == 404
    assert look(institution="town", kind="lab", system="LN", code="2093-3").json() == {"item_code": "LAB-TC"}
    r = admin_post(s, "mappings", "institution,kind,local_system,local_code,item_code\nnowhere,lab,,X,LAB-TC\n")
    assert r.status_code == 422 and "nowhere" in r.json()["detail"]
    # Only operators load; anyone authenticated reads.
    token = cli(s.data_dir, "token", "create", "--institution", "county")
    r = requests.post(f"{s.url}/api/admin/catalog/mappings", data=maps.encode(), headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403
    assert requests.get(f"{s.url}/api/catalog/items", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_study_rules_unmapped_report_and_items_on_results(fresh_server):
    s = fresh_server()
    assert admin_post(s, "versions", ITEMS, label="v1", effective_from="2024-01-01").status_code == 201
    assert admin_post(s, "study-rules", (DEMO / "study-rules.csv").read_text()).json() == {"rows": 10}
    pid = "CAT" + uuid.uuid4().hex[:6]
    chest = ct(patient_id=pid)
    chest.StudyDescription = "胸部CT平扫"
    odd = [ct(patient_id=pid) for _ in range(2)]
    for ds in odd:
        ds.StudyDescription = "颈部CTA"
        ds.BodyPartExamined = "NECK"
    for ds in [chest, *odd]:
        store(s, ds)
    r = requests.get(f"{s.url}/api/admin/catalog/unmapped-studies", headers=H)
    assert r.status_code == 200
    assert r.json() == [{"institution": "county", "modality": "CT", "body_part": "NECK", "description": "颈部CTA",
                         "procedure_code": None, "studies": 2}]
    r = requests.get(f"{s.url}/api/admin/catalog/unmapped-studies", params={"format": "csv"}, headers=H)
    assert r.headers["content-type"].startswith("text/csv")
    assert list(csv.reader(io.StringIO(r.text))) == [
        ["institution", "modality", "body_part", "description", "procedure_code", "studies"],
        ["county", "CT", "NECK", "颈部CTA", "", "2"]]
    assert pid not in r.text
    # A rule file with an unknown item is refused and the old rules stay.
    r = admin_post(s, "study-rules", "priority,institution,modality,body_part,description,procedure_code,item_code\n1,,CT,,,,NOPE\n")
    assert r.status_code == 422
    assert len(requests.get(f"{s.url}/api/admin/catalog/unmapped-studies", headers=H).json()) == 1

    # A lab result by LOINC, through FHIR: its catalog item shows in FHIR and in the timeline.
    token = cli(s.data_dir, "token", "create", "--institution", "county")
    issuer = s.query("SELECT issuer FROM patient WHERE patient_id = ?", pid)[0][0]
    body = {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2093-3"}]},
            "subject": {"identifier": {"system": issuer, "value": pid}},
            "effectiveDateTime": "2025-03-02T08:00:00+08:00",
            "valueQuantity": {"value": 4.1, "unit": "mmol/L"}}
    r = requests.post(f"{s.url}/fhir/Observation", json=body,
                      headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"})
    assert r.status_code == 201, r.text
    o = Observation(r.json(), strict=True)
    assert ("urn:huren:catalog", "LAB-TC") in {(c.system, c.code) for c in o.code.coding}
    person = o.subject.reference.split("/")[1]
    t = requests.get(f"{s.url}/api/patients/{person}/timeline", headers=region_reader(s)).json()
    assert {x["study_instance_uid"]: x["catalog_item"] for x in t["studies"]} == {
        chest.StudyInstanceUID: "IMG-CT-CHEST-PLAIN", odd[0].StudyInstanceUID: None, odd[1].StudyInstanceUID: None}
    assert [x["catalog_item"] for x in t["lab_results"]] == ["LAB-TC"]
