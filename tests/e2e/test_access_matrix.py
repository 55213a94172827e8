"""The authorization matrix (issue #6): role × endpoint × relationship to the patient ×
interface. Every refused cell gets its protocol's refusal and an audit event; every allowed
read is audited once per reader × object.

One person P has records at the county hospital (a CT and a lab result) and at the city hospital
(a CT), linked by a resident identity number; another patient Q is known only at the county.
The city's HIS has an open encounter for P, assigned to the doctor `doc` in 放射科.
"""
import json
import os
import subprocess
import uuid

import pytest
import requests
from pydicom.dataset import Dataset
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

from conftest import ADMIN, BIN, Server, cli, setup_region
from helpers import associate
from test_fhir import resident_id
from test_persons import person, person_of, store, with_resident_id

PASSWORD = "长城-Great-Wall-2025"
TAG = uuid.uuid4().hex[:6].upper()

# (username, role, department). Only 放射科 has the encounter.
PEOPLE = [
    ("doc", "doctor", "放射科"),
    ("tech", "technician", "放射科"),
    ("cardio", "doctor", "心内科"),
    ("qc", "qc_officer", "质控科"),
    ("steward", "data_steward", "信息科"),
    ("iadmin", "institution_admin", "医务科"),
    ("ops", "regional_operator", "信息科"),
    ("aud", "auditor", "审计科"),
]

# What each principal gets. `qido`: which of the three studies a search shows (or a status);
# the other columns: HTTP status, or for FHIR Observation search the number of results.
NO_DATA = {"qido": 403, "meta": 403, "timeline": 403, "observations": 403, "patient": 403}
UNRELATED = {"qido": set(), "meta": 404, "timeline": 404, "observations": 0, "patient": 404}
RELATED = {"qido": {"P@county", "P@city"}, "meta": 200, "timeline": 200, "observations": 1, "patient": 200}
NOT_ADMIN = {"audit": 403, "admin": 403, "reviews": 403}
EXPECTED = {
    "doc": {**RELATED, **NOT_ADMIN},
    "tech": {**RELATED, **NOT_ADMIN},
    "cardio": {**UNRELATED, **NOT_ADMIN},
    "qc": {**UNRELATED, **NOT_ADMIN},
    "steward": {**UNRELATED, **NOT_ADMIN, "reviews": 200},
    "iadmin": {**UNRELATED, **NOT_ADMIN},
    "ops": {**NO_DATA, **NOT_ADMIN, "admin": 200},
    "aud": {**NO_DATA, **NOT_ADMIN, "audit": 200},
    # The city's HIS: its encounter's patient, whole.
    "city-system": {**RELATED, **NOT_ADMIN},
    # The county's system: what the county performed (P's county CT and lab, Q), and no
    # person-level view of P (no encounter there).
    "county-system": {"qido": {"P@county", "Q@county"}, "meta": 200, "timeline": 404, "observations": 1,
                      "patient": 404, **NOT_ADMIN},
    "regional-service": {"qido": {"P@county", "P@city", "Q@county"}, "meta": 200, "timeline": 200,
                         "observations": 1, "patient": 200, **NOT_ADMIN},
    # Operators' tokens read no patient data, and the review queue shows patient data (#16).
    "operator-token": {**NO_DATA, "audit": 200, "admin": 200, "reviews": 403},
    "no-credentials": {k: 401 for k in [*NO_DATA, *NOT_ADMIN]},
    "forged-token": {k: 401 for k in [*NO_DATA, *NOT_ADMIN]},
}
# An allowed read's audit purpose.
PURPOSE = {"doc": "treatment", "tech": "treatment", "city-system": "operations", "county-system": "operations",
           "regional-service": "operations"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("matrix")
    setup_region(d)
    s = Server(d).start()
    for username, role, dept in PEOPLE:
        out = subprocess.run([BIN, "user", "add", "--data-dir", str(d), "--username", username, "--name", "王丽",
                              "--role", role, "--institution", "city", "--department", dept, "--password-stdin"],
                             input=PASSWORD + "\n", capture_output=True, text=True, timeout=60, env=os.environ)
        assert out.returncode == 0, out.stderr
    number = resident_id("19491231", male=False)
    p_county, p_city, q = person("MX" + TAG), person("MY" + TAG), person("MQ" + TAG, name="Zhao^Qi=赵^琪")
    store(s, with_resident_id(p_county, number), calling="COUNTY")
    store(s, with_resident_id(p_city, number), calling="CITY")
    store(s, q, calling="COUNTY")
    assert person_of(s, "MX" + TAG) == person_of(s, "MY" + TAG)
    studies = {"P@county": p_county.StudyInstanceUID, "P@city": p_city.StudyInstanceUID, "Q@county": q.StudyInstanceUID}

    def token(*args):
        t = cli(d, "token", "create", *args)
        (tid,) = s.query("SELECT MAX(id) FROM token")[0]
        return t, tid

    county_t, county_id = token("--institution", "county")
    city_t, city_id = token("--institution", "city")
    region_t, region_id = token("--institution", "city", "--scope", "read:region")
    # The county's lab result for P, sent by the county's system.
    issuer = s.query("SELECT issuer FROM patient WHERE patient_id = ?", "MX" + TAG)[0][0]
    obs = {"resourceType": "Observation", "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": "2093-3"}]},
           "subject": {"identifier": {"system": issuer, "value": "MX" + TAG}},
           "effectiveDateTime": "2025-03-02T08:00:00+08:00", "valueQuantity": {"value": 4.1, "unit": "mmol/L"}}
    r = requests.post(f"{s.url}/fhir/Observation", json=obs,
                      headers={"Authorization": f"Bearer {county_t}", "Content-Type": "application/fhir+json"})
    assert r.status_code == 201, r.text
    person_id = r.json()["subject"]["reference"].split("/")[1]
    # The city's HIS registers the visit.
    visit = {"visit_number": "V" + TAG, "patient_id": "MY" + TAG, "doctor": "doc", "department": "放射科"}
    r = requests.post(f"{s.url}/api/encounters", json=visit, headers={"Authorization": f"Bearer {city_t}"})
    assert r.status_code == 200, r.text

    principals = {}
    for username, _, _ in PEOPLE:
        r = requests.post(f"{s.url}/api/session", json={"username": username, "password": PASSWORD})
        assert r.status_code == 201, r.text
        (uid,) = s.query("SELECT id FROM app_user WHERE username = ?", username)[0]
        principals[username] = ({"cookies": {"huren_session": r.cookies["huren_session"]}}, f"user:{username}#{uid}@")
    principals["city-system"] = ({"headers": {"Authorization": f"Bearer {city_t}"}}, f"token:{city_id}@city")
    principals["county-system"] = ({"headers": {"Authorization": f"Bearer {county_t}"}}, f"token:{county_id}@county")
    principals["regional-service"] = ({"headers": {"Authorization": f"Bearer {region_t}"}}, f"token:{region_id}@city")
    principals["operator-token"] = ({"headers": {"Authorization": f"Bearer {ADMIN}"}}, "bootstrap-admin")
    principals["no-credentials"] = ({}, None)
    principals["forged-token"] = ({"headers": {"Authorization": "Bearer " + uuid.uuid4().hex}}, None)
    yield s, studies, person_id, principals
    s.stop()


def endpoints(studies, person_id):
    return {
        "qido": ("/dicom-web/studies", {"PatientID": f"M?{TAG}"}),
        "meta": (f"/dicom-web/studies/{studies['P@county']}/metadata", {}),
        "timeline": (f"/api/patients/{person_id}/timeline", {}),
        "observations": ("/fhir/Observation", {"patient": person_id}),
        "patient": (f"/fhir/Patient/{person_id}", {}),
        "audit": ("/fhir/AuditEvent", {"_count": "1"}),
        "admin": ("/api/admin/institutions", {}),
        "reviews": ("/api/admin/link-reviews", {}),
    }


def audit(s, actor_prefix, **where):
    sql = "SELECT action, outcome, object, detail FROM audit_event WHERE actor LIKE ?"
    args = [actor_prefix + "%"]
    for k, v in where.items():
        sql += f" AND {k} = ?"
        args.append(v)
    return s.query(sql, *args)


@pytest.mark.parametrize("who", list(EXPECTED))
def test_http_cells(world, who):
    s, studies, person_id, principals = world
    auth, actor = principals[who]
    by_uid = {v: k for k, v in studies.items()}
    for cell, (path, params) in endpoints(studies, person_id).items():
        want = EXPECTED[who][cell]
        r = requests.get(f"{s.url}{path}", params=params, **auth)
        where = f"{who} {cell}: {r.status_code} {r.text[:200]}"
        if isinstance(want, set):
            assert r.status_code in (200, 204), where
            got = {by_uid[x["0020000D"]["Value"][0]] for x in (r.json() if r.status_code == 200 else [])}
            assert got == want, where
        elif cell == "observations" and isinstance(want, int) and want < 400:
            assert r.status_code == 200, where
            assert len(r.json().get("entry", [])) == want, where
        else:
            assert r.status_code == want, where
        # Refusals in the protocol's terms.
        if r.status_code == 401:
            assert r.headers["www-authenticate"].startswith("Bearer"), where
        if r.status_code in (401, 403) and path.startswith("/fhir"):
            assert r.json()["resourceType"] == "OperationOutcome", where
        if r.status_code in (401, 403) and not path.startswith("/fhir"):
            assert r.headers["content-type"].startswith("application/problem+json"), where
        # And in the audit trail.
        if actor is None:
            continue
        if r.status_code == 403:
            assert audit(s, actor, action="access_denied", object=f"GET {path}", outcome="failure"), where
        elif cell in ("timeline", "patient") and r.status_code == 404:
            assert audit(s, actor, action="patient_data_accessed", object=f"person:{person_id}",
                         outcome="failure"), where
        elif cell == "meta" and r.status_code == 404:
            # A study out of reach answers like one that does not exist, and is in the trail.
            assert audit(s, actor, action="patient_data_accessed", object=f"study:{studies['P@county']}",
                         outcome="failure"), where
        elif r.status_code == 200 and (cell in ("timeline", "patient") or (cell == "observations" and want)):
            rows = audit(s, actor, action="patient_data_accessed", object=f"person:{person_id}", outcome="success")
            assert rows and json.loads(rows[0][3])["purpose"] == PURPOSE[who], where
    # Every study the reader saw is audited once, with its purpose.
    for label in EXPECTED[who]["qido"] if isinstance(EXPECTED[who]["qido"], set) else ():
        rows = audit(s, actor, action="patient_data_accessed", object=f"study:{studies[label]}", outcome="success")
        assert len(rows) == 1, (who, label, rows)
        assert json.loads(rows[0][3])["purpose"] == PURPOSE[who]


def test_refused_credentials_are_audited_once_per_source_and_reason(world):
    s, *_ = world
    reasons = {json.loads(d)["reason"] for (d,) in s.query(
        "SELECT detail FROM audit_event WHERE action = 'authentication_failed'")}
    assert reasons >= {"no credentials", "unknown, expired or revoked token"}
    # Eight requests each, one event per reason (per source, per minute).
    assert s.query("SELECT COUNT(*) FROM audit_event WHERE action = 'authentication_failed'") == [(len(reasons),)]


def find_studies(s, calling):
    assoc = associate(s.dimse_port, calling=calling,
                      contexts=[(StudyRootQueryRetrieveInformationModelFind, ["1.2.840.10008.1.2"])])
    assert assoc.is_established
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientID = f"M?{TAG}"
    ds.StudyInstanceUID = ""
    found = []
    for status, ident in assoc.send_c_find(ds, StudyRootQueryRetrieveInformationModelFind):
        if ident is not None and status.Status in (0xFF00, 0xFF01):
            found.append(ident.StudyInstanceUID)
    assoc.release()
    return found


def test_dimse_cells(world):
    """A peer reads what its institution's system reads: the county's PACS its own studies, the
    city's also the record of its encounter's patient; an unknown peer is rejected."""
    s, studies, _, _ = world
    by_uid = {v: k for k, v in studies.items()}
    assert {by_uid[u] for u in find_studies(s, "COUNTY")} == {"P@county", "Q@county"}
    assert {by_uid[u] for u in find_studies(s, "CITY")} == {"P@county", "P@city"}
    # Per association × study, with the association named.
    rows = s.query("""SELECT detail FROM audit_event WHERE action = 'patient_data_accessed' AND actor LIKE 'ae:COUNTY#%'
                      AND study_uid = ?""", studies["Q@county"])
    assert len(rows) == 1 and json.loads(rows[0][0])["purpose"] == "operations" and "association" in json.loads(rows[0][0])
    assoc = associate(s.dimse_port, calling="STRANGER",
                      contexts=[(StudyRootQueryRetrieveInformationModelFind, ["1.2.840.10008.1.2"])])
    assert assoc.is_rejected


def test_closing_the_encounter_ends_the_related_cells(world):
    s, studies, person_id, principals = world
    city = principals["city-system"][0]
    visit = {"visit_number": "V" + TAG, "patient_id": "MY" + TAG, "status": "closed"}
    assert requests.post(f"{s.url}/api/encounters", json=visit, **city).status_code == 200
    for who in ("doc", "tech"):
        auth = principals[who][0]
        assert requests.get(f"{s.url}/api/patients/{person_id}/timeline", **auth).status_code == 404
        r = requests.get(f"{s.url}/dicom-web/studies", params={"PatientID": f"M?{TAG}"}, **auth)
        assert r.status_code == 204 or r.json() == []
    # The city's system keeps only what the city performed.
    r = requests.get(f"{s.url}/dicom-web/studies", params={"PatientID": f"M?{TAG}"}, **city)
    assert [x["0020000D"]["Value"][0] for x in r.json()] == [studies["P@city"]]
    by_uid = {v: k for k, v in studies.items()}
    assert {by_uid[u] for u in find_studies(s, "CITY")} == {"P@city"}
