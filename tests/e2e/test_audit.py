"""The audit trail resists an insider with database access (issue #6): every event is chained
with HMAC-SM3 under a key kept outside the database, and signed head checkpoints go to a file
outside the data directory. `huren audit verify` must pass on an untouched trail and name what
was done for each kind of tampering: a modified, removed, reordered or inserted event, a
truncated trail, and a chain recomputed without the key."""
import hmac
import shutil
import sqlite3
import subprocess
import uuid

import pytest
import requests

from conftest import ADMIN, BIN
from helpers import ct
from test_persons import store

KEY = "8f1e2d3c4b5a69788796a5b4c3d2e1f0"


def huren(data_dir, env, *args):
    import os
    return subprocess.run([BIN, *args, "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, **env))


@pytest.fixture
def trail(fresh_server, tmp_path_factory):
    outside = tmp_path_factory.mktemp("audit-outside")
    env = {"HUREN__AUDIT__CHAIN_KEY": KEY, "HUREN__AUDIT__CHECKPOINT_FILE": str(outside / "checkpoints.jsonl"),
           "HUREN__AUDIT__CHECKPOINT_SECS": "1"}
    s = fresh_server(env)
    # Activity of several kinds: stored objects, a refused association, configuration changes.
    for _ in range(3):
        store(s, ct(patient_id="AU" + uuid.uuid4().hex[:6]))
    from helpers import associate
    from pynetdicom.sop_class import Verification
    assert not associate(s.dimse_port, calling="NOBODY", contexts=[(Verification, None)]).is_established
    h = {"Authorization": f"Bearer {ADMIN}"}
    r = requests.post(f"{s.url}/api/admin/tokens", json={"institution": "city"}, headers=h)
    assert r.status_code in (200, 201), r.text
    r = requests.get(f"{s.url}/api/admin/institutions/city", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    s.stop()
    s.env = env
    return s


def verify(s, data_dir=None):
    return huren(data_dir or s.data_dir, s.env, "audit", "verify")


def tampered(s, tmp_path, sql, *params):
    d = tmp_path / ("copy-" + uuid.uuid4().hex[:6])
    shutil.copytree(s.data_dir, d)
    c = sqlite3.connect(str(d / "index.sqlite"))
    if callable(sql):
        sql(c)
    else:
        c.execute(sql, params)
    c.commit()
    c.close()
    return d


CONTENT = "at, action, outcome, actor, institution, patient, study_uid, object, source_address, detail"


def swap(a, b):
    def run(c):
        ra = c.execute(f"SELECT {CONTENT} FROM audit_event WHERE seq = ?", (a,)).fetchone()
        rb = c.execute(f"SELECT {CONTENT} FROM audit_event WHERE seq = ?", (b,)).fetchone()
        sets = ", ".join(f"{col.strip()} = ?" for col in CONTENT.split(","))
        c.execute(f"UPDATE audit_event SET {sets} WHERE seq = ?", (*rb, a))
        c.execute(f"UPDATE audit_event SET {sets} WHERE seq = ?", (*ra, b))
    return run


def test_an_untouched_trail_verifies(trail):
    out = verify(trail)
    assert out.returncode == 0, out.stderr
    chained = sqlite3.connect(str(trail.data_dir / "index.sqlite")).execute(
        "SELECT COUNT(*), MAX(seq) FROM audit_event WHERE seq IS NOT NULL").fetchone()
    assert chained[0] >= 5 and chained[0] == chained[1]
    assert f"{chained[0]} events chained" in out.stdout and "1 checkpoint(s) match" in out.stdout
    # Nothing new: a second checkpoint adds nothing.
    assert "no new events" in huren(trail.data_dir, trail.env, "audit", "checkpoint").stdout


def test_each_kind_of_tampering_is_named(trail, tmp_path):
    cases = {
        "modified": ("UPDATE audit_event SET detail = '{}' WHERE seq = 3", "event seq 3"),
        "removed": ("DELETE FROM audit_event WHERE seq = 4", "sequence jumps from 3 to 5"),
        # Events 2 and 5 trade places (their contents; the chain columns stay).
        "reordered": (swap(2, 5), "event seq 2"),
        "inserted": ("INSERT INTO audit_event (at, action, outcome, actor, detail) "
                     "VALUES (1, 'instance_stored', 'success', 'ae:FAKE', '{}')", "inserted outside huren"),
        "truncated": ("DELETE FROM audit_event WHERE seq > (SELECT MAX(seq) - 2 FROM audit_event)",
                      "removed from the end"),
    }
    for name, (sql, expect) in cases.items():
        out = verify(trail, tampered(trail, tmp_path, sql))
        assert out.returncode != 0, name
        assert expect in out.stderr, (name, out.stderr)


def link(key, prev, seq, fields):
    """The chain's link as docs/audit.md specifies it (HMAC-SM3)."""
    msg = b"huren-audit-v1\0" + prev + seq.to_bytes(8, "big", signed=True)
    for f in fields:
        if f is None:
            msg += b"\xff\xff\xff\xff"
        else:
            b = str(f).encode()
            msg += len(b).to_bytes(4, "big") + b
    return hmac.new(key, msg, "sm3").digest()


def test_the_documented_link_matches_and_a_recomputed_chain_is_caught(trail, tmp_path):
    db = sqlite3.connect(str(trail.data_dir / "index.sqlite"))
    cols = "at, action, outcome, actor, institution, patient, study_uid, object, source_address, detail"
    rows = db.execute(f"SELECT seq, mac, {cols} FROM audit_event WHERE seq IS NOT NULL ORDER BY seq").fetchall()
    prev = bytes(32)
    for seq, mac, *fields in rows:
        assert link(bytes.fromhex(KEY), prev, seq, fields) == mac, seq
        prev = mac
    # An insider who rewrites an event and recomputes the whole chain with a key of their own.
    d = tampered(trail, tmp_path, "UPDATE audit_event SET actor = 'someone-else' WHERE seq = 2")
    c = sqlite3.connect(str(d / "index.sqlite"))
    prev = bytes(32)
    for seq, _mac, *fields in c.execute(f"SELECT seq, mac, {cols} FROM audit_event WHERE seq IS NOT NULL ORDER BY seq").fetchall():
        new = link(b"insider's own key", prev, seq, fields)
        c.execute("UPDATE audit_event SET mac = ? WHERE seq = ?", (new, seq))
        prev = new
    c.commit()
    c.close()
    out = verify(trail, d)
    assert out.returncode != 0
    assert "event seq 1 " in out.stderr and "the trail was rewritten" in out.stderr
