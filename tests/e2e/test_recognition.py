"""Recognition decisions (issue #7, first part): the region's configuration loaded as CSV (the
demo catalog, HR scope rules, qualification records), a county hospital's CT and lab results,
and the decisions the city hospital gets for them — explained, with the configuration versions
used."""
import datetime
import uuid

import pytest
import requests

from conftest import ROOT, Server, cli, region_reader, setup_region, region_today
from helpers import ct
from test_openapi import check
from test_persons import store

CATALOG = ROOT / "crates" / "huren" / "demo" / "catalog"
TODAY = region_today()


def configure(d):
    """The region of these tests: the demo catalog and study rules, HR scopes, a qualification
    record for the town hospital, the county in 重庆."""
    setup_region(d)
    cli(d, "institution", "set", "--code", "county", "--attribute", "city", "--value", "重庆",
        "--valid-from", "2020-01-01")
    cli(d, "catalog", "import", "--file", str(CATALOG / "items.csv"), "--label", "v1", "--effective-from", "2024-01-01")
    cli(d, "catalog", "rules", "--file", str(CATALOG / "study-rules.csv"))
    (d / "scopes.csv").write_text("label,covers\n川渝HR,city:重庆;city:成都\n渝HR,city:重庆\n")
    assert cli(d, "catalog", "scopes", "--file", str(d / "scopes.csv")).startswith("scope set")
    (d / "qualifications.csv").write_text(
        "record,institution,item,scope,evaluated_by,valid_from,valid_until\n"
        f"QC-9,town,*,渝HR,市级,2024-01-01,{TODAY.year + 1}-12-31\n")
    assert cli(d, "catalog", "qualifications", "--file", str(d / "qualifications.csv")).startswith("qualification set")


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    d = tmp_path_factory.mktemp("recognition")
    configure(d)
    s = Server(d).start()
    yield s
    s.stop()


def observation(issuer, pid, loinc, days_ago, status="final"):
    day = (TODAY - datetime.timedelta(days=days_ago)).isoformat()
    return {"resourceType": "Observation", "status": status,
            "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
            "subject": {"identifier": {"system": issuer, "value": pid}},
            "effectiveDateTime": f"{day}T08:00:00+08:00", "issued": f"{day}T10:00:00+08:00",
            "valueQuantity": {"value": 5.1, "unit": "mmol/L"}}


def test_decisions_for_a_county_patient_at_the_city_hospital(region):
    s = region
    pid = "RC" + uuid.uuid4().hex[:6]
    study = ct(patient_id=pid)
    study.StudyDate = (TODAY - datetime.timedelta(days=3)).strftime("%Y%m%d")
    study.StudyDescription = "胸部CT平扫"
    study.BodyPartExamined = "CHEST"
    store(s, study, calling="COUNTY")
    issuer = s.query("SELECT issuer FROM patient WHERE patient_id = ?", pid)[0][0]
    county = {"Authorization": "Bearer " + cli(s.data_dir, "token", "create", "--institution", "county"),
              "Content-Type": "application/fhir+json"}
    ids = {}
    for name, body in [("glucose", observation(issuer, pid, "2345-7", 2)),
                       ("old", observation(issuer, pid, "2885-2", 45)),
                       ("preliminary", observation(issuer, pid, "1751-7", 1, status="preliminary"))]:
        r = requests.post(f"{s.url}/fhir/Observation", json=body, headers=county)
        assert r.status_code == 201, r.text
        ids[name] = r.json()["id"]
    person = r.json()["subject"]["reference"].split("/")[1]
    h = region_reader(s)  # a regional service's token of the city hospital: the receiver is the city
    r = requests.get(f"{s.url}/api/patients/{person}/recognition", headers=h)
    assert r.status_code == 200, r.text
    check(r, "/api/patients/{person}/recognition")
    v = r.json()
    assert v["receiver"] == "city" and v["catalog_version"] == "v1"
    assert v["scope_set"] is not None and v["qualification_set"] is not None
    by_id = {x["id"]: x for x in v["results"]}
    # The CT: no image quality grade exists yet (issue #8), so reference only, not rejected.
    ct_decision = by_id[study.StudyInstanceUID]["decision"]
    assert by_id[study.StudyInstanceUID]["item"] == "IMG-CT-CHEST-PLAIN"
    assert ct_decision["verdict"] == "reference_only", ct_decision
    assert [x["code"] for x in ct_decision["reasons"]] == ["qc_absent"]
    # Glucose two days old, 30-day validity, county is a public 二级 hospital in 重庆: recognizable.
    glucose = by_id[ids["glucose"]]["decision"]
    assert glucose["verdict"] == "recognizable" and glucose["scope_label"] == "川渝HR", glucose
    assert glucose["reference_date"] == (TODAY - datetime.timedelta(days=2)).isoformat()
    assert glucose["explanation_zh"].startswith("可互认（川渝HR）")
    # 45 days old with a 30-day validity: expired. Preliminary: reference only.
    assert [x["code"] for x in by_id[ids["old"]]["decision"]["reasons"]] == ["expired"]
    assert by_id[ids["preliminary"]]["decision"]["verdict"] == "reference_only"
    # Ordering a chest CT: the lab results are not that item.
    r = requests.get(f"{s.url}/api/patients/{person}/recognition", params={"item": "IMG-CT-CHEST-PLAIN"}, headers=h)
    by_id = {x["id"]: x for x in r.json()["results"]}
    assert "item_differs" in [x["code"] for x in by_id[ids["glucose"]]["decision"]["reasons"]]
    assert "item_differs" not in [x["code"] for x in by_id[study.StudyInstanceUID]["decision"]["reasons"]]
    # Unknown items and other institutions are refused; the read is audited like the timeline.
    assert requests.get(f"{s.url}/api/patients/{person}/recognition", params={"item": "NOPE"},
                        headers=h).status_code == 400
    # A regional service judges for any receiver it names (issue #17); a hospital's own system
    # only for its own hospital.
    r = requests.get(f"{s.url}/api/patients/{person}/recognition", params={"receiver": "county"}, headers=h)
    assert r.status_code == 200 and r.json()["receiver"] == "county"
    assert all(x["decision"]["reasons"][0]["code"] == "same_institution" for x in r.json()["results"])
    city = {"Authorization": "Bearer " + cli(s.data_dir, "token", "create", "--institution", "city")}
    assert requests.get(f"{s.url}/api/patients/{person}/recognition", params={"receiver": "county"},
                        headers=city).status_code == 403
    assert s.query("SELECT COUNT(*) FROM audit_event WHERE action = 'patient_data_accessed' AND object = ?",
                   f"person:{person}")[0][0] >= 1


def test_bad_configuration_files_are_refused_whole(region):
    s = region
    bad = s.data_dir / "bad.csv"
    bad.write_text("record,institution,item,scope,evaluated_by,valid_from,valid_until\n"
                   "Q1,nowhere,*,渝HR,市级,2024-01-01,2025-01-01\n")
    from conftest import ADMIN
    h = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "text/csv"}
    r = requests.post(f"{s.url}/api/admin/recognition/qualifications", data=bad.read_bytes(), headers=h)
    assert r.status_code == 422 and "unknown institution nowhere" in r.json()["detail"]
    r = requests.post(f"{s.url}/api/admin/recognition/scopes", data="label,covers\nX,province:四川\n".encode(), headers=h)
    assert r.status_code == 422 and "line 2" in r.json()["detail"]
    # A good file is a new set, in force at once (the same labels, plus a national one).
    good = "label,covers\n川渝HR,city:重庆;city:成都\n渝HR,city:重庆\n全国HR,national\n"
    before = s.query("SELECT MAX(id) FROM recognition_set WHERE kind = 'scopes'")[0][0]
    r = requests.post(f"{s.url}/api/admin/recognition/scopes", data=good.encode(), headers=h)
    assert r.status_code == 201 and r.json()["rows"] == 3 and r.json()["id"] > before


def test_reminders_when_the_encounter_opens_and_when_an_order_is_placed(region):
    """The HIS, acting for the doctor, asks at the two moments; the patient is named by the
    city's own record number, and the reach is the doctor's (the open encounter)."""
    from test_fhir import resident_id
    from test_sessions import add_user
    from test_persons import with_resident_id
    s = region
    out = add_user(s, "rdoc", "doctor", password="a-long-password-1")
    assert out.returncode == 0, out.stderr
    # The city's order codes, loaded through the API (a running server sees CLI loads within 10 s).
    from conftest import ADMIN
    mappings = ("institution,kind,local_system,local_code,item_code\n"
                "city,order,,F0101,IMG-CT-CHEST-PLAIN\ncity,order,,L2345,LAB-GLU\n")
    r = requests.post(f"{s.url}/api/admin/catalog/mappings", data=mappings.encode(),
                      headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    number = resident_id("19600101", male=True)
    tag = uuid.uuid4().hex[:6]
    county_ct, city_ct = (ct(patient_id=p + tag, name="Sun^Lizhen=孙^丽珍") for p in ("RX", "RY"))
    for ds, calling in [(county_ct, "COUNTY"), (city_ct, "CITY")]:
        ds.PatientBirthDate, ds.PatientSex = "19600101", "M"
        ds.StudyDate = (TODAY - datetime.timedelta(days=3)).strftime("%Y%m%d")
        ds.StudyDescription, ds.BodyPartExamined = "胸部CT平扫", "CHEST"
        store(s, with_resident_id(ds, number), calling=calling)
    issuer = s.query("SELECT issuer FROM patient WHERE patient_id = ?", "RX" + tag)[0][0]
    county = {"Authorization": "Bearer " + cli(s.data_dir, "token", "create", "--institution", "county"),
              "Content-Type": "application/fhir+json"}
    r = requests.post(f"{s.url}/fhir/Observation", json=observation(issuer, "RX" + tag, "2345-7", 2), headers=county)
    assert r.status_code == 201, r.text
    glucose = r.json()["id"]
    his = {"Authorization": "Bearer " + cli(s.data_dir, "token", "create", "--institution", "city"),
           "X-Huren-On-Behalf-Of": "rdoc"}

    def remind(**body):
        r = requests.post(f"{s.url}/api/recognition/reminders", json={"patient_id": "RY" + tag, **body}, headers=his)
        assert r.status_code == 200, r.text
        return r.json()

    # No relationship yet: nothing is shown, not even whether the patient exists.
    assert remind()["results"] == [] and remind()["person"] is None
    visit = {"visit_number": "V" + tag, "patient_id": "RY" + tag, "doctor": "rdoc"}
    assert requests.post(f"{s.url}/api/encounters", json=visit,
                         headers={"Authorization": his["Authorization"]}).status_code == 200
    # Encounter opens: every outside result, the city's own CT left out.
    r = remind()
    assert r["moment"] == "encounter" and r["message_zh"] == "该患者有可互认的外院检查检验结果"
    assert {x["id"]: x["decision"]["verdict"] for x in r["results"]} == {
        county_ct.StudyInstanceUID: "reference_only", glucose: "recognizable"}
    links = {x["id"]: x["link"] for x in r["results"]}
    assert links[county_ct.StudyInstanceUID].endswith(f"/dicom-web/studies/{county_ct.StudyInstanceUID}")
    assert links[glucose].endswith(f"/fhir/Observation/{glucose}")
    # Ordering glucose (the HIS's own code): the recognizable result, and the sentence to show.
    r = remind(order_code="L2345")
    assert (r["moment"], r["item"], r["recognizable"]) == ("order", "LAB-GLU", 1)
    assert r["message_zh"] == "您开立的项目有可互认的结果" and [x["id"] for x in r["results"]] == [glucose]
    # Ordering a chest CT: the county CT, reference only until it has a quality grade; no message.
    r = remind(order_code="F0101")
    assert [x["id"] for x in r["results"]] == [county_ct.StudyInstanceUID]
    assert r["recognizable"] == 0 and r["message_zh"] is None
    # An order code the catalog does not map is refused in plain words.
    bad = requests.post(f"{s.url}/api/recognition/reminders", json={"patient_id": "RY" + tag, "order_code": "ZZ"},
                        headers=his)
    assert bad.status_code == 400 and "maps to no catalog item" in bad.json()["detail"]
    # The doctor's decisions, recorded with the sentence for the medical record.
    reasons = requests.get(f"{s.url}/api/recognition/reasons", headers=his).json()
    assert [x["code"] for x in reasons] == ["01", "02", "03", "04", "05", "06", "98", "99"]

    def decide(expect=201, **body):
        r = requests.post(f"{s.url}/api/recognition/decisions",
                          json={"patient_id": "RY" + tag, "visit_number": "V" + tag, **body}, headers=his)
        assert r.status_code == expect, r.text
        return r.json()

    lab = {"kind": "lab_result", "id": glucose}
    image = {"kind": "imaging_study", "id": county_ct.StudyInstanceUID}
    d = decide(result=lab, decision="recognize")
    day = (TODAY - datetime.timedelta(days=2)).isoformat()
    assert d["record_sentence"] == f"认可县人民医院{day}葡萄糖结果（川渝HR互认），不再重复检查。"
    assert d["counted"] is True and d["engine"]["verdict"] == "recognizable" and d["superseded"] == 0
    # Re-examining needs a reason from the list; "other" needs a note of at most 200 characters.
    assert "reason code" in decide(400, result=image, decision="re_examine")["detail"]
    assert "06" in decide(400, result=image, decision="re_examine", reason="06")["detail"]
    decide(400, result=image, decision="re_examine", reason="07")
    decide(400, result=image, decision="re_examine", reason="06", note="长" * 201)
    decide(400, result=lab, decision="recognize", reason="01")
    d = decide(result=image, decision="re_examine", reason="06", note="术前需复核病灶大小")
    assert d["record_sentence"].endswith("原因：其他确需复查的情形（术前需复核病灶大小）。已告知患者复查原因、必要性及可能影响。")
    # A later decision on the same result for the same visit supersedes; 99 is not counted.
    d = decide(result=image, decision="re_examine", reason="99")
    assert d["superseded"] == 1 and d["counted"] is False
    # Only results of this patient from other institutions can be decided on.
    decide(400, result={"kind": "imaging_study", "id": city_ct.StudyInstanceUID}, decision="recognize")
    rows = s.query("""SELECT decision, reason, superseded_by IS NULL, engine_verdict, catalog_version, scope_set IS NOT NULL
                      FROM recognition_decision WHERE visit_number = ? ORDER BY id""", "V" + tag)
    assert rows == [("recognize", None, 1, "recognizable", "v1", 1), ("re_examine", "06", 0, "reference_only", "v1", 1),
                    ("re_examine", "99", 1, "reference_only", "v1", 1)]
    assert s.query("SELECT COUNT(*) FROM audit_event WHERE action = 'recognition_decided' AND actor LIKE 'user:rdoc#%'") \
        == [(3,)]

    # Statistics: one unit per (institution, visit, item) decided on a recognizable result.
    for visit, reason in [("V2" + tag, "01"), ("V3" + tag, "98")]:
        decide(result=lab, decision="re_examine", reason=reason, visit_number=visit)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    prices = "item_code,price_region,institution_grade,price_yuan,valid_from,valid_to\nLAB-GLU,*,*,5.00,2024-01-01,\n"
    assert requests.post(f"{s.url}/api/admin/catalog/prices", data=prices.encode(),
                         headers={**admin, "Content-Type": "text/csv"}).status_code == 200
    span = {"from": (TODAY - datetime.timedelta(days=1)).isoformat(), "until": (TODAY + datetime.timedelta(days=1)).isoformat()}
    st = requests.get(f"{s.url}/api/recognition/statistics", params={**span, "by": "item"}, headers=admin).json()
    glu = next(r for r in st["rows"] if r["key"] == "LAB-GLU")
    assert (glu["units"], glu["recognized"], glu["reexamined"], glu["not_counted"]) == (3, 1, 1, 1)
    assert glu["rate"] == 0.5 and glu["savings_yuan"] == "5.00" and glu["reasons"] == {"01": 1, "98": 1}
    # The same numbers recounted from the stored decisions and reminders: every current decision
    # is a unit (the CT re-examined for reason 99 too), and so is every item a reminder showed.
    rows = s.query("""SELECT COUNT(*) FROM (
                        SELECT institution_id, COALESCE(visit_number, 'decision:' || id), COALESCE(ordered_item, item, '') AS it
                          FROM recognition_decision WHERE superseded_by IS NULL
                        UNION
                        SELECT r.institution_id, r.visit, COALESCE(r.ordered_item, x.item, '')
                          FROM recognition_reminder r JOIN recognition_reminder_result x ON x.reminder_id = r.id)
                      WHERE it <> ''""")
    assert st["total"]["units"] == rows[0][0] == 4
    csv = requests.get(f"{s.url}/api/recognition/statistics", params={**span, "by": "institution", "format": "csv"},
                       headers=admin)
    assert csv.headers["content-type"].startswith("text/csv")
    import csv as csvlib
    (row,) = [r for r in csvlib.DictReader(csv.text.splitlines()) if r["key"] == "city"]
    assert (row["units"], row["recognized"], row["reexamined"], row["not_counted"]) == ("4", "1", "1", "2")
    assert (row["rate_eligible"], row["eligible_rate"], row["overall_rate"]) == ("0.5000", "0.5000", "0.5000")
    assert (row["savings_yuan"], row["unpriced"]) == ("5.00", "0")
    # Institution admins see their institution only; doctors see none.
    out = add_user(s, "cadmin", "institution_admin", "county", password="a-long-password-1")
    assert out.returncode == 0, out.stderr
    jar = {"huren_session": requests.post(f"{s.url}/api/session", json={"username": "cadmin",
                                           "password": "a-long-password-1"}).cookies["huren_session"]}
    assert requests.get(f"{s.url}/api/recognition/statistics", params=span, cookies=jar).json()["total"]["units"] == 0
    assert requests.get(f"{s.url}/api/recognition/statistics", params=span, headers=his).status_code == 403

    # The region extends the reason list through its policy (a new set, in force at once): its
    # own code 07, recorded but not counted. A decision keeps the policy set it was made under.
    policy = '[[reasons]]\ncode = "07"\nzh = "患者要求复查"\nen = "the patient asks for a repeat"\ncounts = false\n'
    r = requests.post(f"{s.url}/api/admin/recognition/policy", data=policy.encode(), headers=admin)
    assert r.status_code == 201, r.text
    policy_set = r.json()["id"]
    reasons = requests.get(f"{s.url}/api/recognition/reasons", headers=his).json()
    assert [x["code"] for x in reasons][-2:] == ["99", "07"] and reasons[-1]["counts"] is False
    d = decide(result=lab, decision="re_examine", reason="07", visit_number="V4" + tag)
    assert d["counted"] is False and "原因：患者要求复查。" in d["record_sentence"]
    assert s.query("SELECT policy_set, counted FROM recognition_decision WHERE visit_number = ?", "V4" + tag) \
        == [(policy_set, 0)]
    st = requests.get(f"{s.url}/api/recognition/statistics", params={**span, "by": "item"}, headers=admin).json()
    glu = next(r for r in st["rows"] if r["key"] == "LAB-GLU")
    assert (glu["units"], glu["recognized"], glu["reexamined"], glu["not_counted"]) == (4, 1, 1, 2)
    assert glu["rate"] == 0.5 and glu["reasons"] == {"01": 1, "98": 1, "07": 1}

    # A decision survives its result's later rejection, and so do the statistics it counts in.
    # Under a policy that recognizes ungraded images, a second county CT is recognized, then the
    # county rejects it (wrong patient, say).
    lenient = 'without_qc = "recognizable"\n' + policy
    assert requests.post(f"{s.url}/api/admin/recognition/policy", data=lenient.encode(),
                         headers=admin).status_code == 201
    second = ct(patient_id="RX" + tag, name="Sun^Lizhen=孙^丽珍")
    second.PatientBirthDate, second.PatientSex = "19600101", "M"
    second.StudyDate = (TODAY - datetime.timedelta(days=1)).strftime("%Y%m%d")
    second.StudyDescription, second.BodyPartExamined = "胸部CT平扫", "CHEST"
    store(s, with_resident_id(second, number), calling="COUNTY")
    d = decide(result={"kind": "imaging_study", "id": second.StudyInstanceUID}, decision="recognize",
               visit_number="V5" + tag, order_code="F0101")
    assert d["engine"]["verdict"] == "recognizable", d

    def ct_units():
        st = requests.get(f"{s.url}/api/recognition/statistics", params={**span, "by": "item"}, headers=admin).json()
        return next(((r["units"], r["recognized"]) for r in st["rows"] if r["key"] == "IMG-CT-CHEST-PLAIN"), None)

    # (The first CT's unit too: re-examined for reason 99, not counted.)
    assert ct_units() == (2, 1)
    cli(s.data_dir, "study", "reject", "--study-uid", second.StudyInstanceUID, "--reason", "wrong patient")
    assert second.StudyInstanceUID not in [x["id"] for x in remind()["results"]]
    assert ct_units() == (2, 1)
    assert s.query("SELECT decision FROM recognition_decision WHERE result_ref = ?", second.StudyInstanceUID) \
        == [("recognize",)]
    # Back to the default policy with the region's reason, for the tests after this one.
    assert requests.post(f"{s.url}/api/admin/recognition/policy", data=policy.encode(),
                         headers=admin).status_code == 201

def test_lossy_images_are_not_recognized(region, tmp_path):
    """A CT stored in a lossy transfer syntax (JPEG baseline 8/12-bit, here from pydicom's test
    files), or flagged LossyImageCompression 01, is not recognizable (PS3.5 §8.2)."""
    import pydicom
    from pydicom.uid import generate_uid
    from conftest import TEST_FILES
    from helpers import store_files
    s = region
    ds = pydicom.dcmread(TEST_FILES / "JPEG-lossy.dcm")
    pid = "RL" + uuid.uuid4().hex[:6]
    ds.PatientID, ds.PatientName = pid, "Qian^Duo=钱^多"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.Modality, ds.StudyDescription, ds.BodyPartExamined = "CT", "胸部CT平扫", "CHEST"
    ds.StudyDate = (TODAY - datetime.timedelta(days=1)).strftime("%Y%m%d")
    path = tmp_path / "lossy.dcm"
    ds.save_as(path)
    assert set(store_files(s.dimse_port, [path], calling="COUNTY").values()) == {0}
    issuer = s.query("SELECT issuer FROM patient WHERE patient_id = ?", pid)[0][0]
    h = region_reader(s)
    person = requests.get(f"{s.url}/api/patients", params={"patient_id": pid, "issuer": issuer},
                          headers=h).json()[0]["person"]
    v = requests.get(f"{s.url}/api/patients/{person}/recognition", headers=h).json()
    (only,) = v["results"]
    assert only["item"] == "IMG-CT-CHEST-PLAIN"
    assert only["decision"]["verdict"] == "not_recognizable"
    assert "lossy_images" in [x["code"] for x in only["decision"]["reasons"]]


def test_campuses_are_not_outside_and_the_policy_sets_the_defaults(region):
    """A campus (院区) names its legal organization: results between campuses of one hospital
    are not outside results. The region's policy file changes the defaults for every decision
    after it, and a bad file is refused whole, every problem named."""
    from conftest import ADMIN
    s = region
    admin = {"Authorization": f"Bearer {ADMIN}"}
    east = {"code": "city-east", "name": "市人民医院东院", "level": "三级", "city": "重庆"}
    r = requests.post(f"{s.url}/api/admin/institutions", json={**east, "organization": "nowhere"}, headers=admin)
    assert r.status_code == 400 and "organization nowhere" in r.json()["detail"]
    r = requests.post(f"{s.url}/api/admin/institutions", json={**east, "organization": "city"}, headers=admin)
    assert r.status_code == 201, r.text
    # The patient of the reminder test has a CT from the city hospital and one from the county.
    (person,) = s.query("""SELECT DISTINCT pe.public_id FROM person pe JOIN patient p ON p.person_id = pe.id
                           WHERE p.patient_id LIKE 'RY%'""")[0]
    reader = {"Authorization": "Bearer " + cli(s.data_dir, "token", "create", "--institution", "city-east",
                                                 "--scope", "read:region")}

    def judged():
        v = requests.get(f"{s.url}/api/patients/{person}/recognition", headers=reader).json()
        return v, {x["performing_institution"]: x["decision"] for x in v["results"] if x["kind"] == "imaging_study"}

    v, by_performer = judged()
    assert v["receiver"] == "city-east"
    assert "same_institution" in [x["code"] for x in by_performer["city"]["reasons"]]
    assert "same_institution" not in [x["code"] for x in by_performer["county"]["reasons"]]
    assert by_performer["county"]["verdict"] == "reference_only"  # no QC grade: the default policy
    # A stricter policy: no QC grade, not recognizable.
    bad = 'default_min_qc = "丁"\nwithout_qc = "maybe"\n[min_qc]\nNOPE = "甲"\n'
    r = requests.post(f"{s.url}/api/admin/recognition/policy", data=bad.encode(), headers=admin)
    assert r.status_code == 422, r.text
    assert 'line 1: default_min_qc "丁"' in r.json()["detail"] and "line 2: without_qc" in r.json()["detail"]
    strict = 'without_qc = "不予互认"\n[min_qc]\nIMG-CT-CHEST-PLAIN = "甲"\n'
    r = requests.post(f"{s.url}/api/admin/recognition/policy", data=strict.encode(), headers=admin)
    assert r.status_code == 201, r.text
    v, by_performer = judged()
    assert v["policy_set"] == r.json()["id"]
    assert by_performer["county"]["verdict"] == "not_recognizable"
    assert [x["code"] for x in by_performer["county"]["reasons"]] == ["qc_absent"]


def test_statistics_rebuilt_from_the_decisions_are_the_same(region):
    """`huren recognition rebuild-statistics` derives the units again from the stored decisions
    (after a restore, say): the answers do not change."""
    from conftest import ADMIN
    s = region
    admin = {"Authorization": f"Bearer {ADMIN}"}
    span = {"from": (TODAY - datetime.timedelta(days=40)).isoformat(),
            "until": (TODAY + datetime.timedelta(days=1)).isoformat()}

    def everything():
        return {by: requests.get(f"{s.url}/api/recognition/statistics", params={**span, "by": by},
                                 headers=admin).json() for by in ("item", "institution", "department", "month")}

    before = everything()
    assert before["item"]["total"]["units"] > 0
    units = cli(s.data_dir, "recognition", "rebuild-statistics")
    assert units == f"{before['item']['total']['units']} units"
    assert everything() == before
