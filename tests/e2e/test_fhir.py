"""FHIR R4 (issue #5, first part): Patient read and search, CapabilityStatement,
OperationOutcome — every response parsed with the R4 (4.0.1) models of fhirclient, strictly."""
import uuid

import requests
from fhirclient.models.bundle import Bundle
from fhirclient.models.capabilitystatement import CapabilityStatement
from fhirclient.models.operationoutcome import OperationOutcome
from fhirclient.models.patient import Patient

from conftest import ADMIN

H = {"Authorization": f"Bearer {ADMIN}", "Accept": "application/fhir+json"}


def get(server, path, **params):
    r = requests.get(f"{server.url}/fhir{path}", params=params, headers=H)
    assert r.headers["content-type"].startswith("application/fhir+json"), r.headers["content-type"]
    return r


def test_capability_statement(server):
    r = get(server, "/metadata")
    assert r.status_code == 200
    cs = CapabilityStatement(r.json(), strict=True)
    assert cs.fhirVersion == "4.0.1"
    assert [x.type for x in cs.rest[0].resource] == ["Patient"]


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
