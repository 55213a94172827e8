"""The data steward's pages (issue #20, part 6), in Debian's Chromium against the real binary:
the identity review queue with each pair side by side and what agrees, linking and rejecting
with a reason, and a person's records and history with merge and unmerge. Records come over
DIMSE from two institutions, as the link rules meet them."""
import uuid
from pathlib import Path

import pytest
import requests

from helpers import CHROMIUM
from test_persons import MOTHER_ID, person, person_of, public_person, store, with_resident_id
from test_portal import sign_in
from test_sessions import add_user
from test_workstation import Page, browser  # noqa: F401 (the browser fixture)

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium not installed")


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    from conftest import Server, setup_region
    d = tmp_path_factory.mktemp("steward")
    setup_region(d)
    s = Server(d).start()
    for name, role, inst in [("zhao", "data_steward", "county"), ("qian", "data_steward", "city"),
                             ("doc", "doctor", "county")]:
        out = add_user(s, name, role, institution=inst)
        assert out.returncode == 0, out.stderr
    yield s
    s.stop()


def test_a_steward_reviews_pairs_side_by_side_and_links_or_rejects_them(region, browser):
    s = region
    tag = uuid.uuid4().hex[:6]
    # A newborn registered under her mother's number: the number disagrees with her birth date.
    mother, baby = "RM" + tag, "RB" + tag
    store(s, with_resident_id(person(mother), MOTHER_ID))
    store(s, with_resident_id(person(baby, birth="20260301", sex="M", name="Li^Bao=李^宝"), MOTHER_ID),
          calling="PACS", bind="127.0.0.2")
    # The same woman at two hospitals, her birth date typed with two digits swapped.
    a, b = "MA" + tag, "MB" + tag
    store(s, person(a, name="Zhao^Min=赵^敏", birth="19491231"))
    store(s, person(b, name="Zhao^Min=赵^敏", birth="19491213"), calling="PACS", bind="127.0.0.2")
    assert person_of(s, a) != person_of(s, b)

    tab = Page(browser)
    page = tab.page
    sign_in(tab, s, "zhao")
    page.click("a[href='/steward']")
    page.wait_for_load_state()
    pairs = page.locator("article.pair")
    assert pairs.count() == 2, page.locator("main").inner_text()
    newborn = page.locator("article.pair", has_text="RB" + tag)
    assert "身份证号与出生日期或性别不符" in newborn.inner_text()
    swapped = page.locator("article.pair", has_text="MB" + tag)
    # Side by side: the same name, the birth dates a typing slip apart.
    assert "19491231" in swapped.inner_text() and "19491213" in swapped.inner_text()
    assert "一致" in swapped.locator("tr.same").first.inner_text()
    assert swapped.locator("tr.near").count() == 1
    assert newborn.locator("tr.differs").count() >= 2  # birth date and sex
    assert not tab.csp and not tab.errors, (tab.csp, tab.errors)
    tab.shot("steward-queue")

    # No reason: refused, nothing decided (the browser asks for one first; a script is told).
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    cookie = next(c for c in tab.context.cookies() if c["name"] == "huren_session")["value"]
    rid = newborn.get_attribute("id").split("-")[1]
    r = requests.post(f"{s.url}/steward/reviews/{rid}", data={"csrf": csrf, "decision": "link", "reason": " "},
                      cookies={"huren_session": cookie})
    assert r.status_code == 422 and "请填写理由" in r.text
    # Without the CSRF token: refused.
    r = requests.post(f"{s.url}/steward/reviews/{rid}", data={"decision": "link", "reason": "x"},
                      cookies={"huren_session": cookie})
    assert r.status_code == 403
    assert s.query("SELECT state FROM link_review WHERE id = ?", int(rid)) == [("open",)]

    newborn.locator("input[name=reason]").fill("新生儿使用母亲身份证号")
    newborn.locator("button[value=reject]").click()
    page.wait_for_load_state()
    assert "已记录为不是同一人" in page.locator("main").inner_text()
    swapped = page.locator("article.pair", has_text="MB" + tag)
    swapped.locator("input[name=reason]").fill("同一人，出生日期录入错误，电话核实")
    swapped.locator("button[value=link]").click()
    page.wait_for_load_state()
    assert "已合并为同一人" in page.locator("main").inner_text()
    assert page.locator("article.pair").count() == 0
    assert person_of(s, a) == person_of(s, b) and person_of(s, mother) != person_of(s, baby)
    page.click("nav.tabs a[href='/steward?state=linked']")
    assert page.locator("article.pair", has_text="MB" + tag).count() == 1
    tab.close()


def test_a_steward_merges_and_unmerges_a_person_with_history(region, browser):
    s = region
    tag = uuid.uuid4().hex[:6]
    a, b = "PA" + tag, "PB" + tag
    store(s, person(a, name="Sun^Li=孙^丽", birth="19700203"))
    store(s, person(b, name="Sun^Li=孙^莉", birth="19720304"), calling="PACS", bind="127.0.0.2")
    pa, pb = public_person(s, a), public_person(s, b)
    assert pa != pb
    tab = Page(browser)
    page = tab.page
    sign_in(tab, s, "zhao")
    page.goto(f"{s.url}/steward/persons/{pa}")
    assert a in page.locator("main").inner_text()
    page.fill("form.change-person input[name=merged]", pb)
    page.fill("form.change-person input[name=reason]", "同一人，证件核实")
    page.click("form.change-person button[type=submit]")
    page.wait_for_load_state()
    text = page.locator("main").inner_text()
    assert "已合并" in text and a in text and b in text
    assert "steward_merge" in text and "同一人，证件核实" in text  # the history names the rule and reason
    tab.shot("steward-person")
    # The merged person's page says where it went, and undoes it.
    page.goto(f"{s.url}/steward/persons/{pb}")
    assert pa in page.locator("main").inner_text()
    page.fill("form.change-person input[name=reason]", "核实有误")
    page.click("form.change-person button[type=submit]")
    page.wait_for_load_state()
    assert "已拆分" in page.locator("main").inner_text()
    assert person_of(s, a) != person_of(s, b)
    tab.close()


def test_others_are_refused_the_stewards_pages(region, browser):
    s = region
    tab = Page(browser)
    sign_in(tab, s, "doc")
    tab.page.goto(f"{s.url}/steward")
    assert "只有数据管理员" in tab.page.locator("main").inner_text()
    tab.close()
    # The city's steward holds none of these records: the person is not shown, nor changed.
    tag = uuid.uuid4().hex[:6]
    store(s, person("PC" + tag, name="Zhou^Yi=周^义", birth="19800101"))
    pc = public_person(s, "PC" + tag)
    tab = Page(browser)
    sign_in(tab, s, "qian")
    tab.page.goto(f"{s.url}/steward/persons/{pc}")
    assert "不在您机构的管理范围内" in tab.page.locator("main").inner_text()
    tab.close()
    rows = s.query("SELECT COUNT(*) FROM audit_event WHERE action = 'access_denied' AND actor LIKE 'user:doc#%'")
    assert rows[0][0] >= 1
