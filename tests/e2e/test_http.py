"""STOW-RS (PS3.18 §10.5), authentication, admin API, health and metrics."""
import json

import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.uid import generate_uid

from conftest import ADMIN, cli
from helpers import ct, to_bytes


def token(server, institution):
    return cli(server.data_dir, "token", "create", "--institution", institution)


def multipart(parts, boundary="huren-test-boundary", quoted=True):
    body = b""
    for p in parts:
        body += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + p + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    b = f'"{boundary}"' if quoted else boundary
    return body, f'multipart/related; type="application/dicom"; boundary={b}'


def test_healthz_needs_no_token(server):
    assert requests.get(server.url + "/healthz").text == "ok"


def test_metrics_need_a_token(server):
    assert requests.get(server.url + "/metrics").status_code == 401
    r = requests.get(server.url + "/metrics", headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 200 and "huren_instances" in r.text


def test_stow_with_dicomweb_client(server):
    t = token(server, "city")
    client = DICOMwebClient(url=server.url + "/dicom-web", headers={"Authorization": f"Bearer {t}"})
    study = generate_uid()
    datasets = [ct(study=study, patient_id="STOW1") for _ in range(3)]
    result = client.store_instances(datasets)
    refs = result.ReferencedSOPSequence
    assert len(refs) == 3
    assert refs[0].RetrieveURL.startswith(server.url + "/dicom-web/studies/" + study)
    rows = server.query("SELECT i.code FROM instance x JOIN institution i ON i.id = x.sender_institution_id WHERE x.sop_uid = ?", datasets[0].SOPInstanceUID)
    assert rows == [("city",)]  # the token's institution is recorded as sender
    audit = server.query("SELECT actor, institution, source_address FROM audit_event WHERE object = ?", datasets[0].SOPInstanceUID)
    assert audit[0][0].startswith("token:") and audit[0][1:] == ("city", "127.0.0.1")


def test_stow_study_mismatch_is_409(server):
    t = token(server, "city")
    body, ctype = multipart([to_bytes(ct())], quoted=False)
    r = requests.post(f"{server.url}/dicom-web/studies/{generate_uid()}", data=body,
                      headers={"Content-Type": ctype, "Authorization": f"Bearer {t}"})
    assert r.status_code == 409
    failed = r.json()["00081198"]["Value"]
    assert failed[0]["00081197"]["Value"] == [0xC409]


def test_stow_partial_is_202(server):
    t = token(server, "city")
    good = ct()
    truncated = to_bytes(ct(rows=64, cols=64))[:-500]
    body, ctype = multipart([to_bytes(good), truncated])
    r = requests.post(f"{server.url}/dicom-web/studies", data=body, headers={"Content-Type": ctype, "Authorization": f"Bearer {t}"})
    assert r.status_code == 202
    j = r.json()
    assert len(j["00081199"]["Value"]) == 1 and len(j["00081198"]["Value"]) == 1
    assert j["00081198"]["Value"][0]["00081197"]["Value"] == [0xC000]
    assert r.headers["content-type"] == "application/dicom+json"


def test_stow_wrong_media_type_is_415(server):
    t = token(server, "city")
    r = requests.post(f"{server.url}/dicom-web/studies", data=b"{}",
                      headers={"Content-Type": "application/json", "Authorization": f"Bearer {t}"})
    assert r.status_code == 415 and r.headers["content-type"] == "application/problem+json"
    r = requests.post(f"{server.url}/dicom-web/studies", data=b"x",
                      headers={"Content-Type": 'multipart/related; type="application/dicom+xml"; boundary=x', "Authorization": f"Bearer {t}"})
    assert r.status_code == 415


def test_stow_without_valid_token_is_401(server):
    body, ctype = multipart([to_bytes(ct())])
    assert requests.post(f"{server.url}/dicom-web/studies", data=body, headers={"Content-Type": ctype}).status_code == 401
    r = requests.post(f"{server.url}/dicom-web/studies", data=body, headers={"Content-Type": ctype, "Authorization": "Bearer nope"})
    assert r.status_code == 401 and "Bearer" in r.headers["www-authenticate"]


def test_stow_admin_token_cannot_ingest(server):
    body, ctype = multipart([to_bytes(ct())])
    r = requests.post(f"{server.url}/dicom-web/studies", data=body, headers={"Content-Type": ctype, "Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 403


def test_retrieve_url_uses_public_url(fresh_server):
    s = fresh_server({"HUREN__HTTP__PUBLIC_URL": "https://pacs.example.org/"})
    t = token(s, "city")
    ds = ct()
    body, ctype = multipart([to_bytes(ds)])
    r = requests.post(f"{s.url}/dicom-web/studies", data=body, headers={"Content-Type": ctype, "Authorization": f"Bearer {t}"})
    assert r.status_code == 200
    url = r.json()["00081199"]["Value"][0]["00081190"]["Value"][0]
    assert url == (f"https://pacs.example.org/dicom-web/studies/{ds.StudyInstanceUID}"
                   f"/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}")


def test_stow_too_large_is_413(fresh_server):
    s = fresh_server({"HUREN__HTTP__MAX_STOW_MIB": "1"})
    t = token(s, "city")
    body, ctype = multipart([to_bytes(ct(rows=800, cols=800))])
    r = requests.post(f"{s.url}/dicom-web/studies", data=body, headers={"Content-Type": ctype, "Authorization": f"Bearer {t}"})
    assert r.status_code == 413
    assert s.query("SELECT COUNT(*) FROM instance") == [(0,)]


def test_institutions_effective_dated_via_api(server):
    h = {"Authorization": f"Bearer {ADMIN}"}
    r = requests.post(server.url + "/api/admin/institutions", headers=h, json={
        "code": "dated", "name": "旧名医院", "level": "二级", "valid_from": "2020-01-01", "identifier_system": "urn:oid:1.2.3"})
    assert r.status_code == 201
    r = requests.post(server.url + "/api/admin/institutions/dated/attributes", headers=h,
                      json={"attribute": "level", "value": "三级", "valid_from": "2024-07-01"})
    assert r.status_code == 200
    requests.post(server.url + "/api/admin/institutions/dated/attributes", headers=h,
                  json={"attribute": "name", "value": "新名医院", "valid_from": "2025-01-01"})
    requests.post(server.url + "/api/admin/institutions/dated/memberships", headers=h, json={
        "consortium_code": "ylt1", "consortium_name": "某医联体", "consortium_kind": "医联体", "valid_from": "2023-01-01", "valid_to": "2024-12-31"})
    before = requests.get(server.url + "/api/admin/institutions/dated?date=2024-06-30", headers=h).json()
    after = requests.get(server.url + "/api/admin/institutions/dated?date=2025-03-01", headers=h).json()
    assert before["level"] == "secondary" and before["name"] == "旧名医院" and before["consortia"] == ["ylt1"]
    assert after["level"] == "tertiary" and after["name"] == "新名医院" and after["consortia"] == []
    # The CLI reads the same history.
    shown = json.loads(cli(server.data_dir, "institution", "show", "--code", "dated", "--date", "2024-07-01"))
    assert shown["level"] == "tertiary"


def test_admin_api_errors(server):
    h = {"Authorization": f"Bearer {ADMIN}"}
    r = requests.post(server.url + "/api/admin/institutions", headers=h, json={"code": "BAD CODE", "name": "x", "level": "二级"})
    assert r.status_code == 400 and r.json()["title"] == "bad_request"
    r = requests.post(server.url + "/api/admin/institutions", headers=h, json={"code": "city", "name": "x", "level": "二级"})
    assert r.status_code == 409
    t = token(server, "city")
    r = requests.get(server.url + "/api/admin/institutions", headers={"Authorization": f"Bearer {t}"})
    assert r.status_code == 403
    assert requests.get(server.url + "/api/admin/institutions/nope", headers=h).status_code == 404
    # Malformed bodies and queries get problem details too, and the server keeps serving.
    r = requests.post(server.url + "/api/admin/institutions", headers={**h, "Content-Type": "application/json"}, data=b"{not json")
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
    r = requests.post(server.url + "/api/admin/institutions", headers=h, json={"code": "x1", "name": "x", "level": "二级", "surprise": 1})
    assert r.status_code in (400, 422) and r.headers["content-type"] == "application/problem+json"
    r = requests.post(server.url + "/api/admin/institutions", headers=h, data=b"code=x")
    assert r.status_code == 415
    r = requests.get(server.url + "/api/admin/institutions?date=not-a-date", headers=h)
    assert r.status_code == 400
    r = requests.get(server.url + "/no/such/path", headers=h)
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    # A body above the JSON API's limit (2 MiB) is 413, as a problem.
    big = b'{"code": "' + b"x" * (3 << 20) + b'"}'
    r = requests.post(server.url + "/api/admin/institutions", headers={**h, "Content-Type": "application/json"}, data=big)
    assert r.status_code == 413 and r.json()["title"] == "payload_too_large"
    assert requests.get(server.url + "/healthz").text == "ok"


def test_admin_registers_ae_and_server_honours_it(server):
    h = {"Authorization": f"Bearer {ADMIN}"}
    from helpers import dcmtk
    echo = lambda: dcmtk("echoscu", "-aet", "NEWPACS", "-aec", "HUREN", "127.0.0.1", str(server.dimse_port))
    assert "Calling AE Title Not Recognized" in echo().stderr
    r = requests.post(server.url + "/api/admin/aes", headers=h, json={"institution": "city", "ae_title": "NEWPACS", "host": "127.0.0.0/8"})
    assert r.status_code == 201
    assert echo().returncode == 0
    # Destination titles are unique.
    r = requests.post(server.url + "/api/admin/aes", headers=h, json={"institution": "city", "ae_title": "DEST1", "host": "127.0.0.1", "port": 11999})
    assert r.status_code == 201
    r = requests.post(server.url + "/api/admin/aes", headers=h, json={"institution": "county", "ae_title": "DEST1", "host": "127.0.0.5", "port": 11998})
    assert r.status_code == 409


def test_stow_stores_bytes_as_received_and_warns_b006(server):
    """DIMSE peers re-encode what they send; STOW carries our exact bytes, so the
    out-of-order element case (0xB006) and byte-for-byte storage are checked here."""
    import hashlib
    from helpers import dataset_bytes
    t = token(server, "county")
    ds = ct()
    raw = to_bytes(ds) + b"\x08\x00\x60\x00CS\x02\x00MR"  # repeated Modality after Pixel Data
    body, ctype = multipart([raw])
    r = requests.post(f"{server.url}/dicom-web/studies", data=body, headers={"Content-Type": ctype, "Authorization": f"Bearer {t}"})
    assert r.status_code == 202
    assert r.json()["00081199"]["Value"][0]["00081196"]["Value"] == [0xB006]
    key = server.query("SELECT blob_key FROM instance WHERE sop_uid = ?", ds.SOPInstanceUID)[0][0]
    assert hashlib.sha256(server.object_bytes(key)).digest() == hashlib.sha256(raw).digest()


def test_stow_sop_class_mismatch_is_a900(server):
    t = token(server, "county")
    ds = ct(sop_class="1.2.840.10008.5.1.4.1.1.4")
    raw = to_bytes(ds)
    # pydicom keeps meta and data set consistent; corrupt the meta's copy (first occurrence).
    raw = raw.replace(b"1.2.840.10008.5.1.4.1.1.4\x00", b"1.2.840.10008.5.1.4.1.1.2\x00", 1)
    body, ctype = multipart([raw])
    r = requests.post(f"{server.url}/dicom-web/studies", data=body, headers={"Content-Type": ctype, "Authorization": f"Bearer {t}"})
    assert r.status_code == 409
    assert r.json()["00081198"]["Value"][0]["00081197"]["Value"] == [0xA900]


def test_cors_and_corp(fresh_server, server):
    # Defaults: no CORS headers, CORP same-site.
    r = requests.get(server.url + "/healthz", headers={"Origin": "http://viewer.example"})
    assert "access-control-allow-origin" not in r.headers and r.headers["cross-origin-resource-policy"] == "same-site"
    s = fresh_server({"HUREN__HTTP__CORS_ALLOW_ORIGINS": '["http://viewer.example"]',
                      "HUREN__HTTP__CROSS_ORIGIN_RESOURCE_POLICY": "cross-origin"})
    pre = requests.options(s.url + "/dicom-web/studies", headers={
        "Origin": "http://viewer.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert pre.headers["access-control-allow-origin"] == "http://viewer.example"
    assert "authorization" in pre.headers["access-control-allow-headers"].lower()
    t = token(s, "city")
    r = requests.get(s.url + "/dicom-web/studies", headers={"Origin": "http://viewer.example", "Authorization": f"Bearer {t}"})
    assert r.headers["access-control-allow-origin"] == "http://viewer.example"
    assert r.headers["cross-origin-resource-policy"] == "cross-origin"
    other = requests.get(s.url + "/healthz", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers
