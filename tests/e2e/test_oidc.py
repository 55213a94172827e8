"""OpenID Connect sign-in (issue #6) against a local stub provider: the code flow with PKCE
starts a huren session for the huren account of the provider's username; every bad token, a
replayed or unknown state, an unknown user and a refusal by the provider are refused (401) and
audited; huren never redirects off-site after sign-in."""
import json
import os
import subprocess
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from conftest import BIN, Server, setup_region
from oidc_stub import StubProvider

CLIENT_ID, CLIENT_SECRET = "huren", "stub-client-secret"


@pytest.fixture(scope="module")
def idp():
    p = StubProvider(CLIENT_ID, CLIENT_SECRET)
    yield p
    p.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory, idp):
    d = tmp_path_factory.mktemp("oidc")
    setup_region(d)
    s = Server(d)
    s.env = {"HUREN__OIDC__ISSUER": idp.url, "HUREN__OIDC__CLIENT_ID": CLIENT_ID,
             "HUREN__OIDC__CLIENT_SECRET": CLIENT_SECRET,
             "HUREN__OIDC__REDIRECT_URL": f"{s.url}/auth/oidc/callback"}
    s.start()
    out = subprocess.run([BIN, "user", "add", "--data-dir", str(d), "--username", "doc", "--name", "王丽", "--role",
                          "doctor", "--institution", "city", "--password-stdin"],
                         input="a-long-password-1\n", capture_output=True, text=True, timeout=60, env=os.environ)
    assert out.returncode == 0, out.stderr
    yield s
    s.stop()


def sign_in(site, idp, return_to=None):
    """The browser's three hops; returns huren's final answer to the callback and the callback URL."""
    params = {"return_to": return_to} if return_to else {}
    start = requests.get(f"{site.url}/auth/oidc/login", params=params, allow_redirects=False)
    assert start.status_code == 303, start.text
    at_idp = requests.get(start.headers["location"], allow_redirects=False)
    assert at_idp.status_code == 302
    back = at_idp.headers["location"]
    assert back.startswith(f"{site.url}/auth/oidc/callback?")
    return requests.get(back, allow_redirects=False), back


@pytest.fixture(autouse=True)
def good_provider(idp):
    idp.mode, idp.user = "good", "doc"


def test_code_flow_with_pkce_signs_the_person_in(site, idp):
    # The sign-in page offers the region's identity provider beside the password.
    page = requests.get(f"{site.url}/")
    assert page.status_code == 200 and 'href="/auth/oidc/login"' in page.text and "统一身份认证" in page.text
    done, callback = sign_in(site, idp, return_to="/api/session")
    assert done.status_code == 303 and done.headers["location"] == "/api/session"
    cookie = done.headers["set-cookie"]
    assert cookie.startswith("huren_session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    me = requests.get(f"{site.url}/api/session", cookies={"huren_session": done.cookies["huren_session"]}).json()
    assert (me["username"], me["role"], me["institution"]) == ("doc", "doctor", "city")
    # What huren asked the provider for: a code, with PKCE S256, a state and a nonce.
    asked = idp.authorize_requests[-1]
    assert asked["response_type"] == "code" and asked["client_id"] == CLIENT_ID
    assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) == 43
    assert "openid" in asked["scope"].split() and asked["state"] and asked["nonce"]
    assert asked["redirect_uri"] == f"{site.url}/auth/oidc/callback"
    # Audited like a password sign-in, naming the provider and subject.
    rows = site.query("SELECT outcome, detail FROM audit_event WHERE action = 'user_login' AND actor LIKE 'user:doc#%'")
    detail = json.loads(rows[-1][1])
    assert rows[-1][0] == "success" and detail["via"] == "oidc" and detail["subject"] == "sub-doc"
    assert detail["issuer"] == idp.url
    # The callback works once.
    again = requests.get(callback, allow_redirects=False)
    assert again.status_code == 401 and "huren_session" not in again.headers.get("set-cookie", "")


@pytest.mark.parametrize("mode,why", [("wrong-nonce", "nonce"), ("wrong-audience", "aud"), ("expired", "expired"),
                                      ("other-key", "signature"), ("alg-none", "not accepted")])
def test_unacceptable_id_tokens_are_refused(site, idp, mode, why):
    idp.mode = mode
    done, _ = sign_in(site, idp)
    assert done.status_code == 401 and why in done.json()["detail"], (mode, done.text)
    assert done.headers["content-type"] == "application/problem+json"
    assert "set-cookie" not in done.headers


def test_a_refusal_by_the_provider_and_a_forged_state_are_refused_and_audited(site, idp):
    idp.mode = "refuse"
    done, _ = sign_in(site, idp)
    assert done.status_code == 401 and "access_denied" in done.json()["detail"]
    forged = requests.get(f"{site.url}/auth/oidc/callback", params={"code": "x", "state": "made-up"},
                          allow_redirects=False)
    assert forged.status_code == 401
    reasons = {json.loads(d)["reason"] for (d,) in site.query(
        "SELECT detail FROM audit_event WHERE action = 'authentication_failed'")}
    assert {"OpenID Connect: the provider refused", "OpenID Connect: token or state refused"} <= reasons


def test_the_provider_cannot_sign_in_someone_huren_does_not_know(site, idp):
    idp.user = "stranger"
    done, _ = sign_in(site, idp)
    assert done.status_code == 401 and "set-cookie" not in done.headers
    rows = site.query("SELECT outcome, detail FROM audit_event WHERE action = 'user_login' AND actor = 'oidc:stranger'")
    assert rows and rows[-1][0] == "failure" and json.loads(rows[-1][1])["via"] == "oidc"


def test_no_redirect_off_site_after_sign_in(site, idp):
    for target in ["https://evil.example/", "//evil.example/x"]:
        done, _ = sign_in(site, idp, return_to=target)
        assert done.status_code == 303 and done.headers["location"] == "/", target
    login = requests.get(f"{site.url}/auth/oidc/login", allow_redirects=False)
    assert parse_qs(urlparse(login.headers["location"]).query)["client_id"] == [CLIENT_ID]
