"""Institution codes as regions write them (issue 21): uppercase codes such as licence numbers
and unified social credit codes are accepted, kept as written, and compared without case —
`H500002` and `h500002` are one institution everywhere (CLI, admin API, DIMSE attribution,
queries). And a CLI failure is one line, never a backtrace, even under RUST_BACKTRACE."""
import os
import subprocess

import requests
from pynetdicom.sop_class import CTImageStorage

from conftest import ADMIN, BIN, Server, cli
from helpers import associate, ct


def run(data_dir, *args, env=None):
    return subprocess.run([BIN, *args, "--data-dir", str(data_dir)], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, **(env or {})))


def test_uppercase_codes_are_kept_and_compared_without_case(tmp_path):
    cli(tmp_path, "institution", "add", "--code", "H500002", "--name", "大写医院", "--level", "二级")
    # The same code in another case is the same institution: refused as a second one, in one
    # line with no backtrace even when the operator's shell sets RUST_BACKTRACE.
    out = run(tmp_path, "institution", "add", "--code", "h500002", "--name", "重复", "--level", "二级",
              env={"RUST_BACKTRACE": "full"})
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert "backtrace" not in out.stderr.lower() and "h500002" in lines[0].lower(), out.stderr
    # Read back under either spelling: the stored spelling is the operator's.
    shown = cli(tmp_path, "institution", "show", "--code", "h500002")
    assert "大写医院" in shown and "H500002" in shown, shown
    # A sender registered under the lowercase spelling belongs to it; its objects are
    # attributed to the institution as written, and their issuer carries that spelling.
    cli(tmp_path, "ae", "add", "--institution", "h500002", "--ae-title", "UPPER", "--host", "127.0.0.1")
    s = Server(tmp_path).start()
    try:
        ds = ct(patient_id="UP1")
        assoc = associate(s.dimse_port, calling="UPPER", contexts=[(CTImageStorage, ["1.2.840.10008.1.2.1"])])
        assert assoc.is_established
        assert assoc.send_c_store(ds).Status == 0
        assoc.release()
        q = """SELECT p.code FROM instance i JOIN institution p ON p.id = i.performing_institution_id
               WHERE i.sop_uid = ?"""
        assert s.query(q, ds.SOPInstanceUID) == [("H500002",)]
        assert s.query("SELECT issuer FROM patient WHERE patient_id = 'UP1'") == [("urn:huren:institution:H500002",)]
        # The admin API refuses the other spelling as a second institution too (409), and a
        # token made for `h500002` reads the study as the institution's own.
        h = {"Authorization": f"Bearer {ADMIN}"}
        r = requests.post(f"{s.url}/api/admin/institutions", headers=h, timeout=10,
                          json={"code": "h500002", "name": "又一个", "level": "二级"})
        assert r.status_code == 409, (r.status_code, r.text)
        tok = cli(tmp_path, "token", "create", "--institution", "h500002")
        r = requests.get(f"{s.url}/dicom-web/studies", headers={"Authorization": f"Bearer {tok}"},
                         params={"StudyInstanceUID": ds.StudyInstanceUID}, timeout=10)
        assert r.status_code == 200 and len(r.json()) == 1, (r.status_code, r.text)
    finally:
        s.stop()


def test_a_code_with_other_characters_is_refused_in_one_line(tmp_path):
    out = run(tmp_path, "institution", "add", "--code", "市医院", "--name", "x", "--level", "二级",
              env={"RUST_BACKTRACE": "1"})
    assert out.returncode != 0
    assert out.stderr.count("\n") == 1 and "A–Z, a–z" in out.stderr, out.stderr
