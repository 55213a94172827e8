"""C-MOVE and C-GET SCP (PS3.4 C.4.2/C.4.3) with DCMTK movescu/storescp/getscu and pynetdicom."""
import subprocess
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (CTImageStorage, StudyRootQueryRetrieveInformationModelGet,
                                  StudyRootQueryRetrieveInformationModelMove, VLWholeSlideMicroscopyImageStorage)

from conftest import TEST_FILES, cli, free_port
from helpers import DCMTK_ENV, associate, ct, dataset_bytes, dcmtk, store_files, to_bytes

GET = StudyRootQueryRetrieveInformationModelGet
MOVE = StudyRootQueryRetrieveInformationModelMove


@pytest.fixture(scope="module")
def study(server):
    study, series = generate_uid(), generate_uid()
    sent = {}
    assoc = associate(server.dimse_port, contexts=[(CTImageStorage, ["1.2.840.10008.1.2.1"])])
    for i in range(6):
        ds = ct(study=study, series=series, patient_id="RT1", rows=64, cols=64)
        ds.InstanceNumber = i + 1
        assert assoc.send_c_store(ds).Status == 0
        sent[ds.SOPInstanceUID] = dataset_bytes(to_bytes(ds))
    assoc.release()
    return study, series, sent


def stored(server, sop):
    key = server.query("SELECT blob_key FROM instance WHERE sop_uid = ? AND lifecycle = 'active'", sop)[0][0]
    return dataset_bytes(server.object_bytes(key))


def test_movescu_to_storescp(server, study, tmp_path):
    port = free_port()
    cli(server.data_dir, "ae", "add", "--institution", "county", "--ae-title", "STORESCP", "--host", "127.0.0.1", "--port", str(port))
    out = tmp_path / "received"
    out.mkdir()
    scp = subprocess.Popen(["/usr/bin/storescp", "+xa", "-aet", "STORESCP", "-od", str(out), str(port)], env=DCMTK_ENV,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(0.3)
        r = dcmtk("movescu", "-S", "-v", "-aet", "COUNTY", "-aec", "HUREN", "-aem", "STORESCP",
                  "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study[0]}", "127.0.0.1", str(server.dimse_port))
        assert r.returncode == 0, r.stderr
        files = list(out.iterdir())
        assert len(files) == 6, r.stderr
        for f in files:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
            assert dataset_bytes(f.read_bytes()) == stored(server, ds.SOPInstanceUID)
    finally:
        scp.terminate()
        scp.wait(timeout=10)


def move_study(server, study_uid, destination):
    """A study-level C-MOVE from the county's peer; the statuses of its responses."""
    assoc = associate(server.dimse_port, contexts=[(MOVE, ["1.2.840.10008.1.2"])])
    ident = pydicom.Dataset()
    ident.QueryRetrieveLevel = "STUDY"
    ident.StudyInstanceUID = study_uid
    statuses = [s.Status for s, _ in assoc.send_c_move(ident, destination, MOVE)]
    assoc.release()
    return statuses


def test_move_unknown_destination_is_a801(server, study):
    statuses = move_study(server, study[0], "NOWHERE")
    assert statuses == [0xA801]


def get(server, ident, storage_contexts):
    received = {}

    def on_store(event):
        received[event.request.AffectedSOPInstanceUID] = event.request.DataSet.getvalue()
        return 0x0000

    ae = AE(ae_title="COUNTY")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    ae.add_requested_context(GET)
    roles = []
    for sop, tss in storage_contexts:
        ae.add_requested_context(sop, tss)
        roles.append(build_role(sop, scp_role=True))
    assoc = ae.associate("127.0.0.1", server.dimse_port, ae_title="HUREN", ext_neg=roles,
                         evt_handlers=[(evt.EVT_C_STORE, on_store)])
    assert assoc.is_established
    responses = list(assoc.send_c_get(ident, GET))
    assoc.release()
    return responses, received


def test_cget_with_role_selection(server, study):
    ident = pydicom.Dataset()
    ident.QueryRetrieveLevel = "SERIES"
    ident.StudyInstanceUID, ident.SeriesInstanceUID = study[0], study[1]
    responses, received = get(server, ident, [(CTImageStorage, ["1.2.840.10008.1.2.1"])])
    statuses = [s.Status for s, _ in responses]
    assert statuses[-1] == 0x0000 and statuses.count(0xFF00) == 6
    final = responses[-1][0]
    assert final.NumberOfCompletedSuboperations == 6 and final.NumberOfFailedSuboperations == 0
    pending = responses[0][0]
    assert pending.NumberOfRemainingSuboperations == 5 and pending.NumberOfCompletedSuboperations == 1
    assert set(received) == set(study[2])
    for sop, data in received.items():
        assert data == stored(server, sop)


def test_cget_unconvertible_object_fails_b000(server, tmp_path):
    # An object huren cannot decode (JPEG XL), but the requestor accepts only Explicit VR LE.
    from helpers import undecodable_object
    path = tmp_path / "jxl.dcm"
    ds = undecodable_object(path)
    assert store_files(server.dimse_port, [path])[str(path)] == 0
    ident = pydicom.Dataset()
    ident.QueryRetrieveLevel = "IMAGE"
    ident.StudyInstanceUID, ident.SeriesInstanceUID, ident.SOPInstanceUID = ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
    responses, received = get(server, ident, [(ds.SOPClassUID, ["1.2.840.10008.1.2.1"])])
    final, failed_ident = responses[-1]
    assert final.Status == 0xB000 and final.NumberOfFailedSuboperations == 1 and received == {}
    assert failed_ident is not None and failed_ident.FailedSOPInstanceUIDList == ds.SOPInstanceUID
    # Accepting the stored syntax, the same object arrives unchanged.
    responses, received = get(server, ident, [(ds.SOPClassUID, [ds.file_meta.TransferSyntaxUID])])
    assert responses[-1][0].Status == 0 and received[ds.SOPInstanceUID] == stored(server, ds.SOPInstanceUID)


def test_getscu_dcmtk(server, study, tmp_path):
    out = tmp_path / "got"
    out.mkdir()
    r = dcmtk("getscu", "-S", "-aet", "COUNTY", "-aec", "HUREN", "-od", str(out), "-k", "QueryRetrieveLevel=STUDY",
              "-k", f"StudyInstanceUID={study[0]}", "127.0.0.1", str(server.dimse_port))
    assert r.returncode == 0, r.stderr
    assert len(list(out.iterdir())) == 6


def test_cget_reencodes_native_syntaxes(server, study):
    # Stored Explicit VR LE; the requestor accepts only Implicit VR LE for CT.
    ident = pydicom.Dataset()
    ident.QueryRetrieveLevel = "SERIES"
    ident.StudyInstanceUID, ident.SeriesInstanceUID = study[0], study[1]
    responses, received = get(server, ident, [(CTImageStorage, ["1.2.840.10008.1.2"])])
    assert responses[-1][0].Status == 0 and len(received) == 6
    import io
    from pydicom.filereader import read_dataset
    for sop, data in received.items():
        got = read_dataset(io.BytesIO(data), is_implicit_VR=True, is_little_endian=True)
        orig = read_dataset(io.BytesIO(stored(server, sop)), is_implicit_VR=False, is_little_endian=True)
        assert got.PixelData == orig.PixelData and got.PatientName == orig.PatientName and got.SOPInstanceUID == sop
    # Stored Big Endian; the requestor takes Explicit VR LE: pixel words are swapped correctly.
    path = TEST_FILES / "MR_small_bigendian.dcm"
    assert store_files(server.dimse_port, [path])[str(path)] == 0
    big = pydicom.dcmread(path)
    ident = pydicom.Dataset()
    ident.QueryRetrieveLevel = "IMAGE"
    ident.StudyInstanceUID, ident.SeriesInstanceUID, ident.SOPInstanceUID = big.StudyInstanceUID, big.SeriesInstanceUID, big.SOPInstanceUID
    responses, received = get(server, ident, [(big.SOPClassUID, ["1.2.840.10008.1.2.1"])])
    assert responses[-1][0].Status == 0
    got = read_dataset(io.BytesIO(received[big.SOPInstanceUID]), is_implicit_VR=False, is_little_endian=True)
    import numpy as np
    assert (np.frombuffer(got.PixelData, "<u2") == np.frombuffer(big.PixelData, ">u2")).all() and got.Rows == big.Rows


def test_movescu_to_plain_storescp_gets_converted_objects(server, tmp_path):
    # storescp without +xa accepts only uncompressed little-endian syntaxes.
    path = TEST_FILES / "MR_small_bigendian.dcm"
    assert store_files(server.dimse_port, [path])[str(path)] == 0
    big = pydicom.dcmread(path)
    port = free_port()
    cli(server.data_dir, "ae", "add", "--institution", "county", "--ae-title", "PLAINSCP", "--host", "127.0.0.1", "--port", str(port))
    out = tmp_path / "plain"
    out.mkdir()
    scp = subprocess.Popen(["/usr/bin/storescp", "-aet", "PLAINSCP", "-od", str(out), str(port)], env=DCMTK_ENV,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(0.3)
        r = dcmtk("movescu", "-S", "-aet", "COUNTY", "-aec", "HUREN", "-aem", "PLAINSCP", "-k", "QueryRetrieveLevel=IMAGE",
                  "-k", f"StudyInstanceUID={big.StudyInstanceUID}", "-k", f"SeriesInstanceUID={big.SeriesInstanceUID}",
                  "-k", f"SOPInstanceUID={big.SOPInstanceUID}", "127.0.0.1", str(server.dimse_port))
        assert r.returncode == 0, r.stderr
        (f,) = list(out.iterdir())
        got = pydicom.dcmread(f)
        assert got.file_meta.TransferSyntaxUID != "1.2.840.10008.1.2.2"
        assert (got.pixel_array == big.pixel_array).all()
    finally:
        scp.terminate()
        scp.wait(timeout=10)


def test_cget_decodes_compressed_for_a_native_only_peer(server):
    # RLE stored; the requestor accepts only Explicit VR LE: the object arrives decoded.
    path = TEST_FILES / "MR_small_RLE.dcm"
    assert store_files(server.dimse_port, [path])[str(path)] == 0
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    ident = pydicom.Dataset()
    ident.QueryRetrieveLevel = "IMAGE"
    ident.StudyInstanceUID, ident.SeriesInstanceUID, ident.SOPInstanceUID = ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
    responses, received = get(server, ident, [(ds.SOPClassUID, ["1.2.840.10008.1.2.1"])])
    assert responses[-1][0].Status == 0
    import io
    from pydicom.filereader import read_dataset
    got = read_dataset(io.BytesIO(received[ds.SOPInstanceUID]), is_implicit_VR=False, is_little_endian=True)
    assert got.PixelData == pydicom.dcmread(TEST_FILES / "MR_small.dcm").PixelData


def test_move_to_unreachable_destination_is_a702(server, study):
    port = free_port()  # nothing listens here
    cli(server.data_dir, "ae", "add", "--institution", "county", "--ae-title", "OFFLINE", "--host", "127.0.0.1", "--port", str(port))
    statuses = move_study(server, study[0], "OFFLINE")
    assert statuses == [0xA702]


def test_move_to_another_institutions_destination_is_refused_0124(server, study):
    """A county system may not push the study into the city hospital's PACS (PS3.7 0x0124)."""
    port = free_port()
    cli(server.data_dir, "ae", "add", "--institution", "city", "--ae-title", "CITYPACS", "--host", "127.0.0.1", "--port", str(port))
    statuses = move_study(server, study[0], "CITYPACS")
    assert statuses == [0x0124]
    refused = server.query("SELECT COUNT(*) FROM audit_event WHERE action = 'patient_data_accessed' AND outcome = 'failure' "
                           "AND object = 'move-to:CITYPACS'")
    assert refused == [(1,)]
