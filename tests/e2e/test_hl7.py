"""HL7 v2 over MLLP (issue #5): registered senders, ORU^R01 stored before the ACK, AE/AR with
table 0357 errors, idempotent resends, character sets decoded before splitting; ACKs checked
with hl7apy's strict parser."""
import socket
import uuid

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from conftest import cli, free_port

VT, FS, CR = b"\x0b", b"\x1c", b"\x0d"


@pytest.fixture
def hl7(fresh_server):
    port = free_port()
    s = fresh_server({"HUREN__MLLP__LISTEN": f"127.0.0.1:{port}"})
    cli(s.data_dir, "hl7-sender", "add", "--institution", "county", "--host", "127.0.0.1", "--facility", "LIS01")
    cli(s.data_dir, "hl7-sender", "add", "--institution", "town", "--host", "127.0.0.1", "--facility", "TOWNLIS",
        "--charset", "GB 18030-2000")
    s.mllp_port = port
    return s


def oru(control, pid3="C100^^^urn:oid:2.16.156.10011.1.9.county^MR", name="李^娜", facility="LIS01",
        version="2.5.1", charset="UNICODE UTF-8", obx5="5.2", msg_type="ORU^R01^ORU_R01"):
    return "\r".join([
        f"MSH|^~\\&|LIS|{facility}|HUREN|REGION|20250301101500||{msg_type}|{control}|P|{version}|||||CHN|{charset}",
        f"PID|1||{pid3}||{name}||19491231|F",
        "OBR|1|P123|F456|24331-1^Lipid panel^LN|||20250301080000",
        f"OBX|1|NM|2093-3^Cholesterol^LN||{obx5}|mmol/L|<5.2|H|||F|||20250301083000",
        "OBX|2|ST|HBSAG^乙肝表面抗原^L||阴性(-)||||||F",
        "OBX|3|SN|5130-0^ANA titre^LN||^1^:^320||||||F",
    ]) + "\r"


def send(port, *payloads, garbage=b""):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        acks = []
        for p in payloads:
            s.sendall(garbage + VT + p + FS + CR)
            buf = b""
            while not buf.endswith(FS + CR):
                chunk = s.recv(65536)
                assert chunk, "connection closed without an ACK"
                buf += chunk
            acks.append(buf[1:-2])
        return acks


def ack_fields(raw, encoding="utf-8"):
    msg = parse_message(raw.decode(encoding).replace("\n", "\r"), validation_level=VALIDATION_LEVEL.STRICT,
                        find_groups=False)
    msg.validate()
    err = [e for e in msg.children if e.name == "ERR"]
    return msg.msa.msa_1.value, msg.msa.msa_2.value, (err[0].to_er7() if err else None)


def test_oru_is_stored_then_acknowledged_and_resends_are_idempotent(hl7):
    control = "M" + uuid.uuid4().hex[:10]
    raw = oru(control).encode()
    first, again = send(hl7.mllp_port, raw, raw)
    assert ack_fields(first)[:2] == ("AA", control)
    assert ack_fields(again)[:2] == ("AA", control)
    rows = hl7.query("""SELECT r.code, r.value, r.unit, r.abnormal_flag, r.status, r.value_type, r.observed_at, i.code
                        FROM lab_result r JOIN hl7_message m ON m.id = r.message_id
                        JOIN institution i ON i.id = r.performing_institution_id
                        WHERE m.control_id = ? ORDER BY r.set_id""", control)
    assert rows == [
        ("2093-3", "5.2", "mmol/L", "H", "F", "NM", "20250301083000", "county"),
        ("HBSAG", "阴性(-)", None, None, "F", "ST", "20250301080000", "county"),
        ("5130-0", "1:320", None, None, "F", "SN", "20250301080000", "county"),
    ]
    assert hl7.query("SELECT name_ideographic, birth_date, sex FROM patient WHERE patient_id = 'C100'") == [("李^娜", "19491231", "F")]
    assert hl7.query("SELECT COUNT(*) FROM audit_event WHERE action = 'results_stored' AND object = ?", f"hl7:{control}") == [(1,)]


def test_gbk_declared_and_sender_default_charsets(hl7):
    # 億 ends with 0x7C ('|') and 昞 with 0x5C ('\\') in GBK.
    c1, c2 = "G" + uuid.uuid4().hex[:8], "D" + uuid.uuid4().hex[:8]
    declared = oru(c1, pid3="G1^^^urn:oid:1.2.3^MR", name="吴^億昞", charset="GBK").encode("gb18030")
    assert b"\x95\x5c" in declared
    # The town's LIS numbers its own patients (urn:oid:1.2.3 is the county's, claimed above).
    undeclared = oru(c2, pid3="G2^^^urn:oid:1.2.4^MR", name="吴^億昞", charset="", facility="TOWNLIS").encode("gb18030")
    a1, a2 = send(hl7.mllp_port, declared, undeclared)
    assert ack_fields(a1, "gb18030")[0] == "AA"
    assert ack_fields(a2)[0] == "AA"
    names = hl7.query("SELECT patient_id, name_ideographic FROM patient WHERE patient_id IN ('G1', 'G2') ORDER BY patient_id")
    assert names == [("G1", "吴^億昞"), ("G2", "吴^億昞")]
    # The town's sender: its results are the town's.
    assert hl7.query("""SELECT DISTINCT i.code FROM lab_result r JOIN hl7_message m ON m.id = r.message_id
                        JOIN institution i ON i.id = r.performing_institution_id WHERE m.control_id = ?""", c2) == [("town",)]


@pytest.mark.parametrize("kwargs,code,err", [
    ({"version": "2.6"}, "AR", "203"),
    ({"msg_type": "ADT^A01^ADT_A01"}, "AR", "200"),
    ({"pid3": ""}, "AE", "101"),
    ({"obx5": "five"}, "AE", "102"),
    ({"facility": "NOTREGISTERED"}, "AR", "207"),
    ({"charset": "EBCDIC"}, "AR", "103"),
])
def test_refusals_store_nothing(hl7, kwargs, code, err):
    control = "R" + uuid.uuid4().hex[:10]
    (raw_ack,) = send(hl7.mllp_port, oru(control, **kwargs).encode())
    got_code, got_control, err_segment = ack_fields(raw_ack)
    assert (got_code, got_control) == (code, control)
    assert err_segment is not None and err in err_segment
    assert hl7.query("SELECT COUNT(*) FROM hl7_message WHERE control_id = ?", control) == [(0,)]


def test_garbage_and_v24_error_form(hl7):
    control = "V" + uuid.uuid4().hex[:10]
    (raw_ack,) = send(hl7.mllp_port, oru(control, version="2.4", pid3="").encode(), garbage=b"\x00\xffnoise\r\n")
    code, _, err = ack_fields(raw_ack)
    assert code == "AE" and err.startswith("ERR|PID^1^3^101&")
    # A frame that is not HL7 gets no answer; the connection and the listener go on.
    with socket.create_connection(("127.0.0.1", hl7.mllp_port), timeout=10) as s:
        s.sendall(VT + b"this is not HL7" + FS + CR)
        ok = oru("W" + uuid.uuid4().hex[:8]).encode()
        s.sendall(VT + ok + FS + CR)
        buf = b""
        while not buf.endswith(FS + CR):
            buf += s.recv(65536)
        assert ack_fields(buf[1:-2])[0] == "AA"


def test_identity_number_in_pid3_links_lab_and_images(hl7):
    # The same person through DICOM (county images) and HL7 (town lab), by resident ID.
    from test_persons import MOTHER_ID, person, store, with_resident_id
    store(hl7, with_resident_id(person("IMG9"), MOTHER_ID))
    control = "I" + uuid.uuid4().hex[:10]
    pid3 = f"LAB9^^^urn:oid:1.2.3^MR~{MOTHER_ID}^^^身份证^NI"
    (raw_ack,) = send(hl7.mllp_port, oru(control, pid3=pid3).encode())
    assert ack_fields(raw_ack)[0] == "AA"
    persons = hl7.query("SELECT DISTINCT person_id FROM patient WHERE patient_id IN ('IMG9', 'LAB9')")
    assert len(persons) == 1
    # The number is kept sealed, never as a record key.
    assert hl7.query("SELECT COUNT(*) FROM patient WHERE patient_id = ?", MOTHER_ID) == [(0,)]


def test_timeline_has_images_and_lab_results_newest_first(hl7):
    import requests
    from conftest import region_reader
    from test_persons import MOTHER_ID, person, store, with_resident_id
    img = with_resident_id(person("TL1"), MOTHER_ID)
    img.StudyDate = "20250215"
    store(hl7, img)
    control = "T" + uuid.uuid4().hex[:10]
    (raw_ack,) = send(hl7.mllp_port, oru(control, pid3=f"TL2^^^urn:oid:1.2.3^MR~{MOTHER_ID}^^^身份证^NI").encode())
    assert ack_fields(raw_ack)[0] == "AA"
    h = region_reader(hl7)
    hits = requests.get(f"{hl7.url}/api/patients", params={"identifier": f"身份证|{MOTHER_ID}"}, headers=h).json()
    pid = hits[0]["person"]
    r = requests.get(f"{hl7.url}/api/patients/{pid}/timeline", headers=h)
    from test_openapi import check
    check(r, "/api/patients/{person}/timeline")  # lab results as documented
    tl = r.json()
    kinds = [e["kind"] for e in tl["entries"]]
    # Lab observed 2025-03-01 is newer than the 2025-02-15 study.
    assert kinds[0] == "lab_result" and kinds[-1] == "imaging_study"
    assert {r["code"] for r in tl["lab_results"]} == {"2093-3", "HBSAG", "5130-0"}
    assert tl["studies"][0]["study_instance_uid"] == img.StudyInstanceUID
    assert tl["lab_results"][0]["performing_institution"] == "county"


def report(control, pid3, accession="", study_uid=None, facility="LIS01"):
    segs = [
        f"MSH|^~\\&|RIS|{facility}|HUREN|REGION|20250302090000||ORU^R01^ORU_R01|{control}|P|2.5.1|||||CHN|UNICODE UTF-8",
        f"PID|1||{pid3}||李^娜||19491231|F",
        f"OBR|1|P9|{accession}|CT-CHEST^胸部CT平扫^L|||20250301100000|||||||||||||20250302085900",
        "OBX|1|FT|GDT^影像所见^L||双肺纹理清晰。\\.br\\纵隔居中。||||||F",
        "OBX|2|TX|IMP^诊断意见^L||未见明显异常。||||||F",
    ]
    if study_uid:
        segs.append(f"OBX|3|ST|113014^Study Instance UID^DCM||{study_uid}||||||F")
    return ("\r".join(segs) + "\r").encode()


def test_imaging_reports_link_to_their_studies(hl7):
    import requests
    from conftest import region_reader
    from test_persons import person, store
    by_acc = person("RP1")
    by_acc.AccessionNumber = "ACC" + uuid.uuid4().hex[:6]
    store(hl7, by_acc)
    by_uid = person("RP1")
    store(hl7, by_uid)
    issuer = hl7.query("SELECT issuer FROM patient WHERE patient_id = 'RP1'")[0][0]
    pid3 = f"RP1^^^{issuer}^MR"
    a1, a2 = send(hl7.mllp_port, report("RA" + uuid.uuid4().hex[:8], pid3, accession=by_acc.AccessionNumber),
                  report("RB" + uuid.uuid4().hex[:8], pid3, study_uid=by_uid.StudyInstanceUID))
    assert ack_fields(a1)[0] == "AA" and ack_fields(a2)[0] == "AA"
    linked = hl7.query("""SELECT s.study_uid, r.text FROM report r JOIN study s ON s.id = r.study_id
                          JOIN patient p ON p.id = r.patient_id WHERE p.patient_id = 'RP1' ORDER BY r.id""")
    assert [u for u, _ in linked] == [by_acc.StudyInstanceUID, by_uid.StudyInstanceUID]
    assert linked[0][1] == "双肺纹理清晰。\n纵隔居中。\n未见明显异常。"
    # Reports are not lab results, and show in the person's timeline.
    assert hl7.query("SELECT COUNT(*) FROM lab_result r JOIN patient p ON p.id = r.patient_id WHERE p.patient_id = 'RP1'") == [(0,)]
    h = region_reader(hl7)
    pid = requests.get(f"{hl7.url}/api/patients", params={"patient_id": "RP1", "issuer": issuer}, headers=h).json()[0]["person"]
    resp = requests.get(f"{hl7.url}/api/patients/{pid}/timeline", headers=h)
    from test_openapi import check
    check(resp, "/api/patients/{person}/timeline")  # reports as documented
    tl = resp.json()
    assert {r["study_instance_uid"] for r in tl["reports"]} == {by_acc.StudyInstanceUID, by_uid.StudyInstanceUID}
    assert "imaging_report" in {e["kind"] for e in tl["entries"]}


def test_corrections_supersede_and_keep_history(hl7):
    import requests
    from conftest import region_reader
    pid3 = "CORR1^^^urn:oid:1.2.3^MR"
    prelim = oru("C1" + uuid.uuid4().hex[:8], pid3=pid3).replace("||F|||2025", "||P|||2025")
    final = oru("C2" + uuid.uuid4().hex[:8], pid3=pid3, obx5="5.4")
    corrected = oru("C3" + uuid.uuid4().hex[:8], pid3=pid3, obx5="4.9").replace("||F|||2025", "||C|||2025")
    acks = send(hl7.mllp_port, prelim.encode(), final.encode(), corrected.encode())
    assert [ack_fields(a)[0] for a in acks] == ["AA", "AA", "AA"]
    history = hl7.query("""SELECT r.value, r.status, r.superseded_by IS NULL FROM lab_result r JOIN patient p ON p.id = r.patient_id
                           WHERE p.patient_id = 'CORR1' AND r.code = '2093-3' ORDER BY r.id""")
    assert history == [("5.2", "P", 0), ("5.4", "F", 0), ("4.9", "C", 1)]
    h = region_reader(hl7)
    pid = requests.get(f"{hl7.url}/api/patients", params={"patient_id": "CORR1", "issuer": "urn:oid:1.2.3"}, headers=h).json()[0]["person"]
    labs = requests.get(f"{hl7.url}/api/patients/{pid}/timeline", headers=h).json()["lab_results"]
    assert [r["value"] for r in labs if r["code"] == "2093-3"] == ["4.9"]


def test_an_oversized_message_is_answered_ar_and_the_connection_goes_on(fresh_server):
    """Above mllp.max_message_kib the message is refused with AR (from its MSH), nothing is
    stored, and the next message on the same connection is handled."""
    port = free_port()
    s = fresh_server({"HUREN__MLLP__LISTEN": f"127.0.0.1:{port}", "HUREN__MLLP__MAX_MESSAGE_KIB": "64"})
    cli(s.data_dir, "hl7-sender", "add", "--institution", "county", "--host", "127.0.0.1", "--facility", "LIS01")
    big_control, ok_control = "B" + uuid.uuid4().hex[:10], "K" + uuid.uuid4().hex[:10]
    big = oru(big_control) + "NTE|1||" + "很长的备注" * 20000 + "\r"
    refused, ok = send(port, big.encode(), oru(ok_control).encode())
    code, control, err = ack_fields(refused)
    assert (code, control) == ("AR", big_control) and "207" in err and "larger than 65536 bytes" in err
    assert ack_fields(ok)[:2] == ("AA", ok_control)
    assert s.query("SELECT COUNT(*) FROM hl7_message WHERE control_id = ?", big_control) == [(0,)]
