"""People sign in (issue #6): argon2id passwords with lockout, an HttpOnly SameSite session
cookie with idle expiry, a CSRF token on state-changing requests, roles that limit what a
person may do, and every sign-in audited."""
import os
import subprocess
import time
import uuid

import pytest
import requests

from conftest import BIN

PASSWORD = "长城-Great-Wall-2025"


def add_user(s, username, role, institution="city", password=PASSWORD):
    out = subprocess.run([BIN, "user", "add", "--data-dir", str(s.data_dir), "--username", username, "--name", "王丽",
                          "--role", role, "--institution", institution, "--department", "放射科"],
                         input=password + "\n", capture_output=True, text=True, timeout=60, env=os.environ)
    return out


@pytest.fixture
def site(fresh_server):
    s = fresh_server({"HUREN__AUTH__SESSION_IDLE_MINS": "1", "HUREN__AUTH__LOCKOUT_ATTEMPTS": "3"})
    for name, role in [("doc", "doctor"), ("ops", "regional_operator"), ("aud", "auditor")]:
        out = add_user(s, name, role)
        assert out.returncode == 0, out.stderr
    return s


def login(s, username, password=PASSWORD):
    return requests.post(f"{s.url}/api/session", json={"username": username, "password": password})


def test_sign_in_sets_a_safe_cookie_and_roles_limit_access(site):
    s = site
    r = login(s, "doc")
    assert r.status_code == 201, r.text
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("huren_session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert r.json()["role"] == "doctor" and r.json()["department"] == "放射科"
    doc = requests.Session()
    doc.cookies.set("huren_session", r.cookies["huren_session"])
    assert doc.get(f"{s.url}/api/session").json()["username"] == "doc"
    # A doctor reads (relationship rules narrow this later) but does not configure.
    assert doc.get(f"{s.url}/dicom-web/studies").status_code in (200, 204)
    assert doc.get(f"{s.url}/api/admin/institutions").status_code == 403

    r = login(s, "ops")
    ops = requests.Session()
    ops.cookies.set("huren_session", r.cookies["huren_session"])
    csrf = r.json()["csrf_token"]
    # An operator configures, but reads no patient data.
    assert ops.get(f"{s.url}/api/admin/institutions").status_code == 200
    assert ops.get(f"{s.url}/dicom-web/studies").status_code == 403
    assert ops.get(f"{s.url}/fhir/Patient", params={"name": "王"}).status_code == 403
    # State-changing requests in a session need the CSRF token.
    body = {"institution": "city"}
    assert ops.post(f"{s.url}/api/admin/tokens", json=body).status_code == 403
    assert ops.post(f"{s.url}/api/admin/tokens", json=body, headers={"X-CSRF-Token": "guess"}).status_code == 403
    assert ops.post(f"{s.url}/api/admin/tokens", json=body, headers={"X-CSRF-Token": csrf}).status_code in (200, 201)

    aud = requests.Session()
    aud.cookies.set("huren_session", login(s, "aud").cookies["huren_session"])
    assert aud.get(f"{s.url}/dicom-web/studies").status_code == 403
    assert aud.get(f"{s.url}/api/admin/institutions").status_code == 403

    # Signing out ends the session at once.
    assert ops.delete(f"{s.url}/api/session", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert ops.get(f"{s.url}/api/admin/institutions").status_code == 401
    events = s.query("SELECT action, outcome, actor FROM audit_event WHERE action IN ('user_login', 'user_logout') ORDER BY id")
    assert ("user_login", "success", "user:doc#1@city(doctor)") in events
    assert events[-1][0] == "user_logout"


def test_wrong_passwords_lock_the_account(site):
    s = site
    assert login(s, "doc", "wrong-password").status_code == 401
    assert login(s, "nobody", "wrong-password").status_code == 401      # same answer: no enumeration
    assert login(s, "doc", "wrong-password").status_code == 401
    r = login(s, "doc", "wrong-password")
    assert r.status_code == 423 and r.json()["title"] == "account_locked"
    # Locked: even the right password is refused until the lock ends.
    assert login(s, "doc").status_code == 423
    failures = s.query("SELECT COUNT(*) FROM audit_event WHERE action = 'user_login' AND outcome = 'failure'")[0][0]
    assert failures == 5
    # No password or secret in the audit trail.
    assert not s.query("SELECT 1 FROM audit_event WHERE detail LIKE '%wrong-password%' OR actor LIKE '%wrong-password%'")


def test_idle_sessions_end(site):
    s = site
    r = login(s, "doc")
    jar = {"huren_session": r.cookies["huren_session"]}
    assert requests.get(f"{s.url}/api/session", cookies=jar).status_code == 200
    # The idle timeout is one minute here; move the session's last use back instead of waiting.
    db = s.db()
    db.execute("UPDATE user_session SET last_seen_at = last_seen_at - 120")
    db.commit()
    db.close()
    assert requests.get(f"{s.url}/api/session", cookies=jar).status_code == 401
    # The stored session is a hash, not the cookie's secret.
    assert not s.query("SELECT 1 FROM user_session WHERE secret_hash = ?", jar["huren_session"])


def test_weak_passwords_and_unknown_roles_are_refused(fresh_server):
    s = fresh_server()
    assert add_user(s, "u" + uuid.uuid4().hex[:6], "doctor", password="short").returncode != 0
    out = add_user(s, "u" + uuid.uuid4().hex[:6], "surgeon")
    assert out.returncode != 0 and "regional_operator" in out.stderr


def test_system_tokens_expire_and_are_revoked(fresh_server):
    from conftest import ADMIN, cli
    s = fresh_server()
    admin = {"Authorization": f"Bearer {ADMIN}"}
    r = requests.post(f"{s.url}/api/admin/tokens", json={"institution": "city", "expires_in_days": 30}, headers=admin)
    assert r.status_code == 201 and r.json()["expires_at"] > 0
    first = r.json()
    use = lambda token: requests.get(f"{s.url}/dicom-web/studies", headers={"Authorization": f"Bearer {token}"})  # noqa: E731
    assert use(first["token"]).status_code in (200, 204)
    # A token's principal is reused for up to a second (docs/security.md, "What may lag"):
    # expiry, and a revocation by another process (the CLI), take effect within that bound.
    def refused_within_the_bound(token):
        start = time.monotonic()
        while use(token).status_code != 401:
            assert time.monotonic() - start < 1.5, "still accepted after the cache's bound"
            time.sleep(0.1)

    db = s.db()
    db.execute("UPDATE token SET expires_at = unixepoch() - 1 WHERE id = ?", (first["id"],))
    db.commit()
    db.close()
    refused_within_the_bound(first["token"])
    second = requests.post(f"{s.url}/api/admin/tokens", json={"institution": "city"}, headers=admin).json()
    assert use(second["token"]).status_code in (200, 204)
    assert cli(s.data_dir, "token", "revoke", "--id", str(second["id"])) == f"token {second['id']} revoked"
    refused_within_the_bound(second["token"])
    # Revoking it again names the rule: no live token by that id.
    r = requests.post(f"{s.url}/api/admin/tokens/{second['id']}/revoke", headers=admin)
    assert r.status_code == 404 and r.json()["title"] == "token_not_live"
    # Revoked through the server, a token is refused at once: the cache is cleared.
    third = requests.post(f"{s.url}/api/admin/tokens", json={"institution": "city"}, headers=admin).json()
    assert use(third["token"]).status_code in (200, 204)
    assert requests.post(f"{s.url}/api/admin/tokens/{third['id']}/revoke", headers=admin).status_code in (200, 204)
    assert use(third["token"]).status_code == 401


def test_the_his_launches_a_doctor_into_a_patient_with_one_click(site):
    from conftest import cli
    from helpers import ct
    from test_persons import store
    s = site
    assert add_user(s, "cdoc", "doctor", institution="county").returncode == 0
    his = {"Authorization": "Bearer " + cli(s.data_dir, "token", "create", "--institution", "city")}
    pid = "LA" + uuid.uuid4().hex[:6]
    store(s, ct(patient_id=pid), calling="CITY")
    r = requests.post(f"{s.url}/api/launch", json={"doctor": "doc", "patient_id": pid, "visit_number": "V" + pid},
                      headers=his)
    assert r.status_code == 201, r.text
    url = r.json()["url"]
    assert "/launch?ticket=" in url
    # The doctor's browser opens it: a session, and straight to the patient.
    opened = requests.get(url, allow_redirects=False)
    assert opened.status_code == 303 and opened.headers["referrer-policy"] == "no-referrer"
    # The patient's page (the web workstation), by huren's own person id.
    assert opened.headers["location"].startswith("/patients/") and "HttpOnly" in opened.headers["set-cookie"]
    jar = {"huren_session": opened.cookies["huren_session"]}
    person = opened.headers["location"].removeprefix("/patients/")
    t = requests.get(f"{s.url}/api/patients/{person}/timeline", cookies=jar)
    assert t.status_code == 200 and t.json()["studies"][0]["patient_id"] == pid
    assert requests.get(f"{s.url}/api/session", cookies=jar).json()["username"] == "doc"
    # Once only.
    assert requests.get(url, allow_redirects=False).status_code == 401
    # The launch opened the encounter, and both are audited.
    assert s.query("SELECT doctor_user_id IS NOT NULL, closed_at FROM encounter WHERE visit_number = ?", "V" + pid) == [(1, None)]
    assert s.query("SELECT COUNT(*) FROM audit_event WHERE action = 'user_login' AND detail LIKE '%launch%' AND outcome = 'success'") == [(1,)]
    # Expired tickets are refused.
    r = requests.post(f"{s.url}/api/launch", json={"doctor": "doc", "patient_id": pid}, headers=his)
    db = s.db()
    db.execute("UPDATE launch_ticket SET expires_at = 0 WHERE used_at IS NULL")
    db.commit()
    db.close()
    assert requests.get(r.json()["url"], allow_redirects=False).status_code == 401
    # A system launches only its own institution's doctors; operators' tokens launch nobody.
    r = requests.post(f"{s.url}/api/launch", json={"doctor": "cdoc", "patient_id": pid}, headers=his)
    assert r.status_code == 400 and "not an active user of this institution" in r.json()["detail"]
    from conftest import ADMIN
    r = requests.post(f"{s.url}/api/launch", json={"doctor": "doc", "patient_id": pid},
                      headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 403
    # The HIS closes the visit.
    r = requests.post(f"{s.url}/api/encounters", json={"visit_number": "V" + pid, "patient_id": pid, "status": "closed"},
                      headers=his)
    assert r.status_code == 200 and r.json()["open"] is False
    assert s.query("SELECT closed_at IS NOT NULL FROM encounter WHERE visit_number = ?", "V" + pid) == [(1,)]


def test_a_doctor_reads_only_patients_of_an_open_encounter(site):
    """Access by relationship: during an open encounter at the doctor's institution, assigned to
    the doctor or their department, the patient's data from every institution; nothing else."""
    from conftest import cli
    from test_fhir import resident_id
    from test_persons import person, person_of, store, with_resident_id
    s = site
    assert add_user(s, "doc2", "doctor").returncode == 0          # same department (放射科)
    out = subprocess.run([BIN, "user", "add", "--data-dir", str(s.data_dir), "--username", "cardio", "--name", "张伟",
                          "--role", "doctor", "--institution", "city", "--department", "心内科"],
                         input=PASSWORD + "\n", capture_output=True, text=True, timeout=60, env=os.environ)
    assert out.returncode == 0, out.stderr
    number = resident_id("19491231", male=False)
    tag = uuid.uuid4().hex[:6]
    county, city, other = person("CX" + tag), person("CY" + tag), person("QX" + tag, name="Zhao^Qi=赵^琪")
    store(s, with_resident_id(county, number), calling="COUNTY")
    store(s, with_resident_id(city, number), calling="CITY")
    store(s, other, calling="COUNTY")
    assert person_of(s, "CX" + tag) == person_of(s, "CY" + tag)      # one person, two hospitals

    def session(username):
        jar = {"huren_session": login(s, username).cookies["huren_session"]}
        get = lambda path, **p: requests.get(f"{s.url}{path}", params=p, cookies=jar)  # noqa: E731
        return get

    def studies(get):
        r = get("/dicom-web/studies")
        return set() if r.status_code == 204 else {st["0020000D"]["Value"][0] for st in r.json()}

    doc, doc2, cardio = session("doc"), session("doc2"), session("cardio")
    assert studies(doc) == set()
    his = {"Authorization": "Bearer " + cli(s.data_dir, "token", "create", "--institution", "city")}
    visit = {"visit_number": "V" + tag, "patient_id": "CY" + tag, "doctor": "doc", "department": "放射科"}
    assert requests.post(f"{s.url}/api/encounters", json=visit, headers=his).status_code == 200
    # The patient's studies at both hospitals; not the other patient's.
    assert studies(doc) == {county.StudyInstanceUID, city.StudyInstanceUID}
    assert doc(f"/dicom-web/studies/{other.StudyInstanceUID}/metadata").status_code == 404
    assert doc(f"/dicom-web/studies/{county.StudyInstanceUID}/series/{county.SeriesInstanceUID}/metadata").status_code == 200
    p = requests.get(f"{s.url}/api/patients", params={"patient_id": "CX" + tag, "issuer": "urn:huren:institution:county"},
                     headers={"Authorization": his["Authorization"]}).json()[0]["person"]
    assert len(doc(f"/api/patients/{p}/timeline").json()["studies"]) == 2
    assert doc("/fhir/Patient", name="赵").json().get("entry") is None
    # The department's colleague too; another department not.
    assert studies(doc2) == {county.StudyInstanceUID, city.StudyInstanceUID}
    assert studies(cardio) == set()
    assert cardio(f"/api/patients/{p}/timeline").status_code == 404
    # A hospital system reads its institution's own studies, and the whole record of patients
    # with an open encounter there (a PACS fetching priors); not another hospital's patient.
    def system_studies(headers):
        r = requests.get(f"{s.url}/dicom-web/studies", params={"PatientID": f"*{tag}"}, headers=headers)
        return set() if r.status_code == 204 else {st["0020000D"]["Value"][0] for st in r.json()}

    assert system_studies(his) == {county.StudyInstanceUID, city.StudyInstanceUID}
    county_pacs = {"Authorization": "Bearer " + cli(s.data_dir, "token", "create", "--institution", "county")}
    assert system_studies(county_pacs) == {county.StudyInstanceUID, other.StudyInstanceUID}
    assert requests.get(f"{s.url}/dicom-web/studies/{city.StudyInstanceUID}/metadata", headers=county_pacs).status_code == 404
    assert requests.get(f"{s.url}/api/patients/{p}/timeline", headers=county_pacs).status_code == 404
    # The HIS closes the visit: the relationship ends, for the doctor and for the system.
    assert requests.post(f"{s.url}/api/encounters", json={**visit, "status": "closed"}, headers=his).status_code == 200
    assert studies(doc) == set()
    assert doc(f"/api/patients/{p}/timeline").status_code == 404
    assert system_studies(his) == {city.StudyInstanceUID}
    assert requests.get(f"{s.url}/api/patients/{p}/timeline", headers=his).status_code == 404
    # Operators' tokens configure; they read no patient data.
    from conftest import ADMIN
    assert requests.get(f"{s.url}/dicom-web/studies", headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 403


def test_break_glass_opens_a_patient_for_a_short_time_and_waits_for_review(site):
    from helpers import ct
    from test_persons import store
    s = site
    for name, role in [("admin1", "institution_admin"), ("tech", "technician")]:
        assert add_user(s, name, role).returncode == 0
    from test_fhir import resident_id
    from test_persons import with_resident_id
    pid = "BG" + uuid.uuid4().hex[:6]
    number = resident_id("19800101", male=True)
    study = with_resident_id(ct(patient_id=pid), number)
    store(s, study, calling="COUNTY")
    issuer = s.query("SELECT issuer FROM patient WHERE patient_id = ?", pid)[0][0]

    def session(username):
        r = login(s, username)
        return {"huren_session": r.cookies["huren_session"]}, {"X-CSRF-Token": r.json()["csrf_token"]}

    jar, csrf = session("doc")
    def studies():
        r = requests.get(f"{s.url}/dicom-web/studies", cookies=jar)
        assert r.status_code in (200, 204)
        return [] if r.status_code == 204 else [st["0020000D"]["Value"][0] for st in r.json()]

    assert studies() == []
    # Another hospital's record number is not the city doctor's to name (issue #16): refused,
    # and audited; the patient is named by identity number instead.
    r = requests.post(f"{s.url}/api/break-glass", json={"identifier": f"{issuer}|{pid}", "reason": "急诊昏迷患者"},
                      cookies=jar, headers=csrf)
    assert r.status_code == 403 and "numbering" in r.json()["detail"]
    assert s.query("SELECT COUNT(*) FROM audit_event WHERE action = 'access_denied' AND object = 'POST /api/break-glass' "
                   "AND json_extract(detail, '$.reason') LIKE '%numbering%'") == [(1,)]
    body = {"identifier": f"urn:huren:id:cn-resident|{number}", "reason": "急诊昏迷患者，需查看既往影像"}
    # A reason is mandatory; only doctors break the glass.
    r = requests.post(f"{s.url}/api/break-glass", json={**body, "reason": " "}, cookies=jar, headers=csrf)
    assert r.status_code == 400
    tjar, tcsrf = session("tech")
    assert requests.post(f"{s.url}/api/break-glass", json=body, cookies=tjar, headers=tcsrf).status_code == 403
    r = requests.post(f"{s.url}/api/break-glass", json=body, cookies=jar, headers=csrf)
    assert r.status_code == 201, r.text
    bg = r.json()
    assert studies() == [study.StudyInstanceUID]
    assert s.query("SELECT outcome, detail LIKE '%急诊%' FROM audit_event WHERE action = 'emergency_override'") == [("success", 1)]
    # The institution admin sees it awaiting review, and judges it.
    ajar, acsrf = session("admin1")
    pending = requests.get(f"{s.url}/api/break-glass", cookies=ajar).json()
    assert [(x["id"], x["doctor"], x["verdict"]) for x in pending] == [(bg["id"], "doc", None)]
    assert requests.get(f"{s.url}/api/break-glass", cookies=jar).status_code == 403
    r = requests.post(f"{s.url}/api/break-glass/{bg['id']}/review", json={"verdict": "justified", "note": "急诊抢救"},
                      cookies=ajar, headers=acsrf)
    assert r.status_code == 200
    assert requests.get(f"{s.url}/api/break-glass", cookies=ajar).json() == []
    # Short: once it expires the patient is out of reach again.
    db = s.db()
    db.execute("UPDATE break_glass SET expires_at = 0")
    db.commit()
    db.close()
    assert studies() == []


def test_security_headers(site):
    r = login(site, "doc")
    for resp in (r, requests.get(f"{site.url}/healthz")):
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["x-frame-options"] == "SAMEORIGIN"
        assert resp.headers["referrer-policy"] == "no-referrer"
    # Patient data and sessions are not kept by caches; no HSTS without HTTPS.
    assert r.headers["cache-control"] == "no-store" and "strict-transport-security" not in r.headers


def test_the_his_acts_for_a_named_doctor(site):
    from conftest import cli
    from helpers import ct
    from test_persons import store
    s = site
    assert add_user(s, "cdoc", "doctor", institution="county").returncode == 0
    his = "Bearer " + cli(s.data_dir, "token", "create", "--institution", "city")
    pid = "OB" + uuid.uuid4().hex[:6]
    study = ct(patient_id=pid)
    store(s, study, calling="CITY")
    as_doc = {"Authorization": his, "X-Huren-On-Behalf-Of": "doc"}
    me = requests.get(f"{s.url}/api/session", headers=as_doc).json()
    assert me["username"] == "doc" and me["via"].startswith("token:")
    # The doctor's rights, not the system's: nothing until an encounter relates them.
    assert requests.get(f"{s.url}/dicom-web/studies", headers=as_doc).status_code in (200, 204)
    assert not (requests.get(f"{s.url}/dicom-web/studies", headers=as_doc).text.strip("[] \n"))
    requests.post(f"{s.url}/api/encounters", json={"visit_number": "V" + pid, "patient_id": pid, "doctor": "doc"},
                  headers={"Authorization": his})
    found = requests.get(f"{s.url}/dicom-web/studies", headers=as_doc).json()
    assert [st["0020000D"]["Value"][0] for st in found] == [study.StudyInstanceUID]
    # Only its own institution's people.
    r = requests.get(f"{s.url}/api/session", headers={"Authorization": his, "X-Huren-On-Behalf-Of": "cdoc"})
    assert r.status_code == 403


def test_reads_are_audited_once_per_reader_and_object_per_window(site):
    from conftest import cli
    from helpers import ct
    from test_persons import store
    s = site
    his = "Bearer " + cli(s.data_dir, "token", "create", "--institution", "city")
    pid = "RA" + uuid.uuid4().hex[:6]
    study = ct(patient_id=pid)
    store(s, study, calling="CITY")
    requests.post(f"{s.url}/api/encounters", json={"visit_number": "V" + pid, "patient_id": pid, "doctor": "doc"},
                  headers={"Authorization": his})
    jar = {"huren_session": login(s, "doc").cookies["huren_session"]}
    # A viewer's many requests for one study: one event.
    for _ in range(5):
        assert requests.get(f"{s.url}/dicom-web/studies/{study.StudyInstanceUID}/metadata", cookies=jar).status_code == 200
    requests.get(f"{s.url}/dicom-web/studies", cookies=jar)
    events = s.query("SELECT actor, outcome, study_uid, detail FROM audit_event WHERE action = 'patient_data_accessed' "
                     "AND study_uid = ?", study.StudyInstanceUID)
    assert events == [("user:doc#1@city(doctor)", "success", study.StudyInstanceUID, '{"purpose":"treatment"}')]
    # A refused look at a person out of reach is recorded every time.
    person = s.query("SELECT pe.public_id FROM person pe JOIN patient p ON p.person_id = pe.id WHERE p.patient_id = ?", pid)[0][0]
    cjar = {"huren_session": login(s, "ops").cookies["huren_session"]}
    assert requests.get(f"{s.url}/api/patients/{person}/timeline", cookies=cjar).status_code == 403
    assert add_user(s, "doc9", "doctor", institution="county").returncode == 0
    djar = {"huren_session": login(s, "doc9").cookies["huren_session"]}
    for _ in range(2):
        assert requests.get(f"{s.url}/api/patients/{person}/timeline", cookies=djar).status_code == 404
    refused = s.query("SELECT COUNT(*) FROM audit_event WHERE action = 'patient_data_accessed' AND outcome = 'failure' "
                      "AND actor LIKE 'user:doc9%'")
    assert refused == [(2,)]


def test_auditors_read_the_trail_as_fhir_audit_events(site):
    from fhirclient.models.auditevent import AuditEvent
    from fhirclient.models.bundle import Bundle
    s = site
    login(s, "doc", "wrong-password")
    login(s, "doc")
    jar = {"huren_session": login(s, "aud").cookies["huren_session"]}
    r = requests.get(f"{s.url}/fhir/AuditEvent", params={"_count": 2}, cookies=jar)
    assert r.status_code == 200, r.text
    b = Bundle(r.json(), strict=True)
    assert len(b.entry) == 2 and all(isinstance(e.resource, AuditEvent) for e in b.entry)
    # Newest first, with a next page; every stored event reachable.
    seen = []
    url = f"{s.url}/fhir/AuditEvent?_count=2"
    while url:
        b = Bundle(requests.get(url, cookies=jar).json(), strict=True)
        seen += [e.resource for e in b.entry or []]
        url = next((link.url for link in b.link if link.relation == "next"), None)
    assert len(seen) == s.query("SELECT COUNT(*) FROM audit_event")[0][0]
    logins = [e for e in seen if e.type.code == "110114" and e.subtype and e.subtype[0].code == "110122"]
    assert {e.outcome for e in logins} >= {"0", "8"}
    assert all(e.recorded.isostring.endswith("+08:00") for e in seen)
    # Doctors do not read the audit trail.
    djar = {"huren_session": login(s, "doc").cookies["huren_session"]}
    assert requests.get(f"{s.url}/fhir/AuditEvent", cookies=djar).status_code == 403


def test_data_stewards_work_their_institutions_reviews(site):
    from test_fhir import resident_id
    from test_persons import person, store, with_resident_id
    s = site
    for name, role, inst in [("stew", "data_steward", "county"), ("stew2", "data_steward", "town")]:
        assert add_user(s, name, role, institution=inst).returncode == 0
    number = resident_id("19700101", male=False)
    tag = uuid.uuid4().hex[:6]
    store(s, with_resident_id(person("MO" + tag, birth="19700101", sex="F"), number), calling="COUNTY")
    # A newborn registered under the mother's number at the city hospital: review, not a link.
    store(s, with_resident_id(person("NB" + tag, birth="20250101", sex="M", name="Li^Bao=李^宝"), number), calling="CITY")

    def session(username):
        r = login(s, username)
        return {"huren_session": r.cookies["huren_session"]}, {"X-CSRF-Token": r.json()["csrf_token"]}

    jar, csrf = session("stew")
    reviews = requests.get(f"{s.url}/api/admin/link-reviews", cookies=jar).json()
    assert isinstance(reviews, list), reviews
    mine = [r for r in reviews if {r["a"]["patient_id"], r["b"]["patient_id"]} == {"MO" + tag, "NB" + tag}]
    assert len(mine) == 1
    # The town's steward does not see the county/city pair, and cannot decide it.
    tjar, tcsrf = session("stew2")
    assert not [r for r in requests.get(f"{s.url}/api/admin/link-reviews", cookies=tjar).json() if r["id"] == mine[0]["id"]]
    body = {"decision": "reject", "reason": "新生儿使用母亲身份证号"}
    r = requests.post(f"{s.url}/api/admin/link-reviews/{mine[0]['id']}", json=body, cookies=tjar, headers=tcsrf)
    assert r.status_code == 400
    r = requests.post(f"{s.url}/api/admin/link-reviews/{mine[0]['id']}", json=body, cookies=jar, headers=csrf)
    assert r.status_code == 200 and r.json()["state"] == "rejected"
    # Doctors and regional operators do not work the queue.
    for who in ("doc", "ops"):
        ojar, _ = session(who)
        assert requests.get(f"{s.url}/api/admin/link-reviews", cookies=ojar).status_code == 403


def test_rate_limits_and_refused_credentials_are_recorded(fresh_server):
    from conftest import ADMIN
    s = fresh_server({"HUREN__HTTP__RATE_LIMIT_PER_SEC": "5", "HUREN__HTTP__RATE_LIMIT_BURST": "5"})
    h = {"Authorization": f"Bearer {ADMIN}"}
    codes = [requests.get(f"{s.url}/api/admin/institutions", headers=h).status_code for _ in range(12)]
    assert codes[:5] == [200] * 5 and 429 in codes
    r = requests.get(f"{s.url}/api/admin/institutions", headers=h)
    if r.status_code == 429:
        assert int(r.headers["retry-after"]) >= 1 and r.json()["title"] == "too_many_requests"
    # Another principal has its own bucket.
    assert requests.get(f"{s.url}/healthz").status_code == 200
    # A bad token is refused, and recorded once per source per minute however often it comes.
    for _ in range(3):
        assert requests.get(f"{s.url}/dicom-web/studies", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert s.query("SELECT COUNT(*), MAX(source_address) FROM audit_event WHERE action = 'authentication_failed'") == [(1, "127.0.0.1")]


def test_a_patient_lets_a_clinic_in_with_a_code_sent_to_their_phone(fresh_server, tmp_path_factory):
    import json
    from conftest import cli
    from helpers import ct
    from test_persons import store
    outbox = tmp_path_factory.mktemp("sms") / "outbox.jsonl"
    s = fresh_server({"HUREN__NOTIFY__SMS_OUTBOX": str(outbox)})
    for name, inst in [("clinic1", "town"), ("clinic2", "town")]:
        assert add_user(s, name, "doctor", institution=inst).returncode == 0
    from test_fhir import resident_id
    from test_persons import with_resident_id
    pid = "PA" + uuid.uuid4().hex[:6]
    number = resident_id("19800101", male=True)
    study = with_resident_id(ct(patient_id=pid), number)
    store(s, study, calling="COUNTY")
    county_his = {"Authorization": "Bearer " + cli(s.data_dir, "token", "create", "--institution", "county")}
    r = requests.post(f"{s.url}/api/patient-contacts", json={"patient_id": pid, "phone": "+86 138-0013-8000"},
                      headers=county_his)
    assert r.status_code == 200 and r.json() == {"status": "registered"}, r.text
    # The phone number is sealed, not stored in the clear.
    assert not s.query("SELECT 1 FROM patient_contact WHERE CAST(sealed AS TEXT) LIKE '%13800138000%'")

    def session(username):
        r = login(s, username)
        return {"huren_session": r.cookies["huren_session"]}, {"X-CSRF-Token": r.json()["csrf_token"]}

    def studies(jar):
        r = requests.get(f"{s.url}/dicom-web/studies", cookies=jar)
        return [] if r.status_code == 204 else [x["0020000D"]["Value"][0] for x in r.json()]

    jar, csrf = session("clinic1")
    assert studies(jar) == []
    # The clinic names the patient by identity number: the county's record number is not its own.
    issuer = s.query("SELECT issuer FROM patient WHERE patient_id = ?", pid)[0][0]
    r = requests.post(f"{s.url}/api/patient-authorizations", json={"identifier": f"{issuer}|{pid}", "days": 3},
                      cookies=jar, headers=csrf)
    assert r.status_code == 403, r.text
    r = requests.post(f"{s.url}/api/patient-authorizations",
                      json={"identifier": f"urn:huren:id:cn-resident|{number}", "days": 3}, cookies=jar, headers=csrf)
    assert r.status_code == 201, r.text
    req = r.json()
    assert req["sent_to"] == "138****8000"
    sms = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert sms[-1]["to"] == "13800138000" and "镇卫生院" in sms[-1]["text"]
    code = sms[-1]["text"].split("验证码")[1][:6]
    # A wrong code is refused; the code the patient reads out grants the clinic access.
    wrong = "000000" if code != "000000" else "111111"
    r = requests.post(f"{s.url}/api/patient-authorizations/{req['id']}/confirm", json={"code": wrong}, cookies=jar, headers=csrf)
    assert r.status_code == 400
    r = requests.post(f"{s.url}/api/patient-authorizations/{req['id']}/confirm", json={"code": code}, cookies=jar, headers=csrf)
    assert r.status_code == 200 and r.json()["expires_at"] - r.json()["granted_at"] == 3 * 86400
    assert studies(jar) == [study.StudyInstanceUID]
    # The authorization is for the care the asking doctor gives: not the clinic's other doctors
    # (issue #16; `auth.authorization_reach = "department"` widens it to the doctor's department).
    jar2, _ = session("clinic2")
    assert studies(jar2) == []
    # Used codes do not work twice; revocation ends the access.
    r = requests.post(f"{s.url}/api/patient-authorizations/{req['id']}/confirm", json={"code": code}, cookies=jar, headers=csrf)
    assert r.status_code == 400
    r = requests.post(f"{s.url}/api/patient-authorizations/{req['id']}/revoke", cookies=jar, headers=csrf)
    assert r.status_code == 204
    assert studies(jar) == []
    steps = s.query("SELECT json_extract(detail, '$.step'), outcome FROM audit_event "
                    "WHERE action = 'patient_authorization' ORDER BY id")
    # Every refused code is in the trail: the wrong one, and the used one tried again.
    assert steps == [("requested", "success"), ("code_rejected", "failure"), ("granted", "success"),
                     ("code_rejected", "failure"), ("revoked", "success")]


def test_a_patient_opens_only_images_or_only_results_and_revokes_from_their_own_phone(fresh_server, tmp_path_factory):
    """Scope: the patient opens their images only (or results only). The confirmation SMS
    carries a link of the patient's own that ends the access without the clinic."""
    import json
    import re
    from conftest import cli
    from helpers import ct
    from test_persons import store
    outbox = tmp_path_factory.mktemp("sms") / "outbox.jsonl"
    s = fresh_server({"HUREN__NOTIFY__SMS_OUTBOX": str(outbox)})
    assert add_user(s, "clinic1", "doctor", institution="town").returncode == 0
    from test_fhir import resident_id
    from test_persons import with_resident_id
    pid = "PS" + uuid.uuid4().hex[:6]
    number = resident_id("19800101", male=True)
    study = with_resident_id(ct(patient_id=pid), number)
    store(s, study, calling="COUNTY")
    county = "Bearer " + cli(s.data_dir, "token", "create", "--institution", "county")
    assert requests.post(f"{s.url}/api/patient-contacts", json={"patient_id": pid, "phone": "13800138000"},
                         headers={"Authorization": county}).status_code == 200
    issuer = s.query("SELECT issuer FROM patient WHERE patient_id = ?", pid)[0][0]
    obs = {"resourceType": "Observation", "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": "2093-3"}]},
           "subject": {"identifier": {"system": issuer, "value": pid}},
           "effectiveDateTime": "2025-03-02T08:00:00+08:00", "valueQuantity": {"value": 4.1, "unit": "mmol/L"}}
    r = requests.post(f"{s.url}/fhir/Observation", json=obs,
                      headers={"Authorization": county, "Content-Type": "application/fhir+json"})
    assert r.status_code == 201, r.text
    person = r.json()["subject"]["reference"].split("/")[1]
    r = login(s, "clinic1")
    jar, csrf = {"huren_session": r.cookies["huren_session"]}, {"X-CSRF-Token": r.json()["csrf_token"]}

    def grant(scope):
        r = requests.post(f"{s.url}/api/patient-authorizations",
                          json={"identifier": f"urn:huren:id:cn-resident|{number}", "days": 2, "scope": scope},
                          cookies=jar, headers=csrf)
        assert r.status_code == 201, r.text
        text = json.loads(outbox.read_text().splitlines()[-1])["text"]
        code = text.split("验证码")[1][:6]
        r2 = requests.post(f"{s.url}/api/patient-authorizations/{r.json()['id']}/confirm", json={"code": code},
                           cookies=jar, headers=csrf)
        assert r2.status_code == 200 and r2.json()["scope"] == scope
        return text, json.loads(outbox.read_text().splitlines()[-1])["text"]

    def sees():
        q = requests.get(f"{s.url}/dicom-web/studies", cookies=jar)
        images = [] if q.status_code == 204 else [x["0020000D"]["Value"][0] for x in q.json()]
        o = requests.get(f"{s.url}/fhir/Observation", params={"patient": person}, cookies=jar).json()
        t = requests.get(f"{s.url}/api/patients/{person}/timeline", cookies=jar)
        timeline = (len(t.json()["studies"]), len(t.json()["lab_results"])) if t.status_code == 200 else None
        return images, len(o.get("entry", [])), timeline

    assert requests.post(f"{s.url}/api/patient-authorizations",
                         json={"identifier": f"urn:huren:id:cn-resident|{number}", "scope": "x"},
                         cookies=jar, headers=csrf).status_code == 400
    asked, confirmed = grant("imaging")
    assert "影像检查结果（不含检验）" in asked
    assert sees() == ([study.StudyInstanceUID], 0, (1, 0))
    # The patient's own link: a page with a button (fetching it changes nothing), then revoked.
    link = re.search(r"(http://\S+/patient/revoke\?t=[0-9a-f]{64})", confirmed).group(1)
    page = requests.get(link)
    assert page.status_code == 200 and "确认撤销" in page.text and page.headers["cache-control"] == "no-store"
    assert sees()[0] == [study.StudyInstanceUID]
    secret = link.split("t=")[1]
    done = requests.post(f"{s.url}/patient/revoke", data={"t": secret})
    assert done.status_code == 200 and "已撤销" in done.text
    assert sees() == ([], 0, None)
    assert requests.post(f"{s.url}/patient/revoke", data={"t": secret}).status_code == 404
    assert requests.post(f"{s.url}/patient/revoke", data={"t": "0" * 64}).status_code == 404
    rows = s.query("""SELECT outcome FROM audit_event WHERE action = 'patient_authorization' AND actor = 'patient'
                      AND json_extract(detail, '$.step') = 'revoked_by_patient' ORDER BY id""")
    assert rows == [("success",), ("failure",), ("failure",)]
    # Results only: the lab result, not the images.
    grant("lab")
    assert sees() == ([], 1, (0, 1))
