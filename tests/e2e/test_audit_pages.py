"""The auditor's pages (issue #20, part 5), in Debian's Chromium against the real binary with
the audit chain keyed and checkpointed: the trail filtered by who acted, patient, institution,
event and dates; the chain verified from the page (and found broken after an event is
rewritten); exports as CSV and as a FHIR AuditEvent bundle with the same filters."""
import csv
import datetime
import io
import sqlite3
import uuid
from pathlib import Path

import pytest
import requests
from fhirclient.models.bundle import Bundle

from helpers import CHROMIUM, ct
from test_audit import KEY
from test_persons import public_person, store
from test_portal import sign_in
from test_sessions import add_user
from test_workstation import Page, browser  # noqa: F401 (the browser fixture)
from conftest import region_today

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium not installed")


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    from conftest import Server, setup_region
    d = tmp_path_factory.mktemp("auditpages")
    outside = tmp_path_factory.mktemp("audit-outside")
    setup_region(d)
    s = Server(d, {"HUREN__AUDIT__CHAIN_KEY": KEY, "HUREN__AUDIT__CHECKPOINT_FILE": str(outside / "cp.jsonl"),
                   "HUREN__AUDIT__CHECKPOINT_SECS": "1"}).start()
    for name, role, inst in [("shen", "auditor", "city"), ("doc", "doctor", "city")]:
        out = add_user(s, name, role, institution=inst)
        assert out.returncode == 0, out.stderr
    yield s
    s.stop()


def test_an_auditor_filters_the_trail_verifies_the_chain_and_exports(region, browser):
    s = region
    pid = "AD" + uuid.uuid4().hex[:6].upper()
    store(s, ct(patient_id=pid))
    person = public_person(s, pid)
    # A doctor with no relationship tries the patient's page: refused, audited, naming him.
    tab = Page(browser)
    sign_in(tab, s, "doc", f"/patients/{person}")
    assert "没有诊疗关系" in tab.page.locator("main").inner_text()
    tab.close()

    tab = Page(browser)
    page = tab.page
    sign_in(tab, s, "shen")
    page.click("a[href='/audit']")
    page.wait_for_load_state()
    assert page.locator("table.audit-rows tbody tr").count() > 3
    # Who acted: the doctor's refused attempt.
    page.fill("input[name=actor]", "user:doc#")
    page.fill("input[name=action]", "access_denied")
    page.click("form.filters button[type=submit]")
    page.wait_for_load_state()
    rows = page.locator("table.audit-rows tbody tr").all_inner_texts()
    assert rows and all("access_denied" in r and "user:doc#" in r for r in rows), rows
    # The patient's record: its stored object, by record or by person.
    page.goto(f"{s.url}/audit?patient={pid}@urn:huren:institution:county")
    rows = page.locator("table.audit-rows tbody tr").all_inner_texts()
    assert rows and all("instance_stored" in r for r in rows), rows
    # By institution and by dates: today's county events; none tomorrow.
    today = region_today()
    page.goto(f"{s.url}/audit?institution=county&from={today - datetime.timedelta(days=1)}&until={today}")
    assert all("county" in r for r in page.locator("table.audit-rows tbody tr").all_inner_texts())
    page.goto(f"{s.url}/audit?from={today + datetime.timedelta(days=2)}")
    assert "没有符合条件的事件" in page.locator("main").inner_text()
    page.goto(f"{s.url}/audit?from=yesterday")
    assert "YYYY-MM-DD" in page.locator("main").inner_text()
    # The chain: a signed checkpoint is shown (the server writes one every second), and
    # verifying from the page finds the trail intact.
    page.goto(f"{s.url}/audit")
    page.wait_for_function("() => document.querySelector('.chain').innerText.includes('#')", timeout=10000)
    assert "最近签名检查点" in page.locator(".chain").inner_text()
    assert not tab.csp and not tab.errors, (tab.csp, tab.errors)
    tab.shot("audit-trail")
    page.click("a[href='/audit/verify']")
    page.wait_for_load_state()
    assert "审计日志完整" in page.locator("main").inner_text()
    assert "events chained" in page.locator("main").inner_text()

    # Exports with the same filter: CSV (what a spreadsheet opens) and a FHIR bundle.
    page.goto(f"{s.url}/audit?actor=user:doc%23&action=access_denied")
    cookie = next(c for c in tab.context.cookies() if c["name"] == "huren_session")["value"]
    href = page.locator("a", has_text="CSV").get_attribute("href")
    r = requests.get(s.url + href, cookies={"huren_session": cookie})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert table and all(x["action"] == "access_denied" and "user:doc#" in x["actor"] for x in table)
    href = page.locator("a", has_text="FHIR").get_attribute("href")
    r = requests.get(s.url + href, cookies={"huren_session": cookie})
    assert r.status_code == 200, r.text
    bundle = Bundle(r.json(), strict=True)
    assert bundle.entry and all("user:doc#" in e.resource.agent[0].who.display for e in bundle.entry)

    # Someone rewrites an event in the database: the page says the trail is broken.
    c = sqlite3.connect(str(s.data_dir / "index.sqlite"))
    c.execute("UPDATE audit_event SET actor = 'someone-else' WHERE id = (SELECT MIN(id) FROM audit_event WHERE seq IS NOT NULL)")
    c.commit()
    c.close()
    page.goto(f"{s.url}/audit/verify")
    assert "发现问题" in page.locator("main").inner_text()
    tab.shot("audit-broken")
    tab.close()


def test_only_auditors_read_the_trail(region, browser):
    s = region
    tab = Page(browser)
    sign_in(tab, s, "doc")
    for path in ["/audit", "/audit/verify", "/audit/export.csv"]:
        tab.page.goto(f"{s.url}{path}")
        assert "只有审计员" in tab.page.locator("main").inner_text(), path
    tab.close()
