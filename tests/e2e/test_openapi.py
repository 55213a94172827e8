"""The committed OpenAPI description of the patient API (docs/openapi/patients.json) matches the
server: every /api/patients route in the code is described, and real responses for each
described status validate against its schema."""
import json
import re
import uuid

import jsonschema
import requests

from conftest import ROOT, region_reader

SPEC = json.loads((ROOT / "docs" / "openapi" / "patients.json").read_text())


def schema_for(path, method, status, content_type):
    resp = SPEC["paths"][path][method]["responses"][str(status)]
    schema = resp["content"][content_type]["schema"]
    # Local references (#/components/schemas/…) resolve against a root that carries them.
    return {"components": SPEC["components"], **schema}


def check(r, path, method="get"):
    ctype = r.headers["content-type"].split(";")[0]
    jsonschema.validate(r.json(), schema_for(path, method, r.status_code, ctype))


def test_every_patient_route_is_described():
    source = (ROOT / "crates" / "huren-http" / "src" / "lib.rs").read_text()
    routes = set(re.findall(r'\.route\(\s*"(/api/patients[^"]*)"', source))
    described = set(SPEC["paths"])
    assert routes == described, (routes, described)


def test_responses_validate(server):
    from test_persons import MOTHER_ID, person, store, with_resident_id
    h = region_reader(server)
    store(server, with_resident_id(person("OA" + uuid.uuid4().hex[:6]), MOTHER_ID))
    base = server.url
    r = requests.get(f"{base}/api/patients", params={"identifier": f"身份证|{MOTHER_ID}"}, headers=h)
    assert r.status_code == 200 and r.json()
    check(r, "/api/patients")
    pid = r.json()[0]["person"]
    for params in ({"name": "李"}, {"patient_id": "nobody", "issuer": "x"}):
        r = requests.get(f"{base}/api/patients", params=params, headers=h)
        assert r.status_code == 200
        check(r, "/api/patients")
    r = requests.get(f"{base}/api/patients", params={"name": "李", "identifier": "a|b"}, headers=h)
    assert r.status_code == 400
    check(r, "/api/patients")
    r = requests.get(f"{base}/api/patients", params={"name": "李"})
    assert r.status_code == 401
    check(r, "/api/patients")
    r = requests.get(f"{base}/api/patients/{pid}/timeline", headers=h)
    assert r.status_code == 200 and r.json()["studies"]
    check(r, "/api/patients/{person}/timeline")
    r = requests.get(f"{base}/api/patients/no-such-person/timeline", headers=h)
    assert r.status_code == 404
    check(r, "/api/patients/{person}/timeline")
