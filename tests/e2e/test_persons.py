"""Persons across institutions (issue #5): every patient record belongs to a person from its
creation; a resident identity number in OtherPatientIDsSequence links records deterministically
only when it agrees with each record's birth date and sex; identity numbers are kept sealed."""
import uuid
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pynetdicom.sop_class import CTImageStorage

from conftest import MPI_INDEX_KEY
from helpers import associate, ct

MOTHER_ID = "11010519491231002X"          # GB 11643's example number: 1949-12-31, female
MOTHER_ID_15 = "110105491231002"          # the same number in its pre-1999 form
OTHER_ID_FEMALE_1949 = "110105194912310046"  # another valid number, same birth date and sex


def with_resident_id(ds, number, issuer="身份证"):
    item = Dataset()
    item.PatientID = number
    item.IssuerOfPatientID = issuer
    item.TypeOfPatientID = "TEXT"
    ds.OtherPatientIDsSequence = [item]
    return ds


def store(server, ds, calling="COUNTY", bind="127.0.0.1"):
    assoc = associate(server.dimse_port, calling=calling, bind=bind,
                      contexts=[(CTImageStorage, ["1.2.840.10008.1.2.1"])])
    assert assoc.is_established
    status = assoc.send_c_store(ds).Status
    assoc.release()
    assert status == 0, hex(status)


def person_of(server, patient_id):
    rows = server.query("SELECT person_id FROM patient WHERE patient_id = ?", patient_id)
    assert len(rows) == 1, rows
    return rows[0][0]


def person(patient_id, birth="19491231", sex="F", name="Li^Na=李^娜"):
    ds = ct(patient_id=patient_id, name=name)
    ds.PatientBirthDate, ds.PatientSex = birth, sex
    return ds


def test_every_record_gets_a_person(server):
    pid = "NOID" + uuid.uuid4().hex[:6]
    # A name and birth date no other test uses: nothing else links to this record.
    store(server, person(pid, birth="19391109", sex="M", name=rare_name()))
    assert person_of(server, pid) is not None
    events = server.query(
        "SELECT e.rule FROM person_link_event e JOIN patient p ON p.id = e.patient_id WHERE p.patient_id = ? ORDER BY e.id", pid)
    assert events == [("created",)]


def test_same_consistent_number_links_across_institutions(server):
    tag = uuid.uuid4().hex[:6]
    county, town = "C" + tag, "T" + tag
    store(server, with_resident_id(person(county), MOTHER_ID))
    # Another institution's system, the legacy 15-digit form, another issuer spelling.
    store(server, with_resident_id(person(town, name="LI^NA"), MOTHER_ID_15, issuer="RESIDENT_ID"),
          calling="PACS", bind="127.0.0.2")
    assert person_of(server, county) == person_of(server, town)
    rules = server.query(
        "SELECT e.rule FROM person_link_event e JOIN patient p ON p.id = e.patient_id WHERE p.patient_id = ? ORDER BY e.id",
        town)
    assert [r[0] for r in rules][-1] == "same_national_id"


def test_newborn_under_the_mothers_number_goes_to_review(server):
    tag = uuid.uuid4().hex[:6]
    mother, baby = "M" + tag, "B" + tag
    store(server, with_resident_id(person(mother), MOTHER_ID))
    store(server, with_resident_id(person(baby, birth="20260301", sex="M", name="Li^Baobao=李^宝宝"), MOTHER_ID),
          calling="PACS", bind="127.0.0.2")
    assert person_of(server, mother) != person_of(server, baby)
    q = """SELECT r.reason FROM link_review r JOIN patient a ON a.id = r.patient_a JOIN patient b ON b.id = r.patient_b
           WHERE (a.patient_id = ? AND b.patient_id = ?) OR (a.patient_id = ? AND b.patient_id = ?)"""
    assert server.query(q, mother, baby, baby, mother) == [("national_id_inconsistent",)]


def test_different_valid_numbers_never_link(server):
    tag = uuid.uuid4().hex[:6]
    a, b = "X" + tag, "Y" + tag
    store(server, with_resident_id(person(a), MOTHER_ID))
    store(server, with_resident_id(person(b), OTHER_ID_FEMALE_1949), calling="PACS", bind="127.0.0.2")
    assert person_of(server, a) != person_of(server, b)


def test_identity_numbers_are_not_in_the_index_in_the_clear(server):
    tag = uuid.uuid4().hex[:6]
    pid = "S" + tag
    ds = with_resident_id(person(pid), MOTHER_ID)
    store(server, ds)
    rows = server.query(
        """SELECT pi.system, pi.value, pi.blind, length(pi.sealed), pi.consistent FROM patient_identifier pi
           JOIN patient p ON p.id = pi.patient_id WHERE p.patient_id = ?""", pid)
    assert len(rows) == 1
    system, value, blind, sealed_len, consistent = rows[0]
    assert system == "urn:huren:id:cn-resident" and value is None and consistent == 1
    assert sealed_len == 12 + len(MOTHER_ID) + 16
    # The blind index is HMAC-SM3 under the configured key (checked with OpenSSL's SM3).
    import hashlib
    import hmac
    expected = hmac.new(bytes.fromhex(MPI_INDEX_KEY), b"urn:huren:id:cn-resident\x00" + MOTHER_ID.encode(), "sm3").hexdigest()
    assert blind == expected
    # Nowhere in the index files (attributes, DICOM JSON, patient other_ids, WAL).
    for f in Path(server.data_dir).glob("index.sqlite*"):
        assert MOTHER_ID.encode() not in f.read_bytes(), f.name
    # Metadata served from the index has no such item either; the stored object is unchanged.
    import requests
    from conftest import region_reader
    h = region_reader(server)
    meta = requests.get(f"{server.url}/dicom-web/studies/{ds.StudyInstanceUID}/metadata", headers=h).json()
    assert MOTHER_ID not in str(meta)
    inst = requests.get(f"{server.url}/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}",
                        headers={**h, "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'})
    assert inst.status_code == 200 and MOTHER_ID.encode() in inst.content


def qido_studies(server, **params):
    import requests
    from conftest import region_reader
    r = requests.get(f"{server.url}/dicom-web/studies", params=params, headers=region_reader(server))
    assert r.status_code in (200, 204), r.text
    return r.json() if r.status_code == 200 and r.content else []


def test_qido_by_identity_number_finds_the_person_everywhere(server):
    # A person, not a hospital's number: the resident ID finds the studies of every linked
    # record, each answered with its own PatientID and issuer; a borrowed number does not.
    number_first17 = "50010119800101003"
    w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    number = number_first17 + "10X98765432"[sum(int(d) * x for d, x in zip(number_first17, w)) % 11]
    tag = uuid.uuid4().hex[:6]
    a = with_resident_id(person("QA" + tag, birth="19800101", sex="M", name="Zhang^Wei=张^伟"), number)
    b = with_resident_id(person("QB" + tag, birth="19800101", sex="M", name="ZHANG^WEI"), number, issuer="RESIDENT_ID")
    baby = with_resident_id(person("QC" + tag, birth="20260101", sex="F", name="Zhang^Xiao=张^小"), number)
    store(server, a)
    store(server, b, calling="PACS", bind="127.0.0.2")
    store(server, baby, calling="PACS", bind="127.0.0.2")
    for issuer in ("urn:huren:id:cn-resident", "身份证"):
        found = qido_studies(server, PatientID=number, IssuerOfPatientID=issuer)
        uids = {s["0020000D"]["Value"][0] for s in found}
        assert uids == {a.StudyInstanceUID, b.StudyInstanceUID}, issuer
        ids = {s["00100020"]["Value"][0] for s in found}
        assert ids == {"QA" + tag, "QB" + tag}
    # A mistyped number (wrong check character) belongs to nobody.
    bad = number[:-1] + ("0" if number[-1] != "0" else "1")
    assert qido_studies(server, PatientID=bad, IssuerOfPatientID="urn:huren:id:cn-resident") == []
    # Without an identity-number issuer, PatientID keeps its DICOM meaning.
    assert qido_studies(server, PatientID=number) == []
    # C-FIND (Study Root) answers the same question the same way.
    from test_cfind import find, q
    statuses, results = find(server, q("STUDY", PatientID=number, IssuerOfPatientID="身份证", StudyInstanceUID=""))
    assert statuses[-1] == 0x0000
    assert {r.StudyInstanceUID for r in results} == {a.StudyInstanceUID, b.StudyInstanceUID}


_stewards = {}


def steward(server, method, path, **kw):
    """A data steward of the county (the review queue and merges are stewards' work: operators'
    tokens read no patient data). The county holds one record of each pair these tests make."""
    import os
    import subprocess
    import requests
    from conftest import BIN
    key = str(server.data_dir)
    if key not in _stewards:
        name = "stew" + uuid.uuid4().hex[:6]
        password = "steward-password-2025"
        out = subprocess.run([BIN, "user", "add", "--data-dir", key, "--username", name, "--name", "赵丽",
                              "--role", "data_steward", "--institution", "county"],
                             input=password + "\n", capture_output=True, text=True, timeout=60, env=os.environ)
        assert out.returncode == 0, out.stderr
        r = requests.post(f"{server.url}/api/session", json={"username": name, "password": password})
        assert r.status_code == 201, r.text
        _stewards[key] = ({"huren_session": r.cookies["huren_session"]}, {"X-CSRF-Token": r.json()["csrf_token"]})
    jar, csrf = _stewards[key]
    return requests.request(method, f"{server.url}/api/admin{path}", cookies=jar, headers=csrf, **kw)


def public_person(server, patient_id):
    return server.query("SELECT pe.public_id FROM patient p JOIN person pe ON pe.id = p.person_id WHERE p.patient_id = ?",
                        patient_id)[0][0]


def test_review_queue_decisions(server):
    tag = uuid.uuid4().hex[:6]
    mother, baby = "RM" + tag, "RB" + tag
    store(server, with_resident_id(person(mother), MOTHER_ID))
    store(server, with_resident_id(person(baby, birth="20260301", sex="M", name="Li^Bao=李^宝"), MOTHER_ID),
          calling="PACS", bind="127.0.0.2")
    open_reviews = steward(server, "GET", "/link-reviews").json()
    mine = [r for r in open_reviews if {r["a"]["patient_id"], r["b"]["patient_id"]} == {mother, baby}]
    assert len(mine) == 1 and mine[0]["reason"] == "national_id_inconsistent"
    rid = mine[0]["id"]
    assert steward(server, "POST", f"/link-reviews/{rid}", json={"decision": "reject", "reason": ""}).status_code == 400
    r = steward(server, "POST", f"/link-reviews/{rid}", json={"decision": "reject", "reason": "新生儿使用母亲身份证号"})
    assert r.status_code == 200 and r.json()["state"] == "rejected"
    assert steward(server, "POST", f"/link-reviews/{rid}", json={"decision": "link", "reason": "again"}).status_code == 409
    assert person_of(server, mother) != person_of(server, baby)


def test_steward_merge_and_unmerge_keep_history(server):
    tag = uuid.uuid4().hex[:6]
    a, b = "MA" + tag, "MB" + tag
    # Birth dates with two digits swapped: near, not equal — review, not an automatic link.
    store(server, person(a, name="Zhao^Min=赵^敏", birth="19491231"))
    store(server, person(b, name="ZHAO^MIN", birth="19491213"), calling="PACS", bind="127.0.0.2")
    pa, pb = public_person(server, a), public_person(server, b)
    assert pa != pb
    r = steward(server, "POST", "/persons/merge", json={"survivor": pa, "merged": pb, "reason": "同一人,电话核实"})
    assert r.status_code == 200 and r.json()["records_moved"] == 1
    assert person_of(server, a) == person_of(server, b)
    view = steward(server, "GET", f"/persons/{pa}").json()
    assert {rec["patient_id"] for rec in view["records"]} == {a, b}
    assert [e["rule"] for e in view["history"] if e["patient_key"] == view["records"][1]["patient_key"]][-1] == "steward_merge"
    assert steward(server, "GET", f"/persons/{pb}").json()["merged_into"] == pa
    r = steward(server, "POST", "/persons/unmerge", json={"person": pb, "reason": "核实有误"})
    assert r.status_code == 200 and r.json()["records_moved"] == 1
    assert person_of(server, a) != person_of(server, b)
    assert public_person(server, b) == pb
    assert steward(server, "POST", "/persons/unmerge", json={"person": pb, "reason": "twice"}).status_code == 400
    audit = server.query("SELECT COUNT(*) FROM audit_event WHERE action = 'person_links_changed' AND object = ?", f"person:{pb}")
    assert audit == [(2,)]


def test_merging_two_different_numbers_is_refused(server):
    tag = uuid.uuid4().hex[:6]
    a, b = "NA" + tag, "NB" + tag
    store(server, with_resident_id(person(a), MOTHER_ID))
    store(server, with_resident_id(person(b), OTHER_ID_FEMALE_1949), calling="PACS", bind="127.0.0.2")
    r = steward(server, "POST", "/persons/merge",
              json={"survivor": public_person(server, a), "merged": public_person(server, b), "reason": "looks alike"})
    assert r.status_code == 409, r.text
    assert person_of(server, a) != person_of(server, b)


def rare_name():
    import random
    chars = "翀骞琛瑾璇昊晟钰祎骁珩翊煊昶暄珂琰玥濛"
    given = "".join(random.sample(chars, 3))
    return f"=司马^{given}"


def test_rare_name_same_birth_date_links_by_score(server):
    tag = uuid.uuid4().hex[:6]
    a, b, c = "SA" + tag, "SB" + tag, "SC" + tag
    name = rare_name()
    store(server, person(a, birth="19750203", sex="M", name=name))
    store(server, person(b, birth="19750203", sex="M", name=name), calling="PACS", bind="127.0.0.2")
    store(server, person(c, birth="19850203", sex="M", name=name), calling="PACS", bind="127.0.0.2")
    assert person_of(server, a) == person_of(server, b)
    assert person_of(server, c) != person_of(server, a)
    rule = server.query("""SELECT e.rule, e.score FROM person_link_event e JOIN patient p ON p.id = e.patient_id
                           WHERE p.patient_id IN (?, ?) AND e.rule != 'created'""", a, b)
    assert len(rule) == 1 and rule[0][0] == "score" and rule[0][1] >= 12


def test_common_name_same_birth_date_goes_to_review(server):
    tag = uuid.uuid4().hex[:6]
    # Make the name common in the index first (more than ten records sound like it).
    for k in range(11):
        store(server, person(f"CW{k}{tag}", birth=f"19{60 + k}0101", sex="M", name="Wang^Wei=王^伟"))
    a, b = "CA" + tag, "CB" + tag
    store(server, person(a, birth="19900606", sex="M", name="Wang^Wei=王^伟"))
    store(server, person(b, birth="19900606", sex="M", name="WANG^WEI"), calling="PACS", bind="127.0.0.2")
    assert person_of(server, a) != person_of(server, b)
    q = """SELECT r.reason FROM link_review r JOIN patient x ON x.id = r.patient_a JOIN patient y ON y.id = r.patient_b
           WHERE (x.patient_id = ? AND y.patient_id = ?) OR (x.patient_id = ? AND y.patient_id = ?)"""
    assert server.query(q, a, b, b, a) == [("possible_match",)]


def api(server, path, **params):
    import requests
    from conftest import region_reader
    return requests.get(f"{server.url}/api{path}", params=params, headers=region_reader(server))


def test_patient_api_finds_the_person_and_their_timeline(server):
    first17 = "50010219700315005"
    w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    number = first17 + "10X98765432"[sum(int(d) * x for d, x in zip(first17, w)) % 11]
    tag = uuid.uuid4().hex[:6]
    name = rare_name()
    older = with_resident_id(person("PA" + tag, birth="19700315", sex="M", name=name), number)
    older.StudyDate = "20240110"
    newer = with_resident_id(person("PB" + tag, birth="19700315", sex="M", name=name), number)
    newer.StudyDate = "20250920"
    store(server, older)
    store(server, newer, calling="PACS", bind="127.0.0.2")
    for system in ("urn:huren:id:cn-resident", "身份证"):
        hits = api(server, "/patients", identifier=f"{system}|{number}").json()
        assert len(hits) == 1 and {r["patient_id"] for r in hits[0]["records"]} == {"PA" + tag, "PB" + tag}
    pid = hits[0]["person"]
    issuer = server.query("SELECT issuer FROM patient WHERE patient_id = ?", "PA" + tag)[0][0]
    assert api(server, "/patients", patient_id="PA" + tag, issuer=issuer).json()[0]["person"] == pid
    by_name = api(server, "/patients", name=name.split("^")[0].lstrip("=") + name.split("^")[1][:1]).json()
    assert pid in {h["person"] for h in by_name}
    tl = api(server, f"/patients/{pid}/timeline").json()
    assert [s["study_instance_uid"] for s in tl["studies"]] == [newer.StudyInstanceUID, older.StudyInstanceUID]
    assert {s["performing_institution"] for s in tl["studies"]} == {"county", "town"}
    assert api(server, "/patients/no-such-person/timeline").status_code == 404
    wrong = number[:-1] + ("1" if number[-1] != "1" else "2")
    r = api(server, "/patients", identifier=f"urn:huren:id:cn-resident|{wrong}")
    assert r.status_code == 400 and "check character" in r.text
    assert api(server, "/patients", name="x", patient_id="y").status_code == 400
    import requests
    assert requests.get(f"{server.url}/api/patients", params={"name": "王"}).status_code == 401


def test_identity_number_in_a_configured_private_tag(fresh_server):
    s = fresh_server({"HUREN__MPI__DICOM_RESIDENT_ID_TAG": "0011,1010"})
    ds = person("PT1")
    ds.add_new(0x00110010, "LO", "HOSPITAL HIS")
    ds.add_new(0x00111010, "LO", MOTHER_ID)
    store(s, ds)
    rows = s.query("""SELECT pi.system, pi.consistent FROM patient_identifier pi JOIN patient p ON p.id = pi.patient_id
                      WHERE p.patient_id = 'PT1'""")
    assert rows == [("urn:huren:id:cn-resident", 1)]
    import requests
    from conftest import region_reader
    meta = requests.get(f"{s.url}/dicom-web/studies/{ds.StudyInstanceUID}/metadata",
                        headers=region_reader(s)).json()
    assert MOTHER_ID not in str(meta) and "00111010" not in meta[0]
    assert "00110010" in meta[0]  # the private creator stays
