"""QIDO-RS and WADO-RS (PS3.18 §10.4, §10.6) with dicomweb-client and raw requests."""
import io
from pathlib import Path

import pytest
import pydicom
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.uid import generate_uid
from pynetdicom.sop_class import CTImageStorage

from conftest import TEST_FILES, cli
from helpers import associate, ct, dataset_bytes, store_files


@pytest.fixture(scope="module")
def region(server):
    """Two patients with Chinese names, CT and MR studies, sent over DIMSE."""
    t = cli(server.data_dir, "token", "create", "--institution", "city", "--scope", "read:region")
    studies = {}
    assoc = associate(server.dimse_port, contexts=[(CTImageStorage, ["1.2.840.10008.1.2.1"]),
                                                    ("1.2.840.10008.5.1.4.1.1.4", ["1.2.840.10008.1.2.1"])])
    for pid, name, date, n in [("QW1", "Xu^Ming=徐^明", "20250301", 5), ("QW2", "Xu^Li=许^丽", "20240615", 3)]:
        study, series = generate_uid(), generate_uid()
        for i in range(n):
            ds = ct(study=study, series=series, patient_id=pid, name=name, rows=32, cols=32)
            ds.StudyDate = date
            ds.InstanceNumber = i + 1
            ds.StudyDescription = "胸部CT平扫"
            assert assoc.send_c_store(ds).Status == 0
        studies[pid] = (study, series)
    assoc.release()
    client = DICOMwebClient(url=server.url + "/dicom-web", headers={"Authorization": f"Bearer {t}"})
    return client, studies, t


def test_qido_studies_by_chinese_name_wildcard(region):
    client, studies, _ = region
    found = client.search_for_studies(search_filters={"PatientName": "徐*"})
    uids = {s["0020000D"]["Value"][0] for s in found}
    assert studies["QW1"][0] in uids and studies["QW2"][0] not in uids
    s = next(x for x in found if x["0020000D"]["Value"][0] == studies["QW1"][0])
    assert s["00100010"]["Value"][0]["Ideographic"] == "徐^明"
    assert s["00201208"]["Value"] == [5] and s["00201206"]["Value"] == [1] and s["00080061"]["Value"] == ["CT"]


def test_qido_matching_kinds(region):
    client, studies, _ = region
    by_date = client.search_for_studies(search_filters={"StudyDate": "20250101-", "PatientID": "QW*"})
    assert {s["00100020"]["Value"][0] for s in by_date} == {"QW1"}
    before = client.search_for_studies(search_filters={"StudyDate": "-20241231", "PatientID": "QW?"})
    assert {s["00100020"]["Value"][0] for s in before} == {"QW2"}
    both = client.search_for_studies(search_filters={"StudyInstanceUID": f"{studies['QW1'][0]},{studies['QW2'][0]}"})
    assert len(both) == 2
    assert client.search_for_studies(search_filters={"PatientID": "QW1", "ModalitiesInStudy": "MR"}) == []
    assert len(client.search_for_studies(search_filters={"PatientID": "QW1", "ModalitiesInStudy": "CT"})) == 1
    assert client.search_for_studies(search_filters={"PatientID": "nobody"}) == []  # 200 with an empty array


def test_qido_series_and_instances(region):
    client, studies, _ = region
    study, series = studies["QW1"]
    found = client.search_for_series(study, fields=["all"])
    assert [s["0020000E"]["Value"][0] for s in found] == [series]
    assert found[0]["00201209"]["Value"] == [5] and found[0]["00080060"]["Value"] == ["CT"]
    inst = client.search_for_instances(study, series)
    assert [i["00200013"]["Value"][0] for i in inst] == [1, 2, 3, 4, 5]
    limited = client.search_for_instances(study, series, limit=2, offset=2)
    assert [i["00200013"]["Value"][0] for i in limited] == [3, 4]
    full = client.search_for_instances(study, series, fields=["all"], limit=1)
    assert full[0]["00280010"]["Value"] == [32]


def test_qido_bad_input(region, server):
    _, _, t = region
    h = {"Authorization": f"Bearer {t}"}
    assert requests.get(server.url + "/dicom-web/studies?NoSuchKey=1", headers=h).status_code == 400
    assert requests.get(server.url + "/dicom-web/studies?StudyDate=2025-01-01", headers=h).status_code == 400
    assert requests.get(server.url + "/dicom-web/studies?limit=-1", headers=h).status_code == 400
    assert requests.get(server.url + "/dicom-web/studies").status_code == 401
    r = requests.get(server.url + "/dicom-web/studies?limit=5000", headers=h)
    assert r.status_code == 200 and "299" in r.headers["warning"]


def test_wado_metadata_has_bulk_uris_and_current_patient(region):
    client, studies, _ = region
    study, series = studies["QW1"]
    md = client.retrieve_series_metadata(study, series)
    assert len(md) == 5
    uri = md[0]["7FE00010"]["BulkDataURI"]
    assert uri.startswith("http") and f"/studies/{study}/series/{series}/instances/" in uri
    assert md[0]["00100010"]["Value"][0]["Ideographic"] == "徐^明"
    assert md[0]["00100021"]["Value"][0]  # issuer scoping is visible
    assert len(client.retrieve_study_metadata(study)) == 5


def test_wado_instance_as_stored(region, server):
    client, studies, t = region
    study, series = studies["QW1"]
    sop = client.search_for_instances(study, series, limit=1)[0]["00080018"]["Value"][0]
    ds = client.retrieve_instance(study, series, sop, media_types=(("application/dicom", "*"),))
    key = server.query("SELECT blob_key FROM instance WHERE sop_uid = ?", sop)[0][0]
    stored = server.object_bytes(key)
    import io
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    assert pydicom.dcmread(io.BytesIO(stored)).PixelData == ds.PixelData
    series_objs = client.retrieve_series(study, series, media_types=(("application/dicom", "*"),))
    assert len(series_objs) == 5


def test_wado_frames_native_and_encapsulated(region, server):
    client, studies, t = region
    study, series = studies["QW1"]
    sop = client.search_for_instances(study, series, limit=1)[0]["00080018"]["Value"][0]
    frames = client.retrieve_instance_frames(study, series, sop, frame_numbers=[1], media_types=(("application/octet-stream", "*"),))
    assert len(frames) == 1 and len(frames[0]) == 32 * 32 * 2
    # A multi-frame JPEG baseline object: each frame is its own JPEG codestream.
    path = TEST_FILES / "examples_ybr_color.dcm"
    assert store_files(server.dimse_port, [path])[str(path)] == 0
    ds = pydicom.dcmread(path)
    f = client.retrieve_instance_frames(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, frame_numbers=[2, 30],
                                        media_types=(("image/jpeg", "1.2.840.10008.1.2.4.50"),))
    from pydicom.encaps import generate_frames
    expected = list(generate_frames(ds.PixelData, number_of_frames=int(ds.NumberOfFrames)))
    assert f[0] == expected[1] and f[1] == expected[29]
    h = {"Authorization": f"Bearer {t}", "Accept": "multipart/related; type=\"application/octet-stream\""}
    base = f"{server.url}/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    # Uncompressed on request: just that frame is decoded (JPEG baseline, YBR → RGB).
    r = requests.get(base + "/frames/2", headers=h)
    assert r.status_code == 200
    (head, body), = split_multipart(r)
    import numpy as np
    ours = np.frombuffer(body, np.uint8).reshape(ds.Rows, ds.Columns, 3).astype(float)
    ref = pydicom.dcmread(path).pixel_array[1].astype(float)  # pydicom converts YBR to RGB too
    assert np.abs(ours - ref).mean() < 3  # two JPEG decoders agree to within rounding
    assert requests.get(base + "/frames/99", headers={**h, "Accept": "multipart/related; type=\"application/octet-stream\"; transfer-syntax=*"}).status_code == 404
    assert requests.get(base + "/frames/x", headers=h).status_code == 400


def test_wado_not_found_and_not_acceptable(region, server, tmp_path):
    _, studies, t = region
    h = {"Authorization": f"Bearer {t}"}
    assert requests.get(f"{server.url}/dicom-web/studies/1.2.3.4/metadata", headers=h).status_code == 404
    # Implicit VR stored; the default (Explicit VR LE) is produced by re-encoding, losslessly.
    path = TEST_FILES / "MR_small_implicit.dcm"
    assert store_files(server.dimse_port, [path])[str(path)] == 0
    ds = pydicom.dcmread(path)
    url = f"{server.url}/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    client = DICOMwebClient(url=server.url + "/dicom-web", headers={"Authorization": f"Bearer {t}"})
    got = client.retrieve_instance(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID,
                                   media_types=(("application/dicom", "1.2.840.10008.1.2.1"),))
    assert got.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert got.PixelData == ds.PixelData and got.PatientName == ds.PatientName
    strip = lambda d: {e.tag: e.value for e in d if e.tag.element != 0 and e.tag.group != 0x0002}
    assert strip(got) == strip(ds)
    r = requests.get(url, headers={**h, "Accept": "multipart/related; type=\"application/dicom\"; transfer-syntax=*"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("multipart/related")
    # An object huren cannot decode (JPEG XL): 406 rather than a wrong answer.
    from helpers import undecodable_object
    path = tmp_path / "jxl.dcm"
    j = undecodable_object(path)
    assert store_files(server.dimse_port, [path])[str(path)] == 0
    url = f"{server.url}/dicom-web/studies/{j.StudyInstanceUID}/series/{j.SeriesInstanceUID}/instances/{j.SOPInstanceUID}"
    assert requests.get(url, headers={**h, "Accept": "multipart/related; type=\"application/dicom\""}).status_code == 406
    # A JPEG 2000 lossless object asked for by default comes back decoded, pixel for pixel.
    path = TEST_FILES / "MR_small_jp2klossless.dcm"
    assert store_files(server.dimse_port, [path])[str(path)] == 0
    j = pydicom.dcmread(path, stop_before_pixels=True)
    got = client.retrieve_instance(j.StudyInstanceUID, j.SeriesInstanceUID, j.SOPInstanceUID,
                                   media_types=(("application/dicom", "1.2.840.10008.1.2.1"),))
    assert got.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert got.PixelData == pydicom.dcmread(TEST_FILES / "MR_small.dcm").PixelData


def split_multipart(resp):
    boundary = resp.headers["content-type"].split("boundary=")[1].strip('"').encode()
    parts = []
    for chunk in resp.content.split(b"--" + boundary)[1:-1]:
        head, _, body = chunk.partition(b"\r\n\r\n")
        parts.append((head.decode(), body[:-2] if body.endswith(b"\r\n") else body))
    return parts


def test_wado_series_transcoded_to_implicit(region, server):
    import io
    _, studies, t = region
    study, series = studies["QW1"]
    r = requests.get(f"{server.url}/dicom-web/studies/{study}/series/{series}",
                     headers={"Authorization": f"Bearer {t}", "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2'})
    assert r.status_code == 200
    parts = split_multipart(r)
    assert len(parts) == 5
    for head, body in parts:
        assert "transfer-syntax=1.2.840.10008.1.2\r" in head + "\r"
        ds = pydicom.dcmread(io.BytesIO(body))
        assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2" and len(ds.PixelData) == 32 * 32 * 2


def test_wado_bulk(region, server):
    client, studies, t = region
    study, series = studies["QW2"]
    md = client.retrieve_series_metadata(study, series)
    uri = md[0]["7FE00010"]["BulkDataURI"]
    data = client.retrieve_bulkdata(uri)
    assert len(data[0]) == 32 * 32 * 2


def test_series_metadata_etag_and_cache(region, server):
    _, _, t = region
    h = {"Authorization": f"Bearer {t}"}
    study, series = generate_uid(), generate_uid()
    assoc = associate(server.dimse_port, contexts=[(CTImageStorage, ["1.2.840.10008.1.2.1"])])
    for i in range(3):
        assert assoc.send_c_store(ct(study=study, series=series, patient_id="ET1", rows=8, cols=8)).Status == 0
    url = f"{server.url}/dicom-web/studies/{study}/series/{series}/metadata"
    r1 = requests.get(url, headers=h)
    assert r1.status_code == 200 and len(r1.json()) == 3
    etag = r1.headers["etag"]
    assert r1.json()[0]["7FE00010"]["BulkDataURI"].startswith(server.url + "/dicom-web/studies/")
    assert server.query("SELECT COUNT(*) FROM series_metadata s JOIN series x ON x.id = s.series_id WHERE x.series_uid = ?", series) == [(1,)]
    r2 = requests.get(url, headers={**h, "If-None-Match": etag})
    assert r2.status_code == 304 and r2.headers["etag"] == etag and r2.content == b""
    r3 = requests.get(url, headers=h)  # served from the cache, same document
    assert r3.json() == r1.json()
    # A late instance changes the ETag and the document.
    assert assoc.send_c_store(ct(study=study, series=series, patient_id="ET1", rows=8, cols=8)).Status == 0
    assoc.release()
    r4 = requests.get(url, headers={**h, "If-None-Match": etag})
    assert r4.status_code == 200 and r4.headers["etag"] != etag and len(r4.json()) == 4
    # Rejecting the study changes it again: nothing to serve.
    cli(server.data_dir, "study", "reject", "--study-uid", study, "--reason", "test")
    assert requests.get(url, headers=h).status_code == 404


def test_ohif_request_sequence(region, server):
    """The requests OHIF v3 makes to open a study, as its DICOMweb data source sends them."""
    import concurrent.futures
    _, studies, t = region
    h = {"Authorization": f"Bearer {t}", "Accept": "application/dicom+json"}
    base = server.url + "/dicom-web"
    # 1. Study list.
    r = requests.get(f"{base}/studies?limit=101&offset=0&fuzzymatching=false&includefield=00081030%2C00080060&PatientName=%E5%BE%90*", headers=h)
    assert r.status_code == 200
    study = next(s for s in r.json() if s["0020000D"]["Value"][0] == studies["QW1"][0])
    for tag in ("00080020", "00080050", "00100010", "00100020", "00201208", "00080061", "00081030"):
        assert tag in study
    # 2. The viewer route queries the study by UID, then its series.
    uid = studies["QW1"][0]
    assert len(requests.get(f"{base}/studies?StudyInstanceUID={uid}", headers=h).json()) == 1
    series = requests.get(f"{base}/studies/{uid}/series", headers=h).json()
    assert series and all("0020000E" in s and "00201209" in s for s in series)
    # 3. Series metadata, in parallel.
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        metas = list(ex.map(lambda s: requests.get(f"{base}/studies/{uid}/series/{s['0020000E']['Value'][0]}/metadata", headers=h), series))
    assert all(m.status_code == 200 for m in metas)
    instances = [i for m in metas for i in m.json()]
    assert len(instances) == 5
    # 4. Frames, as stored.
    i = instances[0]
    url = (f"{base}/studies/{uid}/series/{i['0020000E']['Value'][0]}/instances/{i['00080018']['Value'][0]}/frames/1")
    fr = requests.get(url, headers={"Authorization": f"Bearer {t}", "Accept": "multipart/related; type=application/octet-stream; transfer-syntax=*"})
    assert fr.status_code == 200 and fr.headers["content-type"].startswith("multipart/related")
    assert len(fr.content) > 32 * 32 * 2


def test_rendered_thumbnail_and_wado_uri(region, server):
    import io
    from PIL import Image
    _, _, t = region
    h = {"Authorization": f"Bearer {t}"}
    # A CT slice: -1024 HU air around a 40 HU disc; window 40/400 makes air black, the disc grey.
    ds = ct(rows=64, cols=64, patient_id="RND1")
    import numpy as np
    yy, xx = np.mgrid[:64, :64]
    px = np.where((yy - 32) ** 2 + (xx - 32) ** 2 < 400, 1064, 0).astype(np.uint16)
    ds.PixelData = px.tobytes()
    ds.RescaleIntercept, ds.RescaleSlope, ds.WindowCenter, ds.WindowWidth = -1024, 1, 40, 400
    assoc = associate(server.dimse_port, contexts=[(CTImageStorage, ["1.2.840.10008.1.2.1"])])
    assert assoc.send_c_store(ds).Status == 0
    assoc.release()
    base = f"{server.url}/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    r = requests.get(base + "/rendered", headers={**h, "Accept": "image/png"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    img = np.array(Image.open(io.BytesIO(r.content)))
    assert img.shape == (64, 64) and img[0, 0] == 0 and 120 < img[32, 32] < 135
    # A narrow window around the disc makes it white.
    r = requests.get(base + "/frames/1/rendered?window=0,10", headers={**h, "Accept": "image/png"})
    assert np.array(Image.open(io.BytesIO(r.content)))[32, 32] == 255
    r = requests.get(base + "/thumbnail", headers=h)
    assert r.headers["content-type"] == "image/jpeg" and max(Image.open(io.BytesIO(r.content)).size) <= 128
    r = requests.get(base + "/rendered?viewport=32,32&quality=50", headers=h)
    assert Image.open(io.BytesIO(r.content)).size == (32, 32)
    assert requests.get(base + "/rendered?window=abc", headers=h).status_code == 400
    assert requests.get(base + "/frames/2/rendered", headers=h).status_code == 404
    # WADO-URI.
    q = f"requestType=WADO&studyUID={ds.StudyInstanceUID}&seriesUID={ds.SeriesInstanceUID}&objectUID={ds.SOPInstanceUID}"
    r = requests.get(f"{server.url}/wado?{q}", headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    r = requests.get(f"{server.url}/wado?{q}&contentType=application/dicom", headers=h)
    got = pydicom.dcmread(io.BytesIO(r.content))
    assert got.SOPInstanceUID == ds.SOPInstanceUID and got.PixelData == ds.PixelData
    r = requests.get(f"{server.url}/wado?{q}&contentType=application/dicom&transferSyntax=1.2.840.10008.1.2", headers=h)
    assert pydicom.dcmread(io.BytesIO(r.content)).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
    assert requests.get(f"{server.url}/wado?requestType=WADO&studyUID=1", headers=h).status_code == 400
    assert requests.get(f"{server.url}/wado?{q}&contentType=text/html", headers=h).status_code == 406
    # Compressed objects are decoded to render them.
    path = TEST_FILES / "SC_rgb_jpeg_dcmtk.dcm"
    j = pydicom.dcmread(path, stop_before_pixels=True)
    store_files(server.dimse_port, [path])
    r = requests.get(f"{server.url}/dicom-web/studies/{j.StudyInstanceUID}/series/{j.SeriesInstanceUID}/instances/{j.SOPInstanceUID}/rendered", headers={**h, "Accept": "image/png"})
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).mode == "RGB"


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm"])
def test_lossless_frames_decode_to_the_original(region, server, name):
    """The same MR image stored in lossless compressed syntaxes decodes to MR_small's pixels."""
    _, _, t = region
    path = TEST_FILES / name
    assert store_files(server.dimse_port, [path])[str(path)] == 0
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    url = f"{server.url}/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}/frames/1"
    r = requests.get(url, headers={"Authorization": f"Bearer {t}", "Accept": "multipart/related; type=application/octet-stream"})
    assert r.status_code == 200
    (_, body), = split_multipart(r)
    assert body == pydicom.dcmread(TEST_FILES / "MR_small.dcm").PixelData


def test_patient_update_shows_everywhere_without_rewriting_objects(region, server):
    """The mechanism later merges and updates rely on: the patient record is the source of
    patient attributes in QIDO, C-FIND and metadata; stored objects stay as received."""
    _, _, t = region
    h = {"Authorization": f"Bearer {t}"}
    study, series = generate_uid(), generate_uid()
    ds = ct(study=study, series=series, patient_id="UPD1", name="Old^Name=旧^名", rows=8, cols=8)
    assoc = associate(server.dimse_port, contexts=[(CTImageStorage, ["1.2.840.10008.1.2.1"])])
    assert assoc.send_c_store(ds).Status == 0
    assoc.release()
    url = f"{server.url}/dicom-web/studies/{study}/series/{series}/metadata"
    before = requests.get(url, headers=h)
    key = server.query("SELECT blob_key FROM instance WHERE sop_uid = ?", ds.SOPInstanceUID)[0][0]
    stored_before = server.object_bytes(key)
    # What a demographics update (or a merge) will do: change the patient record only.
    c = server.db()
    c.execute("UPDATE patient SET name_raw = 'New^Name=新^名', name_alphabetic = 'New^Name', name_ideographic = '新^名', "
              "updated_at = updated_at + 1 WHERE patient_id = 'UPD1'")
    c.commit()
    c.close()
    q = requests.get(f"{server.url}/dicom-web/studies?PatientID=UPD1", headers=h).json()
    assert q[0]["00100010"]["Value"][0]["Ideographic"] == "新^名"
    assert requests.get(f"{server.url}/dicom-web/studies?PatientName=新*&PatientID=UPD1", headers=h).json()
    after = requests.get(url, headers={**h, "If-None-Match": before.headers["etag"]})
    assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]
    assert after.json()[0]["00100010"]["Value"][0]["Ideographic"] == "新^名"
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FIND
    a = associate(server.dimse_port, contexts=[(FIND, ["1.2.840.10008.1.2"])])
    ident = pydicom.Dataset()
    ident.SpecificCharacterSet = "ISO_IR 192"
    ident.QueryRetrieveLevel = "STUDY"
    ident.PatientID = "UPD1"
    ident.PatientName = ""
    names = [str(i.PatientName) for s, i in a.send_c_find(ident, FIND) if i is not None and s.Status == 0xFF00]
    a.release()
    assert names == ["New^Name=新^名"]
    assert server.object_bytes(key) == stored_before


def test_big_endian_frames_served_little_endian(region, server):
    _, _, t = region
    path = TEST_FILES / "MR_small_bigendian.dcm"
    assert store_files(server.dimse_port, [path])[str(path)] == 0
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    url = f"{server.url}/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}/frames/1"
    r = requests.get(url, headers={"Authorization": f"Bearer {t}", "Accept": "multipart/related; type=application/octet-stream"})
    assert r.status_code == 200
    (_, body), = split_multipart(r)
    assert body == pydicom.dcmread(TEST_FILES / "MR_small.dcm").PixelData


def test_frames_without_offset_table_and_split_fragments(region, server, tmp_path):
    """A multi-frame JPEG with two fragments per frame and an empty Basic Offset Table: frames
    are found by their SOI markers at ingest and served whole."""
    from pydicom.encaps import encapsulate, generate_frames
    _, _, t = region
    src = pydicom.dcmread(TEST_FILES / "examples_ybr_color.dcm")
    frames = list(generate_frames(src.PixelData, number_of_frames=int(src.NumberOfFrames)))
    src.PixelData = encapsulate(frames, fragments_per_frame=2, has_bot=False)
    src.SOPInstanceUID = src.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    p = tmp_path / "split.dcm"
    src.save_as(p, enforce_file_format=True)
    assert store_files(server.dimse_port, [p])[str(p)] == 0
    import json
    layout = json.loads(server.query("SELECT pixel_layout FROM instance WHERE sop_uid = ?", src.SOPInstanceUID)[0][0])
    assert layout["kind"] == "encapsulated" and len(layout["frames"]) == 30 and len(layout["frames"][0]) == 2
    url = f"{server.url}/dicom-web/studies/{src.StudyInstanceUID}/series/{src.SeriesInstanceUID}/instances/{src.SOPInstanceUID}/frames/7"
    r = requests.get(url, headers={"Authorization": f"Bearer {t}", "Accept": "multipart/related; type=image/jpeg; transfer-syntax=*"})
    (_, body), = split_multipart(r)
    assert body.rstrip(b"\0") == frames[6].rstrip(b"\0")


def test_one_bit_segmentation_frames(region, server):
    """A multi-frame 1-bit SEG: frames are not byte-aligned in the object; each comes back
    starting at bit 0."""
    from pydicom.pixels import pack_bits
    import data_store
    _, _, t = region
    path = Path(data_store.__file__).parent / "data" / "liver.dcm"
    assert store_files(server.dimse_port, [path])[str(path)] == 0
    ds = pydicom.dcmread(path)
    base = f"{server.url}/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    h = {"Authorization": f"Bearer {t}", "Accept": "multipart/related; type=application/octet-stream; transfer-syntax=*"}
    for n in (1, 2, 3, int(ds.NumberOfFrames)):
        r = requests.get(f"{base}/frames/{n}", headers=h)
        (_, body), = split_multipart(r)
        assert body == pack_bits(ds.pixel_array[n - 1]), n
    # Frames of 5×5 pixels: 25 bits each, so frame 2 starts at bit 25 of the pixel data.
    import numpy as np
    rng = np.random.default_rng(3)
    arr = rng.integers(0, 2, size=(4, 5, 5), dtype=np.uint8)
    seg = ct(rows=5, cols=5, sop_class="1.2.840.10008.5.1.4.1.1.66.4", patient_id="SEG1")
    seg.BitsAllocated, seg.BitsStored, seg.HighBit, seg.NumberOfFrames = 1, 1, 0, 4
    seg.PixelData = pack_bits(arr)
    assoc = associate(server.dimse_port, contexts=[("1.2.840.10008.5.1.4.1.1.66.4", ["1.2.840.10008.1.2.1"])])
    assert assoc.send_c_store(seg).Status == 0
    assoc.release()
    base = f"{server.url}/dicom-web/studies/{seg.StudyInstanceUID}/series/{seg.SeriesInstanceUID}/instances/{seg.SOPInstanceUID}"
    for n in (1, 2, 3, 4):
        (_, body), = split_multipart(requests.get(f"{base}/frames/{n}", headers=h))
        assert body == pack_bits(arr[n - 1]), n


def test_deflated_object_frames(region, server):
    _, _, t = region
    path = TEST_FILES / "image_dfl.dcm"
    assert store_files(server.dimse_port, [path])[str(path)] == 0
    ds = pydicom.dcmread(path)
    url = f"{server.url}/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}/frames/1"
    r = requests.get(url, headers={"Authorization": f"Bearer {t}", "Accept": "multipart/related; type=application/octet-stream"})
    assert r.status_code == 200
    (_, body), = split_multipart(r)
    assert body == ds.PixelData
    # And the whole object, inflated to the default Explicit VR Little Endian.
    client = DICOMwebClient(url=server.url + "/dicom-web", headers={"Authorization": f"Bearer {t}"})
    got = client.retrieve_instance(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID,
                                   media_types=(("application/dicom", "1.2.840.10008.1.2.1"),))
    assert got.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1" and got.PixelData == ds.PixelData


def test_bulk_range_requests(region, server):
    client, studies, t = region
    study, series = studies["QW2"]
    md = client.retrieve_series_metadata(study, series)
    uri = md[0]["7FE00010"]["BulkDataURI"]
    h = {"Authorization": f"Bearer {t}"}
    whole = split_multipart(requests.get(uri, headers=h))[0][1]
    r = requests.get(uri, headers={**h, "Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == whole[10:20] and r.headers["content-range"] == f"bytes 10-19/{len(whole)}"
    r = requests.get(uri, headers={**h, "Range": "bytes=-4"})
    assert r.status_code == 206 and r.content == whole[-4:]
    r = requests.get(uri, headers={**h, "Range": "bytes=2000-"})
    assert r.status_code == 206 and r.content == whole[2000:]
    assert requests.get(uri, headers={**h, "Range": "bytes=99999-"}).status_code == 416
    assert requests.get(uri, headers={**h, "Range": "lines=1-2"}).status_code == 416
    # Bulk values of a deflated object are read through the inflated stream.
    path = TEST_FILES / "image_dfl.dcm"
    assert store_files(server.dimse_port, [path])[str(path)] == 0
    ds = pydicom.dcmread(path)
    md = client.retrieve_instance_metadata(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    data = client.retrieve_bulkdata(md["7FE00010"]["BulkDataURI"])
    assert data[0] == ds.PixelData
