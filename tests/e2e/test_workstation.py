"""The doctor's workstation (issue #19), in Debian's Chromium driven by Playwright, against the
real binary with data sent by real peers: the county's CT over DIMSE (DCMTK) and its report
over HL7 v2, lab results by FHIR; the city's HIS registers the patient, opens the visit and
launches the doctor. The tests look at what the pages show; screenshots of each page go to
tests/.work/screenshots (docs/workstation.md shows them)."""
import datetime
import json
import re
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import requests
from pydicom.uid import generate_uid

from conftest import ADMIN, ROOT, cli, free_port, load_recognition_config, region_today
from helpers import CHROMIUM, CHROMIUM_ARGS, dcmtk
from test_fhir import resident_id
from test_first_visit import ct_report
from test_hl7 import ack_fields, send
from test_persons import with_resident_id
from test_quality import phantom_slice, wait_for
from test_sessions import PASSWORD, add_user

SHOTS = ROOT / "tests" / ".work" / "screenshots"
TODAY = region_today()
ASSETS = ROOT / ".web-assets" / "embed" / "VERSIONS"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium not installed")


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    from conftest import Server, setup_region
    d = tmp_path_factory.mktemp("workstation")
    setup_region(d)
    load_recognition_config(d)
    mllp = free_port()
    s = Server(d, {"HUREN__ARCHIVE__STABLE_AFTER_SECS": "1", "HUREN__QUALITY__WORKERS": "2",
                   "HUREN__MLLP__LISTEN": f"127.0.0.1:{mllp}"}).start()
    s.mllp_port = mllp
    cli(d, "hl7-sender", "add", "--institution", "county", "--host", "127.0.0.1", "--facility", "RIS01")
    for name, inst in [("zhou", "city"), ("wu", "town")]:
        assert add_user(s, name, "doctor", institution=inst).returncode == 0
    assert add_user(s, "ops", "regional_operator", institution="city").returncode == 0
    s.his = {"Authorization": "Bearer " + cli(d, "token", "create", "--institution", "city")}
    s.county = {"Authorization": "Bearer " + cli(d, "token", "create", "--institution", "county"),
                "Content-Type": "application/fhir+json"}
    yield s
    s.stop()


def glucose(subject, value, days_ago, flag=None):
    day = (TODAY - datetime.timedelta(days=days_ago)).isoformat()
    o = {"resourceType": "Observation", "status": "final",
         "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "葡萄糖"}],
                  "text": "葡萄糖"},
         "subject": {"identifier": subject},
         "effectiveDateTime": f"{day}T08:00:00+08:00", "issued": f"{day}T10:00:00+08:00",
         "valueQuantity": {"value": value, "unit": "mmol/L"},
         "referenceRange": [{"low": {"value": 3.9, "unit": "mmol/L"}, "high": {"value": 6.1, "unit": "mmol/L"}}]}
    if flag:
        o["interpretation"] = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                                            "code": flag}]}]
    return o


@pytest.fixture(scope="module")
def patient(region, tmp_path_factory):
    """张伟's first visit at the city hospital, with a county CT (and its report) and lab results
    from both hospitals; the HIS has opened the visit."""
    s = region
    tmp = tmp_path_factory.mktemp("ct")
    tag = uuid.uuid4().hex[:6].upper()
    number = resident_id("19800101", male=True)
    study, series = generate_uid(), generate_uid()
    files = []
    y, x = np.mgrid[0:256, 0:256] - 128
    for n in range(1, 9):
        ds = with_resident_id(phantom_slice(study, series, n, 8.0, n, "CT" + tag), number)
        ds.PatientName = "Zhang^Wei=张^伟"
        ds.PatientBirthDate, ds.PatientSex = "19800101", "M"
        ds.WindowCenter, ds.WindowWidth = 40, 400
        # A 100 HU lesion that grows along the series: scrolling must change the picture.
        hu = np.frombuffer(ds.PixelData, dtype="<i2").reshape(256, 256).astype(np.int32)
        hu = np.where(np.hypot(x + 30, y) < 6 + 5 * n, hu + 100, hu)
        ds.PixelData = hu.astype("<i2").tobytes()
        p = tmp / f"ct{n}.dcm"
        ds.save_as(p, enforce_file_format=True)
        files.append(str(p))
    out = dcmtk("storescu", "-aet", "COUNTY", "-aec", "HUREN", "127.0.0.1", str(s.dimse_port), *files)
    assert out.returncode == 0, out.stderr
    pid3 = f"CT{tag}^^^urn:huren:institution:county^MR~{number}^^^身份证^NI"
    (ack,) = send(s.mllp_port, ct_report("R" + tag, pid3, study))
    assert ack_fields(ack)[0] == "AA"
    county = {"system": "urn:huren:institution:county", "value": "CT" + tag}
    for value, days, flag in [(5.4, 40, None), (7.9, 3, "H")]:
        r = requests.post(f"{s.url}/fhir/Observation", json=glucose(county, value, days, flag), headers=s.county)
        assert r.status_code == 201, r.text
    # The city registers its record from the identity card, and opens the visit.
    record = "MZ" + tag
    reg = {"resourceType": "Patient", "name": [{"family": "张", "given": ["伟"]}], "gender": "male",
           "birthDate": "1980-01-01",
           "identifier": [{"system": "urn:oid:1.2.156.1", "value": record},
                          {"system": "urn:huren:id:cn-resident", "value": number}]}
    r = requests.put(f"{s.url}/fhir/Patient", params={"identifier": f"urn:oid:1.2.156.1|{record}"}, json=reg,
                     headers={**s.his, "Content-Type": "application/fhir+json"})
    assert r.status_code in (200, 201), r.text
    person = r.json()["id"]
    r = requests.post(f"{s.url}/fhir/Observation", headers={**s.his, "Content-Type": "application/fhir+json"},
                      json=glucose({"system": "urn:oid:1.2.156.1", "value": record}, 6.0, 20))
    assert r.status_code == 201, r.text
    visit = {"visit_number": "V" + tag, "patient_id": record, "doctor": "zhou", "department": "放射科"}
    assert requests.post(f"{s.url}/api/encounters", json=visit, headers=s.his).status_code == 200
    wait_for(s, "SELECT q.aggregated_at FROM qc_study q JOIN study st ON st.id = q.study_id WHERE st.study_uid = ?",
             study, timeout=60)
    return {"person": person, "study": study, "record": record, "tag": tag, "number": number}


def launch_url(s, record, doctor="zhou"):
    r = requests.post(f"{s.url}/api/launch", json={"doctor": doctor, "patient_id": record}, headers=s.his)
    assert r.status_code == 201, r.text
    return r.json()["url"]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Page:
    """A browser tab that collects CSP violations and script errors."""

    def __init__(self, browser, **kw):
        self.context = browser.new_context(viewport=kw.pop("viewport", {"width": 1280, "height": 800}), **kw)
        self.page = self.context.new_page()
        self.csp = []
        self.errors = []
        self.page.on("console", lambda m: self.csp.append(m.text) if "Content Security Policy" in m.text else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def shot(self, name, full=True):
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full)

    def close(self):
        self.context.close()


def test_launch_lands_on_the_patient_with_reminder_timeline_labs_and_the_decision(region, patient, browser):
    s = region
    tab = Page(browser)
    page = tab.page
    page.goto(launch_url(s, patient["record"]))
    # One click: the launch signed the doctor in and landed on the patient's page.
    assert page.url.endswith(f"/patients/{patient['person']}"), page.url
    assert page.locator("h1").first.inner_text() == "张伟"
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    banner = page.locator(".reminder")
    assert "该患者有可互认的外院检查检验结果" in banner.inner_text()
    # The county CT on the timeline: institution, item, verdict with its HR mark, validity, grade.
    ct = page.locator("li.entry", has=page.locator(f"a[href*='{patient['study']}']")).first
    text = ct.inner_text()
    assert "县人民医院" in text and "可互认" in text and "川渝HR" in text, text
    assert re.search(r"有效期至 \d{4}-\d{2}-\d{2}", text), text
    assert re.search(r"质控等级 [甲乙丙]", text), text
    # Newest first: the entries' dates never increase down the page.
    dates = [d for d in page.locator("li.entry time").all_inner_texts()]
    assert dates == sorted(dates, reverse=True), dates
    # The thumbnail is a real image of the study.
    thumb = ct.locator(".thumb img")
    thumb.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle(), timeout=20000)
    # The explanation and the report on demand.
    # The explanation is fetched when opened (it is a third of the page otherwise).
    assert ct.locator("details.why ul.consulted").count() == 0
    ct.locator("details.why summary").click()
    ct.locator("details.why ul.consulted li").first.wait_for(timeout=10000)
    assert ct.locator("details.why ul.consulted li").count() >= 3
    assert "可互认" in ct.locator("details.why p").first.inner_text()
    ct.locator("details.report summary").click()
    assert "未见明显异常" in ct.locator("details.report pre").inner_text()
    # Lab results: one analyte across both hospitals, the flag, the range, and the trend chart.
    labs = page.locator("section.labs")
    assert labs.locator("tbody tr").count() == 3
    flagged = labs.locator("tr.flagged").inner_text()
    assert "7.9" in flagged and "H" in flagged
    assert "3.9-6.1" in labs.inner_text() or "3.9–6.1" in labs.inner_text()
    if ASSETS.exists():
        page.wait_for_selector("section.labs .trend canvas", timeout=10000)
    tab.shot("workstation-patient")

    # The decision: recognize the CT; the sentence for the medical record, with a copy button.
    ct.locator("details.decide summary").click()
    ct.locator("input[value=recognize]").check()
    ct.locator("details.decide button[type=submit]").click()
    sentence = ct.locator("blockquote.sentence")
    sentence.wait_for(timeout=10000)
    assert sentence.inner_text().startswith("认可县人民医院"), sentence.inner_text()
    tab.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=s.url)
    ct.locator("button.copy").click()
    page.wait_for_function("b => b.textContent === '已复制'", arg=ct.locator("button.copy").element_handle(),
                           timeout=5000)
    assert page.evaluate("navigator.clipboard.readText()") == sentence.inner_text().strip()
    tab.shot("workstation-decided", full=False)
    # Re-examine the county's glucose for a reason from the region's list.
    lab = page.locator("li.entry", has_text="7.9").first
    lab.locator("details.decide summary").click()
    lab.locator("input[value=re_examine]").check()
    lab.locator("select[name=reason]").select_option("01")
    lab.locator("details.decide button[type=submit]").click()
    lab.locator("blockquote.sentence").wait_for(timeout=10000)
    assert "复查" in lab.locator("blockquote.sentence").inner_text() or "重新" in lab.locator("blockquote.sentence").inner_text()
    assert not tab.csp, tab.csp
    assert not tab.errors, tab.errors
    tab.close()

    # The statistics count both decisions and the reminder shown at this visit.
    day = TODAY.isoformat()
    st = requests.get(f"{s.url}/api/recognition/statistics", params={"from": day, "until": day, "by": "institution"},
                      headers={"Authorization": f"Bearer {ADMIN}"})
    assert st.status_code == 200, st.text
    total = st.json()["total"]
    assert total["recognized"] >= 1 and total["reexamined"] >= 1 and total["shown"] >= 2, total
    rows = s.query("SELECT d.decision, d.reason FROM recognition_decision d JOIN person p ON p.id = d.person_id "
                   "WHERE p.public_id = ? ORDER BY d.id", patient["person"])
    assert ("recognize", None) in rows and ("re_examine", "01") in rows, rows


def statistics_total(s):
    day = TODAY.isoformat()
    st = requests.get(f"{s.url}/api/recognition/statistics", params={"from": day, "until": day},
                      headers={"Authorization": f"Bearer {ADMIN}"})
    assert st.status_code == 200, st.text
    return st.json()["total"]


def test_the_operator_sees_the_decisions_in_the_statistics(region, patient, browser):
    """The regional operator's statistics page (issue #20, part 4) counts the decisions the
    doctor recorded above, and the re-examination by its reason."""
    s = region
    tab = Page(browser)
    page = tab.page
    page.goto(f"{s.url}/")
    page.fill("input[name=username]", "ops")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    page.click("a[href='/stats']")
    page.wait_for_load_state()
    head = page.locator("dl.headline").inner_text()
    assert re.search(r"互认\s+1\b", head) and re.search(r"复查\s+1\b", head), head
    rows = page.locator("table.stats-rows tbody tr").all_inner_texts()
    assert any(r.startswith("city") for r in rows), rows
    assert "01" in page.locator("table.stats-reasons").inner_text()
    if ASSETS.exists():
        page.wait_for_selector("#stats-chart[data-drawn='1'] canvas", timeout=10000)
    assert not tab.csp and not tab.errors, (tab.csp, tab.errors)
    tab.shot("stats")
    # By item; and the CSV of the same figures.
    page.goto(f"{s.url}/stats?by=item")
    assert page.locator("table.stats-rows tbody tr").count() >= 2
    cookie = next(c for c in tab.context.cookies() if c["name"] == "huren_session")["value"]
    r = requests.get(s.url + page.locator("p.exports a").get_attribute("href"), cookies={"huren_session": cookie})
    assert r.status_code == 200 and "text/csv" in r.headers["content-type"], r.text
    # The operator reads no patient data: the patient's page and her images are refused, and
    # the refusal is in the trail.
    resp = page.goto(f"{s.url}/patients/{patient['person']}")
    assert resp.status == 403 and "张伟" not in page.content()
    r = requests.get(f"{s.url}/dicom-web/studies/{patient['study']}/metadata", cookies={"huren_session": cookie})
    assert r.status_code == 403
    assert s.query("SELECT COUNT(*) FROM audit_event WHERE action = 'access_denied' AND actor LIKE 'user:ops#%'")[0][0] >= 2
    tab.close()
    # A doctor is refused the page.
    tab = Page(browser)
    tab.page.goto(f"{s.url}/stats")
    tab.page.fill("input[name=username]", "wu")
    tab.page.fill("input[name=password]", PASSWORD)
    tab.page.click("button[type=submit]")
    tab.page.wait_for_load_state()
    assert "只有运营人员和机构管理员" in tab.page.locator("main").inner_text()
    tab.close()


def test_english_and_back(region, patient, browser):
    s = region
    # A second visit: the first one closes, another opens.
    for body in ({"visit_number": "V" + patient["tag"], "patient_id": patient["record"], "status": "closed"},
                 {"visit_number": "E" + patient["tag"], "patient_id": patient["record"], "doctor": "zhou"}):
        assert requests.post(f"{s.url}/api/encounters", json=body, headers=s.his).status_code == 200
    ignored = statistics_total(s)["ignored"]
    tab = Page(browser)
    page = tab.page
    page.goto(launch_url(region, patient["record"]))
    page.get_by_role("link", name="English").click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/patients/{patient['person']}")
    assert page.locator("html").get_attribute("lang") == "en"
    body = page.locator("main").inner_text()
    assert "Results timeline" in body and "recognizable" in body
    assert "this patient has recognizable results" in body.lower()
    assert "时间轴" not in body
    tab.shot("workstation-patient-en")
    page.get_by_role("link", name="中文").click()
    page.wait_for_load_state()
    assert "检查检验时间轴" in page.locator("main").inner_text()
    tab.close()
    # The doctor saw the reminder at this visit and neither decided nor opened the images: the
    # statistics count those results as ignored.
    assert statistics_total(s)["ignored"] >= ignored + 2


def test_a_doctor_without_a_relationship_sees_nothing_and_is_told_why(region, patient, browser):
    s = region
    tab = Page(browser)
    page = tab.page
    # Signing in by password at the town clinic, then opening the city's patient by URL.
    page.goto(f"{s.url}/patients/{patient['person']}")
    assert "/?next=" in page.url
    page.fill("input[name=username]", "wu")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    assert "用户名或密码错误" in page.locator("main").inner_text()
    tab.shot("workstation-signin")
    page.fill("input[name=username]", "wu")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert page.url.endswith(f"/patients/{patient['person']}")
    body = page.locator("main").inner_text()
    assert "没有诊疗关系" in body
    assert "张" not in body and patient["study"] not in page.content() and "县人民医院" not in body
    tab.shot("workstation-no-relationship")
    # The explanation fetched on demand is refused the same way.
    page.goto(f"{s.url}/patients/{patient['person']}/why?kind=imaging_study&id={patient['study']}")
    assert "没有诊疗关系" in page.locator("main").inner_text() and "县人民医院" not in page.content()
    # The refusal is in the audit trail, with who was refused.
    rows = s.query("SELECT outcome FROM audit_event WHERE action = 'access_denied' AND actor LIKE '%wu%'")
    assert rows, "refused page not audited"
    # Searching by the patient's identity number finds nobody for this doctor either.
    page.goto(f"{s.url}/patients?identity={patient['number']}")
    assert "未找到您可查看的患者" in page.locator("main").inner_text()
    # Sign out: the session ends, and the old cookie opens nothing.
    cookie = next(c for c in tab.context.cookies() if c["name"] == "huren_session")["value"]
    page.get_by_role("button", name="退出").click()
    page.wait_for_load_state()
    assert "您已退出" in page.locator("main").inner_text()
    r = requests.get(f"{s.url}/patients/{patient['person']}", cookies={"huren_session": cookie}, allow_redirects=False)
    assert r.status_code == 303 and "m=session_ended" in r.headers["location"]
    tab.close()


def test_every_form_needs_the_csrf_token(region, patient):
    s = region
    opened = requests.get(launch_url(s, patient["record"]), allow_redirects=False)
    jar = {"huren_session": opened.cookies["huren_session"]}
    page = requests.get(f"{s.url}/patients/{patient['person']}", cookies=jar)
    assert page.status_code == 200
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)
    form = {"kind": "imaging_study", "id": patient["study"], "decision": "recognize"}
    before = s.query("SELECT COUNT(*) FROM recognition_decision")[0][0]
    for path, body in [(f"/patients/{patient['person']}/decisions", form),
                       ("/order-reminder/decisions", {**form, "person": patient["person"]}),
                       ("/signout", {})]:
        r = requests.post(f"{s.url}{path}", data=body, cookies=jar, allow_redirects=False)
        assert r.status_code == 403, (path, r.status_code)
        r = requests.post(f"{s.url}{path}", data={**body, "csrf": "0" * 64}, cookies=jar, allow_redirects=False)
        assert r.status_code == 403, (path, r.status_code)
    assert s.query("SELECT COUNT(*) FROM recognition_decision")[0][0] == before
    # With the token (as the page's form sends it), the decision is recorded.
    r = requests.post(f"{s.url}/patients/{patient['person']}/decisions", data={**form, "csrf": token}, cookies=jar)
    assert r.status_code == 201 and "认可县人民医院" in r.text
    # Every page says what it allows: no inline script, this origin only.
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self';" in csp and "unsafe-inline" not in csp.split("style-src")[0]
    assert "<script>" not in page.text and " style=" not in page.text and " onclick=" not in page.text


def test_the_order_time_reminder_as_the_his_shows_it(region, patient, browser):
    s = region
    items = requests.get(f"{s.url}/api/catalog/items", headers=s.his).json()
    ct_item = next(i["code"] for i in items["items"] if i.get("modality") == "CT" and i.get("body_part") == "CHEST")
    tab = Page(browser, viewport={"width": 800, "height": 600})
    page = tab.page
    page.goto(launch_url(s, patient["record"]))
    page.goto(f"{s.url}/order-reminder?patient_id={patient['record']}&item={ct_item}")
    body = page.locator("main").inner_text()
    assert "您开立的项目有可互认的结果" in body and "县人民医院" in body, body
    tab.shot("workstation-order-reminder")
    page.locator("form.inline-decide button").first.click()
    page.locator("blockquote.sentence").wait_for(timeout=10000)
    assert page.locator("blockquote.sentence").inner_text().startswith("认可县人民医院")
    assert not tab.csp, tab.csp
    tab.close()


def test_a_tablet_sees_the_whole_page(region, patient, browser):
    tab = Page(browser, viewport={"width": 768, "height": 1024}, is_mobile=True, has_touch=True)
    page = tab.page
    page.goto(launch_url(region, patient["record"]))
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert page.locator(".reminder").is_visible()
    tab.shot("workstation-tablet")
    # Keyboard: the skip link is the first stop, then the page's controls in order.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    tab.close()


def viewport_pixels(scope):
    import io

    from PIL import Image
    el = scope.locator(".cornerstone-viewport-element, [data-viewport-uid]").first
    return np.asarray(Image.open(io.BytesIO(el.screenshot())).convert("L"), dtype=np.float64)


@pytest.mark.skipif(not ASSETS.exists(), reason="web assets not prepared (scripts/web-assets.sh)")
def test_images_open_in_one_click_in_ohif_on_the_same_origin(region, patient, browser):
    """OHIF starts in a hidden frame while the page is read; 打开影像 shows it on the study."""
    tab = Page(browser, viewport={"width": 1280, "height": 800})
    page = tab.page
    page.goto(launch_url(region, patient["record"]))
    ct = page.locator("li.entry", has=page.locator(f"a[href*='{patient['study']}']")).first
    overlay = page.locator("#viewer-overlay")
    assert not overlay.is_visible()
    ct.get_by_role("link", name="打开影像", exact=True).click()
    assert overlay.is_visible()
    page.wait_for_function("() => document.getElementById('viewer-frame').contentWindow.location.search.length > 0")
    viewer = page.frame_locator("#viewer-frame")
    frame = next(f for f in page.frames if f.url.startswith(f"{region.url}/viewer"))
    assert f"StudyInstanceUIDs={patient['study']}" in frame.url, frame.url
    viewer.locator("canvas").first.wait_for(timeout=120_000)
    deadline = time.time() + 90
    first = None
    while time.time() < deadline:
        first = viewport_pixels(viewer)
        if first.std() > 10:
            break
        page.wait_for_timeout(500)
    assert first is not None and first.std() > 10, "the viewport stayed blank"
    box = viewer.locator(".cornerstone-viewport-element, [data-viewport-uid]").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    changed = False
    for _ in range(16):
        page.mouse.wheel(0, 300)
        page.wait_for_timeout(400)
        after = viewport_pixels(viewer)
        if np.abs(after - first).mean() > 0.5:
            changed = True
            break
    tab.shot("workstation-viewer", full=False)
    assert changed, "scrolling did not change the image"
    # OHIF speaks the page's language.
    assert "检查" in viewer.locator("body").inner_text() or "研究" in viewer.locator("body").inner_text()
    # Closing returns to the page; the study link still works on its own (a new tab).
    page.get_by_role("button", name="关闭（Esc）").click()
    assert not overlay.is_visible()
    r = requests.get(f"{region.url}{ct.locator('a.open-images').get_attribute('href')}",
                     cookies={c["name"]: c["value"] for c in tab.context.cookies()}, allow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/viewer/viewer?StudyInstanceUIDs={patient['study']}"
    assert not [c for c in tab.csp if "Refused" in c], tab.csp[:3]
    tab.close()


def test_the_viewers_study_query_never_mixes_two_hospitals_patient_ids(region, patient):
    """OHIF asks `/dicom-web/studies?PatientID=…` for the patient's other studies. The town
    numbers a different person (李娜) with the same PatientID as the county's 张伟; the doctor
    reaches both. The answer is always the person on the doctor's screen, across institutions."""
    from helpers import ct
    from test_persons import store
    s = region
    tag = patient["tag"]
    number = resident_id("19750505", male=False)
    other = with_resident_id(ct(patient_id="CT" + tag, name="Li^Na=李^娜", rows=64, cols=64), number)
    other.PatientBirthDate, other.PatientSex = "19750505", "F"
    store(s, other, calling="PACS", bind="127.0.0.2")
    record = "LI" + tag
    reg = {"resourceType": "Patient", "name": [{"family": "李", "given": ["娜"]}], "gender": "female",
           "birthDate": "1975-05-05", "identifier": [{"system": "urn:oid:1.2.156.1", "value": record},
                                                     {"system": "urn:huren:id:cn-resident", "value": number}]}
    r = requests.put(f"{s.url}/fhir/Patient", params={"identifier": f"urn:oid:1.2.156.1|{record}"}, json=reg,
                     headers={**s.his, "Content-Type": "application/fhir+json"})
    assert r.status_code in (200, 201), r.text
    li = r.json()["id"]
    assert li != patient["person"]
    visit = {"visit_number": "W" + tag, "patient_id": record, "doctor": "zhou", "department": "放射科"}
    assert requests.post(f"{s.url}/api/encounters", json=visit, headers=s.his).status_code == 200

    jar = {"huren_session": requests.get(launch_url(s, patient["record"]), allow_redirects=False)
           .cookies["huren_session"]}

    def studies():
        r = requests.get(f"{s.url}/dicom-web/studies", params={"PatientID": "CT" + tag}, cookies=jar)
        assert r.status_code == 200, r.text
        return {x["0020000D"]["Value"][0] for x in r.json()}, r.headers.get("warning", "")

    assert requests.get(f"{s.url}/patients/{li}", cookies=jar).status_code == 200
    assert studies()[0] == {other.StudyInstanceUID}
    assert requests.get(f"{s.url}/patients/{patient['person']}", cookies=jar).status_code == 200
    assert studies()[0] == {patient["study"]}
    # A doctor who opened neither (the HIS acting for a colleague with both visits) gets no mixed
    # list: nothing, and a Warning saying why.
    assert add_user(s, "zheng", "doctor", institution="city").returncode == 0
    for rec in (patient["record"], record):
        v = {"visit_number": "Z" + rec, "patient_id": rec, "doctor": "zheng"}
        assert requests.post(f"{s.url}/api/encounters", json=v, headers=s.his).status_code == 200
    r = requests.get(f"{s.url}/dicom-web/studies", params={"PatientID": "CT" + tag},
                     headers={**s.his, "X-Huren-On-Behalf-Of": "zheng"})
    assert r.status_code == 200 and r.json() == [] and "several institutions" in r.headers["warning"]
    # With the issuer named, the query is answered as asked.
    r = requests.get(f"{s.url}/dicom-web/studies", params={"PatientID": "CT" + tag,
                                                           "IssuerOfPatientID": "urn:huren:institution:county"},
                     headers={**s.his, "X-Huren-On-Behalf-Of": "zheng"})
    assert [x["0020000D"]["Value"][0] for x in r.json()] == [patient["study"]]
