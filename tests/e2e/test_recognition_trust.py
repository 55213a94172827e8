"""Recognition an operator can trust (issue #17), through the HTTP API: every decision counted
somewhere and both rate definitions, reminders as events (shown, acted on, opened, ignored),
scopes by GB/T 2260 division code, decisions re-checked as of a date and replayed as they were
made, regional services asking for any receiver, reference-only items outside the catalog,
explanations naming every record consulted, and one spelling of QC grades."""
import csv
import datetime
import json
import uuid

import pytest
import requests

from conftest import ADMIN, ROOT, Server, cli, region_reader, setup_region, region_today
from helpers import ct
from test_persons import store
from test_sessions import add_user

CATALOG = ROOT / "crates" / "huren" / "demo" / "catalog"
TODAY = region_today()
SPAN = {"from": (TODAY - datetime.timedelta(days=1)).isoformat(),
        "until": (TODAY + datetime.timedelta(days=1)).isoformat()}
ADMIN_H = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    d = tmp_path_factory.mktemp("trust")
    setup_region(d)
    for code, division in [("city", "500103"), ("county", "500229"), ("town", "500229")]:
        cli(d, "institution", "set", "--code", code, "--attribute", "division", "--value", division,
            "--valid-from", "2020-01-01")
    cli(d, "institution", "add", "--code", "chengdu", "--name", "成都某医院", "--level", "三级",
        "--division", "510107", "--valid-from", "2020-01-01")
    cli(d, "institution", "add", "--code", "guiyang", "--name", "贵阳某医院", "--level", "三级",
        "--division", "520102", "--valid-from", "2020-01-01")
    cli(d, "catalog", "import", "--file", str(CATALOG / "items.csv"), "--label", "v1", "--effective-from", "2024-01-01")
    cli(d, "catalog", "rules", "--file", str(CATALOG / "study-rules.csv"))
    (d / "scopes.csv").write_text("label,covers\n川渝HR,500000;510000\n渝HR,500000\n")
    cli(d, "catalog", "scopes", "--file", str(d / "scopes.csv"))
    (d / "prices.csv").write_text("item_code,price_region,institution_grade,price_yuan,valid_from,valid_to\n"
                                  "LAB-GLU,*,*,5.00,2024-01-01,\n")
    cli(d, "catalog", "prices", "--file", str(d / "prices.csv"))
    # The region has run these for a month: as-of questions about the last days find them in
    # force (a set counts from when it was imported).
    import sqlite3
    c = sqlite3.connect(str(d / "index.sqlite"))
    c.execute("UPDATE recognition_set SET imported_at = imported_at - 30 * 86400")
    c.commit()
    c.close()
    # No scoring workers: the QC test writes a study's grading history itself.
    s = Server(d, {"HUREN__QUALITY__WORKERS": "0"}).start()
    assert add_user(s, "qdoc", "doctor", institution="city").returncode == 0
    s.county = {"Authorization": "Bearer " + cli(d, "token", "create", "--institution", "county"),
                "Content-Type": "application/fhir+json"}
    s.his = {"Authorization": "Bearer " + cli(d, "token", "create", "--institution", "city")}
    yield s
    s.stop()


def observation(pid, loinc, days_ago, status="final", identifier=None, issuer="urn:huren:institution:county"):
    day = (TODAY - datetime.timedelta(days=days_ago)).isoformat()
    o = {"resourceType": "Observation", "status": status,
         "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
         "subject": {"identifier": {"system": issuer, "value": pid}},
         "effectiveDateTime": f"{day}T08:00:00+08:00", "issued": f"{day}T10:00:00+08:00",
         "valueQuantity": {"value": 5.1, "unit": "mmol/L"}}
    if identifier:
        o["identifier"] = [{"system": "urn:lis:county", "value": identifier}]
    return o


def post_obs(s, body, headers=None):
    r = requests.post(f"{s.url}/fhir/Observation", json=body, headers=headers or s.county)
    assert r.status_code == 201, r.text
    return r.json()["id"], r.json()["subject"]["reference"].split("/")[1]


def same_person(s, county_pid, tag, other=("city", "C")):
    """The county's record and another hospital's, registered by each with the same identity
    number (consistent with 1980-01-01, male): the patient index links them."""
    from test_fhir import resident_id
    number = resident_id("19800101", male=True)
    inst, prefix = other
    token = {"Authorization": "Bearer " + cli(s.data_dir, "token", "create", "--institution", inst),
             "Content-Type": "application/fhir+json"}
    issuer = "urn:oid:1.2.156.1" if inst == "city" else f"urn:huren:institution:{inst}"
    for headers, system, value in [(s.county, "urn:huren:institution:county", county_pid),
                                   (token, issuer, prefix + tag)]:
        r = requests.put(f"{s.url}/fhir/Patient", params={"identifier": f"{system}|{value}"}, headers=headers,
                         json={"resourceType": "Patient", "gender": "male", "birthDate": "1980-01-01",
                               "identifier": [{"system": system, "value": value},
                                              {"system": "urn:huren:id:cn-resident", "value": number}]})
        assert r.status_code in (200, 201), r.text
    return prefix + tag


def patient_with_results(s, tag):
    """A county patient with a recent glucose (eligible), a 45-day-old one (expired), a result
    outside the catalog, and a chest CT (no QC grade: reference only)."""
    pid = "T" + tag
    study = ct(patient_id=pid)
    study.StudyDate = (TODAY - datetime.timedelta(days=2)).strftime("%Y%m%d")
    study.StudyDescription, study.BodyPartExamined = "胸部CT平扫", "CHEST"
    store(s, study, calling="COUNTY")
    recent, person = post_obs(s, observation(pid, "2345-7", 2))
    old, _ = post_obs(s, observation(pid, "2345-7", 45))
    other, _ = post_obs(s, observation(pid, "99999-9", 2))
    return pid, person, {"recent": recent, "old": old, "other": other, "ct": study.StudyInstanceUID}


def test_every_decision_and_every_reminder_counts_under_both_rates(region):
    s = region
    tag = uuid.uuid4().hex[:6].upper()
    pid, person, ids = patient_with_results(s, tag)
    as_doc = {**s.his, "X-Huren-On-Behalf-Of": "qdoc"}
    policy = ('[[reasons]]\ncode = "07"\nzh = "患者要求复查"\nen = "the patient asks"\ncounts = false\n'
              '[[reasons]]\ncode = "08"\nzh = "设备差异"\nen = "different equipment"\ncounts = true\n')
    assert requests.post(f"{s.url}/api/admin/recognition/policy", data=policy.encode(),
                         headers=ADMIN_H).status_code == 201

    city_pid = same_person(s, pid, tag)

    def visit(v):
        r = requests.post(f"{s.url}/api/encounters",
                          json={"visit_number": v + tag, "patient_id": city_pid, "doctor": "qdoc"}, headers=s.his)
        assert r.status_code == 200, r.text

    def remind(v, **body):
        r = requests.post(f"{s.url}/api/recognition/reminders",
                          json={"patient_id": city_pid, "visit_number": v + tag, **body}, headers=as_doc)
        assert r.status_code == 200, r.text
        return r.json()

    def decide(v, result, decision, reason=None, note=None, item="LAB-GLU"):
        body = {"patient_id": city_pid, "visit_number": v + tag, "result": result, "decision": decision}
        if item:
            body["item"] = item
        if reason:
            body["reason"] = reason
        if note:
            body["note"] = note
        r = requests.post(f"{s.url}/api/recognition/decisions", json=body, headers=as_doc)
        assert r.status_code == 201, r.text
        return r.json()

    recent = {"kind": "lab_result", "id": ids["recent"]}
    old = {"kind": "lab_result", "id": ids["old"]}
    plan = [  # visit, result, decision, reason, reminder first
        ("V01", recent, "recognize", None, True),
        ("V02", recent, "re_examine", "01", True),
        ("V03", old, "re_examine", "01", True),        # expired: not eligible, counted all the same
        ("V04", recent, "re_examine", "02", True),
        ("V05", recent, "re_examine", "03", True),
        ("V06", recent, "re_examine", "04", True),
        ("V07", recent, "re_examine", "05", True),
        ("V08", recent, "re_examine", "06", True),
        ("V09", recent, "re_examine", "07", True),     # the region's own, not counted
        ("V10", old, "re_examine", "08", False),       # the region's own, counted; no reminder
        ("V11", recent, "re_examine", "98", False),
        ("V12", old, "re_examine", "99", False),
    ]
    for v, result, decision, reason, reminded in plan:
        visit(v)
        if reminded:
            shown = remind(v, item="LAB-GLU")
            assert {x["id"] for x in shown["results"]} == {ids["recent"], ids["old"]}
        d = decide(v, result, decision, reason, note="术前复核" if reason == "06" else None)
        # What the answer says agrees with what is counted (issue #17).
        assert d["counted"] is (reason not in ("07", "98", "99"))
    # A reminder not acted on; a CT reminder whose images were opened; a result outside the
    # catalog recognized (reference only by the rules, the doctor's call).
    visit("V13")
    remind("V13", item="LAB-GLU")
    # The HIS refreshing its page shows the same reminder again: one event, not two.
    remind("V13", item="LAB-GLU")
    ((rows13,),) = s.query("SELECT COUNT(*) FROM recognition_reminder WHERE visit = ?", "V13" + tag)
    assert rows13 == 1
    visit("V14")
    shown = remind("V14", item="IMG-CT-CHEST-PLAIN")
    assert [x["id"] for x in shown["results"]] == [ids["ct"]]
    assert requests.get(f"{s.url}/dicom-web/studies/{ids['ct']}/metadata", headers=as_doc).status_code == 200
    visit("V15")
    enc = remind("V15")
    other = next(x for x in enc["results"] if x["id"] == ids["other"])
    assert other["decision"]["verdict"] == "reference_only"
    assert [r["code"] for r in other["decision"]["reasons"]] == ["item_not_in_catalog"]
    decide("V15", {"kind": "lab_result", "id": ids["other"]}, "recognize", item=None)

    st = requests.get(f"{s.url}/api/recognition/statistics", params={**SPAN, "by": "item"}, headers=ADMIN_H).json()
    assert st["rate_definition"] == "eligible"
    rows = {r["key"]: r for r in st["rows"]}
    glu = rows["LAB-GLU"]
    counts = {k: glu[k] for k in ("units", "recognized", "reexamined", "not_counted", "opened", "ignored",
                                   "eligible", "eligible_recognized", "eligible_not_counted", "shown",
                                   "shown_decided")}
    # Twelve decided visits, V13 ignored, and V15, whose encounter reminder also listed the
    # glucose: ignored too.
    assert counts == {"units": 14, "recognized": 1, "reexamined": 8, "not_counted": 3, "opened": 0,
                      "ignored": 2, "eligible": 11, "eligible_recognized": 1, "eligible_not_counted": 2,
                      "shown": 11, "shown_decided": 9}, glu
    assert (glu["eligible_rate"], glu["overall_rate"], glu["rate"]) == (1 / 9, 1 / 11, 1 / 9)
    assert (glu["coverage"], glu["ignore_rate"]) == (9 / 12, 2 / 11)
    assert glu["reasons"] == {"01": 2, "02": 1, "03": 1, "04": 1, "05": 1, "06": 1, "07": 1, "08": 1,
                              "98": 1, "99": 1}
    assert glu["reasons_other"] == {"01": 1, "08": 1, "99": 1}
    assert glu["savings_yuan"] == "5.00"
    # The CT: shown at V14 and the images opened, shown at V15 (after that) and ignored; the
    # result outside the catalog: counted apart, in no rate.
    assert (rows["IMG-CT-CHEST-PLAIN"]["opened"], rows["IMG-CT-CHEST-PLAIN"]["ignored"]) == (1, 1)
    assert (rows[""]["uncatalogued"], rows[""]["uncatalogued_recognized"], rows[""]["units"]) == (1, 1, 0)

    # The region chooses its headline: both figures stay, the name follows the policy.
    overall = 'rate = "overall"\n' + policy
    assert requests.post(f"{s.url}/api/admin/recognition/policy", data=overall.encode(),
                         headers=ADMIN_H).status_code == 201
    st = requests.get(f"{s.url}/api/recognition/statistics", params={**SPAN, "by": "department"},
                      headers=ADMIN_H).json()
    assert st["rate_definition"] == "overall"
    dept = next(r for r in st["rows"] if r["key"] == "city/放射科")
    assert dept["rate"] == dept["overall_rate"] and dept["eligible_rate"] is not None
    text = requests.get(f"{s.url}/api/recognition/statistics", params={**SPAN, "by": "institution", "format": "csv"},
                        headers=ADMIN_H).text
    (city,) = [r for r in csv.DictReader(text.splitlines()) if r["key"] == "city"]
    assert "rate_overall" in city and city["rate_overall"] == city["overall_rate"]
    assert requests.post(f"{s.url}/api/admin/recognition/policy", data=b'rate = "best"\n',
                         headers=ADMIN_H).status_code == 422
    # The decided units recounted from the raw rows (the store's property test recounts every
    # figure, at random).
    total = st["total"]
    ((decided,),) = s.query("""SELECT COUNT(*) FROM (SELECT DISTINCT institution_id, visit_number, COALESCE(ordered_item, item)
                                FROM recognition_decision WHERE superseded_by IS NULL
                                 AND COALESCE(ordered_item, item) IS NOT NULL)""")
    assert total["recognized"] + total["reexamined"] + total["not_counted"] == decided
    assert requests.post(f"{s.url}/api/admin/recognition/policy", data=policy.encode(),
                         headers=ADMIN_H).status_code == 201


def test_scopes_are_written_in_division_codes(region, tmp_path):
    s = region
    tag = uuid.uuid4().hex[:6].upper()
    _, person, ids = patient_with_results(s, tag)
    h = region_reader(s)

    def judged(receiver):
        r = requests.get(f"{s.url}/api/patients/{person}/recognition", params={"receiver": receiver}, headers=h)
        assert r.status_code == 200, r.text
        return next(x["decision"] for x in r.json()["results"] if x["id"] == ids["recent"])

    # 川渝HR = 重庆市 + 四川省: a hospital in 成都市武侯区 is inside, one in 贵阳 is not, and the
    # explanation says so in place names.
    assert judged("chengdu")["verdict"] == "recognizable"
    outside = judged("guiyang")
    assert [r["code"] for r in outside["reasons"]] == ["scope_excludes_receiver"]
    assert "重庆市、四川省" in outside["explanation_zh"] and "贵州省贵阳市南明区" in outside["explanation_zh"]
    consulted = {c["what"] for c in outside["consulted"]}
    assert {"performer", "qualification", "scope", "validity", "lab_status"} <= consulted
    scope = next(c for c in outside["consulted"] if c["what"] == "scope")
    assert scope["met"] is False and "川渝HR" in scope["zh"]
    # Spelling no longer matters: a receiver registered in the city "重庆市" by free text but with
    # its division code is inside; unknown codes are refused wherever they are loaded.
    cli(s.data_dir, "institution", "add", "--code", "cq-free" + tag.lower(), "--name", "自由文本医院",
        "--level", "三级", "--city", "重庆市", "--division", "500106", "--valid-from", "2020-01-01")
    assert judged("cq-free" + tag.lower())["verdict"] == "recognizable"
    from conftest import BIN
    import subprocess
    out = subprocess.run([BIN, "institution", "set", "--data-dir", str(s.data_dir), "--code", "city",
                          "--attribute", "division", "--value", "509999", "--valid-from", "2026-01-01"],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "509999" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    r = requests.post(f"{s.url}/api/admin/institutions", headers=ADMIN_H,
                      json={"code": "bad" + tag.lower(), "name": "x", "level": "二级", "division": "123456"})
    assert r.status_code == 400 and "123456" in r.json()["detail"]
    r = requests.post(f"{s.url}/api/admin/recognition/scopes", headers={**ADMIN_H, "Content-Type": "text/csv"},
                      data="label,covers\n川渝HR,500000;510000\n错HR,509999\n".encode())
    assert r.status_code == 422 and "line 3" in r.json()["detail"] and "509999" in r.json()["detail"]


def test_decisions_are_re_checked_as_of_a_date_and_replayed(region):
    s = region
    tag = uuid.uuid4().hex[:6].upper()
    pid = "A" + tag
    h = region_reader(s)
    # A preliminary glucose three days ago, its final today.
    prelim, person = post_obs(s, observation(pid, "2345-7", 3, status="preliminary", identifier="G" + tag))
    final, _ = post_obs(s, observation(pid, "2345-7", 3, identifier="G" + tag))
    c = s.db()
    c.execute("UPDATE lab_result SET created_at = created_at - 3 * 86400 WHERE id = ?", (int(prelim),))
    c.commit()
    c.close()

    def judged(**params):
        r = requests.get(f"{s.url}/api/patients/{person}/recognition", params=params, headers=h)
        assert r.status_code == 200, r.text
        return {x["id"]: x["decision"] for x in r.json()["results"]}

    two_days_ago = (TODAY - datetime.timedelta(days=2)).isoformat()
    then = judged(as_of=two_days_ago)
    assert list(then) == [prelim] and then[prelim]["verdict"] == "reference_only"
    assert [r["code"] for r in then[prelim]["reasons"]] == ["preliminary"]
    now = judged()
    assert list(now) == [final] and now[final]["verdict"] == "recognizable"
    # Before anything was received: nothing to judge.
    assert judged(as_of=(TODAY - datetime.timedelta(days=10)).isoformat()) == {}

    # A qualification set in force then, replaced since: the town's result was recognizable when
    # the doctor decided; the replay says so with the recorded versions, today's rules do not.
    quals = {**ADMIN_H, "Content-Type": "text/csv"}
    header = "record,institution,item,scope,evaluated_by,valid_from,valid_until\n"
    r = requests.post(f"{s.url}/api/admin/recognition/qualifications", headers=quals, data=(
        header + f"QT-{tag},town,*,渝HR,市级,2024-01-01,{TODAY.year + 1}-12-31\n").encode())
    assert r.status_code == 201, r.text
    town = {"Authorization": "Bearer " + cli(s.data_dir, "token", "create", "--institution", "town"),
            "Content-Type": "application/fhir+json"}
    tid, tperson = post_obs(s, observation("W" + tag, "2345-7", 1, issuer="urn:huren:institution:town"), town)
    # The town's record and the city's, one person by identity number.
    from test_fhir import resident_id
    number = resident_id("19800101", male=True)
    for headers, system, value in [(town, "urn:huren:institution:town", "W" + tag),
                                   ({**s.his, "Content-Type": "application/fhir+json"}, "urn:oid:1.2.156.1", "CW" + tag)]:
        r = requests.put(f"{s.url}/fhir/Patient", params={"identifier": f"{system}|{value}"}, headers=headers,
                         json={"resourceType": "Patient", "gender": "male", "birthDate": "1980-01-01",
                               "identifier": [{"system": system, "value": value},
                                              {"system": "urn:huren:id:cn-resident", "value": number}]})
        assert r.status_code in (200, 201), r.text
    assert requests.post(f"{s.url}/api/encounters", json={"visit_number": "R" + tag, "patient_id": "CW" + tag,
                                                           "doctor": "qdoc"}, headers=s.his).status_code == 200
    as_doc = {**s.his, "X-Huren-On-Behalf-Of": "qdoc"}
    d = requests.post(f"{s.url}/api/recognition/decisions",
                      json={"patient_id": "CW" + tag, "visit_number": "R" + tag, "decision": "recognize",
                            "result": {"kind": "lab_result", "id": tid}}, headers=as_doc)
    assert d.status_code == 201 and d.json()["engine"]["verdict"] == "recognizable", d.text
    (decision_id,) = s.query("SELECT MAX(id) FROM recognition_decision")[0]
    r = requests.post(f"{s.url}/api/admin/recognition/qualifications", headers=quals, data=(
        header + f"QX-{tag},county,*,渝HR,市级,2024-01-01,{TODAY.year + 1}-12-31\n").encode())
    assert r.status_code == 201
    assert judged_for(s, h, tperson, tid)["verdict"] == "not_recognizable"
    r = requests.get(f"{s.url}/api/recognition/decisions/{decision_id}", headers=h)
    assert r.status_code == 200, r.text
    replay = r.json()
    assert replay["same"] is True and replay["replay"]["verdict"] == "recognizable"
    assert replay["engine"]["verdict"] == replay["decision"]["engine_verdict"] == "recognizable"
    assert any(c["what"] == "qualification" and f"QT-{tag}" in c["zh"] for c in replay["replay"]["consulted"])
    # Another hospital's reader does not see the city's decision.
    county_token = {"Authorization": s.county["Authorization"]}
    assert requests.get(f"{s.url}/api/recognition/decisions/{decision_id}", headers=county_token).status_code == 404


def judged_for(s, h, person, result):
    r = requests.get(f"{s.url}/api/patients/{person}/recognition", headers=h)
    assert r.status_code == 200, r.text
    return next(x["decision"] for x in r.json()["results"] if x["id"] == result)


def test_a_quality_grade_is_judged_as_it_stood(region):
    """A study graded 甲 three days ago and re-graded 废片 since (a late image, say): as of two
    days ago it was recognizable; now it is not. One spelling of grades throughout."""
    s = region
    tag = uuid.uuid4().hex[:6].upper()
    study = ct(patient_id="Q" + tag)
    study.StudyDate = (TODAY - datetime.timedelta(days=4)).strftime("%Y%m%d")
    study.StudyDescription, study.BodyPartExamined = "胸部CT平扫", "CHEST"
    store(s, study, calling="COUNTY")
    c = s.db()
    (sid,) = c.execute("SELECT id FROM study WHERE study_uid = ?", (study.StudyInstanceUID,)).fetchone()
    c.execute("UPDATE instance SET received_at = received_at - 4 * 86400 WHERE study_id = ?", (sid,))
    c.execute("""INSERT OR REPLACE INTO qc_study (study_id, dirty, changed_at, aggregated_at, score, grade, calibrated, complete)
                 VALUES (?, 0, unixepoch(), unixepoch(), 20.0, 'reject', 1, 1)""", (sid,))
    c.execute("""INSERT INTO qc_grade_history (study_id, graded_at, grade, calibrated, complete)
                 VALUES (?, unixepoch() - 3 * 86400, 'A', 1, 1), (?, unixepoch(), 'reject', 1, 1)""", (sid, sid))
    c.commit()
    c.close()
    h = region_reader(s)
    person = s.query("SELECT pe.public_id FROM person pe JOIN patient p ON p.person_id = pe.id WHERE p.patient_id = ?",
                     "Q" + tag)[0][0]

    def judged(**params):
        r = requests.get(f"{s.url}/api/patients/{person}/recognition", params=params, headers=h)
        return next(x["decision"] for x in r.json()["results"] if x["id"] == study.StudyInstanceUID)

    then = judged(as_of=(TODAY - datetime.timedelta(days=2)).isoformat())
    assert then["verdict"] == "recognizable", then
    assert next(c for c in then["consulted"] if c["what"] == "qc")["zh"].startswith("影像质控等级甲")
    now = judged()
    assert [r["code"] for r in now["reasons"]] == ["qc_below_minimum"]
    assert "废片" in now["reasons"][0]["zh"] and "reject" in now["reasons"][0]["en"]
    # The policy takes either spelling of a minimum grade; 废片 is no minimum.
    for good in ('default_min_qc = "A"\n', 'default_min_qc = "甲"\n'):
        assert requests.post(f"{s.url}/api/admin/recognition/policy", data=good.encode(),
                             headers=ADMIN_H).status_code == 201
    r = requests.post(f"{s.url}/api/admin/recognition/policy", data=b'default_min_qc = "reject"\n', headers=ADMIN_H)
    assert r.status_code == 422
    assert requests.post(f"{s.url}/api/admin/recognition/policy", data=b"", headers=ADMIN_H).status_code == 201
    # The QC centre's feedback speaks the same codes.
    low = requests.get(f"{s.url}/api/quality/studies",
                       params={"from": (TODAY - datetime.timedelta(days=5)).isoformat(), "until": TODAY.isoformat()},
                       headers=ADMIN_H).json()["studies"]
    mine = next(x for x in low if x["study_instance_uid"] == study.StudyInstanceUID)
    assert mine["grade"] == "reject"
    assert {x["grade"] for x in low if x["status"] == "graded"} <= {"A", "B", "C", "reject"}
    assert all(x["grade"] is None for x in low if x["status"] != "graded")
    assert json.dumps(low).count('"Reject"') == 0
