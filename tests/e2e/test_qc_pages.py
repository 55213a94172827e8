"""The QC centre's pages (issue #20, part 3), in Debian's Chromium against the real binary:
CT studies of different noise sent over DIMSE by two hospitals and graded by the QC workers;
the dashboard's distribution by institution (chart and CSV), by modality and by month; the
lowest studies first with their reasons; a study's drill-down to series, images and every
scorer's value — and no patient identity on any of it."""
import csv
import io
import uuid
from pathlib import Path

import pytest
import requests
from pydicom.uid import generate_uid

from helpers import CHROMIUM
from test_persons import store
from test_portal import sign_in
from test_quality import phantom_slice, wait_for
from test_sessions import add_user
from test_workstation import ASSETS, Page, browser  # noqa: F401 (the browser fixture)

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium not installed")


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    from conftest import Server, setup_region
    d = tmp_path_factory.mktemp("qcpages")
    setup_region(d)
    s = Server(d, {"HUREN__ARCHIVE__STABLE_AFTER_SECS": "1", "HUREN__QUALITY__WORKERS": "2"}).start()
    for name, role, inst in [("gao", "qc_officer", "city"), ("tech", "technician", "town"),
                             ("doc", "doctor", "city")]:
        out = add_user(s, name, role, institution=inst)
        assert out.returncode == 0, out.stderr
    # Quiet and noisy CTs from the county, one from the town: graded 甲 down to 丙 or worse.
    s.studies = {}
    for sigma, calling, bind in [(6.0, "COUNTY", "127.0.0.1"), (60.0, "COUNTY", "127.0.0.1"),
                                 (25.0, "PACS", "127.0.0.2")]:
        study, series = generate_uid(), generate_uid()
        pid = "QP" + uuid.uuid4().hex[:6].upper()
        for n in range(1, 4):
            ds = phantom_slice(study, series, n, sigma, n, pid)
            ds.PatientName = "Qian^Duo=钱^多"
            store(s, ds, calling=calling, bind=bind)
        s.studies[sigma] = study
    for study in s.studies.values():
        wait_for(s, "SELECT q.aggregated_at FROM qc_study q JOIN study st ON st.id = q.study_id "
                    "WHERE st.study_uid = ?", study, timeout=60)
    yield s
    s.stop()


def test_the_qc_centre_sees_distributions_the_lowest_studies_and_every_scorer(region, browser):
    s = region
    tab = Page(browser)
    page = tab.page
    sign_in(tab, s, "gao")
    page.click("a[href='/qc']")
    page.wait_for_load_state()
    groups = {r.split("\t")[0]: r.split("\t") for r in page.locator("table.qc-groups tbody tr").all_inner_texts()}
    assert set(groups) == {"county", "town"}, groups
    assert groups["county"][1] == "2" and groups["town"][1] == "1"
    if ASSETS.exists():
        page.wait_for_selector("#qc-chart[data-drawn='1'] canvas", timeout=10000)
    # The lowest first: the noisiest study heads the list, with what kept it down.
    lowest = page.locator("table.qc-lowest tbody tr")
    assert lowest.count() == 3
    scores = [int(x) for x in page.locator("table.qc-lowest tbody tr td:first-child").all_inner_texts()]
    assert scores == sorted(scores), scores
    assert "噪声" in lowest.first.inner_text(), lowest.first.inner_text()
    # No patient identity anywhere on the page.
    html = page.content()
    assert "钱" not in html and "QP" not in html and "Qian" not in html
    assert not tab.csp and not tab.errors, (tab.csp, tab.errors)
    tab.shot("qc-dashboard")

    # Drill down: the county's row → its lowest studies → the noisy study's series and images.
    page.click("table.qc-groups a:text-is('county')")
    page.wait_for_load_state()
    assert page.locator("table.qc-lowest tbody tr").count() == 2
    page.locator("table.qc-lowest tbody tr").first.locator("a").click()
    page.wait_for_load_state()
    assert s.studies[60.0] in page.locator("h1").inner_text()
    scorers = page.locator("table.qc-scorers tbody tr").all_inner_texts()
    noise = next(r for r in scorers if r.startswith("ct_noise"))
    assert "废片" in noise and "HU" in noise, noise  # its grade, with the bands in HU
    # Each image with every scorer's measured value.
    page.locator("details.qc-images summary").first.click()
    images = page.locator("details.qc-images tbody tr")
    assert images.count() == 3
    assert "ct_noise" in images.first.inner_text() and " HU" in images.first.inner_text()
    assert "钱" not in page.content()
    # The series' lowest-scored image, rendered: pixels only, no name or number with them.
    img = page.locator("figure.qc-image img")
    assert img.count() == 1 and img.evaluate("i => i.decode().then(() => i.naturalWidth)") > 0
    cookie = next(c for c in tab.context.cookies() if c["name"] == "huren_session")["value"]
    jpeg = requests.get(s.url + img.get_attribute("src"), cookies={"huren_session": cookie})
    assert jpeg.status_code == 200 and jpeg.headers["content-type"] == "image/jpeg"
    assert jpeg.content[:2] == b"\xff\xd8"
    for identity in ("Qian".encode(), "钱".encode(), b"QP", b"1.2.826"):
        assert identity not in jpeg.content
    # Looking is recorded as a read for quality control, once in the window.
    assert s.query("SELECT COUNT(*) FROM audit_event WHERE action = 'patient_data_accessed' AND study_uid = ? "
                   "AND json_extract(detail, '$.purpose') = 'quality_control'", s.studies[60.0])[0][0] == 1
    # The QC centre marks it reviewed, with a comment the hospital reads.
    assert "尚未复核" in page.locator("section.qc-reviews").inner_text()
    page.fill("form.review-form textarea[name=comment]", "噪声过高：请检查管电流设置并复扫。")
    page.click("form.review-form button[type=submit]")
    page.wait_for_load_state()
    reviews = page.locator("section.qc-reviews").inner_text()
    assert "已记录复核意见" in reviews and "请检查管电流设置" in reviews and "user:gao#" in reviews
    assert s.query("SELECT COUNT(*) FROM audit_event WHERE action = 'quality_reviewed' "
                   "AND study_uid = ?", s.studies[60.0])[0][0] == 1
    tab.shot("qc-study")
    # No comment: refused on the page, nothing recorded.
    cookie = next(c for c in tab.context.cookies() if c["name"] == "huren_session")["value"]
    csrf = page.locator("form.review-form input[name=csrf]").get_attribute("value")
    r = requests.post(f"{s.url}/qc/studies/{s.studies[60.0]}/reviews", cookies={"huren_session": cookie},
                      data={"csrf": csrf, "institution": "county", "comment": "  "})
    assert r.status_code == 422 and "请填写复核意见" in r.text
    assert s.query("SELECT COUNT(*) FROM qc_review")[0][0] == 1
    # The list marks it reviewed.
    page.goto(f"{s.url}/qc#lowest")
    noisy = page.locator("table.qc-lowest tbody tr", has=page.locator(f"a[href='/qc/studies/{s.studies[60.0]}']"))
    assert "已复核" in noisy.inner_text()
    assert page.locator("table.qc-lowest .reviewed").count() == 1

    # By modality and by month; the CSV of the distribution.
    page.goto(f"{s.url}/qc?by=modality")
    assert [r.split("\t")[0] for r in page.locator("table.qc-groups tbody tr").all_inner_texts()] == ["CT"]
    page.goto(f"{s.url}/qc?by=month")
    assert page.locator("table.qc-groups tbody tr").count() == 1
    cookie = next(c for c in tab.context.cookies() if c["name"] == "huren_session")["value"]
    href = page.locator("p.exports a").get_attribute("href")
    r = requests.get(s.url + href, cookies={"huren_session": cookie})
    assert r.status_code == 200, r.text
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert sum(int(x["studies"]) for x in rows) == 3, rows
    page.goto(f"{s.url}/qc?from=2026-13-01")
    assert "YYYY-MM-DD" in page.locator("main").inner_text()
    tab.close()


def test_a_technician_sees_his_institution_and_a_doctor_nothing(region, browser):
    s = region
    tab = Page(browser)
    sign_in(tab, s, "tech")
    tab.page.goto(f"{s.url}/qc")
    groups = [r.split("\t")[0] for r in tab.page.locator("table.qc-groups tbody tr").all_inner_texts()]
    assert groups == ["town"], groups
    tab.page.goto(f"{s.url}/qc/studies/{s.studies[60.0]}")
    assert "没有该检查的质控记录" in tab.page.locator("main").inner_text()
    # Nor its images, by any instance UID.
    cookie = next(c for c in tab.context.cookies() if c["name"] == "huren_session")["value"]
    sop = s.query("SELECT i.sop_uid FROM instance i JOIN study st ON st.id = i.study_id WHERE st.study_uid = ?",
                  s.studies[60.0])[0][0]
    r = requests.get(f"{s.url}/qc/studies/{s.studies[60.0]}/images/{sop}", cookies={"huren_session": cookie})
    assert r.status_code == 404
    # His own study: he reads it, and may not review it (the QC centre does).
    tab.page.goto(f"{s.url}/qc/studies/{s.studies[25.0]}")
    assert "尚未复核" in tab.page.locator("main").inner_text()
    assert tab.page.locator("form.review-form").count() == 0
    cookie = next(c for c in tab.context.cookies() if c["name"] == "huren_session")["value"]
    csrf = tab.page.locator("input[name=csrf]").first.get_attribute("value")
    r = requests.post(f"{s.url}/qc/studies/{s.studies[25.0]}/reviews", cookies={"huren_session": cookie},
                      data={"csrf": csrf, "institution": "town", "comment": "自评合格"})
    assert r.status_code == 403
    tab.close()
    tab = Page(browser)
    sign_in(tab, s, "doc")
    tab.page.goto(f"{s.url}/qc")
    assert "只有质控人员" in tab.page.locator("main").inner_text()
    cookie = next(c for c in tab.context.cookies() if c["name"] == "huren_session")["value"]
    r = requests.get(f"{s.url}/qc/studies/{s.studies[25.0]}/images/{sop}", cookies={"huren_session": cookie})
    assert r.status_code == 403
    tab.close()
