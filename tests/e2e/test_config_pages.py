"""The operators' configuration page (issue #20, part 4), in Debian's Chromium against the real
binary: the history of catalog versions and recognition sets with the one in force, the
institutions and DICOM peers; a catalog file with bad lines names every one and changes
nothing; a good one chosen from disk becomes a new version (audited); a qualifications set
replaces the one in force; other roles are refused. Screenshots go to tests/.work/screenshots
(docs/dashboards.md)."""
from pathlib import Path

import pytest
import requests

from conftest import ROOT, cli, load_recognition_config
from helpers import CHROMIUM
from test_sessions import add_user
from test_portal import sign_in
from test_workstation import Page, browser  # noqa: F401 (the browser fixture)

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium not installed")
ITEMS = ROOT / "crates" / "huren" / "demo" / "catalog" / "items.csv"


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    from conftest import Server, setup_region
    d = tmp_path_factory.mktemp("config")
    setup_region(d)
    load_recognition_config(d)
    s = Server(d).start()
    for name, role in [("ops", "regional_operator"), ("doc", "doctor")]:
        assert add_user(s, name, role).returncode == 0
    s.token = cli(d, "token", "create", "--institution", "county", "--expires-days", "30")
    # The county hospital is to be renamed from the start of 2031: effective-dated.
    cli(d, "institution", "set", "--code", "county", "--attribute", "name", "--value", "县人民医院（新院区）",
        "--valid-from", "2031-01-01")
    yield s
    s.stop()


def test_the_operator_reads_the_history_and_imports_with_every_bad_line_named(region, browser, tmp_path):
    s = region
    tab = Page(browser)
    page = tab.page
    sign_in(tab, s, "ops")
    page.click("a[href='/config']")
    page.wait_for_load_state()
    versions = page.locator("table.versions tbody tr")
    assert versions.count() == 1 and "v1" in versions.first.inner_text()
    assert "2024-01-01" in versions.first.inner_text() and "console" in versions.first.inner_text()
    # The institutions today, and as they will be on another day; every version of one.
    names = page.locator("table.institutions").inner_text()
    assert "县人民医院" in names and "新院区" not in names
    page.fill("form.as-of input[name=as_of]", "2031-06-01")
    page.click("form.as-of button")
    page.wait_for_load_state()
    assert "县人民医院（新院区）" in page.locator("table.institutions").inner_text()
    page.click("table.institutions a[href='/config/institutions/county']")
    page.wait_for_load_state()
    history = page.locator("table.history tbody tr").all_inner_texts()
    named = [r for r in history if r.startswith("name")]
    assert len(named) == 2 and "2031-01-01" in named[1] and "新院区" in named[1], history
    assert "2030-12-31" in named[0]  # the old name ends the day before the new one starts
    page.goto(f"{s.url}/config")
    assert "COUNTY" in page.locator("table.peers").inner_text()
    # Tokens: whose, what they read, their life; never the secret.
    tokens = page.locator("table.tokens tbody tr").all_inner_texts()
    assert any("county" in t and "有效" in t for t in tokens), tokens
    assert s.token not in page.content()
    sets = page.locator("table.sets tbody tr")
    assert sets.count() == 1 and "现行" in sets.first.inner_text()
    assert not tab.csp and not tab.errors, (tab.csp, tab.errors)

    # A catalog with two bad lines: both named, nothing changed.
    good = ITEMS.read_text().splitlines()
    bad = [good[0], good[1], good[2].replace(",imaging,", ",radiology,"), good[3],
           good[4].replace(",90,", ",-5,")]
    page.select_option("select[name=kind]", "catalog")
    page.fill("input[name=label]", "v2-broken")
    page.fill("input[name=effective_from]", "2026-01-01")
    page.fill("textarea[name=text]", "\n".join(bad) + "\n")
    page.click("form.import-form button[type=submit]")
    page.wait_for_load_state()
    alert = page.locator("[role=alert]").inner_text()
    assert "未作任何更改" in alert
    lines = page.locator("table.bad-lines tbody tr").all_inner_texts()
    assert [x.split("\t")[0] for x in lines] == ["3", "5"], lines
    assert "radiology" in lines[0] and "validity_days" in lines[1]
    assert s.query("SELECT COUNT(*) FROM catalog_version")[0][0] == 1
    # The file stays in the form, to be corrected.
    assert "radiology" in page.input_value("textarea[name=text]")
    assert page.input_value("input[name=label]") == "v2-broken"
    tab.shot("config-bad-lines")

    # The good file, chosen from disk (read into the form by the page), is the new version.
    page.select_option("select[name=kind]", "catalog")
    page.fill("input[name=label]", "v2")
    page.fill("input[name=effective_from]", "2026-01-01")
    page.set_input_files("input.file-pick", str(ITEMS))
    page.wait_for_function("() => document.querySelector('textarea[name=text]').value.length > 100")
    page.click("form.import-form button[type=submit]")
    page.wait_for_load_state()
    assert "已导入" in page.locator("[role=status]").inner_text()
    labels = [r.split("\t")[0] for r in page.locator("table.versions tbody tr").all_inner_texts()]
    assert labels == ["v2", "v1"], labels
    assert s.query("SELECT COUNT(*) FROM audit_event WHERE action = 'configuration_changed' "
                   "AND object = 'catalog:v2' AND actor LIKE 'user:ops#%'")[0][0] == 1

    # A qualifications set replaces the one in force; the history keeps both kinds.
    page.select_option("select[name=kind]", "qualifications")
    assert not page.locator("input[name=label]").is_visible()
    page.fill("textarea[name=text]", "record,institution,item,scope,evaluated_by,valid_from,valid_until\n"
                                     "Q1,county,*,川渝HR,city,2024-01-01,2027-12-31\n")
    page.click("form.import-form button[type=submit]")
    page.wait_for_load_state()
    status = page.locator("[role=status]")
    if status.count() == 0:
        pytest.fail(page.locator("[role=alert]").inner_text())
    kinds = page.locator("table.sets tbody tr").all_inner_texts()
    assert len(kinds) == 2 and "机构资质记录" in kinds[0] and "现行" in kinds[0], kinds
    assert "互认范围" in kinds[1] and "现行" in kinds[1]
    tab.shot("config")

    # A policy that does not parse is refused in words.
    page.select_option("select[name=kind]", "policy")
    page.fill("textarea[name=text]", "this is = not [toml\n")
    page.click("form.import-form button[type=submit]")
    page.wait_for_load_state()
    assert "未作任何更改" in page.locator("[role=alert]").inner_text()
    assert s.query("SELECT COUNT(*) FROM recognition_set WHERE kind = 'policy'")[0][0] == 0

    # Institutions from a file: a bad line names itself and registers nobody; then a new
    # clinic, a campus of the city hospital and a change to the town's level, dated.
    header = "code,name,level,ownership,region,city,organization,division,valid_from\n"
    page.select_option("select[name=kind]", "institutions")
    page.fill("textarea[name=text]", header +
              "clinic9,九号村卫生室,其他,,,重庆,,500103,2026-01-01\n"
              "campus2,市人民医院二院区,三级,公立,,重庆,nowhere,,2026-01-01\n"
              "town,镇卫生院,二级,,,,,,2027-07-01\n")
    page.click("form.import-form button[type=submit]")
    page.wait_for_load_state()
    assert [x.split("\t")[0] for x in page.locator("table.bad-lines tbody tr").all_inner_texts()] == ["3"]
    assert "nowhere" in page.locator("table.bad-lines").inner_text()
    assert s.query("SELECT COUNT(*) FROM institution WHERE code IN ('clinic9', 'campus2')")[0][0] == 0
    page.fill("textarea[name=text]", header +
              "clinic9,九号村卫生室,其他,,,重庆,,500103,2026-01-01\n"
              "campus2,市人民医院二院区,三级,公立,,重庆,city,,2026-01-01\n"
              "town,镇卫生院,二级,,,,,,2027-07-01\n")
    page.click("form.import-form button[type=submit]")
    page.wait_for_load_state()
    assert "2 家新增 · 1 家变更" in page.locator("[role=status]").inner_text()
    page.goto(f"{s.url}/config/institutions/town")
    levels = [r for r in page.locator("table.history tbody tr").all_inner_texts() if r.startswith("level")]
    assert len(levels) == 2 and "secondary" in levels[1] and "2027-07-01" in levels[1], levels
    r = requests.get(f"{s.url}/config/in-force/institutions?format=csv",
                     cookies={"huren_session": next(c for c in tab.context.cookies()
                                                    if c["name"] == "huren_session")["value"]})
    assert "campus2,市人民医院二院区,tertiary,public,,重庆,city," in r.content.decode("utf-8-sig")
    page.goto(f"{s.url}/config")

    # DICOM peers from a file: an AE registered already and a bad network are named, nothing
    # is registered; the corrected file registers the clinic's modality.
    ae_header = "ae_title,institution,network,port,assumed_charset,stable_after_secs,default_performer,require_tls\n"
    page.select_option("select[name=kind]", "aes")
    page.fill("textarea[name=text]", ae_header +
              "CLINIC9DR,clinic9,10.9.0.0/24,,GB18030,30,,no\n"
              "COUNTY,county,127.0.0.1,,,,,no\n"
              "X2,clinic9,not-an-ip,,,,,no\n")
    page.click("form.import-form button[type=submit]")
    page.wait_for_load_state()
    bad = page.locator("table.bad-lines tbody tr").all_inner_texts()
    assert [x.split("\t")[0] for x in bad] == ["3", "4"], bad
    assert "registered already" in bad[0] and "IP address" in bad[1]
    assert s.query("SELECT COUNT(*) FROM ae WHERE ae_title = 'CLINIC9DR'")[0][0] == 0
    page.fill("textarea[name=text]", ae_header + "CLINIC9DR,clinic9,10.9.0.7/24,,GB18030,30,,yes\n")
    page.click("form.import-form button[type=submit]")
    page.wait_for_load_state()
    assert "已导入" in page.locator("[role=status]").inner_text()
    assert "10.9.0.0/24" in page.locator("table.peers").inner_text()

    # What is in force, as a table and as the file to edit and import again.
    page.click("a[href='/config/in-force/catalog']")
    page.wait_for_load_state()
    assert page.locator("table.in-force tbody tr").count() == len(good) - 1
    assert "IMG-CT-CHEST-PLAIN" in page.locator("table.in-force").inner_text()
    cookie = next(c for c in tab.context.cookies() if c["name"] == "huren_session")["value"]
    r = requests.get(f"{s.url}/config/in-force/catalog?format=csv", cookies={"huren_session": cookie})
    assert r.status_code == 200 and r.content.startswith("\ufeff".encode())
    edited = r.content.decode("utf-8-sig").replace("IMG-CT-CHEST-PLAIN,imaging,CT,胸部CT平扫", "IMG-CT-CHEST-PLAIN,imaging,CT,胸部CT平扫（新）")
    page.goto(f"{s.url}/config")
    page.select_option("select[name=kind]", "catalog")
    page.fill("input[name=label]", "v3")
    page.fill("input[name=effective_from]", "2026-06-01")
    page.fill("textarea[name=text]", edited)
    page.click("form.import-form button[type=submit]")
    page.wait_for_load_state()
    assert "已导入" in page.locator("[role=status]").inner_text(), page.locator("main").inner_text()[:500]
    page.goto(f"{s.url}/config/in-force/catalog")
    assert "胸部CT平扫（新）" in page.locator("table.in-force").inner_text()
    page.goto(f"{s.url}/config/in-force/scopes")
    assert "川渝HR" in page.locator("table.in-force").inner_text()
    tab.shot("config-in-force")
    page.goto(f"{s.url}/config/in-force/policy")
    assert "尚未导入" in page.locator("main").inner_text()

    # Without the session's token nothing is imported.
    cookie = next(c for c in tab.context.cookies() if c["name"] == "huren_session")["value"]
    r = requests.post(f"{s.url}/config/import", cookies={"huren_session": cookie},
                      data={"kind": "scopes", "text": "label,covers\nX,city:重庆\n"})
    assert r.status_code == 403
    assert not tab.csp and not tab.errors, (tab.csp, tab.errors)
    tab.close()


def test_other_roles_are_refused(region, browser):
    s = region
    tab = Page(browser)
    sign_in(tab, s, "doc")
    assert tab.page.locator("a[href='/config']").count() == 0
    tab.page.goto(f"{s.url}/config")
    assert "只有区域运营人员" in tab.page.locator("main").inner_text()
    cookie = next(c for c in tab.context.cookies() if c["name"] == "huren_session")["value"]
    csrf = tab.page.locator("input[name=csrf]").first.get_attribute("value")
    r = requests.post(f"{s.url}/config/import", cookies={"huren_session": cookie},
                      data={"csrf": csrf, "kind": "scopes", "text": "label,covers\nX,city:重庆\n"})
    assert r.status_code == 403
    assert s.query("SELECT COUNT(*) FROM recognition_set WHERE kind = 'scopes'")[0][0] == 1
    tab.close()
