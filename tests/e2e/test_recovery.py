"""Durability: acknowledged objects survive SIGKILL; the start-up sweep leaves no orphans."""
import hashlib
import random
import threading
import time

from pydicom.uid import generate_uid
from pynetdicom.sop_class import CTImageStorage

from conftest import put_object
from helpers import associate, ct, dataset_bytes, to_bytes


def test_sweep_removes_half_written(fresh_server):
    s = fresh_server()
    s.stop()
    today = time.gmtime()
    key = f"objects/{today.tm_year:04}/{today.tm_mon:02}/{today.tm_mday:02}/orphan.dcm"
    put_object(s.data_dir, key, b"half")
    (s.data_dir / "spool" / "x.part").write_bytes(b"partial")
    s.start()
    assert not s.object_exists(key)
    assert not (s.data_dir / "spool" / "x.part").exists()


def test_sigkill_during_ingest_loses_nothing_acknowledged(fresh_server):
    s = fresh_server()
    acked = {}  # sop uid -> sha256 of the data set
    lock = threading.Lock()
    rng = random.Random(7)

    def sender(stop):
        while not stop.is_set():
            try:
                # Short timeouts: after the kill, a sender must notice and stop quickly.
                assoc = associate(s.dimse_port, contexts=[(CTImageStorage, ["1.2.840.10008.1.2.1"])], timeout=3)
                if not assoc.is_established:
                    time.sleep(0.05)
                    continue
                while not stop.is_set():
                    ds = ct(rows=128, cols=128, patient_id="KILL")
                    digest = hashlib.sha256(dataset_bytes(to_bytes(ds))).hexdigest()
                    rsp = assoc.send_c_store(ds)
                    if rsp and "Status" in rsp and rsp.Status == 0:
                        with lock:
                            acked[ds.SOPInstanceUID] = digest
                    elif not assoc.is_established:
                        break
                assoc.release()
            except Exception:
                time.sleep(0.05)

    for round_ in range(20):
        stop = threading.Event()
        threads = [threading.Thread(target=sender, args=(stop,)) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.3, 1.2))
        s.stop(kill=True)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        s.start()
        # Every acknowledged instance is retrievable and identical.
        with lock:
            expected = dict(acked)
        for sop, digest in expected.items():
            rows = s.query("SELECT blob_key FROM instance WHERE sop_uid = ? AND lifecycle = 'active'", sop)
            assert len(rows) == 1, f"round {round_}: acknowledged {sop} missing"
            data = s.object_bytes(rows[0][0])
            assert hashlib.sha256(dataset_bytes(data)).hexdigest() == digest
    assert len(acked) > 50
    # No orphan blobs, no rows without blobs.
    keys = {r[0] for r in s.query("SELECT blob_key FROM instance WHERE lifecycle != 'deleted'")}
    assert s.object_keys() == keys
    assert not list((s.data_dir / "spool").iterdir())


def test_disk_full_is_a700_and_nothing_half_written(tmp_path):
    import subprocess
    import pytest
    from conftest import STORAGE, Server, setup_region
    if STORAGE != "file":
        pytest.skip("the objects are in S3 here: test_s3.py covers an unavailable store")
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(small)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    s = None
    try:
        setup_region(small)
        s = Server(small).start()
        assoc = associate(s.dimse_port, contexts=[(CTImageStorage, ["1.2.840.10008.1.2.1"])])
        statuses = []
        for _ in range(40):
            statuses.append(assoc.send_c_store(ct(rows=512, cols=512)).Status)
            if statuses[-1] == 0xA700:
                break
        assoc.release()
        assert statuses[0] == 0x0000 and statuses[-1] == 0xA700, [hex(x) for x in statuses]
        # Still answering, and every object file on disk is indexed (no partial blobs).
        from helpers import dcmtk
        assert dcmtk("echoscu", "-aet", "COUNTY", "-aec", "HUREN", "127.0.0.1", str(s.dimse_port)).returncode == 0
        keys = {r[0] for r in s.query("SELECT blob_key FROM instance")}
        files = {str(p.relative_to(small)) for p in (small / "objects").rglob("*.dcm")}
        assert files == keys
        assert not list((small / "spool").iterdir())
    finally:
        if s:
            s.stop()
        subprocess.run(["umount", str(small)], capture_output=True)
