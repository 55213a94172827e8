"""Pixel Data that does not match its own header is refused (issue 22, item 3; docs/ingest.md,
"Damaged pixel data"): through DIMSE with 0xC000 and an ErrorComment naming both lengths,
through STOW-RS with FailureReason 0xC000; nothing of the object is kept, and the server
goes on storing good objects on the same association."""
import requests
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit, generate_uid
from pynetdicom.sop_class import CTImageStorage

from conftest import cli
from helpers import associate, ct, to_bytes

EXPLICIT = "1.2.840.10008.1.2.1"


def short(rows=32, cols=32, missing=100):
    ds = ct(rows=rows, cols=cols)
    ds.PixelData = bytes(rows * cols * 2 - missing)
    return ds


def long(rows=32, cols=32):
    ds = ct(rows=rows, cols=cols)
    ds.PixelData = bytes(rows * cols * 2 + 64)
    return ds


def too_few_fragments():
    """Three frames declared, two fragments sent (PS3.5 §A.4: a frame is at least one)."""
    ds = ct(rows=8, cols=8)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.NumberOfFrames = 3
    jpeg = b"\xff\xd8" + bytes(30) + b"\xff\xd9"
    ds.PixelData = encapsulate([jpeg, jpeg])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    return ds


def stored(server, ds):
    return server.query("SELECT COUNT(*) FROM instance WHERE sop_uid = ?", ds.SOPInstanceUID)[0][0]


def test_damaged_pixel_data_is_refused_over_dimse(server):
    # Encapsulated, on an association that offers only JPEG Baseline.
    assoc = associate(server.dimse_port, contexts=[(CTImageStorage, [JPEGBaseline8Bit])])
    assert assoc.is_established
    try:
        frames = too_few_fragments()
        rsp = assoc.send_c_store(frames)
        assert rsp.Status == 0xC000 and "2 fragments for 3 frames" in str(rsp.ErrorComment)
        assert stored(server, frames) == 0
    finally:
        assoc.release()
    assoc = associate(server.dimse_port, contexts=[(CTImageStorage, [EXPLICIT])])
    assert assoc.is_established
    try:
        for ds, sent in ((short(), 2048 - 100), (long(), 2048 + 64)):
            rsp = assoc.send_c_store(ds)
            assert rsp.Status == 0xC000, hex(rsp.Status)
            comment = str(rsp.ErrorComment)
            assert f"{sent} bytes" in comment and "2048" in comment, comment
            assert stored(server, ds) == 0
        # The exact size still stores, and the association goes on.
        good = ct(rows=32, cols=32)
        assert assoc.send_c_store(good).Status == 0x0000
        assert stored(server, good) == 1
    finally:
        assoc.release()


def test_damaged_pixel_data_is_a_failed_part_of_stow(server):
    t = cli(server.data_dir, "token", "create", "--institution", "city")
    boundary = "damage-boundary"
    good, bad = ct(), short()
    body = b""
    for part in (to_bytes(good), to_bytes(bad), to_bytes(too_few_fragments())):
        body += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + part + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    r = requests.post(f"{server.url}/dicom-web/studies", data=body,
                      headers={"Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
                               "Authorization": f"Bearer {t}"})
    assert r.status_code == 202, r.text
    j = r.json()
    assert len(j["00081199"]["Value"]) == 1
    failed = j["00081198"]["Value"]
    assert [f["00081197"]["Value"] for f in failed] == [[0xC000], [0xC000]]
    assert {f["00081155"]["Value"][0] for f in failed} >= {bad.SOPInstanceUID}
    assert stored(server, good) == 1 and stored(server, bad) == 0
    # Only damaged parts: nothing stored, 409.
    body = f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + to_bytes(short()) + f"\r\n--{boundary}--\r\n".encode()
    r = requests.post(f"{server.url}/dicom-web/studies", data=body,
                      headers={"Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
                               "Authorization": f"Bearer {t}"})
    assert r.status_code == 409


def test_a_different_study_uid_is_refused_not_confused(server):
    """A damaged object with a fresh study leaves no study behind."""
    study = generate_uid()
    assoc = associate(server.dimse_port, contexts=[(CTImageStorage, [EXPLICIT])])
    try:
        ds = short()
        ds.StudyInstanceUID = study
        assert assoc.send_c_store(ds).Status == 0xC000
    finally:
        assoc.release()
    assert server.query("SELECT COUNT(*) FROM study WHERE study_uid = ?", study)[0][0] == 0
