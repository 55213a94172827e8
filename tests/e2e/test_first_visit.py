"""The first visit (issue #16): a patient walks into the city hospital for the first time, with
an identity card and a CT done at the county hospital. Walked with real peers: the county's PACS
sends the CT with DCMTK storescu, its RIS the report over HL7 v2 (MLLP, ACK parsed by hl7apy);
the city's HIS registers the patient by FHIR (fhirclient builds the Patient and reads the
answer), opens the encounter, asks for the reminder — which shows the county CT as
recognizable — and records the doctor's decision."""
import datetime
import uuid

import pytest
import requests
from pydicom.uid import generate_uid

from conftest import cli, free_port, load_recognition_config, region_today
from helpers import dcmtk
from test_fhir import resident_id
from test_hl7 import ack_fields, send
from test_persons import with_resident_id
from test_quality import phantom_slice, wait_for
from test_sessions import add_user

TODAY = region_today()


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    from conftest import Server, setup_region
    d = tmp_path_factory.mktemp("first-visit")
    setup_region(d)
    load_recognition_config(d)
    mllp = free_port()
    s = Server(d, {"HUREN__ARCHIVE__STABLE_AFTER_SECS": "1", "HUREN__QUALITY__WORKERS": "2",
                   "HUREN__MLLP__LISTEN": f"127.0.0.1:{mllp}"}).start()
    s.mllp_port = mllp
    cli(d, "hl7-sender", "add", "--institution", "county", "--host", "127.0.0.1", "--facility", "RIS01")
    assert add_user(s, "zhou", "doctor", institution="city").returncode == 0
    yield s
    s.stop()


def ct_report(control, pid3, study_uid, patient="张^伟||19800101|M", findings="双肺纹理清晰。",
              impression="未见明显异常。"):
    """The county RIS's report of the CT, by default for 张伟 (1980-01-01, male)."""
    day = TODAY.strftime("%Y%m%d")
    return ("\r".join([
        f"MSH|^~\\&|RIS|RIS01|HUREN|REGION|{day}090000||ORU^R01^ORU_R01|{control}|P|2.5.1|||||CHN|UNICODE UTF-8",
        f"PID|1||{pid3}||{patient}",
        f"OBR|1|P9||CT-CHEST^胸部CT平扫^L|||{day}080000|||||||||||||{day}085900",
        f"OBX|1|FT|GDT^影像所见^L||{findings}\\.br\\纵隔居中。||||||F",
        f"OBX|2|TX|IMP^诊断意见^L||{impression}||||||F",
        f"OBX|3|ST|113014^Study Instance UID^DCM||{study_uid}||||||F",
    ]) + "\r").encode()


def county_ct(tmp_path, pid, number):
    """Six clean CT phantom slices of one study, as the county's PACS holds them on disk."""
    study, series = generate_uid(), generate_uid()
    paths = []
    for n in range(1, 7):
        ds = with_resident_id(phantom_slice(study, series, n, 8.0, n, pid), number)
        ds.PatientName = "Zhang^Wei=张^伟"
        ds.PatientBirthDate, ds.PatientSex = "19800101", "M"
        p = tmp_path / f"ct{n}.dcm"
        ds.save_as(p, enforce_file_format=True)
        paths.append(str(p))
    return study, paths


def test_a_first_visit_with_an_outside_ct(region, tmp_path):
    from fhirclient.models.patient import Patient
    s = region
    tag = uuid.uuid4().hex[:6].upper()
    number = resident_id("19800101", male=True)

    # The county: the CT over DIMSE (DCMTK), then the report over HL7 v2.
    study, files = county_ct(tmp_path, "CT" + tag, number)
    out = dcmtk("storescu", "-aet", "COUNTY", "-aec", "HUREN", "127.0.0.1", str(s.dimse_port), *files)
    assert out.returncode == 0, out.stderr
    pid3 = f"CT{tag}^^^urn:huren:institution:county^MR~{number}^^^身份证^NI"
    (ack,) = send(s.mllp_port, ct_report("R" + tag, pid3, study))
    assert ack_fields(ack)[0] == "AA"
    wait_for(s, "SELECT q.aggregated_at FROM qc_study q JOIN study st ON st.id = q.study_id WHERE st.study_uid = ?",
             study, timeout=60)

    his = {"Authorization": "Bearer " + cli(s.data_dir, "token", "create", "--institution", "city")}
    as_doctor = {**his, "X-Huren-On-Behalf-Of": "zhou"}
    record = {"system": "urn:oid:1.2.156.1", "value": "MZ" + tag}

    def remind(**named):
        r = requests.post(f"{s.url}/api/recognition/reminders", json=named, headers=as_doctor)
        assert r.status_code == 200, r.text
        return r.json()

    # Before the HIS registered anyone: its own record number is unknown to huren (register the
    # patient), and the identity number tells nothing about other hospitals without a visit.
    assert remind(patient_id=record["value"])["patient"] == "unknown"
    by_id = remind(identifier=f"urn:huren:id:cn-resident|{number}")
    assert (by_id["patient"], by_id["person"], by_id["results"]) == ("not_in_reach", None, [])

    # The HIS registers its record at the desk, from the identity card (FHIR conditional update).
    patient = Patient({
        "resourceType": "Patient",
        "identifier": [{"system": record["system"], "value": record["value"],
                        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}},
                       {"system": "urn:huren:id:cn-resident", "value": number}],
        "name": [{"family": "张", "given": ["伟"]}], "gender": "male", "birthDate": "1980-01-01"})
    r = requests.put(f"{s.url}/fhir/Patient", params={"identifier": f"{record['system']}|{record['value']}"},
                     json=patient.as_json(), headers={**his, "Content-Type": "application/fhir+json"})
    assert r.status_code == 201, r.text
    registered = Patient(r.json(), strict=True)
    assert registered.identifier[0].value == record["value"] and registered.birthDate.isostring == "1980-01-01"
    assert r.headers["location"].endswith(f"/fhir/Patient/{registered.id}")
    # The record joined the person the county's CT belongs to (same identity number, consistent
    # with birth date and sex), and the number itself is nowhere in the clear.
    persons = s.query("SELECT DISTINCT pe.public_id FROM patient p JOIN person pe ON pe.id = p.person_id "
                      "WHERE p.patient_id IN (?, ?)", "CT" + tag, record["value"])
    assert persons == [(registered.id,)]
    assert not s.query("SELECT 1 FROM patient_identifier WHERE value = ?", number)
    assert s.query("SELECT COUNT(*) FROM audit_event WHERE action = 'patient_registered' AND actor LIKE 'token:%@city'") \
        == [(1,)]
    # Registering again updates, and says so.
    r = requests.put(f"{s.url}/fhir/Patient", params={"identifier": f"{record['system']}|{record['value']}"},
                     json=patient.as_json(), headers={**his, "Content-Type": "application/fhir+json"})
    assert r.status_code == 200 and r.json()["id"] == registered.id

    # Registered, but no visit yet: known, not in reach.
    assert remind(patient_id=record["value"])["patient"] == "not_in_reach"
    # The visit opens; the reminder shows the county CT as recognizable, and its report.
    visit = {"visit_number": "V" + tag, "patient_id": record["value"], "doctor": "zhou", "department": "放射科"}
    assert requests.post(f"{s.url}/api/encounters", json=visit, headers=his).status_code == 200
    for named in ({"patient_id": record["value"]}, {"identifier": f"urn:huren:id:cn-resident|{number}"}):
        r = remind(**named)
        assert (r["patient"], r["person"]) == ("known", registered.id), r
        ct_result = next(x for x in r["results"] if x["id"] == study)
        assert ct_result["decision"]["verdict"] == "recognizable", ct_result
        assert r["message_zh"] == "该患者有可互认的外院检查检验结果"
    timeline = requests.get(f"{s.url}/api/patients/{registered.id}/timeline", headers=as_doctor).json()
    assert [x["study_instance_uid"] for x in timeline["studies"]] == [study]
    assert "未见明显异常" in timeline["reports"][0]["text"]

    # The doctor recognizes it; the sentence goes into the medical record.
    r = requests.post(f"{s.url}/api/recognition/decisions",
                      json={"patient_id": record["value"], "visit_number": "V" + tag, "decision": "recognize",
                            "result": {"kind": "imaging_study", "id": study}}, headers=as_doctor)
    assert r.status_code == 201, r.text
    assert r.json()["record_sentence"].startswith("认可县人民医院") and r.json()["engine"]["verdict"] == "recognizable"


def test_an_encounter_by_identity_number_alone(region, tmp_path):
    """A HIS that has not registered its record yet opens the visit by identity number: the
    doctor reaches the person the number names (the number kept only as its blind index)."""
    s = region
    tag = uuid.uuid4().hex[:6].upper()
    number = resident_id("19800101", male=True)
    study, files = county_ct(tmp_path, "CI" + tag, number)
    out = dcmtk("storescu", "-aet", "COUNTY", "-aec", "HUREN", "127.0.0.1", str(s.dimse_port), *files)
    assert out.returncode == 0, out.stderr
    his = {"Authorization": "Bearer " + cli(s.data_dir, "token", "create", "--institution", "city")}
    identifier = f"urn:huren:id:cn-resident|{number}"
    # Demographics without a record number register nothing: refused in plain words.
    r = requests.post(f"{s.url}/api/encounters", json={"visit_number": "W" + tag, "identifier": identifier,
                                                        "name": "张伟"}, headers=his)
    assert r.status_code == 400 and "record number" in r.json()["detail"]
    r = requests.post(f"{s.url}/api/encounters", json={"visit_number": "W" + tag, "identifier": identifier,
                                                        "doctor": "zhou"}, headers=his)
    assert r.status_code == 200, r.text
    assert s.query("SELECT patient_issuer, patient_id, id_blind IS NOT NULL FROM encounter WHERE visit_number = ?",
                   "W" + tag) == [("urn:huren:id:cn-resident", None, 1)]
    assert not s.query("SELECT 1 FROM encounter WHERE id_blind = ?", number)
    r = requests.post(f"{s.url}/api/recognition/reminders", json={"identifier": identifier},
                      headers={**his, "X-Huren-On-Behalf-Of": "zhou"})
    assert r.status_code == 200 and r.json()["patient"] == "known"
    assert study in [x["id"] for x in r.json()["results"]]
    # A launch by identity number lands the doctor on the person.
    r = requests.post(f"{s.url}/api/launch", json={"doctor": "zhou", "identifier": identifier}, headers=his)
    assert r.status_code == 201, r.text
    landing = requests.get(r.json()["url"], allow_redirects=False)
    assert landing.status_code == 303 and landing.headers["location"].startswith("/patients/")
    # An invalid identity number is refused, not looked up.
    r = requests.post(f"{s.url}/api/encounters", json={"visit_number": "X" + tag,
                                                        "identifier": "urn:huren:id:cn-resident|500101198001011234"},
                      headers=his)
    assert r.status_code == 400
