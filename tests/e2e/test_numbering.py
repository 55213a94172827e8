"""A hospital names only its own patients (issue #16). The write-side authorization matrix:
principal × interface × whose numbering the request names. A request that names another
institution's record is refused in its protocol's terms (403 problem+json, OperationOutcome
`forbidden`, HL7 AR, DIMSE 0x0124, STOW FailureReason 0x0124), leaves nothing written, and is in
the audit trail with the reason; its own numbering, that of an institution it sends for, and a
person's identity number are accepted.

The county holds patient V (a CT, identity number, mobile number). The town (its HIS, LIS, PACS
and doctor `tdoc`) has no relationship with V and does not send for the county; the county sends
for the town."""
import io
import json
import os
import subprocess
import uuid

import pytest
import requests
from pydicom.uid import generate_uid
from pynetdicom.sop_class import CTImageStorage

from conftest import ADMIN, BIN, Server, cli, free_port, setup_region
from helpers import associate, ct, to_bytes
from test_fhir import resident_id
from test_hl7 import ack_fields, oru, send
from test_persons import store, with_resident_id

PASSWORD = "长城-Great-Wall-2025"
TAG = uuid.uuid4().hex[:6].upper()
COUNTY = "urn:huren:institution:county"
TOWN = "urn:huren:institution:town"
V = "V" + TAG
NUMBER = resident_id("19491231", male=False)


def add_user(d, username, role, institution, department="全科"):
    out = subprocess.run([BIN, "user", "add", "--data-dir", str(d), "--username", username, "--name", "王丽",
                          "--role", role, "--institution", institution, "--department", department,
                          "--password-stdin"], input=PASSWORD + "\n", capture_output=True, text=True, timeout=60,
                         env=os.environ)
    assert out.returncode == 0, out.stderr


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("numbering")
    setup_region(d)
    outbox = d / "sms.jsonl"
    mllp = free_port()
    s = Server(d, {"HUREN__MLLP__LISTEN": f"127.0.0.1:{mllp}", "HUREN__NOTIFY__SMS_OUTBOX": str(outbox)}).start()
    s.mllp_port, s.outbox = mllp, outbox
    cli(d, "hl7-sender", "add", "--institution", "town", "--host", "127.0.0.1", "--facility", "TOWNLIS")
    cli(d, "hl7-sender", "add", "--institution", "county", "--host", "127.0.0.1", "--facility", "LIS01")
    for username, inst in [("tdoc", "town"), ("cdoc", "city"), ("kdoc", "county")]:
        add_user(d, username, "doctor", inst)
    v = with_resident_id(ct(patient_id=V, name="Li^Na=李^娜"), NUMBER)
    v.PatientBirthDate, v.PatientSex = "19491231", "F"
    store(s, v, calling="COUNTY")
    tokens = {inst: {"Authorization": "Bearer " + cli(d, "token", "create", "--institution", inst)}
              for inst in ("county", "town", "city")}
    r = requests.post(f"{s.url}/api/patient-contacts", json={"patient_id": V, "phone": "13800138000"},
                      headers=tokens["county"])
    assert r.status_code in (200, 204), r.text  # what it answers is test_a_mobile_number_…'s
    yield s, tokens
    s.stop()


def fhir(h):
    return {**h, "Content-Type": "application/fhir+json"}


def observation(system, value, code="2093-3"):
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"identifier": {"system": system, "value": value}},
            "effectiveDateTime": "2025-03-02T08:00:00+08:00", "valueQuantity": {"value": 4.1, "unit": "mmol/L"}}


def patient(system, value, name="黑客", birth="2001-01-01"):
    return {"resourceType": "Patient", "name": [{"text": name}], "birthDate": birth, "gender": "male",
            "identifier": [{"system": system, "value": value,
                            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                                 "code": "MR"}]}}]}


def transaction(system, value):
    """A Patient with the named record (new demographics) and a result for it."""
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:p1", "resource": patient(system, value),
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "urn:uuid:o1", "resource": {**observation(system, value), "subject": {"reference": "urn:uuid:p1"}},
         "request": {"method": "POST", "url": "Observation"}}]}


def http_cells(issuer, pid, tag):
    """Every HTTP write (or relationship) that names a patient record, as (name, method, path,
    body, kind): kind `json` answers problem+json, `fhir` an OperationOutcome."""
    rec = {"patient_id": pid, "issuer": issuer}
    return [
        ("contact", "POST", "/api/patient-contacts", {**rec, "phone": "13900139000"}, "json"),
        ("encounter", "POST", "/api/encounters", {**rec, "visit_number": "E" + tag}, "json"),
        ("encounter+register", "POST", "/api/encounters",
         {**rec, "visit_number": "R" + tag, "name": "黑客", "birth_date": "2001-01-01", "sex": "M"}, "json"),
        ("launch", "POST", "/api/launch", {**rec, "doctor": "tdoc"}, "json"),
        ("observation", "POST", "/fhir/Observation", observation(issuer, pid), "fhir"),
        ("transaction", "POST", "/fhir", transaction(issuer, pid), "fhir"),
        ("patient-create", "POST", "/fhir/Patient", patient(issuer, pid), "fhir"),
        ("patient-update", "PUT", f"/fhir/Patient?identifier={issuer}|{pid}", patient(issuer, pid), "fhir"),
    ]


def county_record(s):
    return s.query("SELECT name_raw, birth_date, sex FROM patient WHERE issuer = ? AND patient_id = ?", COUNTY, V)


def assert_untouched(s):
    """V's record as the county registered it (its own LIS may rewrite the name as 李^娜)."""
    [(name, birth, sex)] = county_record(s)
    assert "李^娜" in name and (birth, sex) == ("19491231", "F"), (name, birth, sex)


@pytest.mark.parametrize("cell", [c[0] for c in http_cells(COUNTY, V, "")])
def test_another_hospitals_record_is_refused_over_http(world, cell):
    s, tokens = world
    _, method, path, body, kind = next(c for c in http_cells(COUNTY, V, TAG) if c[0] == cell)
    before = (county_record(s), s.query("SELECT COUNT(*) FROM lab_result"), s.query("SELECT COUNT(*) FROM encounter"),
              s.query("SELECT sealed FROM patient_contact"))
    headers = fhir(tokens["town"]) if kind == "fhir" else tokens["town"]
    r = requests.request(method, f"{s.url}{path}", json=body, headers=headers)
    assert r.status_code == 403, (cell, r.status_code, r.text)
    if kind == "fhir":
        assert r.json()["resourceType"] == "OperationOutcome" and r.json()["issue"][0]["code"] == "forbidden"
    else:
        assert r.headers["content-type"].startswith("application/problem+json")
    assert "numbering" in r.text
    # Nothing written: not the county patient's name, results, visits or mobile number.
    after = (county_record(s), s.query("SELECT COUNT(*) FROM lab_result"), s.query("SELECT COUNT(*) FROM encounter"),
             s.query("SELECT sealed FROM patient_contact"))
    assert after == before
    assert_untouched(s)
    # Audited with who, what and why.
    token_id = s.query("SELECT id FROM token WHERE institution_id = (SELECT id FROM institution WHERE code = 'town') "
                       "ORDER BY id LIMIT 1")[0][0]
    rows = s.query("SELECT detail FROM audit_event WHERE action = 'access_denied' AND actor = ? AND object = ?",
                   f"token:{token_id}@town", f"{method} {path.split('?')[0]}")
    assert rows and any(COUNTY in json.loads(d)["reason"] for (d,) in rows), rows


def test_the_county_still_sees_its_patient_unchanged(world):
    s, tokens = world
    r = requests.get(f"{s.url}/dicom-web/studies", params={"PatientID": V, "includefield": "00100010"},
                     headers=tokens["county"])
    assert r.status_code == 200 and r.json()[0]["00100010"]["Value"][0]["Ideographic"] == "李^娜"


def test_own_send_for_and_identity_numbers_are_accepted(world):
    s, tokens = world
    # Its own record.
    r = requests.post(f"{s.url}/api/encounters", json={"visit_number": "OWN" + TAG, "patient_id": V},
                      headers=tokens["county"])
    assert r.status_code == 200, r.text
    # The county sends for the town: the town's numbering is the county's to write.
    r = requests.post(f"{s.url}/fhir/Observation", json=observation(TOWN, "T" + TAG), headers=fhir(tokens["county"]))
    assert r.status_code == 201, r.text
    # Anyone may name a person by identity number.
    r = requests.post(f"{s.url}/api/encounters", json={"visit_number": "ID" + TAG,
                                                        "identifier": f"urn:huren:id:cn-resident|{NUMBER}"},
                      headers=tokens["town"])
    assert r.status_code == 200, r.text
    # A free-text issuer is its first user's: claimed (and audited), then another's to nobody.
    mine = "TOWN-MRN-" + TAG
    r = requests.post(f"{s.url}/fhir/Observation", json=observation(mine, "X1"), headers=fhir(tokens["town"]))
    assert r.status_code == 201, r.text
    assert s.query("SELECT actor LIKE 'token:%@town', json_extract(detail, '$.claimed_for') FROM audit_event "
                   "WHERE action = 'configuration_changed' AND object = ?", f"issuer:{mine}") == [(1, "town")]
    r = requests.post(f"{s.url}/fhir/Observation", json=observation(mine, "X1"), headers=fhir(tokens["city"]))
    assert r.status_code == 403
    assert requests.post(f"{s.url}/fhir/Observation", json=observation(mine, "X2"),
                         headers=fhir(tokens["town"])).status_code == 201


def test_doctors_name_only_their_own_records_or_identity_numbers(world):
    s, tokens = world
    as_tdoc = {**tokens["town"], "X-Huren-On-Behalf-Of": "tdoc"}
    for path, body in [("/api/recognition/reminders", {"patient_id": V, "issuer": COUNTY}),
                       ("/api/recognition/decisions", {"patient_id": V, "issuer": COUNTY, "decision": "recognize",
                                                       "result": {"kind": "imaging_study", "id": "1.2.3"}}),
                       ("/api/patient-authorizations", {"identifier": f"{COUNTY}|{V}"}),
                       ("/api/break-glass", {"identifier": f"{COUNTY}|{V}", "reason": "急诊抢救需要"})]:
        r = requests.post(f"{s.url}{path}", json=body, headers=as_tdoc)
        if path == "/api/break-glass":
            # Break-glass is for signed-in doctors, not a system acting for one.
            r = requests.post(f"{s.url}/api/session", json={"username": "tdoc", "password": PASSWORD})
            jar, csrf = {"huren_session": r.cookies["huren_session"]}, {"X-CSRF-Token": r.json()["csrf_token"]}
            r = requests.post(f"{s.url}{path}", json=body, cookies=jar, headers=csrf)
        assert r.status_code == 403 and "numbering" in r.json()["detail"], (path, r.text)
    # By identity number, the same doctor may ask the patient (the code goes to V's phone).
    r = requests.post(f"{s.url}/api/patient-authorizations",
                      json={"identifier": f"urn:huren:id:cn-resident|{NUMBER}"}, headers=as_tdoc)
    assert r.status_code == 201 and r.json()["sent_to"] == "138****8000", r.text


def test_hl7_naming_another_hospitals_record_is_rejected(world):
    s, _ = world
    control = "N" + uuid.uuid4().hex[:10]
    (raw,) = send(s.mllp_port, oru(control, pid3=f"{V}^^^{COUNTY}^MR", facility="TOWNLIS").encode())
    code, ref, err = ack_fields(raw)
    assert (code, ref) == ("AR", control) and "PID^1^3" in err and "207" in err, err
    assert not s.query("SELECT 1 FROM hl7_message WHERE control_id = ?", control)
    assert_untouched(s)
    rows = s.query("SELECT actor, detail FROM audit_event WHERE action = 'results_refused' AND object = ?",
                   f"hl7:{control}")
    assert len(rows) == 1 and "numbering" in json.loads(rows[0][1])["reason"]
    # The county's own LIS, the same record: accepted.
    control = "N" + uuid.uuid4().hex[:10]
    (raw,) = send(s.mllp_port, oru(control, pid3=f"{V}^^^{COUNTY}^MR", name="李^娜").encode())
    assert ack_fields(raw)[0] == "AA"


def test_dicom_naming_another_hospitals_record_is_refused(world):
    s, tokens = world
    ds = ct(patient_id=V, name="Hei^Ke=黑^客")
    ds.IssuerOfPatientID = COUNTY
    # The town's PACS (AE PACS from 127.0.0.2) over DIMSE: 0x0124 Refused: Not Authorized.
    assoc = associate(s.dimse_port, calling="PACS", bind="127.0.0.2", contexts=[(CTImageStorage, ["1.2.840.10008.1.2.1"])])
    assert assoc.is_established
    rsp = assoc.send_c_store(ds)
    assoc.release()
    assert rsp.Status == 0x0124 and "numbering" in rsp.ErrorComment
    assert not s.query("SELECT 1 FROM instance WHERE sop_uid = ?", ds.SOPInstanceUID)
    rows = s.query("SELECT actor, detail FROM audit_event WHERE action = 'instance_refused' AND object = ?",
                   ds.SOPInstanceUID)
    assert len(rows) == 1 and rows[0][0].startswith("ae:PACS#") and "numbering" in json.loads(rows[0][1])["reason"]
    # The same over STOW-RS with the town's token: 403, the instance's FailureReason 0x0124.
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    boundary = "b" + uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + to_bytes(ds)
            + f"\r\n--{boundary}--\r\n".encode())
    r = requests.post(f"{s.url}/dicom-web/studies", data=body, headers={
        **tokens["town"], "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'})
    assert r.status_code == 403, r.text
    failed = r.json()["00081198"]["Value"][0]
    assert failed["00081197"]["Value"] == [0x0124] and failed["00081155"]["Value"] == [ds.SOPInstanceUID]
    assert_untouched(s)
    # The county's PACS sends for the town: an object in the town's numbering is stored.
    own = ct(patient_id="T" + TAG)
    own.IssuerOfPatientID = TOWN
    store(s, own, calling="COUNTY")


def test_a_mobile_number_changes_only_with_the_patient(world):
    """Hole 2: the number that receives authorization codes changes only when the patient
    confirms — by the code sent to the old number, or in person at the registering hospital —
    and the old number is told."""
    s, tokens = world

    def sms():
        return [json.loads(x) for x in s.outbox.read_text().splitlines()]

    # The city registers the same person (identity number) at a first visit, then a new number.
    r = requests.put(f"{s.url}/fhir/Patient", params={"identifier": f"urn:oid:1.2.156.1|C{TAG}"},
                     json={**patient("urn:oid:1.2.156.1", "C" + TAG, name="李娜", birth="1949-12-31"),
                           "gender": "female",
                           "identifier": [*patient("urn:oid:1.2.156.1", "C" + TAG)["identifier"],
                                          {"system": "urn:huren:id:cn-resident", "value": NUMBER}]},
                     headers=fhir(tokens["city"]))
    assert r.status_code == 201, r.text
    body = {"patient_id": "C" + TAG, "phone": "13900139000"}
    r = requests.post(f"{s.url}/api/patient-contacts", json=body, headers=tokens["city"])
    assert r.status_code == 202 and r.json()["status"] == "pending", r.text
    change = r.json()
    assert change["code_sent_to"] == "138****8000"
    ask = sms()[-1]
    assert ask["to"] == "13800138000" and "139****9000" in ask["text"]
    code = ask["text"].split("验证码")[1][:6]
    # Until confirmed, codes still go to the old number.
    r = requests.post(f"{s.url}/api/patient-authorizations", json={"identifier": f"urn:huren:id:cn-resident|{NUMBER}"},
                      headers={**tokens["city"], "X-Huren-On-Behalf-Of": "cdoc"})
    assert r.status_code == 201 and r.json()["sent_to"] == "138****8000"
    # Another hospital cannot confirm it; a wrong code is refused and audited.
    url = f"{s.url}/api/patient-contacts/changes/{change['change']}/confirm"
    assert requests.post(url, json={"code": code}, headers=tokens["county"]).status_code == 400
    wrong = "000000" if code != "000000" else "111111"
    assert requests.post(url, json={"code": wrong}, headers=tokens["city"]).status_code == 400
    r = requests.post(url, json={"code": code}, headers=tokens["city"])
    assert r.status_code == 200 and r.json() == {"status": "changed"}
    assert sms()[-1]["to"] == "13900139000"
    r = requests.post(f"{s.url}/api/patient-authorizations", json={"identifier": f"urn:huren:id:cn-resident|{NUMBER}"},
                      headers={**tokens["city"], "X-Huren-On-Behalf-Of": "cdoc"})
    assert r.status_code == 201 and r.json()["sent_to"] == "139****9000"
    # In person at the county: changed at once, the member of staff named, the old number told.
    r = requests.post(f"{s.url}/api/patient-contacts", json={"patient_id": V, "phone": "13700137000",
                                                             "verified_in_person_by": "cdoc"}, headers=tokens["county"])
    assert r.status_code == 400  # not a member of the county's staff
    r = requests.post(f"{s.url}/api/patient-contacts", json={"patient_id": V, "phone": "13700137000",
                                                             "verified_in_person_by": "kdoc"}, headers=tokens["county"])
    assert r.status_code == 200 and r.json()["status"] == "changed", r.text
    told = sms()[-1]
    assert told["to"] == "13900139000" and "137****7000" in told["text"] and "本人到院核验" in told["text"]
    steps = s.query("SELECT json_extract(detail, '$.step'), outcome, json_extract(detail, '$.verified_in_person_by') "
                    "FROM audit_event WHERE action = 'patient_contact_changed' ORDER BY id")
    assert steps == [("registered", "success", None), ("requested", "success", None),
                     ("code_rejected", "failure", None), ("code_rejected", "failure", None),
                     ("changed", "success", None), ("changed", "success", "kdoc")]
    # No number in the clear anywhere in the index.
    for n in ("13800138000", "13900139000", "13700137000"):
        assert not s.query("SELECT 1 FROM contact_change WHERE CAST(sealed AS TEXT) LIKE ?", f"%{n}%")
        assert not s.query("SELECT 1 FROM audit_event WHERE detail LIKE ?", f"%{n}%")


def test_on_behalf_of_and_csrf_refusals_are_audited_with_who_was_refused(world):
    s, tokens = world
    town_token = s.query("SELECT id FROM token WHERE institution_id = (SELECT id FROM institution WHERE code = 'town') "
                         "ORDER BY id LIMIT 1")[0][0]
    for name in ("cdoc", "nobody-" + TAG):
        r = requests.get(f"{s.url}/api/session", headers={**tokens["town"], "X-Huren-On-Behalf-Of": name})
        assert r.status_code == 403
        rows = s.query("SELECT detail FROM audit_event WHERE action = 'access_denied' AND actor = ? "
                       "AND object = 'GET /api/session'", f"token:{town_token}@town")
        assert any(name in json.loads(d)["reason"] for (d,) in rows), rows
    r = requests.post(f"{s.url}/api/session", json={"username": "tdoc", "password": PASSWORD})
    jar = {"huren_session": r.cookies["huren_session"]}
    r = requests.post(f"{s.url}/api/patient-authorizations", json={"identifier": "x|y"}, cookies=jar)
    assert r.status_code == 403
    rows = s.query("SELECT detail FROM audit_event WHERE action = 'access_denied' AND actor LIKE 'user:tdoc#%' "
                   "AND object = 'POST /api/patient-authorizations'")
    assert any("CSRF" in json.loads(d)["reason"] for (d,) in rows), rows
