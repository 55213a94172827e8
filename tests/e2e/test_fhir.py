"""FHIR R4 (issue #5, first part): Patient read and search, CapabilityStatement,
OperationOutcome — every response parsed with the R4 (4.0.1) models of fhirclient, strictly."""
import uuid

import requests
from fhirclient.models.bundle import Bundle
from fhirclient.models.capabilitystatement import CapabilityStatement
from fhirclient.models.operationoutcome import OperationOutcome
from fhirclient.models.patient import Patient

import pytest

from conftest import region_reader

# A regional service's token reads every institution's results (operators' tokens read none).
H = {"Accept": "application/fhir+json"}


@pytest.fixture(scope="module", autouse=True)
def _reader(server):
    H.update(region_reader(server))


def get(server, path, **params):
    r = requests.get(f"{server.url}/fhir{path}", params=params, headers=H)
    assert r.headers["content-type"].startswith("application/fhir+json"), r.headers["content-type"]
    return r


def test_capability_statement(server):
    r = get(server, "/metadata")
    assert r.status_code == 200
    cs = CapabilityStatement(r.json(), strict=True)
    assert cs.fhirVersion == "4.0.1"
    assert [x.type for x in cs.rest[0].resource] == ["Patient", "Observation", "DiagnosticReport"]
    assert cs.rest[0].interaction[0].code == "transaction"
    assert cs.rest[0].resource[0].operation[0].name == "ihe-pix"
    assert {p.name for p in cs.rest[0].resource[1].searchParam} >= {"patient", "subject.identifier", "code", "date",
                                                                    "category", "status", "_count"}


def test_patient_search_and_read(server):
    from test_persons import MOTHER_ID, person, rare_name, store, with_resident_id
    tag = uuid.uuid4().hex[:6]
    name = rare_name()
    store(server, with_resident_id(person("FA" + tag, name=name), MOTHER_ID))
    r = get(server, "/Patient", identifier=f"urn:huren:id:cn-resident|{MOTHER_ID}")
    assert r.status_code == 200
    b = Bundle(r.json(), strict=True)
    assert b.type == "searchset" and b.total >= 1
    p = b.entry[0].resource
    assert isinstance(p, Patient)
    assert "FA" + tag in {i.value for i in p.identifier}
    assert p.gender == "female" and p.birthDate.isostring == "1949-12-31"
    # Read by id, and search by a record's own identifier and by name.
    r = get(server, f"/Patient/{p.id}")
    assert r.status_code == 200
    read = Patient(r.json(), strict=True)
    assert read.id == p.id
    issuer = server.query("SELECT issuer FROM patient WHERE patient_id = ?", "FA" + tag)[0][0]
    r = get(server, "/Patient", identifier=f"{issuer}|FA{tag}")
    assert [e.resource.id for e in Bundle(r.json(), strict=True).entry] == [p.id]
    r = get(server, "/Patient", name=name.split("^")[0].lstrip("=") + name.split("^")[1][:2])
    assert p.id in {e.resource.id for e in Bundle(r.json(), strict=True).entry}


def test_errors_are_operation_outcomes(server):
    r = get(server, "/Patient/no-such-person")
    assert r.status_code == 404
    oo = OperationOutcome(r.json(), strict=True)
    assert oo.issue[0].code == "not-found"
    r = get(server, "/Patient", birthdate="2020-01-01")
    assert r.status_code == 400 and OperationOutcome(r.json(), strict=True).issue[0].code == "not-supported"
    r = get(server, "/Patient", identifier="urn:huren:id:cn-resident|110105194912310021")
    assert r.status_code == 400 and OperationOutcome(r.json(), strict=True).issue[0].code == "invalid"
    r = requests.get(f"{server.url}/fhir/Patient", params={"name": "李"})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert OperationOutcome(r.json(), strict=True).issue[0].code == "security"
    # A body above FHIR's limit (32 MiB) is 413 in FHIR's terms; nothing is stored.
    big = b'{"resourceType": "Bundle", "type": "transaction", "x": "' + b"x" * (33 << 20) + b'"}'
    r = requests.post(f"{server.url}/fhir", data=big, headers={**H, "Content-Type": "application/fhir+json"})
    assert r.status_code == 413 and OperationOutcome(r.json(), strict=True).issue[0].code == "too-long"


# --- Observation, DiagnosticReport, transactions, conditional create, PIXm ---------------------
import random

from fhirclient.models.diagnosticreport import DiagnosticReport
from fhirclient.models.observation import Observation
from fhirclient.models.parameters import Parameters

from conftest import cli

RESIDENT = "urn:huren:id:cn-resident"
LIS = "http://lis.county.example/report"


def resident_id(birth="19800101", male=True):
    """A valid GB 11643 number (ISO 7064 MOD 11-2 check character) with a random sequence."""
    seq = random.randrange(0, 50) * 2 + (1 if male else 0)
    body = f"500101{birth}{random.randrange(10):d}{seq:02d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = "10X98765432"[sum(int(c) * w for c, w in zip(body, weights)) % 11]
    return body + check


def token(server, institution):
    return {"Authorization": "Bearer " + cli(server.data_dir, "token", "create", "--institution", institution),
            "Content-Type": "application/fhir+json"}


def post(server, path, body, headers):
    r = requests.post(f"{server.url}/fhir{path}", json=body, headers=headers)
    assert r.headers["content-type"].startswith("application/fhir+json"), r.text
    return r


def obs(full_url, code, value, subject, system="http://loinc.org", display=None, when="2025-03-01T08:00:00+08:00",
        status="final", **extra):
    res = {"resourceType": "Observation", "status": status,
           "code": {"coding": [{"system": system, "code": code, **({"display": display} if display else {})}]},
           "subject": subject, "effectiveDateTime": when, **value, **extra}
    return {"fullUrl": full_url, "resource": res, "request": {"method": "POST", "url": "Observation"}}


def lab_bundle(mrn, number, report_id, bad_value=False):
    p, r = "urn:uuid:" + str(uuid.uuid4()), "urn:uuid:" + str(uuid.uuid4())
    o = ["urn:uuid:" + str(uuid.uuid4()) for _ in range(3)]
    subject = {"reference": p}
    glucose = {"valueQuantity": {"value": "abc" if bad_value else 7.9, "unit": "mmol/L",
                                 "system": "http://unitsofmeasure.org", "code": "mmol/L"},
               "referenceRange": [{"low": {"value": 3.9}, "high": {"value": 6.1}}],
               "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "H"}]}]}
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": p, "request": {"method": "POST", "url": "Patient"}, "resource": {
            "resourceType": "Patient", "gender": "male", "birthDate": "1980-01-01",
            "name": [{"family": "王", "given": ["建国"]}],
            "identifier": [
                {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
                 "system": "urn:oid:2.16.156.10011.1.9.county", "value": mrn},
                {"system": RESIDENT, "value": number}]}},
        {"fullUrl": r, "request": {"method": "POST", "url": "DiagnosticReport", "ifNoneExist": f"identifier={LIS}|{report_id}"},
         "resource": {
             "resourceType": "DiagnosticReport", "status": "final",
             "identifier": [{"system": LIS, "value": report_id}],
             "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}]}],
             "code": {"coding": [{"system": "http://loinc.org", "code": "24323-8", "display": "生化全项"}]},
             "subject": subject, "effectiveDateTime": "2025-03-01T08:00:00+08:00", "issued": "2025-03-01T10:30:00+08:00",
             "result": [{"reference": u} for u in o]}},
        obs(o[0], "2345-7", glucose, subject, display="葡萄糖"),
        obs(o[1], "6690-2", {"valueQuantity": {"value": 6.5, "unit": "×10^9/L"}}, subject, display="白细胞"),
        obs(o[2], "HBSAG", {"valueString": "阴性(-)"}, subject, system="http://lis.county.example/code"),
    ]}


def test_transaction_stores_report_and_observations_atomically_and_resends_are_idempotent(server):
    h = token(server, "county")
    mrn, number, rid = "FX" + uuid.uuid4().hex[:8], resident_id(), "R" + uuid.uuid4().hex[:8]
    r = post(server, "", lab_bundle(mrn, number, rid), h)
    assert r.status_code == 200, r.text
    resp = Bundle(r.json(), strict=True)
    assert resp.type == "transaction-response"
    statuses = [e.response.status for e in resp.entry]
    assert statuses == ["200 OK", "201 Created", "201 Created", "201 Created", "201 Created"]
    locations = [e.response.location for e in resp.entry]
    assert locations[0].startswith("Patient/") and locations[1].startswith("DiagnosticReport/")

    rep = DiagnosticReport(get(server, "/" + locations[1]).json(), strict=True)
    assert rep.status == "final" and rep.category[0].coding[0].code == "LAB"
    assert [x.reference for x in rep.result] == locations[2:]
    assert rep.subject.reference == locations[0]
    assert rep.effectiveDateTime.isostring.startswith("2025-03-01T08:00:00")
    glucose = Observation(get(server, "/" + locations[2]).json(), strict=True)
    assert glucose.valueQuantity.value == 7.9 and glucose.valueQuantity.code == "mmol/L"
    assert glucose.interpretation[0].coding[0].code == "H"
    assert (glucose.referenceRange[0].low.value, glucose.referenceRange[0].high.value) == (3.9, 6.1)
    wbc = Observation(get(server, "/" + locations[3]).json(), strict=True)
    # The unit as the lab wrote it, and its UCUM code.
    assert (wbc.valueQuantity.unit, wbc.valueQuantity.system, wbc.valueQuantity.code) == \
        ("×10^9/L", "http://unitsofmeasure.org", "10*9/L")
    hbsag = Observation(get(server, "/" + locations[4]).json(), strict=True)
    assert hbsag.valueString == "阴性(-)" and hbsag.code.coding[0].system == "http://lis.county.example/code"
    assert server.query("SELECT unit, unit_ucum, value_num FROM lab_result WHERE id = ?", int(locations[3].split("/")[1])) \
        == [("×10^9/L", "10*9/L", 6.5)]
    # The identity number is sealed like any other: findable by blind index, never in the clear.
    found = Bundle(get(server, "/Patient", identifier=f"{RESIDENT}|{number}").json(), strict=True)
    assert [e.resource.id for e in found.entry] == [locations[0].split("/")[1]]

    # A resend (the LIS retried after a timeout) stores nothing and answers with the same ids.
    count = server.query("SELECT COUNT(*) FROM lab_result")[0][0]
    again = Bundle(post(server, "", lab_bundle(mrn, number, rid), h).json(), strict=True)
    assert [e.response.status for e in again.entry][1:] == ["200 OK"] * 4
    assert [e.response.location for e in again.entry] == locations
    assert server.query("SELECT COUNT(*) FROM lab_result")[0][0] == count


def test_a_bad_entry_leaves_nothing(server):
    h = token(server, "county")
    mrn, rid = "FY" + uuid.uuid4().hex[:8], "R" + uuid.uuid4().hex[:8]
    r = post(server, "", lab_bundle(mrn, resident_id(), rid, bad_value=True), h)
    assert r.status_code == 400
    oo = OperationOutcome(r.json(), strict=True)
    assert oo.issue[0].code == "invalid" and "valueQuantity.value" in oo.issue[0].diagnostics
    assert server.query("SELECT COUNT(*) FROM report WHERE identifier_value = ?", rid) == [(0,)]
    assert server.query("SELECT COUNT(*) FROM patient WHERE patient_id = ?", mrn) == [(0,)]
    # An identity number that fails its check character is refused the same way (422: the
    # resource is well formed, its content is not acceptable).
    bad = lab_bundle(mrn, resident_id()[:-1] + "0", rid)
    bad["entry"][0]["resource"]["identifier"][1]["value"] = "110105194912310020"
    r = post(server, "", bad, h)
    assert r.status_code == 422 and OperationOutcome(r.json(), strict=True).issue[0].code == "processing"
    assert server.query("SELECT COUNT(*) FROM patient WHERE patient_id = ?", mrn) == [(0,)]


def test_single_observation_create_is_conditional(server):
    h = token(server, "county")
    mrn = "FZ" + uuid.uuid4().hex[:8]
    body = obs("x", "2160-0", {"valueQuantity": {"value": 88, "unit": "μmol/L"}},
               {"identifier": {"system": "urn:oid:2.16.156.10011.1.9.county", "value": mrn}},
               identifier=[{"system": "http://lis.county.example/obs", "value": mrn + "-1"}])["resource"]
    cond = {**h, "If-None-Exist": f"identifier=http://lis.county.example/obs|{mrn}-1"}
    first = post(server, "/Observation", body, cond)
    assert first.status_code == 201, first.text
    o = Observation(first.json(), strict=True)
    assert first.headers["location"].endswith(f"/fhir/Observation/{o.id}")
    assert o.valueQuantity.code == "umol/L"
    second = post(server, "/Observation", body, cond)
    assert second.status_code == 200 and Observation(second.json(), strict=True).id == o.id
    # Without the condition a resend is a new result (that is what conditional create is for).
    assert post(server, "/Observation", body, h).status_code == 201
    # Only institution systems create results; an operator token is refused in FHIR's terms.
    from conftest import ADMIN
    r = post(server, "/Observation", body, {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/fhir+json"})
    assert r.status_code == 403 and OperationOutcome(r.json(), strict=True).issue[0].code == "forbidden"
    r = requests.post(f"{server.url}/fhir/Observation", data=b"{not json", headers=h)
    assert r.status_code == 400 and OperationOutcome(r.json(), strict=True).issue[0].code == "structure"
    r = post(server, "/Observation", {**body, "status": "done"}, h)
    assert r.status_code == 400 and "status" in OperationOutcome(r.json(), strict=True).issue[0].diagnostics
    r = post(server, "/Observation", {**body, "subject": {"reference": "Patient/nobody"}}, h)
    assert r.status_code == 422


def test_observation_search_filters_and_pages(server):
    h = token(server, "county")
    mrn = "FP" + uuid.uuid4().hex[:8]
    subject = {"identifier": {"system": "urn:oid:2.16.156.10011.1.9.county", "value": mrn}}
    made = []
    for day in range(1, 8):
        code = "2345-7" if day % 2 else "2093-3"
        status = "preliminary" if day == 7 else "final"
        body = obs("x", code, {"valueQuantity": {"value": day, "unit": "mmol/L"}}, subject,
                   when=f"2025-04-0{day}T09:00:00+08:00", status=status)["resource"]
        r = post(server, "/Observation", body, h)
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
    person = Observation(get(server, f"/Observation/{made[0]}").json(), strict=True).subject.reference

    def ids(**params):
        b = Bundle(get(server, "/Observation", **params).json(), strict=True)
        return [e.resource.id for e in b.entry or []]

    # Paging: three at a time by the next link, newest first, nothing twice, nothing lost.
    seen, url = [], f"{server.url}/fhir/Observation?patient={person}&_count=3"
    while url:
        b = Bundle(requests.get(url, headers=H).json(), strict=True)
        assert all(isinstance(e.resource, Observation) for e in b.entry or [])
        seen += [e.resource.id for e in b.entry or []]
        url = next((link.url for link in b.link if link.relation == "next"), None)
    assert seen == made[::-1]
    assert ids(patient=person, code="http://loinc.org|2093-3") == [made[5], made[3], made[1]]
    assert ids(subject=person, code="2345-7,2093-3", _count=50) == made[::-1]
    # Dates without an offset are days in the region's zone.
    assert ids(patient=person, date=["ge2025-04-02", "lt2025-04-04"]) == [made[2], made[1]]
    assert ids(patient=person, date="2025-04-05") == [made[4]]
    assert ids(patient=person, status="preliminary") == [made[6]]
    assert ids(patient=person, category="laboratory", _count=2) == [made[6], made[5]]
    assert ids(patient=person, category="vital-signs") == []
    assert ids(**{"subject.identifier": f"urn:oid:2.16.156.10011.1.9.county|{mrn}", "date": "le2025-04-01"}) == [made[0]]
    r = get(server, "/Observation", patient=person, date="ap2025-04-01")
    assert r.status_code == 400 and OperationOutcome(r.json(), strict=True).issue[0].code == "invalid"
    r = get(server, "/Observation", patient=person, _sort="date")
    assert r.status_code == 400 and OperationOutcome(r.json(), strict=True).issue[0].code == "not-supported"


def test_hl7_results_are_fhir_resources(fresh_server):
    from conftest import free_port
    from test_hl7 import oru, send
    mllp = free_port()
    s = fresh_server({"HUREN__MLLP__LISTEN": f"127.0.0.1:{mllp}"})
    cli(s.data_dir, "hl7-sender", "add", "--institution", "county", "--host", "127.0.0.1", "--facility", "LIS01")
    control = "F" + uuid.uuid4().hex[:8]
    msg = oru(control).replace("OBR|1|P123|F456|24331-1^Lipid panel^LN|||20250301080000",
                               "OBR|1|P123|F456|24331-1^Lipid panel^LN|||20250301080000||||||||BLD^全血")
    send(mllp, msg.encode())
    # The county's own system reads the results its lab performed (and those it sends for).
    RH = {"Accept": "application/fhir+json",
          "Authorization": "Bearer " + cli(s.data_dir, "token", "create", "--institution", "county")}
    r = requests.get(f"{s.url}/fhir/DiagnosticReport", headers=RH,
                     params={"subject.identifier": "urn:oid:2.16.156.10011.1.9.county|C100", "category": "LAB"})
    reports = Bundle(r.json(), strict=True).entry
    assert len(reports) == 1
    rep = reports[0].resource
    assert rep.code.coding[0].system == "http://loinc.org" and rep.code.coding[0].code == "24331-1"
    assert {i.value for i in rep.identifier} == {"P123", "F456"}
    assert len(rep.result) == 3
    got = {}
    for ref in rep.result:
        o = Observation(requests.get(f"{s.url}/fhir/{ref.reference}", headers=RH).json(), strict=True)
        got[o.code.coding[0].code] = o
    chol = got["2093-3"]
    assert chol.valueQuantity.value == 5.2 and chol.valueQuantity.code == "mmol/L"
    assert chol.effectiveDateTime.isostring.startswith("2025-03-01T08:30:00")
    assert chol.interpretation[0].coding[0].code == "H" and chol.referenceRange[0].text == "<5.2"
    assert got["HBSAG"].valueString == "阴性(-)"
    assert got["HBSAG"].code.coding[0].system == "urn:huren:local:county:L"
    assert (got["5130-0"].valueRatio.numerator.value, got["5130-0"].valueRatio.denominator.value) == (1, 320)
    assert got["5130-0"].contained[0].type.coding[0].code == "BLD"
    # A local code is searched in its institution's system.
    r = requests.get(f"{s.url}/fhir/Observation", headers=RH,
                     params={"code": "urn:huren:local:county:L|HBSAG"})
    assert [e.resource.code.coding[0].code for e in Bundle(r.json(), strict=True).entry] == ["HBSAG"]
    r = requests.get(f"{s.url}/fhir/Observation", headers=RH, params={"code": "urn:huren:local:town:L|HBSAG"})
    assert Bundle(r.json(), strict=True).entry is None


def test_pixm_cross_references_and_its_outcomes(server):
    number = resident_id("19700505", male=False)
    county_mrn, city_mrn = "PXC" + uuid.uuid4().hex[:6], "PXY" + uuid.uuid4().hex[:6]
    for inst, mrn, system in [("county", county_mrn, "urn:oid:2.16.156.10011.1.9.county"),
                              ("city", city_mrn, "urn:oid:1.2.156.1")]:
        b = lab_bundle(mrn, number, "R" + uuid.uuid4().hex[:8])
        b["entry"][0]["resource"].update(gender="female", birthDate="1970-05-05")
        b["entry"][0]["resource"]["identifier"][0]["system"] = system
        assert post(server, "", b, token(server, inst)).status_code == 200

    def pix(**params):
        return requests.get(f"{server.url}/fhir/Patient/$ihe-pix", params=params, headers=H)

    r = pix(sourceIdentifier=f"urn:oid:2.16.156.10011.1.9.county|{county_mrn}")
    assert r.status_code == 200, r.text
    p = Parameters(r.json(), strict=True)
    targets = [(x.valueIdentifier.system, x.valueIdentifier.value) for x in p.parameter if x.name == "targetIdentifier"]
    assert targets == [("urn:oid:1.2.156.1", city_mrn)]
    assert [x.valueReference.reference for x in p.parameter if x.name == "targetId"][0].startswith("Patient/")
    # By identity number, restricted to the county's domain.
    r = pix(sourceIdentifier=f"{RESIDENT}|{number}", targetSystem="urn:oid:2.16.156.10011.1.9.county")
    p = Parameters(r.json(), strict=True)
    assert [x.valueIdentifier.value for x in p.parameter if x.name == "targetIdentifier"] == [county_mrn]
    # ITI-83's failure cases.
    r = pix(sourceIdentifier="urn:oid:2.16.156.10011.1.9.county|NOSUCH")
    assert r.status_code == 404 and OperationOutcome(r.json(), strict=True).issue[0].code == "not-found"
    r = pix(sourceIdentifier="urn:oid:9.9.9|X1")
    oo = OperationOutcome(r.json(), strict=True)
    assert r.status_code == 400 and oo.issue[0].code == "code-invalid"
    assert oo.issue[0].diagnostics == "sourceIdentifier Assigning Authority not found"
    r = pix(sourceIdentifier=f"urn:oid:2.16.156.10011.1.9.county|{county_mrn}", targetSystem="urn:oid:9.9.9")
    oo = OperationOutcome(r.json(), strict=True)
    assert r.status_code == 403 and oo.issue[0].code == "code-invalid" and oo.issue[0].diagnostics == "targetSystem not found"
