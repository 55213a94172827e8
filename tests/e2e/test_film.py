"""The patient's cloud film (issue #20, part 2), in Debian's Chromium on a phone-sized screen,
against the real binary: 刘芳 has a county CT (DCMTK), its report (HL7 v2) and a lab result
(FHIR); a village clinic read her data with her authorization. On her phone she signs in with
her identity number and the SMS code (from the outbox), reads her report, results and images,
shares the CT by link (opened in another browser with no session, then ended), sees who read
her data, and ends the clinic's authorization. Refusals: a wrong code, an identity number
nobody holds answered like one that is held, a link's owner-only actions, another study by the
link, forms without the CSRF token. Screenshots go to tests/.work/screenshots (docs/portal.md)."""
import json
import re
import uuid
from pathlib import Path

import numpy as np
import pytest
import requests
from pydicom.uid import generate_uid

from conftest import cli, free_port, load_recognition_config
from helpers import CHROMIUM, ct, dcmtk
from test_audit_gaps import session
from test_fhir import resident_id
from test_first_visit import ct_report
from test_hl7 import ack_fields, send
from test_persons import with_resident_id
from test_quality import phantom_slice
from test_sessions import add_user
from test_workstation import Page, browser, glucose  # noqa: F401 (the browser fixture)

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium not installed")

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 1}


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    from conftest import Server, setup_region
    d = tmp_path_factory.mktemp("film")
    setup_region(d)
    load_recognition_config(d)
    cli(d, "institution", "add", "--code", "clinic", "--name", "石桥村卫生室", "--level", "other")
    outbox = d / "sms.jsonl"
    mllp = free_port()
    s = Server(d, {"HUREN__NOTIFY__SMS_OUTBOX": str(outbox), "HUREN__MLLP__LISTEN": f"127.0.0.1:{mllp}"}).start()
    s.outbox, s.mllp_port = outbox, mllp
    cli(d, "hl7-sender", "add", "--institution", "county", "--host", "127.0.0.1", "--facility", "RIS01")
    assert add_user(s, "li", "doctor", institution="clinic").returncode == 0
    s.county = {"Authorization": "Bearer " + cli(d, "token", "create", "--institution", "county")}
    yield s
    s.stop()


def last_code(s):
    text = json.loads(s.outbox.read_text().splitlines()[-1])["text"]
    return text.split("验证码")[1][:6]


def sms_count(s):
    return len(s.outbox.read_text().splitlines()) if s.outbox.exists() else 0


@pytest.fixture(scope="module")
def patient(region, tmp_path_factory):
    """刘芳: a four-slice county CT with its report, a high glucose, her mobile number; the
    clinic's doctor read her data with her authorization. Another patient's CT is beside hers."""
    s = region
    tmp = tmp_path_factory.mktemp("ct")
    tag = uuid.uuid4().hex[:6].upper()
    number = resident_id("19750615", male=False)
    pid = "LF" + tag
    study, series = generate_uid(), generate_uid()
    y, x = np.mgrid[0:256, 0:256] - 128
    files = []
    for n in range(1, 5):
        ds = with_resident_id(phantom_slice(study, series, n, 8.0, n, pid), number)
        ds.PatientName = "Liu^Fang=刘^芳"
        ds.PatientBirthDate, ds.PatientSex = "19750615", "F"
        ds.StudyDescription = "胸部CT平扫"
        ds.WindowCenter, ds.WindowWidth = 40, 400
        hu = np.frombuffer(ds.PixelData, dtype="<i2").reshape(256, 256).astype(np.int32)
        ds.PixelData = np.where(np.hypot(x + 30, y) < 6 + 8 * n, hu + 300, hu).astype("<i2").tobytes()
        p = tmp / f"ct{n}.dcm"
        ds.save_as(p, enforce_file_format=True)
        files.append(str(p))
    other = ct(patient_id="OT" + tag)
    other.save_as(tmp / "other.dcm", enforce_file_format=True)
    out = dcmtk("storescu", "-aet", "COUNTY", "-aec", "HUREN", "127.0.0.1", str(s.dimse_port), *files,
                str(tmp / "other.dcm"))
    assert out.returncode == 0, out.stderr
    pid3 = f"{pid}^^^urn:huren:institution:county^MR~{number}^^^身份证^NI"
    (ack,) = send(s.mllp_port, ct_report("R" + tag, pid3, study, patient="刘^芳||19750615|F",
                                         findings="右肺上叶见小结节。", impression="右肺上叶小结节，建议随访。"))
    assert ack_fields(ack)[0] == "AA"
    r = requests.post(f"{s.url}/fhir/Observation", json=glucose({"system": "urn:huren:institution:county",
                                                                 "value": pid}, 7.9, 3, "H"),
                      headers={**s.county, "Content-Type": "application/fhir+json"})
    assert r.status_code == 201, r.text
    r = requests.post(f"{s.url}/api/patient-contacts", json={"patient_id": pid, "phone": "13812345678"},
                      headers=s.county)
    assert r.status_code == 200, r.text
    # The clinic's doctor asks, she reads the code out, the doctor reads her studies.
    jar, csrf = session(s, "li")
    r = requests.post(f"{s.url}/api/patient-authorizations",
                      json={"identifier": f"urn:huren:id:cn-resident|{number}"}, cookies=jar, headers=csrf)
    assert r.status_code == 201, r.text
    r = requests.post(f"{s.url}/api/patient-authorizations/{r.json()['id']}/confirm",
                      json={"code": last_code(s)}, cookies=jar, headers=csrf)
    assert r.status_code == 200, r.text
    found = requests.get(f"{s.url}/dicom-web/studies", cookies=jar).json()
    assert [x["0020000D"]["Value"][0] for x in found] == [study]
    person = s.query("SELECT pe.public_id FROM patient p JOIN person pe ON pe.id = p.person_id "
                     "WHERE p.patient_id = ?", pid)[0][0]
    return {"number": number, "person": person, "study": study, "other": other.StudyInstanceUID,
            "clinic_jar": jar}


def sign_in(tab, s, number):
    page = tab.page
    page.goto(f"{s.url}/me")
    page.fill("input[name=identity]", number)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    page.fill("input[name=code]", last_code(s))
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_the_patient_signs_in_by_sms_and_reads_her_results_on_a_phone(region, patient, browser):
    s = region
    tab = Page(browser, **PHONE)
    page = tab.page
    page.goto(f"{s.url}/me")
    assert "我的云胶片" in page.text_content("h1")
    tab.shot("film-signin")
    # An identity number nobody holds is answered exactly like hers, and sends nothing.
    sent = sms_count(s)
    page.fill("input[name=identity]", resident_id("19900101", male=True))
    page.click("button[type=submit]")
    page.wait_for_load_state()
    unknown = page.text_content("[role=status]")
    assert sms_count(s) == sent and page.locator("input[name=code]").is_visible()
    page.fill("input[name=code]", "123456")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "验证码错误" in page.text_content("[role=alert]")
    # Her number: a code goes to her phone; a wrong one is refused, the right one opens.
    page.goto(f"{s.url}/me")
    page.fill("input[name=identity]", patient["number"])
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert page.text_content("[role=status]") == unknown and sms_count(s) == sent + 1
    sms = json.loads(s.outbox.read_text().splitlines()[-1])
    assert sms["to"] == "13812345678" and "云胶片" in sms["text"]
    code = last_code(s)
    page.fill("input[name=code]", "000000" if code != "000000" else "111111")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "验证码错误" in page.text_content("[role=alert]")
    page.fill("input[name=code]", code)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert page.url.endswith("/me")
    cookie = next(c for c in tab.context.cookies() if c["name"] == "huren_film")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    # Her CT, its report, her glucose with its flag; nothing of the other patient.
    body = page.text_content("main")
    assert "胸部CT平扫" in body and "县人民医院" in body
    assert page.locator(".film-study").count() == 1
    page.locator("#reports details summary").first.click()
    assert "建议随访" in page.text_content("#reports pre")
    assert "7.9" in page.text_content("#labs") and page.locator("#labs tr.abnormal").count() == 1
    assert page.locator("img[src$='/thumb']").evaluate("i => i.complete && i.naturalWidth > 0")
    # One column on a phone: nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert not tab.csp and not tab.errors, (tab.csp, tab.errors)
    tab.shot("film-home")
    # The images, rendered (a phone cannot run the viewer): stepping changes the picture.
    page.click(".film-study a.button.primary")
    page.wait_for_load_state()
    img = page.locator(".film-series img")
    img.evaluate("i => i.decode()")
    first = img.screenshot()
    assert page.text_content(".stepper output").strip() == "1 / 4"
    page.click(".stepper .next")
    img.evaluate("i => i.decode()")
    assert page.text_content(".stepper output").strip() == "2 / 4"
    assert img.screenshot() != first
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert "建议随访" in page.text_content(".film-report")
    assert not tab.csp and not tab.errors, (tab.csp, tab.errors)
    tab.shot("film-images")
    # Her reads are audited as hers, purpose "patient"; the sign-in too.
    assert s.query("SELECT COUNT(*) FROM audit_event WHERE action = 'patient_data_accessed' "
                   "AND actor = ? AND json_extract(detail, '$.purpose') = 'patient'",
                   f"patient:{patient['person']}")[0][0] >= 1
    assert s.query("SELECT json_extract(detail, '$.step') FROM audit_event WHERE action = 'user_login' "
                   "AND actor = ?", f"patient:{patient['person']}") == [("signed_in",)]
    # With her session the API reads her studies (the viewer on a computer), and only hers;
    # nothing that writes.
    jar = {"huren_film": cookie["value"]}
    found = requests.get(f"{s.url}/dicom-web/studies", cookies=jar).json()
    assert [x["0020000D"]["Value"][0] for x in found] == [patient["study"]]
    assert requests.get(f"{s.url}/dicom-web/studies/{patient['other']}/metadata", cookies=jar).status_code in (403, 404)
    assert requests.delete(f"{s.url}/api/session", cookies=jar).status_code in (401, 403)
    r = requests.post(f"{s.url}/dicom-web/studies", cookies=jar, data=b"x",
                      headers={"Content-Type": "multipart/related; type=\"application/dicom\"; boundary=b"})
    assert r.status_code == 403
    # Another patient's study cannot be rendered or shared through her pages.
    assert requests.get(f"{s.url}/me/studies/{patient['other']}/thumb", cookies=jar).status_code in (403, 404)
    tab.close()


def test_she_shares_the_ct_by_link_and_ends_it(region, patient, browser):
    s = region
    tab = Page(browser, **PHONE)
    page = tab.page
    sign_in(tab, s, patient["number"])
    page.click(".film-study details.share summary")
    page.select_option(".film-study select[name=days]", "1")
    page.click(".film-study details.share button[type=submit]")
    page.wait_for_load_state()
    link = page.input_value("input.share-link")
    assert re.fullmatch(re.escape(s.url) + r"/s/[0-9a-f]{64}", link), link
    tab.shot("film-shared")
    # Opened by someone else, with no session: the CT and its report, nothing else.
    other = Page(browser, **PHONE)
    other.page.goto(link)
    assert "由患者本人分享" in other.page.text_content("main")
    img = other.page.locator(".film-series img")
    assert img.evaluate("i => i.decode().then(() => i.naturalWidth)") > 0
    assert other.page.locator("nav.film-nav").count() == 0
    assert "建议随访" in other.page.text_content(".film-report")
    assert not other.csp and not other.errors, (other.csp, other.errors)
    other.shot("film-link")
    secret = link.rsplit("/", 1)[1]
    series = other.page.get_attribute(".film-series", "data-base").split("/")[-2]
    # The link opens its own study only: another study's UIDs under it are refused.
    other_series = s.query("SELECT se.series_uid FROM series se JOIN study st ON st.id = se.study_id "
                           "WHERE st.study_uid = ?", patient["other"])[0][0]
    other_sop = s.query("SELECT i.sop_uid FROM instance i JOIN series se ON se.id = i.series_id "
                        "WHERE se.series_uid = ?", other_series)[0][0]
    r = requests.get(f"{s.url}/s/{secret}/images/{other_series}/{other_sop}")
    assert r.status_code in (403, 404), r.status_code
    # Every opening is recorded, as a read by the share.
    share_id = s.query("SELECT id FROM film_share ORDER BY id DESC LIMIT 1")[0][0]
    reads = s.query("SELECT COUNT(*) FROM audit_event WHERE action = 'patient_data_accessed' AND actor = ?",
                    f"share:{share_id}")[0][0]
    assert reads >= 1
    assert s.query("SELECT uses FROM film_share WHERE id = ?", share_id)[0][0] == 1
    # She ends it: the link opens nothing, and says so.
    page.goto(f"{s.url}/me#shares")
    row = page.locator(".share-row").first
    assert row.get_attribute("data-live") == "true" and "打开次数 1" in row.text_content()
    row.locator("button").click()
    page.wait_for_load_state()
    assert page.locator(".share-row").first.get_attribute("data-live") == "false"
    r = requests.get(link)
    assert r.status_code == 410 and "链接已失效" in r.text
    assert requests.get(f"{s.url}/s/{secret}/images/{series}/x").status_code == 410
    assert s.query("SELECT json_extract(detail, '$.step') FROM audit_event WHERE action = 'study_shared' "
                   "ORDER BY id") == [("shared",), ("ended",)]
    # A made-up link is refused alike.
    assert requests.get(f"{s.url}/s/{'0' * 64}").status_code == 410
    other.close()
    tab.close()


def test_she_sees_who_read_her_data_and_ends_the_clinics_authorization(region, patient, browser):
    s = region
    tab = Page(browser, **PHONE)
    page = tab.page
    sign_in(tab, s, patient["number"])
    page.goto(f"{s.url}/me/access")
    rows = page.locator("table.access-log tbody tr")
    text = page.text_content("table.access-log")
    # The clinic's doctor read her CT for treatment; her own reads are marked as hers. No
    # reader's name, and nothing of the other patient.
    assert "石桥村卫生室" in text and "医生" in text and "诊疗" in text and "本人查看" in text
    assert "li" not in re.findall(r"[a-z]+", text)
    assert patient["other"] not in page.content()
    assert rows.count() >= 3
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    tab.shot("film-access")
    # The clinic reads her studies until she ends the authorization, then nothing.
    jar = patient["clinic_jar"]
    assert requests.get(f"{s.url}/dicom-web/studies", cookies=jar).json()
    page.goto(f"{s.url}/me#authorizations")
    row = page.locator(".authorization-row").first
    assert "石桥村卫生室" in row.text_content() and row.get_attribute("data-live") == "true"
    row.locator("button").click()
    page.wait_for_load_state()
    assert page.locator(".authorization-row").first.get_attribute("data-live") == "false"
    r = requests.get(f"{s.url}/dicom-web/studies", cookies=jar)
    assert r.status_code == 200 and r.json() == []
    assert s.query("SELECT actor FROM audit_event WHERE action = 'patient_authorization' "
                   "AND json_extract(detail, '$.step') = 'revoked_by_patient'") == [(f"patient:{patient['person']}",)]
    # Forms without the session's token are refused (and audited).
    cookie = next(c for c in tab.context.cookies() if c["name"] == "huren_film")
    r = requests.post(f"{s.url}/me/studies/{patient['study']}/share", data={"days": "7"},
                      cookies={"huren_film": cookie["value"]}, allow_redirects=False)
    assert r.status_code == 403
    # Signing out ends the session at once.
    page.goto(f"{s.url}/me")
    page.click("header form button")
    page.wait_for_load_state()
    assert page.locator("input[name=identity]").is_visible()
    assert requests.get(f"{s.url}/dicom-web/studies", cookies={"huren_film": cookie["value"]}).status_code == 401
    tab.close()


def test_codes_are_limited_per_number_and_staff_sessions_do_not_open_the_film(region, patient):
    s = region
    # A doctor's session is not a patient's.
    jar, _ = session(s, "li")
    r = requests.get(f"{s.url}/me", cookies=jar, allow_redirects=False)
    assert r.status_code == 200 and 'name="identity"' in r.text
    # Five codes a day per person: the sixth is refused and sends nothing.
    n = s.query("SELECT COUNT(*) FROM film_signin f JOIN person p ON p.id = f.person_id WHERE p.public_id = ?",
                patient["person"])[0][0]
    for _ in range(5 - n):
        assert requests.post(f"{s.url}/me/code", data={"identity": patient["number"]}).status_code == 200
    sent = sms_count(s)
    r = requests.post(f"{s.url}/me/code", data={"identity": patient["number"]})
    assert r.status_code == 429 and "太多" in r.text and sms_count(s) == sent
    # A malformed number is said so.
    r = requests.post(f"{s.url}/me/code", data={"identity": "12345"})
    assert r.status_code == 422 and "身份证号格式不正确" in r.text


def test_the_report_qr_code_and_the_sms_lead_to_the_film(region, patient, browser):
    import io

    import zxingcpp
    from PIL import Image
    s = region
    r = requests.get(f"{s.url}/me/qr.svg")
    assert r.status_code == 200 and r.headers["content-type"] == "image/svg+xml"
    # Read back as a phone's camera would: rendered, then decoded by ZXing.
    tab = Page(browser, viewport={"width": 400, "height": 400})
    tab.page.goto(f"{s.url}/me/qr.svg")
    codes = zxingcpp.read_barcodes(Image.open(io.BytesIO(tab.page.screenshot())))
    assert [c.text for c in codes] == [f"{s.url}/me"]
    tab.close()
    # The SMS confirming an authorization names the film beside the link that ends it.
    texts = [json.loads(line)["text"] for line in s.outbox.read_text().splitlines()]
    assert any("已授权" in t and f"{s.url}/me" in t for t in texts)
