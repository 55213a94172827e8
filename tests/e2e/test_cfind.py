"""C-FIND SCP (PS3.4 C.4.1) against pynetdicom and DCMTK findscu."""
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom.sop_class import (CTImageStorage, PatientRootQueryRetrieveInformationModelFind,
                                  StudyRootQueryRetrieveInformationModelFind)

from helpers import associate, ct, dcmtk

STUDY_ROOT = StudyRootQueryRetrieveInformationModelFind
PATIENT_ROOT = PatientRootQueryRetrieveInformationModelFind


@pytest.fixture(scope="module")
def data(server):
    out = {}
    assoc = associate(server.dimse_port, contexts=[(CTImageStorage, ["1.2.840.10008.1.2.1"])])
    for pid, name, date, n in [("CF1", "Xu^Hua=徐^华", "20250310", 4), ("CF2", "Xu^Lan=许^兰", "20230102", 2), ("CF3", "Xu^Bo=徐^波", "20250311", 120)]:
        study, series = generate_uid(), generate_uid()
        for i in range(n):
            ds = ct(study=study, series=series, patient_id=pid, name=name, rows=8, cols=8)
            ds.StudyDate = date
            ds.InstanceNumber = i + 1
            assert assoc.send_c_store(ds).Status == 0
        out[pid] = (study, series)
    assoc.release()
    return out


def find(server, identifier, model=STUDY_ROOT, ts="1.2.840.10008.1.2"):
    assoc = associate(server.dimse_port, contexts=[(model, [ts])])
    assert assoc.is_established
    results = []
    statuses = []
    for status, ident in assoc.send_c_find(identifier, model):
        statuses.append(status.Status)
        if ident is not None and status.Status in (0xFF00, 0xFF01):
            results.append(ident)
    assoc.release()
    return statuses, results


def q(level, **kw):
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.QueryRetrieveLevel = level
    for k, v in kw.items():
        setattr(ds, k, v)
    return ds


def test_study_level_chinese_wildcard(server, data):
    statuses, res = find(server, q("STUDY", PatientName="徐*", PatientID="CF*", StudyInstanceUID="", StudyDate="",
                                   NumberOfStudyRelatedInstances="", ModalitiesInStudy=""))
    ids = sorted(str(r.PatientID) for r in res)
    assert ids == ["CF1", "CF3"]
    assert statuses[-1] == 0x0000 and set(statuses[:-1]) == {0xFF00}
    r = next(x for x in res if x.PatientID == "CF1")
    assert str(r.PatientName) == "Xu^Hua=徐^华" and r.NumberOfStudyRelatedInstances == 4 and r.ModalitiesInStudy == "CT"
    assert r.StudyInstanceUID == data["CF1"][0] and r.QueryRetrieveLevel == "STUDY"


def test_ranges_lists_and_explicit_vr(server, data):
    _, res = find(server, q("STUDY", StudyDate="20250101-", PatientID="CF?", StudyInstanceUID=""), ts="1.2.840.10008.1.2.1")
    assert sorted(r.PatientID for r in res) == ["CF1", "CF3"]
    _, res = find(server, q("STUDY", StudyDate="-20241231", PatientID="CF*"))
    assert [r.PatientID for r in res] == ["CF2"]
    uids = "\\".join([data["CF1"][0], data["CF2"][0]])
    _, res = find(server, q("STUDY", StudyInstanceUID=uids, PatientID=""))
    assert sorted(r.PatientID for r in res) == ["CF1", "CF2"]


def test_patient_series_image_levels(server, data):
    _, res = find(server, q("PATIENT", PatientID="CF1", PatientName="", IssuerOfPatientID=""), model=PATIENT_ROOT)
    assert len(res) == 1 and res[0].PatientID == "CF1" and res[0].IssuerOfPatientID
    _, res = find(server, q("SERIES", StudyInstanceUID=data["CF1"][0], SeriesInstanceUID="", Modality="", NumberOfSeriesRelatedInstances=""))
    assert [r.SeriesInstanceUID for r in res] == [data["CF1"][1]] and res[0].NumberOfSeriesRelatedInstances == 4
    _, res = find(server, q("IMAGE", StudyInstanceUID=data["CF1"][0], SeriesInstanceUID=data["CF1"][1], SOPInstanceUID="", InstanceNumber=""))
    assert [int(r.InstanceNumber) for r in res] == [1, 2, 3, 4]
    # PATIENT level is not part of the Study Root model.
    statuses, _ = find(server, q("PATIENT", PatientID="CF1"))
    assert statuses == [0xA900]


def test_issuer_scoping(server, data):
    _, res = find(server, q("STUDY", PatientID="CF1", IssuerOfPatientID="urn:nowhere", StudyInstanceUID=""))
    assert res == []
    _, res = find(server, q("STUDY", PatientID="CF1", IssuerOfPatientID="urn:huren:institution:county", StudyInstanceUID=""))
    assert len(res) == 1


def test_unsupported_optional_key_gives_ff01(server, data):
    statuses, res = find(server, q("STUDY", PatientID="CF1", InstitutionName="somewhere", StudyInstanceUID=""))
    assert statuses[:-1] == [0xFF01] * len(res) and len(res) == 1 and statuses[-1] == 0


def test_cancel_stops_with_fe00(server, data):
    assoc = associate(server.dimse_port, contexts=[(STUDY_ROOT, ["1.2.840.10008.1.2"])])
    # The request goes out when send_c_find is called; cancel at once, before reading responses.
    responses = assoc.send_c_find(q("IMAGE", PatientID="CF3", SOPInstanceUID=""), STUDY_ROOT, msg_id=77)
    cx = next(c for c in assoc.accepted_contexts if c.abstract_syntax == STUDY_ROOT)
    assoc.send_c_cancel(77, cx.context_id)
    statuses = [status.Status for status, _ in responses]
    assoc.release()
    assert statuses[-1] == 0xFE00 and len(statuses) < 121


def test_findscu_dcmtk(server, data):
    r = dcmtk("findscu", "-S", "-aet", "COUNTY", "-aec", "HUREN", "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientID=CF2",
              "-k", "StudyInstanceUID", "-k", "PatientName", "127.0.0.1", str(server.dimse_port), "-v")
    assert r.returncode == 0, r.stderr
    assert data["CF2"][0] in r.stderr and "Xu^Lan" in r.stderr
    assert "Find Response: 2 (Success)" in r.stderr or "(Success)" in r.stderr


def test_streams_more_than_one_page(server, tmp_path):
    """More matches than one database page (500): keyset pagination returns each exactly once."""
    study, series = generate_uid(), generate_uid()
    sops = set()
    for i in range(620):
        ds = ct(study=study, series=series, patient_id="CFPAGE", rows=2, cols=2)
        ds.InstanceNumber = i + 1
        ds.save_as(tmp_path / f"{i:04}.dcm", enforce_file_format=True)
        sops.add(ds.SOPInstanceUID)
    r = dcmtk("storescu", "-aet", "COUNTY", "-aec", "HUREN", "+sd", "127.0.0.1", str(server.dimse_port), str(tmp_path), timeout=300)
    assert r.returncode == 0, r.stderr[-500:]
    statuses, res = find(server, q("IMAGE", StudyInstanceUID=study, SOPInstanceUID=""))
    got = [str(x.SOPInstanceUID) for x in res]
    assert len(got) == 620 and set(got) == sops and statuses[-1] == 0


def test_dimse_reads_are_audited_per_association_and_study(server):
    """Issue #6: one read event per association × study, however many queries it carries."""
    import uuid

    from test_persons import store
    pid = "AA" + uuid.uuid4().hex[:6]
    ds = ct(patient_id=pid)
    store(server, ds)
    ident = q("STUDY", PatientID=pid, StudyInstanceUID="")
    # Two queries on one association, then one on another.
    assoc = associate(server.dimse_port, contexts=[(STUDY_ROOT, ["1.2.840.10008.1.2"])])
    for _ in range(2):
        assert [s.Status for s, _ in assoc.send_c_find(ident, STUDY_ROOT)][-1] == 0
    assoc.release()
    find(server, ident)
    rows = server.query("SELECT json_extract(detail, '$.association') FROM audit_event "
                        "WHERE action = 'patient_data_accessed' AND study_uid = ?", ds.StudyInstanceUID)
    assert len(rows) == 2 and len({r[0] for r in rows}) == 2 and all(r[0].startswith("association:") for r in rows)
