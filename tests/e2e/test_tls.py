"""HTTPS with rustls (issue #6): `huren tls self-signed` makes a demo pair; with
http.tls_cert/tls_key the HTTP port speaks TLS only, the session cookie is Secure and HSTS is
sent."""
import os
import socket
import ssl
import subprocess

import requests

from conftest import ADMIN, BIN


def test_https_with_a_self_signed_pair(fresh_server, tmp_path_factory):
    certs = tmp_path_factory.mktemp("tls")
    out = subprocess.run([BIN, "tls", "self-signed", "--out", str(certs), "--host", "127.0.0.1"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    cert, key = out.stdout.split()
    s = fresh_server({"HUREN__HTTP__TLS_CERT": cert, "HUREN__HTTP__TLS_KEY": key})
    base = f"https://127.0.0.1:{s.http_port}"
    r = requests.get(f"{base}/healthz", verify=cert)
    assert r.status_code == 200
    assert r.headers["strict-transport-security"].startswith("max-age=")
    # A real client that does not trust the certificate refuses it; plain HTTP gets nothing.
    try:
        requests.get(f"{base}/healthz", timeout=5)
        raise AssertionError("an untrusted certificate was accepted")
    except requests.exceptions.SSLError:
        pass
    try:
        requests.get(f"http://127.0.0.1:{s.http_port}/healthz", timeout=5)
        raise AssertionError("plain HTTP was served on the TLS port")
    except requests.exceptions.ConnectionError:
        pass
    # TLS 1.2+ only, negotiated by the standard library too.
    ctx = ssl.create_default_context(cafile=cert)
    with socket.create_connection(("127.0.0.1", s.http_port)) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    # The API works over it, and a session cookie is Secure.
    h = {"Authorization": f"Bearer {ADMIN}"}
    assert requests.get(f"{base}/api/admin/institutions", headers=h, verify=cert).status_code == 200
    subprocess.run([BIN, "user", "add", "--data-dir", str(s.data_dir), "--username", "tdoc", "--name", "李", "--role",
                    "doctor", "--institution", "city"], input="a-long-password-1\n", text=True, check=True,
                   capture_output=True, env=os.environ)
    r = requests.post(f"{base}/api/session", json={"username": "tdoc", "password": "a-long-password-1"}, verify=cert)
    assert r.status_code == 201 and "Secure" in r.headers["set-cookie"]
