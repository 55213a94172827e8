"""The clinic portal (issue #20, part 1), in Debian's Chromium driven by Playwright against the
real binary: a village clinic's doctor finds a county patient by identity number, asks the
patient's authorization (the SMS code the patient reads out, from the SMS outbox), and then
reads the patient's page; a clinic technician uploads a folder, DICOM files and zip archives
from the browser (STOW-RS underneath), with each bad file refused and explained and nothing of
it stored. Screenshots go to tests/.work/screenshots (docs/portal.md shows them)."""
import io
import json
import uuid
import zipfile
from pathlib import Path

import pytest
import requests
from pydicom.uid import generate_uid

from conftest import cli, load_recognition_config
from helpers import CHROMIUM, ct, dcmtk
from test_fhir import resident_id
from test_persons import with_resident_id
from test_sessions import PASSWORD, add_user
from test_workstation import Page, browser  # noqa: F401 (the browser fixture)

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium not installed")


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    from conftest import Server, setup_region
    d = tmp_path_factory.mktemp("portal")
    setup_region(d)
    load_recognition_config(d)
    cli(d, "institution", "add", "--code", "clinic", "--name", "石桥村卫生室", "--level", "other")
    outbox = d / "sms.jsonl"
    s = Server(d, {"HUREN__NOTIFY__SMS_OUTBOX": str(outbox)}).start()
    s.outbox = outbox
    for name, role in [("li", "doctor"), ("chen", "technician"), ("qc", "qc_officer")]:
        out = add_user(s, name, role, institution="clinic")
        assert out.returncode == 0, out.stderr
    s.county = {"Authorization": "Bearer " + cli(d, "token", "create", "--institution", "county")}
    yield s
    s.stop()


@pytest.fixture(scope="module")
def patient(region, tmp_path_factory):
    """A county CT of 刘芳, with her mobile number registered at the county hospital."""
    s = region
    number = resident_id("19750615", male=False)
    pid = "PT" + uuid.uuid4().hex[:6].upper()
    ds = with_resident_id(ct(patient_id=pid), number)
    ds.PatientName = "Liu^Fang=刘^芳"
    ds.PatientBirthDate, ds.PatientSex = "19750615", "F"
    ds.StudyDescription, ds.BodyPartExamined = "胸部CT平扫", "CHEST"
    p = tmp_path_factory.mktemp("pt") / "ct.dcm"
    ds.save_as(p, enforce_file_format=True)
    out = dcmtk("storescu", "-aet", "COUNTY", "-aec", "HUREN", "127.0.0.1", str(s.dimse_port), str(p))
    assert out.returncode == 0, out.stderr
    r = requests.post(f"{s.url}/api/patient-contacts", json={"patient_id": pid, "phone": "13812345678"},
                      headers=s.county)
    assert r.status_code == 200, r.text
    person = s.query("SELECT pe.public_id FROM patient p JOIN person pe ON pe.id = p.person_id "
                     "WHERE p.patient_id = ?", pid)[0][0]
    return {"number": number, "person": person, "study": ds.StudyInstanceUID}


def sign_in(tab, s, user, next_path="/"):
    page = tab.page
    page.goto(f"{s.url}{next_path}")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def last_code(s):
    text = json.loads(s.outbox.read_text().splitlines()[-1])["text"]
    return text.split("验证码")[1][:6]


def test_a_clinic_doctor_asks_the_patients_authorization_and_then_reads_her_results(region, patient, browser):
    s = region
    tab = Page(browser)
    page = tab.page
    sign_in(tab, s, "li")
    # Before the authorization: the patient's page is refused, and the search finds nobody.
    page.goto(f"{s.url}/patients/{patient['person']}")
    assert "没有诊疗关系" in page.locator("main").inner_text()
    page.goto(f"{s.url}/")
    page.fill("input[name=identity]", patient["number"])
    page.click("form[action='/patients'] button[type=submit]")
    page.wait_for_load_state()
    main = page.locator("main").inner_text()
    assert "未找到您可查看的患者" in main and "请患者授权查看" in main
    tab.shot("portal-ask")
    page.select_option("select[name=scope]", "all")
    page.click("form.ask button[type=submit]")
    page.wait_for_load_state()
    # The code went to her phone, shown masked.
    assert "138****5678" in page.locator("main").inner_text()
    assert "石桥村卫生室" in json.loads(s.outbox.read_text().splitlines()[-1])["text"]
    tab.shot("portal-code")
    # A wrong code is said so, and the form stays.
    code = last_code(s)
    wrong = "000000" if code != "000000" else "111111"
    page.fill("input[name=code]", wrong)
    page.click("button.primary")
    page.wait_for_load_state()
    assert "验证码错误" in page.locator("main").inner_text()
    page.fill("input[name=code]", code)
    page.click("button.primary")
    page.wait_for_load_state()
    # Authorized: her page, with the county's CT.
    assert page.url.endswith(f"/patients/{patient['person']}"), page.url
    assert page.locator("h1").first.inner_text() == "刘芳"
    assert "县人民医院" in page.locator("ol.entries").inner_text()
    assert not tab.csp and not tab.errors, (tab.csp, tab.errors)
    tab.shot("portal-patient")
    # A clinic has no visit numbers; its doctor still records a decision on the outside CT.
    entry = page.locator("li.entry", has_text="县人民医院").first
    entry.locator("details.decide summary").click()
    entry.locator("input[value=re_examine]").check()
    entry.locator("select[name=reason]").select_option("01")
    entry.locator("details.decide button[type=submit]").click()
    entry.locator("blockquote.sentence").wait_for(timeout=10000)
    assert s.query("SELECT COUNT(*) FROM recognition_decision d JOIN app_user u ON u.id = d.user_id "
                   "WHERE u.username = 'li'")[0][0] == 1
    # Asked and granted, in the audit trail.
    steps = [r[0] for r in s.query("SELECT json_extract(detail, '$.step') FROM audit_event "
                                  "WHERE action = 'patient_authorization' ORDER BY id")]
    assert steps[-3:] == ["requested", "code_rejected", "granted"], steps
    tab.close()


def test_asking_for_a_patient_without_a_mobile_number_or_as_a_technician_is_explained(region, browser):
    s = region
    number = resident_id("19600101", male=True)
    pid = "NP" + uuid.uuid4().hex[:6].upper()
    from test_persons import store
    ds = with_resident_id(ct(patient_id=pid), number)
    ds.PatientBirthDate, ds.PatientSex = "19600101", "M"
    store(s, ds, calling="COUNTY")
    tab = Page(browser)
    page = tab.page
    sign_in(tab, s, "li")
    page.goto(f"{s.url}/patients?identity={number}")
    page.click("form.ask button[type=submit]")
    page.wait_for_load_state()
    assert "未登记手机号" in page.locator("main").inner_text()
    # A number nobody holds.
    page.goto(f"{s.url}/patients?identity={resident_id('19990101', male=True)}")
    page.click("form.ask button[type=submit]")
    page.wait_for_load_state()
    assert "没有对应的患者" in page.locator("main").inner_text()
    tab.close()
    # A technician is offered no authorization, and is refused one when posting anyway.
    tab = Page(browser)
    sign_in(tab, s, "chen")
    tab.page.goto(f"{s.url}/patients?identity={number}")
    assert tab.page.locator("form.ask").count() == 0
    csrf = tab.page.locator("input[name=csrf]").first.get_attribute("value")
    cookie = next(c for c in tab.context.cookies() if c["name"] == "huren_session")["value"]
    r = requests.post(f"{s.url}/authorizations", data={"csrf": csrf, "identity": number},
                      cookies={"huren_session": cookie})
    assert r.status_code == 403 and "只有医生" in r.text
    tab.close()


def dicom_bytes(patient_id, study, issuer=None, sop=None):
    ds = ct(patient_id=patient_id, study=study)
    ds.PatientName = "Zhao^Lei=赵^磊"
    if sop:
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = sop
    if issuer:
        ds.IssuerOfPatientID = issuer
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return ds.SOPInstanceUID, buf.getvalue()


def test_a_clinic_uploads_a_folder_files_and_zips_from_the_browser(region, browser, tmp_path):
    s = region
    pid = "UP" + uuid.uuid4().hex[:6].upper()
    study = generate_uid()
    folder = tmp_path / "DX-export"
    folder.mkdir()
    good = []
    for n in range(2):
        sop, data = dicom_bytes(pid, study)
        (folder / f"IM{n}.dcm").write_bytes(data)
        good.append(sop)
    (folder / "DICOMDIR").write_bytes(b"\0" * 200)
    (folder / "notes.txt").write_text("这不是影像")
    archive = tmp_path / "more.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for n, method in enumerate([zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED]):
            sop, data = dicom_bytes(pid, study)
            z.writestr(zipfile.ZipInfo(f"series/IM{n}.dcm"), data, compress_type=method)
            good.append(sop)
    # Under the county's numbering: the clinic may not send for it.
    foreign_sop, data = dicom_bytes("CT-X" + pid, generate_uid(), issuer="urn:huren:institution:county")
    (tmp_path / "foreign.dcm").write_bytes(data)
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really a zip")

    tab = Page(browser)
    page = tab.page
    sign_in(tab, s, "chen")
    page.click("a[href='/upload']")
    page.wait_for_load_state()
    assert page.url.endswith("/upload")
    page.set_input_files("#up-folder", str(folder))
    page.set_input_files("#up-files", [str(archive), str(tmp_path / "foreign.dcm"), str(tmp_path / "broken.zip")])
    page.click("#up-start")
    page.wait_for_selector("#upload[data-done='1']", timeout=60000)
    rows = {r.split("\t")[0]: r for r in page.locator("#up-results tbody tr").all_inner_texts()}
    by_name = lambda part: next(v for k, v in rows.items() if k.endswith(part))  # noqa: E731
    for name in ["IM0.dcm", "IM1.dcm", "more.zip/series/IM0.dcm", "more.zip/series/IM1.dcm"]:
        assert "已保存" in by_name(name), rows
    assert "不是DICOM文件" in by_name("notes.txt"), rows
    assert "其他机构的编号" in by_name("foreign.dcm"), rows
    assert "无法读取的zip" in by_name("broken.zip"), rows
    assert "DICOMDIR" in by_name("DICOMDIR") and "跳过" in by_name("DICOMDIR"), rows
    assert page.locator("#up-progress").evaluate("p => p.value === p.max")
    assert "已保存 4" in page.locator("#up-summary").inner_text()
    assert "拒收 3" in page.locator("#up-summary").inner_text()
    assert not tab.csp and not tab.errors, (tab.csp, tab.errors)
    tab.shot("portal-upload")
    # Exactly the four good files are stored, for the clinic, and nothing of the others.
    stored = {r[0] for r in s.query(
        "SELECT i.sop_uid FROM instance i JOIN study st ON st.id = i.study_id "
        "JOIN institution x ON x.id = i.sender_institution_id WHERE st.study_uid = ? AND x.code = 'clinic'", study)}
    assert stored == set(good)
    assert not s.query("SELECT 1 FROM instance WHERE sop_uid = ?", foreign_sop)
    # Each upload is audited with the technician as its actor.
    assert s.query("SELECT COUNT(*) FROM audit_event WHERE action = 'instance_stored' AND actor LIKE 'user:chen#%'")[0][0] >= 4
    tab.close()


def test_who_may_not_upload_is_refused(region, browser):
    s = region
    tab = Page(browser)
    sign_in(tab, s, "qc")
    tab.page.goto(f"{s.url}/upload")
    assert "只有技师和医生可以上传影像" in tab.page.locator("main").inner_text()
    cookie = next(c for c in tab.context.cookies() if c["name"] == "huren_session")["value"]
    csrf = tab.page.locator("input[name=csrf]").first.get_attribute("value")
    _, data = dicom_bytes("QC1", generate_uid())
    body = b"--b\r\nContent-Type: application/dicom\r\n\r\n" + data + b"\r\n--b--\r\n"
    ctype = 'multipart/related; type="application/dicom"; boundary=b'
    # STOW-RS with a QC officer's session: refused; with a technician's session but no CSRF
    # token: refused before anything is read.
    r = requests.post(f"{s.url}/dicom-web/studies", data=body, cookies={"huren_session": cookie},
                      headers={"Content-Type": ctype, "X-CSRF-Token": csrf})
    assert r.status_code == 403, r.text
    tab.close()
    tab = Page(browser)
    sign_in(tab, s, "chen")
    cookie = next(c for c in tab.context.cookies() if c["name"] == "huren_session")["value"]
    r = requests.post(f"{s.url}/dicom-web/studies", data=body, cookies={"huren_session": cookie},
                      headers={"Content-Type": ctype})
    assert r.status_code == 403, r.text
    assert not s.query("SELECT 1 FROM patient WHERE patient_id = 'QC1'")
    tab.close()
