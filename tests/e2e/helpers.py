import io
import subprocess

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, build_context

DCMTK_ENV = {"TCP_NODELAY": "1", "PATH": "/usr/bin:/bin"}


def dcmtk(tool, *args, timeout=120):
    return subprocess.run([f"/usr/bin/{tool}", *args], capture_output=True, text=True, env=DCMTK_ENV, timeout=timeout)


def ct(patient_id="P1", name="Zhang^San=张^三", study=None, series=None, sop=None, rows=16, cols=16,
       charset="ISO_IR 192", institution=None, pixels=True, sop_class="1.2.840.10008.5.1.4.1.1.2"):
    ds = Dataset()
    ds.SpecificCharacterSet = charset
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop or generate_uid()
    ds.StudyInstanceUID = study or generate_uid()
    ds.SeriesInstanceUID = series or generate_uid()
    ds.Modality = "CT"
    ds.StudyDate = "20250301"
    ds.StudyTime = "101500"
    ds.PatientID = patient_id
    ds.PatientName = name
    ds.PatientBirthDate = "19800101"
    ds.PatientSex = "M"
    ds.AccessionNumber = "ACC1"
    if institution:
        ds.InstitutionName = institution
    if pixels:
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = bytes(rows * cols * 2)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def to_bytes(ds):
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def dataset_bytes(part10: bytes) -> bytes:
    """The data set of a Part 10 file: what DIMSE carries and what must be stored unchanged."""
    assert part10[128:132] == b"DICM"
    group_len = int.from_bytes(part10[140:144], "little")
    return part10[144 + group_len:]


def associate(port, calling="COUNTY", called="HUREN", contexts=None, bind="127.0.0.1", timeout=30):
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    for c in contexts or []:
        ae.add_requested_context(*c) if isinstance(c, tuple) else ae.add_requested_context(c)
    return ae.associate("127.0.0.1", port, ae_title=called, bind_address=(bind, 0))


def store_files(port, paths, calling="COUNTY"):
    """Sends files as they are (their own transfer syntax), returns {path: status}."""
    metas = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    contexts = {}
    for m in metas:
        key = (m.file_meta.MediaStorageSOPClassUID, m.file_meta.TransferSyntaxUID)
        contexts[key] = True
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    for sop, ts in contexts:
        ae.add_requested_context(sop, [ts])
    assoc = ae.associate("127.0.0.1", port, ae_title="HUREN")
    assert assoc.is_established, "association failed"
    out = {}
    try:
        for p in paths:
            rsp = assoc.send_c_store(str(p))
            out[str(p)] = rsp.Status if rsp else None
    finally:
        assoc.release()
    return out


def raw_store(assoc, sop_class, sop_instance, data: bytes, msg_id=1):
    """Sends `data` as the C-STORE data set exactly as given (pynetdicom's send_c_store
    re-encodes datasets, which would repair the malformed input these tests need).
    Returns (Status, ErrorComment, MessageIDBeingRespondedTo)."""
    import time
    from io import BytesIO
    from pynetdicom.dimse_primitives import C_STORE
    req = C_STORE()
    req.MessageID = msg_id
    req.AffectedSOPClassUID = sop_class
    req.AffectedSOPInstanceUID = sop_instance
    req.Priority = 2
    req.DataSet = BytesIO(data)
    cx = next(c for c in assoc.accepted_contexts if c.abstract_syntax == sop_class)
    assoc._reactor_checkpoint.clear()
    while not assoc._is_paused:
        time.sleep(0.0001)
    try:
        assoc.dimse.send_msg(req, cx.context_id)
        _, rsp = assoc.dimse.get_msg(block=True)
    finally:
        assoc._reactor_checkpoint.set()
    return rsp.Status, rsp.ErrorComment, rsp.MessageIDBeingRespondedTo


def undecodable_object(path_out):
    """A JPEG baseline object relabelled JPEG XL (1.2.840.10008.1.2.4.112): huren stores it as
    received, but has no JPEG XL decoder, so it cannot convert it to anything."""
    import pydicom
    from pydicom.uid import generate_uid
    from conftest import TEST_FILES
    ds = pydicom.dcmread(TEST_FILES / "SC_rgb_jpeg_dcmtk.dcm")
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.112"
    ds.save_as(path_out, enforce_file_format=True)
    return ds


# Headless Chromium as the browser tests run it (Playwright drives Debian's build by path).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic", "--use-gl=swiftshader",
                 "--enable-unsafe-swiftshader"]


def multipart_parts(resp):
    """The bodies of a multipart/related response, in order."""
    boundary = resp.headers["content-type"].split("boundary=")[1].split(";")[0].strip('"').encode()
    out = []
    for chunk in resp.content.split(b"--" + boundary)[1:-1]:
        _, _, body = chunk.partition(b"\r\n\r\n")
        out.append(body[:-2] if body.endswith(b"\r\n") else body)
    return out
