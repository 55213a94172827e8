"""What docs/security.md and docs/audit.md promise is in the trail (issue #16): WADO-RS and
WADO-URI requests for a study out of reach, patient searches, stewards' reads of persons, the
calling AE title of a rejected association, the detail of an event without an object in the FHIR
export; authorizations limited to the asking doctor (or department) and capped per day; a
per-address budget for failed requests; checked bulk-data offsets."""
import json
import uuid

import pytest
import requests
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

from conftest import ADMIN, cli
from helpers import associate, ct
from test_fhir import resident_id
from test_persons import store, with_resident_id
from test_sessions import PASSWORD, add_user, login


def session(s, username):
    r = login(s, username)
    assert r.status_code == 201, r.text
    return {"huren_session": r.cookies["huren_session"]}, {"X-CSRF-Token": r.json()["csrf_token"]}


def refused_reads(s, actor_like, obj):
    return s.query("SELECT COUNT(*) FROM audit_event WHERE action = 'patient_data_accessed' AND outcome = 'failure' "
                   "AND actor LIKE ? AND object = ?", actor_like, obj)[0][0]


def test_out_of_reach_studies_searches_and_steward_reads_are_audited(fresh_server):
    s = fresh_server()
    assert add_user(s, "qc1", "qc_officer").returncode == 0
    assert add_user(s, "stew", "data_steward", institution="county").returncode == 0
    pid = "AG" + uuid.uuid4().hex[:6]
    study = ct(patient_id=pid)
    store(s, study, calling="COUNTY")
    jar, _ = session(s, "qc1")
    uid, series, sop = study.StudyInstanceUID, study.SeriesInstanceUID, study.SOPInstanceUID
    # A QC officer probing a study UID (as the quality feedback lists them): 404, and recorded.
    for path in (f"/dicom-web/studies/{uid}/metadata", f"/dicom-web/studies/{uid}/series/{series}/instances/{sop}",
                 f"/dicom-web/studies/{uid}/series/{series}/instances/{sop}/rendered"):
        assert requests.get(f"{s.url}{path}", cookies=jar).status_code == 404
    r = requests.get(f"{s.url}/wado", params={"requestType": "WADO", "studyUID": uid, "seriesUID": series,
                                              "objectUID": sop, "contentType": "application/dicom"}, cookies=jar)
    assert r.status_code == 404
    assert refused_reads(s, "user:qc1#%", f"study:{uid}") == 4
    # A UID that exists nowhere gets the same answer and the same record.
    nowhere = "1.2.3." + str(uuid.uuid4().int)[:20]
    assert requests.get(f"{s.url}/dicom-web/studies/{nowhere}/metadata", cookies=jar).status_code == 404
    assert refused_reads(s, "user:qc1#%", f"study:{nowhere}") == 1

    # Patient searches carry names, birth dates and numbers: each one is an event, naming who
    # was shown and what kind of search it was — never the name or number searched for.
    county = {"Authorization": "Bearer " + cli(s.data_dir, "token", "create", "--institution", "county")}
    issuer = s.query("SELECT issuer FROM patient WHERE patient_id = ?", pid)[0][0]
    person = s.query("SELECT pe.public_id FROM person pe JOIN patient p ON p.person_id = pe.id WHERE p.patient_id = ?",
                     pid)[0][0]
    before = s.query("SELECT COUNT(*) FROM audit_event WHERE object = 'patient-search'")[0][0]
    assert requests.get(f"{s.url}/api/patients", params={"patient_id": pid, "issuer": issuer},
                        headers=county).json()[0]["person"] == person
    assert requests.get(f"{s.url}/fhir/Patient", params={"identifier": f"{issuer}|{pid}"},
                        headers=county).json()["total"] == 1
    pix = requests.get(f"{s.url}/fhir/Patient/$ihe-pix", params={"sourceIdentifier": f"{issuer}|{pid}"},
                       headers=county)
    assert pix.status_code == 200, pix.text
    assert requests.get(f"{s.url}/fhir/Patient", params={"name": "Zhang"}, headers=county).status_code == 200
    rows = s.query("SELECT patient, detail FROM audit_event WHERE object = 'patient-search' ORDER BY id")[before:]
    assert len(rows) == 4, rows
    first = json.loads(rows[0][1])
    assert rows[0][0] == f"person:{person}" and first["by"] == "record_number" and first["persons"] == [person]
    assert json.loads(rows[-1][1])["by"] == "name" and "Zhang" not in rows[-1][1]

    # Persons in the review tools: the operator's token reads none; a steward's read is audited.
    admin = {"Authorization": f"Bearer {ADMIN}"}
    assert requests.get(f"{s.url}/api/admin/persons/{person}", headers=admin).status_code == 403
    assert requests.get(f"{s.url}/api/admin/link-reviews", headers=admin).status_code == 403
    sjar, _ = session(s, "stew")
    r = requests.get(f"{s.url}/api/admin/persons/{person}", cookies=sjar)
    assert r.status_code == 200 and r.json()["records"][0]["patient_id"] == pid
    assert s.query("SELECT json_extract(detail, '$.purpose') FROM audit_event WHERE action = 'patient_data_accessed' "
                   "AND actor LIKE 'user:stew#%' AND object = ?", f"person:{person}") == [("operations",)]


def test_rejected_associations_name_the_calling_ae_and_the_export_keeps_detail(fresh_server):
    from fhirclient.models.bundle import Bundle
    s = fresh_server()
    assoc = associate(s.dimse_port, calling="STRANGER",
                      contexts=[(StudyRootQueryRetrieveInformationModelFind, ["1.2.840.10008.1.2"])])
    assert assoc.is_rejected
    # The event is written as the rejection goes out; the requestor may see the RJ first.
    from test_quality import wait_for
    rows = wait_for(s, "SELECT actor, object, detail FROM audit_event WHERE action = 'association_rejected'",
                    timeout=10)
    assert rows[0][0] == "ae:STRANGER" and rows[0][1] == "association:HUREN"
    assert json.loads(rows[0][2])["calling_ae_title"] == "STRANGER"
    # An event with no object (a refused authorization request has none) keeps its detail in
    # the FHIR AuditEvent export.
    c = s.db()
    c.execute("""INSERT INTO audit_event (at, action, outcome, actor, institution, patient, study_uid, object,
                 source_address, detail) VALUES (unixepoch(), 'access_denied', 'failure', 'probe', NULL, NULL, NULL,
                 NULL, NULL, '{"reason":"no object here"}')""")
    c.commit()
    c.close()
    r = requests.get(f"{s.url}/fhir/AuditEvent", params={"_count": 1}, headers={"Authorization": f"Bearer {ADMIN}"})
    event = Bundle(r.json(), strict=True).entry[0].resource
    assert event.agent[0].who.display == "probe"
    assert any("no object here" in d.valueString for e in event.entity for d in (e.detail or []))


def test_an_authorization_reaches_the_asking_doctor_or_department_and_is_capped(fresh_server, tmp_path):
    outbox = tmp_path / "sms.jsonl"
    s = fresh_server({"HUREN__NOTIFY__SMS_OUTBOX": str(outbox), "HUREN__AUTH__AUTHORIZATION_REACH": "department",
                      "HUREN__AUTH__AUTHORIZATION_REQUESTS_PER_PATIENT_DAY": "2"})
    # add_user puts everyone in 放射科; one doctor of another department.
    for name, role in [("d1", "doctor"), ("d2", "doctor"), ("t1", "technician"), ("st1", "data_steward")]:
        assert add_user(s, name, role, institution="town").returncode == 0
    import os
    import subprocess
    from conftest import BIN
    out = subprocess.run([BIN, "user", "add", "--data-dir", str(s.data_dir), "--username", "d3", "--name", "赵",
                          "--role", "doctor", "--institution", "town", "--department", "内科"],
                         input=PASSWORD + "\n", capture_output=True, text=True, timeout=60, env=os.environ)
    assert out.returncode == 0, out.stderr
    number = resident_id("19800101", male=True)
    pid = "AR" + uuid.uuid4().hex[:6]
    study = with_resident_id(ct(patient_id=pid), number)
    store(s, study, calling="COUNTY")
    county = {"Authorization": "Bearer " + cli(s.data_dir, "token", "create", "--institution", "county")}
    assert requests.post(f"{s.url}/api/patient-contacts", json={"patient_id": pid, "phone": "13800138000"},
                         headers=county).status_code == 200
    jar, csrf = session(s, "d1")
    body = {"identifier": f"urn:huren:id:cn-resident|{number}"}
    r = requests.post(f"{s.url}/api/patient-authorizations", json=body, cookies=jar, headers=csrf)
    assert r.status_code == 201, r.text
    code = json.loads(outbox.read_text().splitlines()[-1])["text"].split("验证码")[1][:6]
    r = requests.post(f"{s.url}/api/patient-authorizations/{r.json()['id']}/confirm", json={"code": code},
                      cookies=jar, headers=csrf)
    assert r.status_code == 200

    def sees(user):
        ujar, _ = session(s, user)
        r = requests.get(f"{s.url}/dicom-web/studies", cookies=ujar)
        return r.status_code == 200 and study.StudyInstanceUID in [x["0020000D"]["Value"][0] for x in r.json()]

    # The asking doctor and, by configuration, the doctors of their department; not other
    # departments, not the clinic's technicians or data stewards.
    assert {u: sees(u) for u in ("d1", "d2", "d3", "t1", "st1")} == \
        {"d1": True, "d2": True, "d3": False, "t1": False, "st1": False}
    # Each request sends the patient an SMS: two a day for this patient here, then 429, audited.
    jar2, csrf2 = session(s, "d2")
    assert requests.post(f"{s.url}/api/patient-authorizations", json=body, cookies=jar2, headers=csrf2).status_code == 201
    sent = len(outbox.read_text().splitlines())
    r = requests.post(f"{s.url}/api/patient-authorizations", json=body, cookies=jar2, headers=csrf2)
    assert r.status_code == 429 and r.json()["title"] == "too_many_requests"
    assert len(outbox.read_text().splitlines()) == sent
    assert s.query("SELECT outcome FROM audit_event WHERE action = 'patient_authorization' "
                   "AND json_extract(detail, '$.step') = 'request_refused'") == [("failure",)]


def test_failed_requests_are_throttled_per_source_address(fresh_server):
    s = fresh_server({"HUREN__HTTP__FAILED_REQUESTS_PER_MIN": "5"})
    assert add_user(s, "doc", "doctor").returncode == 0
    good = {"Authorization": "Bearer " + cli(s.data_dir, "token", "create", "--institution", "city")}
    assert requests.get(f"{s.url}/dicom-web/studies", headers=good).status_code in (200, 204)
    # Random tokens (each its own principal) and wrong passwords spend one budget: the address's.
    codes = [requests.get(f"{s.url}/dicom-web/studies",
                          headers={"Authorization": "Bearer " + uuid.uuid4().hex}).status_code for _ in range(4)]
    codes.append(login(s, "doc", "wrong-password").status_code)
    assert codes == [401] * 5
    r = requests.get(f"{s.url}/dicom-web/studies", headers={"Authorization": "Bearer " + uuid.uuid4().hex})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert login(s, "doc").status_code == 429          # the right password waits too
    assert requests.get(f"{s.url}/dicom-web/studies").status_code == 429
    # A hospital's system behind the same address, whose token works, is not throttled.
    assert requests.get(f"{s.url}/dicom-web/studies", headers=good).status_code in (200, 204)
    assert s.query("SELECT COUNT(*) FROM audit_event WHERE action = 'authentication_failed' "
                   "AND json_extract(detail, '$.reason') LIKE 'too many failed requests%'") == [(1,)]


def test_bulk_data_offsets_that_overflow_are_not_served(fresh_server):
    s = fresh_server()
    study = ct(patient_id="BO" + uuid.uuid4().hex[:6])
    store(s, study, calling="COUNTY")
    h = {"Authorization": "Bearer " + cli(s.data_dir, "token", "create", "--institution", "county")}
    base = (f"{s.url}/dicom-web/studies/{study.StudyInstanceUID}/series/{study.SeriesInstanceUID}"
            f"/instances/{study.SOPInstanceUID}")
    meta = requests.get(f"{base}/metadata", headers=h).json()[0]
    good = meta["7FE00010"]["BulkDataURI"]
    assert requests.get(good, headers={**h, "Range": "bytes=0-5"}).status_code == 206
    for rng in ("18446744073709551610-20", "18446744073709551615-1", "0-18446744073709551615"):
        r = requests.get(f"{base}/bulk/{rng}", headers={**h, "Range": "bytes=0-5"})
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json"), (rng, r.text)
        r = requests.get(f"{base}/bulk/{rng}", headers=h)
        assert r.status_code == 404, (rng, r.status_code)
    # The server is still there.
    assert requests.get(good, headers={**h, "Range": "bytes=0-5"}).status_code == 206


@pytest.mark.parametrize("who", ["cdoc-other-institution", "unknown-user"])
def test_on_behalf_of_an_unknown_or_foreign_user_is_refused_and_audited(fresh_server, who):
    s = fresh_server()
    assert add_user(s, "cdoc", "doctor", institution="county").returncode == 0
    token = cli(s.data_dir, "token", "create", "--institution", "city")
    name = "cdoc" if who.startswith("cdoc") else "ghost"
    r = requests.get(f"{s.url}/dicom-web/studies", headers={"Authorization": f"Bearer {token}",
                                                             "X-Huren-On-Behalf-Of": name})
    assert r.status_code == 403
    rows = s.query("SELECT actor, detail FROM audit_event WHERE action = 'access_denied'")
    assert rows and rows[0][0].endswith("@city") and name in json.loads(rows[0][1])["reason"]
