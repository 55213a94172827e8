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
    # curl, trusting the pair, over TLS 1.2 and 1.3; without trusting it, refused.
    for version in ("--tlsv1.2", "--tlsv1.3"):
        c = subprocess.run(["curl", "-sS", version, "--cacert", cert, "-o", "/dev/null", "-w", "%{http_code}",
                            f"{base}/healthz"], capture_output=True, text=True, timeout=30)
        assert c.returncode == 0 and c.stdout == "200", (version, c.stderr)
    assert subprocess.run(["curl", "-sS", f"{base}/healthz"], capture_output=True, timeout=30).returncode != 0
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


def test_dicom_tls(fresh_server, tmp_path_factory):
    """DICOM TLS (PS3.15 B.1) on its own port: C-ECHO and C-STORE from a registered peer over
    TLS; a plain association to that port gets nowhere."""
    from pynetdicom import AE
    from pynetdicom.sop_class import CTImageStorage, Verification

    from conftest import free_port
    from helpers import ct
    certs = tmp_path_factory.mktemp("dicom-tls")
    out = subprocess.run([BIN, "tls", "self-signed", "--out", str(certs), "--host", "127.0.0.1"],
                         capture_output=True, text=True, timeout=60)
    cert, key = out.stdout.split()
    port = free_port()
    s = fresh_server({"HUREN__DIMSE__TLS_LISTEN": f"127.0.0.1:{port}", "HUREN__DIMSE__TLS_CERT": cert,
                      "HUREN__DIMSE__TLS_KEY": key})
    ae = AE(ae_title="COUNTY")
    ae.add_requested_context(Verification)
    ae.add_requested_context(CTImageStorage, ["1.2.840.10008.1.2.1"])
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cert)
    assoc = ae.associate("127.0.0.1", port, ae_title="HUREN", tls_args=(ctx, "127.0.0.1"))
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0
    ds = ct(patient_id="TLS1")
    assert assoc.send_c_store(ds).Status == 0
    assoc.release()
    assert s.query("SELECT COUNT(*) FROM instance WHERE sop_uid = ?", ds.SOPInstanceUID) == [(1,)]
    plain = AE(ae_title="COUNTY")
    plain.add_requested_context(Verification)
    plain.acse_timeout = plain.network_timeout = 5
    assert not plain.associate("127.0.0.1", port, ae_title="HUREN").is_established
    # A peer registered as TLS-only is refused on the plain port and accepted over TLS.
    from conftest import cli
    cli(s.data_dir, "ae", "add", "--institution", "county", "--ae-title", "TLSONLY", "--host", "127.0.0.1",
        "--require-tls")
    only = AE(ae_title="TLSONLY")
    only.add_requested_context(Verification)
    only.acse_timeout = only.network_timeout = 5
    assert not only.associate("127.0.0.1", s.dimse_port, ae_title="HUREN").is_established
    # The rejection is audited once the server has closed its side; give it a moment.
    import time
    deadline = time.time() + 10
    while time.time() < deadline:
        rejected = s.query("SELECT COUNT(*) FROM audit_event WHERE action = 'association_rejected' "
                           "AND detail LIKE '%must use DICOM TLS%'")
        if rejected == [(1,)]:
            break
        time.sleep(0.1)
    assert rejected == [(1,)]
    over_tls = only.associate("127.0.0.1", port, ae_title="HUREN", tls_args=(ctx, "127.0.0.1"))
    assert over_tls.is_established and over_tls.send_c_echo().Status == 0
    over_tls.release()
    # DCMTK's storescu over TLS (anonymous on the client side, the server's certificate trusted),
    # with its default non-downgrading BCP 195 profile.
    from helpers import dcmtk, to_bytes
    f = certs / "ct.dcm"
    sent = ct(patient_id="TLS2")
    f.write_bytes(to_bytes(sent))
    r = dcmtk("storescu", "+tla", "+cf", cert, "-aet", "COUNTY", "-aec", "HUREN", "127.0.0.1", str(port), str(f))
    assert r.returncode == 0, r.stderr
    assert s.query("SELECT COUNT(*) FROM instance WHERE sop_uid = ?", sent.SOPInstanceUID) == [(1,)]
    # Plain DIMSE from storescu to the TLS port fails.
    assert dcmtk("storescu", "-to", "5", "-aet", "COUNTY", "-aec", "HUREN", "127.0.0.1", str(port), str(f),
                 timeout=30).returncode != 0


def test_mutual_dicom_tls_needs_a_client_certificate_from_the_ca(fresh_server, tmp_path_factory):
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    from conftest import free_port
    d = tmp_path_factory.mktemp("mtls")

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d, timeout=60)

    # A CA, a server certificate and a client (peer) certificate issued by it.
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
            "-out", "ca.pem", "-days", "2", "-subj", "/CN=huren test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    for name, ext in [("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")]:
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{name}.key",
                "-out", f"{name}.csr", "-subj", f"/CN={name}")
        (d / f"{name}.ext").write_text(ext + "\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
    port = free_port()
    fresh_server({"HUREN__DIMSE__TLS_LISTEN": f"127.0.0.1:{port}", "HUREN__DIMSE__TLS_CERT": str(d / "server.pem"),
                  "HUREN__DIMSE__TLS_KEY": str(d / "server.key"), "HUREN__DIMSE__TLS_CLIENT_CA": str(d / "ca.pem")})

    def echo(with_client_cert):
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(d / "ca.pem"))
        if with_client_cert:
            ctx.load_cert_chain(str(d / "client.pem"), str(d / "client.key"))
        ae = AE(ae_title="COUNTY")
        ae.add_requested_context(Verification)
        ae.acse_timeout = ae.network_timeout = 5
        assoc = ae.associate("127.0.0.1", port, ae_title="HUREN", tls_args=(ctx, "127.0.0.1"))
        ok = assoc.is_established and assoc.send_c_echo().Status == 0
        if assoc.is_established:
            assoc.release()
        return ok

    assert echo(with_client_cert=True)
    assert not echo(with_client_cert=False)
    # DCMTK's storescu with its default non-downgrading BCP 195 profile: with the peer's key
    # and certificate it stores; with anonymous TLS (no client certificate) it is refused.
    from helpers import ct, dcmtk, to_bytes
    f = d / "ct.dcm"
    f.write_bytes(to_bytes(ct(patient_id="MTLS1")))
    args = ["-aet", "COUNTY", "-aec", "HUREN", "+cf", str(d / "ca.pem"), "127.0.0.1", str(port), str(f)]
    ok = dcmtk("storescu", "+tls", str(d / "client.key"), str(d / "client.pem"), *args)
    assert ok.returncode == 0, ok.stderr
    refused = dcmtk("storescu", "+tla", *args)
    assert refused.returncode != 0
