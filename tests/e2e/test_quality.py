"""Image quality control on every stored image (issue #8): CT phantoms sent over DIMSE are
queued as they are stored, scored by the workers, and graded per study once the study is
stable; a localizer is left out; a late image re-grades the study; recognition reads the grade
through its QC port; the QC centre reads distributions and the lowest studies."""
import json
import time
import uuid

import numpy as np
import pytest
import requests
from pydicom.uid import generate_uid

from conftest import load_recognition_config, region_reader, region_today
from helpers import ct
from test_persons import store




def phantom_slice(study, series, number, sigma, seed, patient_id):
    """A 256×256 water phantom in air (HU, signed 16-bit, a 230 mm field) with Gaussian noise of
    `sigma` HU. (At 128² the water held too few 6 mm squares for the noise index.)"""
    ds = ct(patient_id=patient_id, study=study, series=series, rows=256, cols=256, institution="县人民医院")
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:256, 0:256] - 128
    hu = np.where(np.hypot(x, y) < 108, 0.0, -1000.0) + rng.normal(0.0, sigma, (256, 256))
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 15, 1
    ds.PixelData = np.round(hu).astype("<i2").tobytes()
    ds.RescaleIntercept, ds.RescaleSlope = 0, 1
    ds.PixelSpacing, ds.SliceThickness = [0.9, 0.9], 5
    ds.KVP, ds.ConvolutionKernel, ds.CTDIvol = 120, "STANDARD", 9.8
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [-115, -115, -5.0 * number]
    ds.InstanceNumber = number
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.StudyDescription, ds.BodyPartExamined = "胸部CT平扫", "CHEST"
    ds.StudyDate = region_today().strftime("%Y%m%d")
    return ds


def wait_for(s, sql, *args, timeout=40):
    deadline = time.time() + timeout
    while time.time() < deadline:
        rows = s.query(sql, *args)
        if rows and all(r[0] is not None for r in rows):
            return rows
        time.sleep(0.3)
    raise AssertionError(f"timed out: {sql} {args}")


@pytest.fixture
def site(fresh_server):
    s = fresh_server({"HUREN__ARCHIVE__STABLE_AFTER_SECS": "1", "HUREN__QUALITY__WORKERS": "2"})
    # The catalog, so the CTs are an item recognition can judge (the server reads CLI loads
    # within ten seconds; these come before any recognition question).
    load_recognition_config(s.data_dir)
    return s


def test_every_image_is_scored_and_each_study_graded(site):
    s = site
    pid = "Q" + uuid.uuid4().hex[:6]
    clean, noisy, gappy = generate_uid(), generate_uid(), generate_uid()
    clean_series, noisy_series, gappy_series = generate_uid(), generate_uid(), generate_uid()
    # The recognition scenarios' QC rows, with grades from the pipeline: 乙 is the item's
    # minimum (recognizable), 丙 is below it; a study of localizers only is never graded.
    at_minimum, below, scouts_only = generate_uid(), generate_uid(), generate_uid()
    at_minimum_series, below_series = generate_uid(), generate_uid()
    for n in range(1, 7):
        store(s, phantom_slice(clean, clean_series, n, 8.0, n, pid))
        store(s, phantom_slice(noisy, noisy_series, n, 45.0, 100 + n, pid))
        if n != 4:  # one slice never arrives
            store(s, phantom_slice(gappy, gappy_series, n, 8.0, 200 + n, pid))
        store(s, phantom_slice(at_minimum, at_minimum_series, n, 15.0, 300 + n, pid))
        store(s, phantom_slice(below, below_series, n, 27.0, 400 + n, pid))
    scout = phantom_slice(clean, generate_uid(), 1, 8.0, 99, pid)
    scout.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    store(s, scout)
    lone_scout = phantom_slice(scouts_only, generate_uid(), 1, 8.0, 98, pid)
    lone_scout.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    store(s, lone_scout)
    graded = """SELECT q.aggregated_at, q.grade, q.images, q.excluded, q.calibrated
                  FROM qc_study q JOIN study st ON st.id = q.study_id WHERE st.study_uid = ?"""
    (row,) = wait_for(s, graded, clean)
    assert row[1:] == ("A", 6, 1, 1), row  # 6 slices scored, the localizer left out
    (row,) = wait_for(s, graded, noisy)
    assert row[1] == "reject", row
    (row,) = wait_for(s, graded, gappy)
    assert row[1] == "B", row  # a missing slice: 乙
    assert wait_for(s, graded, at_minimum)[0][1] == "B"
    assert wait_for(s, graded, below)[0][1] == "C"
    assert s.query("SELECT q.complete FROM qc_study q JOIN study st ON st.id = q.study_id WHERE st.study_uid IN (?, ?)"
                   " ORDER BY st.study_uid = ?", clean, gappy, gappy) == [(1,), (0,)]
    assert s.query("SELECT COUNT(*) FROM qc_job WHERE state <> 'done'") == [(0,)]
    assert s.query("SELECT excluded FROM qc_image q JOIN instance i ON i.id = q.instance_id WHERE i.sop_uid = ?",
                   scout.SOPInstanceUID) == [("localizer",)]
    # The noisy study says why, in both languages.
    (detail,) = s.query("SELECT detail FROM qc_study q JOIN study st ON st.id = q.study_id WHERE st.study_uid = ?",
                        noisy)[0]
    reasons = [r for series in json.loads(detail)["series"] for r in series["reasons"]]
    assert reasons and reasons[0]["code"] == "ct_noise_high" and "噪声" in reasons[0]["zh"], reasons

    # A late slice: the study is graded again with it.
    store(s, phantom_slice(clean, clean_series, 7, 8.0, 7, pid))
    deadline = time.time() + 40
    while s.query(graded, clean)[0][2] != 7:
        assert time.time() < deadline, s.query(graded, clean)
        time.sleep(0.3)

    # Recognition reads the grade through its QC port: the clean CT is recognizable, the noisy
    # one is below the item's minimum (乙 by default).
    h = region_reader(s)
    issuer = s.query("SELECT issuer FROM patient WHERE patient_id = ?", pid)[0][0]
    person = requests.get(f"{s.url}/api/patients", params={"patient_id": pid, "issuer": issuer},
                          headers=h).json()[0]["person"]
    v = requests.get(f"{s.url}/api/patients/{person}/recognition", headers=h).json()
    decided = {x["id"]: x["decision"] for x in v["results"]}
    assert decided[clean]["verdict"] == "recognizable", decided[clean]
    assert decided[noisy]["verdict"] == "not_recognizable", decided[noisy]
    assert [r["code"] for r in decided[noisy]["reasons"]] == ["qc_below_minimum"], decided[noisy]
    # The series with a missing slice: its grade passes, but an incomplete series is reference
    # only (the default policy).
    assert decided[gappy]["verdict"] == "reference_only", decided[gappy]
    assert [r["code"] for r in decided[gappy]["reasons"]] == ["series_incomplete"], decided[gappy]
    assert (decided[at_minimum]["verdict"], decided[at_minimum]["reasons"]) == ("recognizable", []), decided[at_minimum]
    assert decided[below]["verdict"] == "not_recognizable", decided[below]
    assert [r["code"] for r in decided[below]["reasons"]] == ["qc_below_minimum"], decided[below]
    # Nothing of the localizer-only study is scored, so recognition has no grade for it.
    assert decided[scouts_only]["verdict"] == "reference_only", decided[scouts_only]
    assert [r["code"] for r in decided[scouts_only]["reasons"]] == ["qc_absent"], decided[scouts_only]

    # The QC centre's feedback: distributions and the lowest studies, with no patient data.
    from conftest import ADMIN
    from test_sessions import add_user
    today = region_today().isoformat()
    span = {"from": today, "until": today}
    admin = {"Authorization": f"Bearer {ADMIN}"}
    st = requests.get(f"{s.url}/api/quality/statistics", params={**span, "by": "institution"}, headers=admin)
    assert st.status_code == 200, st.text
    (county,) = [r for r in st.json()["rows"] if r["key"] == "county"]
    # Six studies looked at; the localizer-only one has no grade.
    assert (county["studies"], county["a"], county["b"], county["c"], county["reject"], county["incomplete"]) \
        == (6, 1, 2, 1, 1, 1), county
    assert county["p10"] <= county["median"] <= county["p90"]
    csv = requests.get(f"{s.url}/api/quality/statistics", params={**span, "by": "modality", "format": "csv"},
                       headers=admin)
    assert csv.headers["content-type"].startswith("text/csv") and csv.text.splitlines()[1].startswith("CT,6,1,2,1,1,")
    # Bad input is refused in plain words.
    for path, params in [("statistics", {**span, "by": "item"}), ("statistics", {"from": "2025-13-01", "until": today}),
                         ("studies", {**span, "limit": 0}), ("studies", {**span, "colour": "red"}),
                         ("statistics", {"from": today, "until": "2025-01-01"}),
                         ("studies", {"from": today, "until": "2025-01-01"})]:
        r = requests.get(f"{s.url}/api/quality/{path}", params=params, headers=admin)
        assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json"), r.text
    low = requests.get(f"{s.url}/api/quality/studies", params={**span, "limit": 2}, headers=admin).json()["studies"]
    assert [x["study_instance_uid"] for x in low] == [noisy, below]
    assert low[0]["reasons"][0]["code"] == "ct_noise_high" and pid not in json.dumps(low)
    # A doctor reads none of it; a technician reads their own institution's only.
    assert add_user(s, "qdoc", "doctor").returncode == 0
    assert add_user(s, "qtech", "technician", "city").returncode == 0

    def session(user):
        from test_sessions import PASSWORD
        return {"huren_session": requests.post(f"{s.url}/api/session", json={"username": user, "password": PASSWORD})
                .cookies["huren_session"]}

    assert requests.get(f"{s.url}/api/quality/statistics", params=span, cookies=session("qdoc")).status_code == 403
    assert requests.get(f"{s.url}/api/quality/statistics", params=span, cookies=session("qtech")).json()["rows"] == []


def test_no_job_is_lost_when_a_worker_dies(fresh_server):
    """Images stored while no worker runs wait in the queue; a job claimed by a worker that died
    (its lease ran out) is claimed again; each image ends with exactly one result."""
    from conftest import Server
    s = fresh_server({"HUREN__ARCHIVE__STABLE_AFTER_SECS": "1", "HUREN__QUALITY__WORKERS": "0"})
    pid = "QW" + uuid.uuid4().hex[:6]
    study, series = generate_uid(), generate_uid()
    for n in range(1, 5):
        store(s, phantom_slice(study, series, n, 10.0, n, pid))
    assert s.query("SELECT COUNT(*) FROM qc_job WHERE state = 'queued'") == [(4,)]
    # A worker of another node claimed one and died: its lease is over.
    s.stop()
    c = s.db()
    c.execute("""UPDATE qc_job SET state = 'running', worker = 'dead', attempts = 1, lease_until = 1
                 WHERE instance_id = (SELECT MIN(instance_id) FROM qc_job)""")
    c.commit()
    c.close()
    again = Server(s.data_dir, {"HUREN__ARCHIVE__STABLE_AFTER_SECS": "1", "HUREN__QUALITY__WORKERS": "2"}).start()
    try:
        wait_for(again, """SELECT q.aggregated_at FROM qc_study q JOIN study st ON st.id = q.study_id
                           WHERE st.study_uid = ?""", study)
        assert again.query("SELECT state, COUNT(*) FROM qc_job GROUP BY state") == [("done", 4)]
        assert again.query("SELECT COUNT(*), COUNT(DISTINCT instance_id) FROM qc_image") == [(4, 4)]
        assert again.query("SELECT attempts FROM qc_job WHERE worker <> 'dead' ORDER BY instance_id LIMIT 1") \
            == [(2,)], "the dead worker's job was claimed again"
    finally:
        again.stop()


def frame_slice(study, series, number, hu, patient_id):
    """A slice whose HU are given, otherwise like `phantom_slice`."""
    ds = phantom_slice(study, series, number, 0.0, number, patient_id)
    ds.Rows, ds.Columns = hu.shape
    ds.PixelData = np.round(hu).astype("<i2").tobytes()
    return ds


def test_blank_frames_are_reject_and_unjudgeable_ones_not_assessable(site):
    """Issue #18: a CT of air alone or of one constant value was graded 甲 by its header; it is
    now 废片 with its reason. A frame the pixel scorers cannot judge (a smooth bone-density ramp:
    no soft tissue, no air, no edge) is not assessable — no grade — and recognition gives it what
    the region's policy says (reference only by default)."""
    s = site
    pid = "QB" + uuid.uuid4().hex[:6]
    air, flat, ramp = generate_uid(), generate_uid(), generate_uid()
    series = {uid: generate_uid() for uid in (air, flat, ramp)}
    rng = np.random.default_rng(5)
    for n in range(1, 5):
        store(s, frame_slice(air, series[air], n, -1000.0 + rng.normal(0, 4, (128, 128)), pid))
        store(s, frame_slice(flat, series[flat], n, np.full((128, 128), 40.0), pid))
        store(s, frame_slice(ramp, series[ramp], n,
                             np.tile(np.linspace(700.0, 1500.0, 128), (128, 1)) + rng.normal(0, 3, (128, 128)), pid))
    graded = """SELECT q.aggregated_at, q.grade, q.not_assessable, q.detail
                  FROM qc_study q JOIN study st ON st.id = q.study_id WHERE st.study_uid = ?"""
    for blank in (air, flat):
        (row,) = wait_for(s, graded, blank)
        assert row[1:3] == ("reject", 0), row
        codes = {r["code"] for series in json.loads(row[3])["series"] for r in series["reasons"]}
        assert "image_blank" in codes, codes
    (row,) = wait_for(s, graded, ramp)
    assert row[1:3] == (None, 1), row
    (series,) = json.loads(row[3])["series"]
    assert series["assessable"] is False and series["reasons"][0]["code"] == "image_not_assessable"
    # The history keeps it, for a decision re-checked as of today.
    assert s.query("""SELECT h.grade, h.not_assessable FROM qc_grade_history h JOIN study st ON st.id = h.study_id
                       WHERE st.study_uid = ?""", ramp)[-1] == (None, 1)

    h = region_reader(s)
    issuer = s.query("SELECT issuer FROM patient WHERE patient_id = ?", pid)[0][0]
    person = requests.get(f"{s.url}/api/patients", params={"patient_id": pid, "issuer": issuer},
                          headers=h).json()[0]["person"]

    def decided():
        v = requests.get(f"{s.url}/api/patients/{person}/recognition", headers=h).json()
        return {x["id"]: x["decision"] for x in v["results"]}

    d = decided()
    for blank in (air, flat):
        assert d[blank]["verdict"] == "not_recognizable", d[blank]
        assert [r["code"] for r in d[blank]["reasons"]] == ["qc_below_minimum"], d[blank]
    assert d[ramp]["verdict"] == "reference_only", d[ramp]
    assert [r["code"] for r in d[ramp]["reasons"]] == ["qc_not_assessable"], d[ramp]
    qc = next(c for c in d[ramp]["consulted"] if c["what"] == "qc")
    assert qc["met"] is False and "无法评价" in qc["zh"]
    # A region that refuses what QC could not assess says so in its policy.
    from conftest import ADMIN
    r = requests.post(f"{s.url}/api/admin/recognition/policy", data='not_assessable_qc = "不予互认"\n'.encode(),
                      headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 201, r.text
    deadline = time.time() + 15
    while decided()[ramp]["verdict"] != "not_recognizable":
        assert time.time() < deadline, decided()[ramp]
        time.sleep(0.5)


def test_the_qc_centre_sees_every_study_every_image_and_every_measure(site):
    """Issue #18, the QC centre's view: a study looked up by its UID shows its grade (code and
    both labels), each series' medians and every image's scorers with the measured value, unit,
    bands and whether they could judge; the list filters by institution, modality, grade, status
    and day — a study without StudyDate under the day it arrived — a page at a time, in JSON and
    CSV; not-assessable studies are listed as such; a reader of another hospital finds nothing."""
    from conftest import ADMIN
    from test_sessions import add_user, PASSWORD
    s = site
    pid = "QV" + uuid.uuid4().hex[:6]
    clean, noisy, ramp, undated = generate_uid(), generate_uid(), generate_uid(), generate_uid()
    series = {uid: generate_uid() for uid in (clean, noisy, ramp, undated)}
    rng = np.random.default_rng(11)
    for n in range(1, 5):
        store(s, phantom_slice(clean, series[clean], n, 8.0, 500 + n, pid))
        store(s, phantom_slice(noisy, series[noisy], n, 45.0, 600 + n, pid))
        store(s, frame_slice(ramp, series[ramp], n,
                             np.tile(np.linspace(700.0, 1500.0, 128), (128, 1)) + rng.normal(0, 3, (128, 128)), pid))
        late = phantom_slice(undated, series[undated], n, 8.0, 700 + n, pid)
        del late.StudyDate
        store(s, late)
    for uid in (clean, noisy, ramp, undated):
        wait_for(s, "SELECT q.aggregated_at FROM qc_study q JOIN study st ON st.id = q.study_id WHERE st.study_uid = ?",
                 uid)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    today = region_today().isoformat()
    span = {"from": today, "until": today}

    r = requests.get(f"{s.url}/api/quality/studies/{clean}", headers=admin)
    assert r.status_code == 200, r.text
    (view,) = r.json()["studies"]
    assert (view["grade"], view["grade_zh"], view["grade_en"], view["status"]) == ("A", "甲", "grade A", "graded")
    (ser,) = view["series"]
    assert len(ser["images"]) == 4 and ser["assessable"] is True
    medians = {m["scorer"]: m for m in ser["scorers"]}
    assert medians["ct_noise"]["unit"] == "HU" and "甲" in medians["ct_noise"]["bands_zh"]
    image = ser["images"][0]
    assert image["status"] == "scored" and image["assessable"] is True and image["grade_zh"] == "甲"
    measures = {m["scorer"]: m for m in image["scores"]}
    noise = measures["ct_noise"]
    assert noise["assessable"] and 5 < noise["value"] < 12 and noise["unit"] == "HU", noise
    assert measures["ct_sharpness"]["unit"] == "mm" and measures["ct_sharpness"]["value"] > 0
    # A scorer that could not judge says so (the phantom has no air squares for… none here are
    # missing, so the ramp's images show it).
    (ramp_view,) = requests.get(f"{s.url}/api/quality/studies/{ramp}", headers=admin).json()["studies"]
    assert ramp_view["status"] == "not_assessable" and ramp_view["grade"] is None
    ramp_image = ramp_view["series"][0]["images"][0]
    assert ramp_image["assessable"] is False
    assert any(not m["assessable"] for m in ramp_image["scores"])
    assert requests.get(f"{s.url}/api/quality/studies/1.2.3.404", headers=admin).status_code == 404

    def listed(**params):
        r = requests.get(f"{s.url}/api/quality/studies", params={**span, **params}, headers=admin)
        assert r.status_code == 200, r.text
        return r.json()

    everything = listed(limit=500)
    mine = {x["study_instance_uid"]: x for x in everything["studies"]}
    assert {clean, noisy, ramp, undated} <= set(mine)
    assert mine[undated]["dated_by"] == "arrival" and mine[undated]["day"] == today
    assert mine[clean]["dated_by"] == "study_date"
    assert mine[ramp]["status"] == "not_assessable" and mine[ramp]["reasons"][0]["code"] == "image_not_assessable"
    assert noisy in [x["study_instance_uid"] for x in listed(grade="reject", limit=500)["studies"]]
    assert [x["grade"] for x in listed(grade="废片", limit=500)["studies"]] == \
        [x["grade"] for x in listed(grade="reject", limit=500)["studies"]]
    assert ramp in [x["study_instance_uid"] for x in listed(status="not_assessable", limit=500)["studies"]]
    assert all(x["status"] == "graded" for x in listed(status="graded", limit=500)["studies"])
    assert listed(institution="county", limit=500)["total"] == everything["total"]
    assert listed(institution="city")["total"] == 0
    assert listed(modality="MR")["total"] == 0
    # Pages: the same order, a page at a time, the total on each.
    first, second = listed(limit=1), listed(limit=1, offset=1)
    assert first["total"] == second["total"] == everything["total"]
    assert [first["studies"][0]["study_instance_uid"], second["studies"][0]["study_instance_uid"]] == \
        [x["study_instance_uid"] for x in everything["studies"][:2]]
    assert listed(limit=10, offset=10_000) == {"total": everything["total"], "offset": 10_000, "limit": 10,
                                               "studies": []}
    csv = requests.get(f"{s.url}/api/quality/studies", params={**span, "format": "csv", "limit": 500}, headers=admin)
    header, *lines = csv.text.splitlines()
    assert "grade_zh" in header.split(",") and any(",A,甲,grade A," in line for line in lines), csv.text[:400]
    for bad in ({"grade": "D"}, {"status": "done"}, {"order": "best"}, {"offset": -1}):
        r = requests.get(f"{s.url}/api/quality/studies", params={**span, **bad}, headers=admin)
        assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json"), r.text

    # A technician of another hospital finds none of it, by list or by UID.
    assert add_user(s, "vtech", "technician", "city").returncode == 0
    cookie = {"huren_session": requests.post(f"{s.url}/api/session", json={"username": "vtech", "password": PASSWORD})
              .cookies["huren_session"]}
    assert requests.get(f"{s.url}/api/quality/studies/{clean}", cookies=cookie).status_code == 404
    r = requests.get(f"{s.url}/api/quality/studies", params={**span, "institution": "county"}, cookies=cookie)
    assert r.status_code == 200 and r.json()["total"] == 0


def test_studies_waiting_to_be_scored_are_listed_as_pending(fresh_server):
    s = fresh_server({"HUREN__ARCHIVE__STABLE_AFTER_SECS": "1", "HUREN__QUALITY__WORKERS": "0"})
    from conftest import ADMIN
    pid = "QP" + uuid.uuid4().hex[:6]
    study, series = generate_uid(), generate_uid()
    for n in range(1, 3):
        store(s, phantom_slice(study, series, n, 8.0, n, pid))
    today = region_today().isoformat()
    r = requests.get(f"{s.url}/api/quality/studies", params={"from": today, "until": today, "status": "pending"},
                     headers={"Authorization": f"Bearer {ADMIN}"})
    (row,) = r.json()["studies"]
    assert (row["study_instance_uid"], row["status"], row["stored"], row["scored"]) == (study, "pending", 2, 0), row
    (view,) = requests.get(f"{s.url}/api/quality/studies/{study}",
                           headers={"Authorization": f"Bearer {ADMIN}"}).json()["studies"]
    assert [i["status"] for i in view["series"][0]["images"]] == ["pending", "pending"]


def test_the_qc_centre_sees_what_the_validated_scorers_measure(site):
    """Issue #18: the validation suite and the no-inversion property test score files with
    `huren quality score`; the QC centre reads what the workers stored. Real images of every
    modality (the sample CT, chest and tibia CR, shoulder and abdominal MR) and degraded copies,
    sent over DIMSE, show through GET /api/quality/studies/{uid} the same grade and, scorer by
    scorer, the same measured value and assessability as the command gives for the same file."""
    import subprocess
    import tempfile
    from pathlib import Path

    import pydicom
    from conftest import ADMIN, BIN
    from helpers import associate
    import test_quality_validation as V

    s = site
    pid = "QR" + uuid.uuid4().hex[:6]
    identity = ct(patient_id=pid, study="1.2.3", series="1.2.4", rows=8, cols=8, institution="县人民医院")
    rng = np.random.default_rng(21)
    cases = []
    for name, scale in (("693_UNCR.dcm", 1), ("RG1_UNCR.dcm", 2), ("RG3_UNCR.dcm", 2), ("MR2_UNCR.dcm", 2),
                        ("MR-SIEMENS-DICOM-WithOverlays.dcm", 1)):
        ds, img, _ = V.real(name, scale)
        cases.append((name, ds, img))
        cases.append((name + " blurred", ds, V.blur(img, rng, 2, 0)))
        cases.append((name + " noisy", ds, V.noise_sd(img, rng, 3, 0)))
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with tempfile.TemporaryDirectory() as t:
        sent = []
        for k, (label, ds0, img) in enumerate(cases):
            path = Path(t) / f"{k}.dcm"
            V.write(ds0, img, path)
            ds = pydicom.dcmread(path)
            for keyword in ("PatientID", "IssuerOfPatientID", "PatientName", "PatientBirthDate", "PatientSex",
                            "InstitutionName"):
                if keyword in identity:
                    setattr(ds, keyword, getattr(identity, keyword))
            ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
            ds.StudyDate = region_today().strftime("%Y%m%d")
            ds.SpecificCharacterSet = "ISO_IR 192"  # the Chinese name copied in
            ds.save_as(path, enforce_file_format=True)
            assoc = associate(s.dimse_port, contexts=[(ds.SOPClassUID, [ds.file_meta.TransferSyntaxUID])])
            assert assoc.is_established
            assert assoc.send_c_store(ds).Status == 0, label
            assoc.release()
            sent.append((label, ds.StudyInstanceUID, ds.SOPInstanceUID, path))
        out = subprocess.run([BIN, "quality", "score", *[str(p) for *_, p in sent]], capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        command = [json.loads(line)["result"] for line in out.stdout.splitlines()]
    for (label, study, sop, _), cli in zip(sent, command):
        wait_for(s, "SELECT q.aggregated_at FROM qc_study q JOIN study st ON st.id = q.study_id WHERE st.study_uid = ?",
                 study, timeout=90)
        r = requests.get(f"{s.url}/api/quality/studies/{study}", headers=admin)
        assert r.status_code == 200, r.text
        (view,) = r.json()["studies"]
        (image,) = [i for ser in view["series"] for i in ser["images"] if i["sop_instance_uid"] == sop]
        assert image["grade"] == cli["grade"], (label, image["grade"], cli["grade"])
        stored = {m["scorer"]: m for m in image["scores"]}
        for measure in cli["scores"]:
            got = stored[measure["scorer"]]
            assert got["assessable"] == (measure["score"] is not None), (label, measure["scorer"])
            if measure.get("value") is not None:
                assert got["value"] == pytest.approx(measure["value"], rel=1e-6, abs=1e-9), (label, measure)
    # The degraded copies never grade better than their originals, here as in the property test.
    rank = {"A": 3, "B": 2, "C": 1, "reject": 0, None: None}
    by_label = {label: cli for (label, *_), cli in zip(sent, command)}
    for name in {label.split(" ")[0] for label, *_ in sent}:
        for worse in ("blurred", "noisy"):
            a, b = rank[by_label[name]["grade"]], rank[by_label[f"{name} {worse}"]["grade"]]
            if a is not None and b is not None:
                assert b <= a, (name, worse, by_label[name]["grade"], by_label[f"{name} {worse}"]["grade"])
