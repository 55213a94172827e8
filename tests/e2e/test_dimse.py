"""C-ECHO / C-STORE SCP against DCMTK and pynetdicom (PS3.4 Annex A/B, PS3.7, PS3.8)."""
import io
import concurrent.futures
import hashlib
import uuid
from pathlib import Path

import pydicom
import pytest
import requests
from pydicom.uid import generate_uid
from pynetdicom.sop_class import CTImageStorage

from conftest import ADMIN, CHARSET_FILES, TEST_FILES, cli
from helpers import associate, ct, dataset_bytes, dcmtk, store_files, to_bytes

# One file per transfer syntax huren must accept, plus multi-frame, SEG, RT, SR, ECG.
TS_FILES = {
    "1.2.840.10008.1.2": "MR_small_implicit.dcm",
    "1.2.840.10008.1.2.1": "CT_small.dcm",
    "1.2.840.10008.1.2.2": "MR_small_bigendian.dcm",
    "1.2.840.10008.1.2.1.99": "image_dfl.dcm",
    "1.2.840.10008.1.2.4.50": "examples_ybr_color.dcm",
    "1.2.840.10008.1.2.4.51": "JPEG-lossy.dcm",
    "1.2.840.10008.1.2.4.70": "SC_rgb_jpeg_gdcm.dcm",
    "1.2.840.10008.1.2.4.80": "MR_small_jpeg_ls_lossless.dcm",
    "1.2.840.10008.1.2.4.81": "JPEGLSNearLossless_16.dcm",
    "1.2.840.10008.1.2.4.90": "MR_small_jp2klossless.dcm",
    "1.2.840.10008.1.2.4.91": "693_J2KI.dcm",
    "1.2.840.10008.1.2.5": "MR_small_RLE.dcm",
}
OTHER_FILES = ["liver_1frame.dcm", "rtdose.dcm", "rtplan.dcm", "reportsi.dcm", "test-SR.dcm",
               "waveform_ecg.dcm", "examples_palette.dcm", "SC_rgb_rle_2frame.dcm"]


def stored_blob(server, sop_uid):
    rows = server.query("SELECT blob_key, lifecycle, transfer_syntax_uid FROM instance WHERE sop_uid = ? ORDER BY id", sop_uid)
    assert rows, f"{sop_uid} not indexed"
    return rows


def test_echo_dcmtk(server):
    r = dcmtk("echoscu", "-aet", "COUNTY", "-aec", "HUREN", "127.0.0.1", str(server.dimse_port))
    assert r.returncode == 0, r.stderr


def test_unknown_calling_ae_is_rejected(server):
    r = dcmtk("echoscu", "-aet", "STRANGER", "-aec", "HUREN", "127.0.0.1", str(server.dimse_port))
    assert r.returncode != 0
    assert "Calling AE Title Not Recognized" in r.stderr


def test_wrong_called_ae_is_rejected(server):
    r = dcmtk("echoscu", "-aet", "COUNTY", "-aec", "NOTHUREN", "127.0.0.1", str(server.dimse_port))
    assert r.returncode != 0
    assert "Called AE Title Not Recognized" in r.stderr


def test_same_title_from_another_network_is_rejected(server):
    # "PACS" is registered for the town hospital at 127.0.0.2 only.
    r = dcmtk("echoscu", "-aet", "PACS", "-aec", "HUREN", "127.0.0.1", str(server.dimse_port))
    assert r.returncode != 0 and "Calling AE Title Not Recognized" in r.stderr
    assoc = associate(server.dimse_port, calling="PACS", contexts=["1.2.840.10008.1.1"], bind="127.0.0.2")
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0
    assoc.release()


@pytest.mark.parametrize("ts,name", sorted(TS_FILES.items()))
def test_every_transfer_syntax_is_stored_byte_for_byte(server, ts, name, tmp_path):
    path = TEST_FILES / name
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    assert ds.file_meta.TransferSyntaxUID == ts
    if "StudyInstanceUID" not in ds:
        # pydicom's JPEG-LS near-lossless samples lack the Type 1 study/series UIDs: the
        # archive refuses them (0xC000), so the test adds UIDs and keeps the pixel data.
        assert store_files(server.dimse_port, [path])[str(path)] == 0xC000
        full = pydicom.dcmread(path)
        full.StudyInstanceUID, full.SeriesInstanceUID = generate_uid(), generate_uid()
        path = tmp_path / name
        full.save_as(path, enforce_file_format=True)
    status = store_files(server.dimse_port, [path])[str(path)]
    assert status == 0x0000, hex(status)
    rows = stored_blob(server, ds.SOPInstanceUID)
    key, lifecycle, stored_ts = rows[-1]
    assert lifecycle == "active" and stored_ts == ts
    # The stored data set is what the peer sent. pynetdicom sends most files' own bytes but
    # re-encodes some (group lengths, odd lengths); then the elements must still be equal.
    # Exact byte-for-byte storage of what arrives is proven over STOW (test_http.py).
    original = dataset_bytes(path.read_bytes())
    stored = dataset_bytes(server.object_bytes(key))
    if hashlib.sha256(stored).digest() != hashlib.sha256(original).digest():
        a, b = pydicom.dcmread(path), pydicom.dcmread(io.BytesIO(server.object_bytes(key)))
        strip = lambda d: {e.tag: e.value for e in d if e.tag.element != 0}
        assert strip(a) == strip(b)


@pytest.mark.parametrize("name", OTHER_FILES)
def test_other_sop_classes_are_stored(server, name):
    path = TEST_FILES / name
    status = store_files(server.dimse_port, [path])[str(path)]
    assert status in (0x0000,), hex(status)


def test_htj2k_via_pynetdicom(server, tmp_path):
    import shutil
    import subprocess
    if not shutil.which("ojph_compress"):
        pytest.skip("openjph-tools not installed")
    # Make an HTJ2K codestream from a raw 16-bit image with OpenJPH, wrap it as DICOM.
    raw = tmp_path / "img.pgm"
    w = h = 64
    raw.write_bytes(b"P5\n64 64\n65535\n" + bytes(range(256)) * (w * h * 2 // 256))
    j2c = tmp_path / "img.j2c"
    subprocess.run(["ojph_compress", "-i", str(raw), "-o", str(j2c), "-reversible", "true"], check=True, capture_output=True)
    from pydicom.encaps import encapsulate
    ds = ct(rows=h, cols=w)
    ds.BitsStored, ds.HighBit = 16, 15
    ds.PixelData = encapsulate([j2c.read_bytes()])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.201"
    p = tmp_path / "htj2k.dcm"
    ds.save_as(p, enforce_file_format=True)
    assert store_files(server.dimse_port, [p])[str(p)] == 0x0000
    assert stored_blob(server, ds.SOPInstanceUID)[-1][2] == "1.2.840.10008.1.2.4.201"


def test_storescu_dcmtk_chinese_charsets(server):
    files = [str(CHARSET_FILES / n) for n in ("chrX1.dcm", "chrX2.dcm")]
    r = dcmtk("storescu", "-aet", "COUNTY", "-aec", "HUREN", "127.0.0.1", str(server.dimse_port), *files)
    assert r.returncode == 0, r.stderr
    names = {row[0] for row in server.query("SELECT name_ideographic FROM patient")}
    assert "王^小東" in names and "王^小东" in names


def test_gbk_names_with_delimiter_bytes(server, tmp_path):
    # 昞 = 95 5C and 奮 = 8A 5E: their second bytes are '\\' and '^'.
    ds = ct(patient_id="GBK1", name="Wang^Bing=王^昞奮", charset="GBK")
    raw = "王^昞奮".encode("gbk")
    assert b"\\" in raw and b"^" in raw
    p = tmp_path / "gbk.dcm"
    ds.save_as(p, enforce_file_format=True)
    assert b"\x95\x5c" in p.read_bytes()
    assert store_files(server.dimse_port, [p])[str(p)] == 0x0000
    row = server.query("SELECT name_alphabetic, name_ideographic FROM patient WHERE patient_id = 'GBK1'")
    assert row == [("Wang^Bing", "王^昞奮")]


def test_assumed_charset_for_undeclared_gbk(server, tmp_path):
    ds = ct(patient_id="GBK2", name="Li^Si", charset="ISO_IR 100")
    p = tmp_path / "undeclared.dcm"
    ds.save_as(p, enforce_file_format=True)
    data = p.read_bytes().replace(b"Li^Si ", "李^四".encode("gb18030") + b"  "[: (6 - len("李^四".encode("gb18030")))])
    p.write_bytes(data)
    status = store_files(server.dimse_port, [p], calling="GBKSENDER")[str(p)]
    assert status == 0xB000, hex(status)  # coercion of the index's reading, never of the object
    assert server.query("SELECT name_raw FROM patient WHERE patient_id = 'GBK2'") == [("李^四",)]
    key = stored_blob(server, ds.SOPInstanceUID)[-1][0]
    assert dataset_bytes(server.object_bytes(key)) == dataset_bytes(data)


def test_iso2022_ir58(server, tmp_path):
    ds = ct(patient_id="IR58", charset="\\ISO 2022 IR 58")
    p = tmp_path / "ir58.dcm"
    ds.PatientName = "Zhang^San"
    ds.save_as(p, enforce_file_format=True)
    pn = b"Zhang^San=\x1b$)A" + "张".encode("gb2312") + b"^\x1b$)A" + "三".encode("gb2312")
    data = p.read_bytes().replace(b"Zhang^San ", pn + (b" " if len(pn) % 2 else b""))
    # fix the element length (PN uses a 2-byte length in explicit VR)
    old = (10).to_bytes(2, "little")
    i = data.index(b"PN" + old)
    new_len = len(pn) + (len(pn) % 2)
    data = data[:i] + b"PN" + new_len.to_bytes(2, "little") + data[i + 4:]
    p.write_bytes(data)
    assert store_files(server.dimse_port, [p])[str(p)] == 0x0000
    assert server.query("SELECT name_ideographic FROM patient WHERE patient_id = 'IR58'") == [("张^三",)]


def responded_to(assoc):
    """Records MessageIDBeingRespondedTo of every response received (pynetdicom hides it)."""
    from pynetdicom import evt
    seen = []
    assoc.bind(evt.EVT_DIMSE_RECV, lambda event: seen.append(event.message.command_set.MessageIDBeingRespondedTo))
    return seen


def test_failure_statuses_and_message_id(server, tmp_path):
    assoc = associate(server.dimse_port, contexts=[(CTImageStorage, ["1.2.840.10008.1.2.1"]),
                                                    ("1.2.840.10008.5.1.4.1.2.2.1", ["1.2.840.10008.1.2.1"])])
    assert assoc.is_established
    seen = responded_to(assoc)
    try:
        # B007: an image SOP class without pixel data is stored with a warning.
        rsp = assoc.send_c_store(ct(pixels=False), msg_id=41)
        assert rsp.Status == 0xB007 and seen[-1] == 41
        # C000: missing Study Instance UID.
        bad = ct()
        del bad.StudyInstanceUID
        rsp = assoc.send_c_store(bad, msg_id=44)
        assert rsp.Status == 0xC000 and "StudyInstanceUID" in str(rsp.ErrorComment)
        # 0122: a Query/Retrieve SOP class is not a storage class.
        q = ct(sop_class="1.2.840.10008.5.1.4.1.2.2.1")
        rsp = assoc.send_c_store(q, msg_id=45)
        assert rsp.Status == 0x0122 and seen[-1] == 45
        # The association is still usable after every failure.
        rsp = assoc.send_c_store(ct(), msg_id=46)
        assert rsp.Status == 0x0000 and seen[-1] == 46
    finally:
        assoc.release()


def test_out_of_resources_a700(fresh_server, tmp_path):
    s = fresh_server({"HUREN__ARCHIVE__MAX_OBJECT_MIB": "1"})
    assoc = associate(s.dimse_port, contexts=[(CTImageStorage, ["1.2.840.10008.1.2.1"])])
    seen = responded_to(assoc)
    rsp = assoc.send_c_store(ct(rows=1024, cols=1024), msg_id=7)
    assert rsp.Status == 0xA700 and seen[-1] == 7
    assert assoc.send_c_store(ct(), msg_id=8).Status == 0x0000
    assoc.release()


def test_duplicate_policy(server, tmp_path):
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    a = ct(study=study, series=series, sop=sop, patient_id="DUP")
    assoc = associate(server.dimse_port, contexts=[(CTImageStorage, ["1.2.840.10008.1.2.1"])])
    assert assoc.send_c_store(a).Status == 0
    assert assoc.send_c_store(a).Status == 0  # identical bytes: success, no-op
    assert server.query("SELECT lifecycle FROM instance WHERE sop_uid = ?", sop) == [("active",)]
    b = ct(study=study, series=series, sop=sop, patient_id="DUP", name="Zhang^San=张^叁")
    assert assoc.send_c_store(b).Status == 0  # changed content: new version, previous kept
    assoc.release()
    assert server.query("SELECT lifecycle, version FROM instance WHERE sop_uid = ? ORDER BY id", sop) == [("superseded", 1), ("active", 2)]
    # Another institution sends the same UID: kept separately, both flagged, nothing overwritten.
    other = associate(server.dimse_port, calling="CITY", contexts=[(CTImageStorage, ["1.2.840.10008.1.2.1"])])
    assert other.send_c_store(ct(study=study, series=series, sop=sop, patient_id="X9")).Status == 0
    other.release()
    rows = server.query("SELECT lifecycle, uid_conflict FROM instance WHERE sop_uid = ? ORDER BY id", sop)
    assert rows == [("superseded", 0), ("active", 1), ("active", 1)]
    assert server.query("SELECT COUNT(*) FROM uid_conflict WHERE sop_uid = ?", sop) == [(1,)]


def test_performer_resolved_from_institution_name(server):
    ds = ct(institution="镇卫生院", patient_id="TOWN1")
    assoc = associate(server.dimse_port, contexts=[(CTImageStorage, ["1.2.840.10008.1.2.1"])])
    assert assoc.send_c_store(ds).Status == 0
    plain = ct(patient_id="COUNTY1")
    assert assoc.send_c_store(plain).Status == 0
    assoc.release()
    q = """SELECT s.code, p.code FROM instance i JOIN institution s ON s.id = i.sender_institution_id
           JOIN institution p ON p.id = i.performing_institution_id WHERE i.sop_uid = ?"""
    assert server.query(q, ds.SOPInstanceUID) == [("county", "town")]
    assert server.query(q, plain.SOPInstanceUID) == [("county", "county")]
    # PatientID is scoped by issuer: the performer's identifier system, else its code.
    assert server.query("SELECT issuer FROM patient WHERE patient_id = 'TOWN1'") == [("urn:huren:institution:town",)]


def test_mapping_added_at_runtime_applies_to_the_next_instance(server):
    # Attribution answers are cached per name; a change through the admin API must not wait.
    name = "新乡镇卫生院" + uuid.uuid4().hex[:6]
    first = ct(institution=name, patient_id="RT1")
    assoc = associate(server.dimse_port, contexts=[(CTImageStorage, ["1.2.840.10008.1.2.1"])])
    assert assoc.send_c_store(first).Status == 0
    r = requests.post(server.url + "/api/admin/send-for", headers={"Authorization": f"Bearer {ADMIN}"},
                      json={"sender": "county", "performer": "town", "institution_name": name})
    assert r.status_code == 200, r.text
    second = ct(institution=name, patient_id="RT1")
    assert assoc.send_c_store(second).Status == 0
    assoc.release()
    q = "SELECT p.code FROM instance i JOIN institution p ON p.id = i.performing_institution_id WHERE i.sop_uid = ?"
    assert server.query(q, first.SOPInstanceUID) == [("county",)]
    assert server.query(q, second.SOPInstanceUID) == [("town",)]


def test_concurrent_associations(server):
    study = generate_uid()

    def send(k):
        assoc = associate(server.dimse_port, contexts=[(CTImageStorage, ["1.2.840.10008.1.2.1"])])
        statuses = [assoc.send_c_store(ct(study=study, patient_id="CONC", rows=64, cols=64)).Status for _ in range(40)]
        assoc.release()
        return statuses

    with concurrent.futures.ThreadPoolExecutor(6) as ex:
        statuses = [st for batch in ex.map(send, range(6)) for st in batch]
    assert statuses == [0] * 240, sorted(set(statuses))
    assert server.query("SELECT num_instances FROM study WHERE study_uid = ?", study) == [(240,)]


def test_500_slice_ct_series_with_storescu(server, tmp_path):
    study, series = generate_uid(), generate_uid()
    d = tmp_path / "ct500"
    d.mkdir()
    template = ct(study=study, series=series, rows=512, cols=512, patient_id="CT500")
    pixels = bytes(range(256)) * (512 * 512 * 2 // 256)
    for i in range(500):
        template.SOPInstanceUID = template.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        template.InstanceNumber = i + 1
        template.PixelData = pixels
        template.save_as(d / f"{i:03}.dcm", enforce_file_format=True)
    r = dcmtk("storescu", "-aet", "COUNTY", "-aec", "HUREN", "+sd", "127.0.0.1", str(server.dimse_port), str(d), timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert server.query("SELECT num_instances, modalities FROM study WHERE study_uid = ?", study) == [(500, "CT")]


def test_lifecycle_reject_and_delete(server):
    a, b = ct(patient_id="LC1"), ct(patient_id="LC2")
    assoc = associate(server.dimse_port, contexts=[(CTImageStorage, ["1.2.840.10008.1.2.1"])])
    assert assoc.send_c_store(a).Status == 0 and assoc.send_c_store(b).Status == 0
    assoc.release()
    cli(server.data_dir, "study", "reject", "--study-uid", a.StudyInstanceUID, "--reason", "wrong patient")
    assert server.query("SELECT lifecycle FROM instance WHERE sop_uid = ?", a.SOPInstanceUID) == [("rejected",)]
    key = server.query("SELECT blob_key FROM instance WHERE sop_uid = ?", b.SOPInstanceUID)[0][0]
    assert server.object_exists(key)
    cli(server.data_dir, "study", "delete", "--study-uid", b.StudyInstanceUID, "--reason", "duplicate upload")
    assert server.query("SELECT lifecycle FROM instance WHERE sop_uid = ?", b.SOPInstanceUID) == [("deleted",)]
    assert not server.object_exists(key)
    actions = [r[0] for r in server.query("SELECT action FROM audit_event WHERE study_uid = ?", b.StudyInstanceUID)]
    assert "instance_stored" in actions and "study_lifecycle_changed" in actions


def test_ingest_is_audited(server):
    ds = ct(patient_id="AUD1")
    assoc = associate(server.dimse_port, contexts=[(CTImageStorage, ["1.2.840.10008.1.2.1"])])
    assert assoc.send_c_store(ds).Status == 0
    assoc.release()
    rows = server.query("SELECT actor, institution, patient, outcome, source_address FROM audit_event WHERE object = ?", ds.SOPInstanceUID)
    assert len(rows) == 1
    actor, inst, patient, outcome, source = rows[0]
    assert actor.startswith("ae:COUNTY#") and inst == "county" and patient.startswith("AUD1@") and outcome == "success"
    assert source == "127.0.0.1"


DATA_STORE = Path(__import__("data_store").__file__).parent / "data"
# pydicom-data: JPEG lossless process 14, multi-frame MR in several syntaxes, multi-frame SEG,
# multi-frame JPEG baseline, a 7 MB CR, palette colour, US with 16-bit samples.
DATA_STORE_FILES = ["JPEG-LL.dcm", "JPGLosslessP14SV1_1s_1f_8b.dcm", "emri_small.dcm", "emri_small_RLE.dcm",
                    "emri_small_big_endian.dcm", "emri_small_jpeg_2k_lossless.dcm", "emri_small_jpeg_ls_lossless.dcm",
                    "liver.dcm", "color3d_jpeg_baseline.dcm", "RG1_UNCI.dcm", "RG1_J2KR.dcm",
                    "gdcm-US-ALOKA-16.dcm", "eCT_Supplemental.dcm"]


@pytest.mark.parametrize("name", DATA_STORE_FILES)
def test_pydicom_data_files(server, name):
    path = DATA_STORE / name
    assert store_files(server.dimse_port, [path])[str(path)] == 0x0000
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    rows = server.query("SELECT transfer_syntax_uid, number_of_frames, pixel_layout FROM instance WHERE sop_uid = ? ORDER BY id DESC", ds.SOPInstanceUID)
    assert rows[0][0] == ds.file_meta.TransferSyntaxUID
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    import json
    layout = json.loads(rows[0][2])
    if layout["kind"] == "encapsulated":
        assert len(layout["frames"]) == frames
    elif layout["kind"] == "native":
        assert layout["frames"] == frames


def test_echo_echoes_message_id(server):
    assoc = associate(server.dimse_port, contexts=["1.2.840.10008.1.1"])
    seen = responded_to(assoc)
    assert assoc.send_c_echo(msg_id=321).Status == 0
    assoc.release()
    assert seen == [321]


def test_large_object_streams_with_bounded_memory(server, tmp_path):
    # A 160 MB multi-frame object: the server must not hold it in memory.
    frames, rows, cols = 320, 512, 512
    ds = ct(rows=rows, cols=cols, patient_id="BIG")
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"
    ds.NumberOfFrames = frames
    ds.PixelData = bytes(range(256)) * (frames * rows * cols * 2 // 256)
    p = tmp_path / "big.dcm"
    ds.save_as(p, enforce_file_format=True)
    del ds
    r = dcmtk("storescu", "-aet", "COUNTY", "-aec", "HUREN", "127.0.0.1", str(server.dimse_port), str(p), timeout=600)
    assert r.returncode == 0, r.stderr
    sop = pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID
    import json
    layout = json.loads(server.query("SELECT pixel_layout FROM instance WHERE sop_uid = ?", sop)[0][0])
    assert layout["kind"] == "native" and layout["frames"] == frames and layout["frame_length"] == rows * cols * 2
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    peak_kib = int(next(l for l in status.splitlines() if l.startswith("VmHWM")).split()[1])
    assert peak_kib < 120 * 1024, f"peak RSS {peak_kib} KiB while receiving a 160 MB object"


def test_study_becomes_stable_and_again_after_late_instance(fresh_server):
    import time
    s = fresh_server({"HUREN__ARCHIVE__STABLE_AFTER_SECS": "1"})
    study = generate_uid()
    assoc = associate(s.dimse_port, contexts=[(CTImageStorage, ["1.2.840.10008.1.2.1"])])
    assert assoc.send_c_store(ct(study=study)).Status == 0
    q = "SELECT COUNT(*) FROM study_event e JOIN study s ON s.id = e.study_id WHERE s.study_uid = ? AND e.kind = 'study_stable'"
    deadline = time.time() + 15
    while time.time() < deadline and s.query(q, study) != [(1,)]:
        time.sleep(0.2)
    assert s.query(q, study) == [(1,)]
    assert assoc.send_c_store(ct(study=study)).Status == 0  # a late instance
    assoc.release()
    deadline = time.time() + 15
    while time.time() < deadline and s.query(q, study) != [(2,)]:
        time.sleep(0.2)
    assert s.query(q, study) == [(2,)]


def test_malformed_data_sets_over_dimse(server):
    """Bytes as a broken modality would send them, through a raw DIMSE sender."""
    from helpers import raw_store
    ctx = (CTImageStorage, ["1.2.840.10008.1.2.1"])
    mr = "1.2.840.10008.5.1.4.1.1.4"
    assoc = associate(server.dimse_port, contexts=[ctx, (mr, ["1.2.840.10008.1.2.1"])])
    assert assoc.is_established
    try:
        good = ct(rows=64, cols=64)
        data = dataset_bytes(to_bytes(good))
        # Truncated: the pixel data declares more bytes than arrive → 0xC000 with a comment.
        status, comment, mid = raw_store(assoc, CTImageStorage, good.SOPInstanceUID, data[:-1000], msg_id=11)
        assert (status, mid) == (0xC000, 11) and comment
        assert not server.query("SELECT id FROM instance WHERE sop_uid = ?", good.SOPInstanceUID)
        # Absurd length in the middle of the data set.
        broken = bytearray(data)
        i = broken.index(b"PN")
        broken[i + 2:i + 4] = (0xFFF0).to_bytes(2, "little")
        status, comment, mid = raw_store(assoc, CTImageStorage, good.SOPInstanceUID, bytes(broken), msg_id=12)
        assert (status, mid) == (0xC000, 12)
        # The data set says CT, the request says MR → 0xA900.
        status, comment, mid = raw_store(assoc, mr, good.SOPInstanceUID, data, msg_id=13)
        assert (status, mid) == (0xA900, 13) and "SOPClassUID" in comment
        # Affected SOP Instance UID differs from the data set's → 0xC000.
        status, _, _ = raw_store(assoc, CTImageStorage, generate_uid(), data, msg_id=14)
        assert status == 0xC000
        # A repeated element after the pixel data → stored with 0xB006.
        status, _, mid = raw_store(assoc, CTImageStorage, good.SOPInstanceUID, data + b"\x08\x00\x60\x00CS\x02\x00MR", msg_id=15)
        assert (status, mid) == (0xB006, 15)
        # And the exact bytes sent are what is stored.
        key = server.query("SELECT blob_key FROM instance WHERE sop_uid = ?", good.SOPInstanceUID)[0][0]
        assert dataset_bytes(server.object_bytes(key)) == data + b"\x08\x00\x60\x00CS\x02\x00MR"
        # Garbage.
        status, _, _ = raw_store(assoc, CTImageStorage, generate_uid(), b"\x00\x01\x02", msg_id=16)
        assert status == 0xC000
        # Still serving.
        assert raw_store(assoc, CTImageStorage, ct().SOPInstanceUID, dataset_bytes(to_bytes(ct())), msg_id=17)[0] in (0x0000, 0xC000)
    finally:
        assoc.release()


def test_private_sop_class_is_stored(server):
    private = "1.2.826.0.1.3680043.9.7433.1.1"
    ds = ct(sop_class=private, pixels=False)
    assoc = associate(server.dimse_port, contexts=[(private, ["1.2.840.10008.1.2.1"])])
    assert assoc.is_established
    assert assoc.send_c_store(ds).Status == 0x0000
    assoc.release()
    assert server.query("SELECT sop_class_uid FROM instance WHERE sop_uid = ?", ds.SOPInstanceUID) == [(private,)]


def test_index_attributes_json_and_time(server):
    import json
    import zlib
    ds = ct(patient_id="IDX1", name="Sun^Li=孙^丽")
    ds.OtherPatientIDsSequence = [pydicom.Dataset()]
    ds.OtherPatientIDsSequence[0].PatientID = "110101199003077777"
    ds.OtherPatientIDsSequence[0].IssuerOfPatientID = "CN-RESIDENT-ID"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.LossyImageCompression = "00"
    assoc = associate(server.dimse_port, contexts=[(CTImageStorage, ["1.2.840.10008.1.2.1"])])
    assert assoc.send_c_store(ds).Status == 0
    assoc.release()
    (other,) = server.query("SELECT other_ids FROM patient WHERE patient_id = 'IDX1'")[0]
    assert json.loads(other) == [{"patient_id": "110101199003077777", "issuer": "CN-RESIDENT-ID", "type_of_patient_id": None}]
    # 2025-03-01 10:15 in Asia/Shanghai is 02:15 UTC.
    assert server.query("SELECT study_date, study_time, study_instant FROM study WHERE study_uid = ?", ds.StudyInstanceUID) == [("20250301", "101500", 1740795300)]
    row = server.query("SELECT image_type, lossy, x.json FROM instance i JOIN instance_json x ON x.instance_id = i.id WHERE i.sop_uid = ?", ds.SOPInstanceUID)[0]
    assert row[0] == "ORIGINAL\\PRIMARY\\AXIAL" and row[1] == "00"
    doc = json.loads(zlib.decompress(row[2], -15))
    assert doc["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Sun^Li", "Ideographic": "孙^丽"}]}
    assert doc["00101002"]["Value"][0]["00100020"]["Value"] == ["110101199003077777"]
    assert doc["7FE00010"]["BulkDataURI"].startswith("bulk/")
    assert doc["00280010"] == {"vr": "US", "Value": [16]}


CHARSET_NAMES = sorted(p.name for p in CHARSET_FILES.glob("chr*.dcm") if "SQEncoding" not in p.name)


@pytest.mark.parametrize("name", CHARSET_NAMES)
def test_charsets_decode_like_pydicom(server, name):
    """Every pydicom character-set sample (ISO 2022 Japanese/Korean, Greek, Arabic, Hebrew,
    Cyrillic, UTF-8, GB18030…): the index holds the same PatientName text pydicom decodes."""
    path = CHARSET_FILES / name
    ds = pydicom.dcmread(path)
    status = store_files(server.dimse_port, [path])[str(path)]
    # Some samples are image SOP classes without pixel data: stored with warning 0xB007.
    assert status == (0x0000 if "PixelData" in ds else 0xB007), hex(status)
    expected = str(ds.PatientName)
    row = server.query(
        "SELECT p.name_raw FROM instance i JOIN study s ON s.id = i.study_id JOIN patient p ON p.id = s.patient_id "
        "WHERE i.sop_uid = ? ORDER BY i.id DESC", ds.SOPInstanceUID)
    assert row[0][0].rstrip("=") == expected.rstrip("=")


def test_a_later_instance_fills_in_and_updates_only_what_changed(server):
    """The index writes a study's and a record's fields only when an instance brings something
    new (issue 22: repeating them rewrote every index on them for every instance)."""
    study, pid = generate_uid(), "FILL" + uuid.uuid4().hex[:6]
    first = ct(study=study, patient_id=pid)
    del first.AccessionNumber
    second = ct(study=study, series=first.SeriesInstanceUID, patient_id=pid)
    second.AccessionNumber, second.StudyDescription = "ACC-FILL", "胸部平扫"
    third = ct(study=study, series=first.SeriesInstanceUID, patient_id=pid)
    third.AccessionNumber, third.StudyDescription = "ACC-OTHER", "另一个"
    assoc = associate(server.dimse_port, contexts=[(CTImageStorage, ["1.2.840.10008.1.2.1"])])
    try:
        assert assoc.send_c_store(first).Status == 0
        (stamp,) = server.query("SELECT updated_at FROM patient WHERE patient_id = ?", pid)[0]
        assert server.query("SELECT accession_number, description FROM study WHERE study_uid = ?", study) == [(None, None)]
        assert assoc.send_c_store(second).Status == 0
        # Filled from the second; the third's different values do not overwrite them.
        assert assoc.send_c_store(third).Status == 0
        assert server.query("SELECT accession_number, description, num_instances FROM study WHERE study_uid = ?", study) == \
            [("ACC-FILL", "胸部平扫", 3)]
        # Same demographics: the record was not rewritten.
        assert server.query("SELECT updated_at FROM patient WHERE patient_id = ?", pid)[0][0] == stamp
        # A birth date that differs is taken.
        fourth = ct(study=study, series=first.SeriesInstanceUID, patient_id=pid)
        fourth.PatientBirthDate = "19800202"
        assert assoc.send_c_store(fourth).Status == 0
        assert server.query("SELECT birth_date FROM patient WHERE patient_id = ?", pid) == [("19800202",)]
    finally:
        assoc.release()
