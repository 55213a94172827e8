"""`huren migrate objects` (issue 23, item 5): a node that kept its objects as files copies
them into an S3 bucket (moto on loopback), resumably, checked against the sizes and SHA-256
the index recorded at ingest; after the switch the same studies are served from the bucket.
A file that no longer matches its index record is refused by name."""
import os
import subprocess

import numpy as np
import pytest
import requests
from pynetdicom.sop_class import CTImageStorage

from conftest import BIN, STORAGE, bucket_keys, region_reader, s3_prefix, start_moto
from helpers import associate, ct, dataset_bytes, multipart_parts, to_bytes

pytestmark = pytest.mark.skipif(STORAGE != "file", reason="it moves a file store into S3 itself; once is enough")


def migrate(data_dir, env, *args):
    return subprocess.run([BIN, "migrate", "objects", "--data-dir", str(data_dir), *args],
                          env=dict(os.environ, **env), capture_output=True, text=True, timeout=300)


def test_a_file_store_moves_into_a_bucket_and_is_served_from_it(fresh_server):
    moto, endpoint = start_moto()
    try:
        s = fresh_server({"HUREN__STORAGE__URL": "file"})
        big = ct(rows=2048, cols=2048, patient_id="MIG1")  # above S3's 5 MiB part size
        big.PixelData = (np.arange(2048 * 2048, dtype=np.uint32) % 4096).astype(np.uint16).tobytes()
        sent = [big, ct(rows=64, cols=64, patient_id="MIG1"), ct(rows=64, cols=64, patient_id="MIG2")]
        assoc = associate(s.dimse_port, contexts=[(CTImageStorage, ["1.2.840.10008.1.2.1"])])
        for ds in sent:
            assert assoc.send_c_store(ds).Status == 0
        assoc.release()
        bucket = {"HUREN__STORAGE__URL": f"s3://huren-e2e/{s3_prefix(s.data_dir)}",
                  "HUREN__STORAGE__ENDPOINT": endpoint, "HUREN__STORAGE__ALLOW_HTTP": "true",
                  "AWS_ACCESS_KEY_ID": "huren-e2e", "AWS_SECRET_ACCESS_KEY": "huren-e2e-secret"}
        # While the node still serves from files: everything is copied.
        r = migrate(s.data_dir, bucket)
        assert r.returncode == 0, r.stderr
        assert "3 objects: 3 copied" in r.stdout, r.stdout
        keys = {k for (k,) in s.query("SELECT blob_key FROM instance")}
        assert bucket_keys(s.data_dir, endpoint) == keys
        # One more arrives; its file is then damaged on disk. The rerun copies nothing twice
        # and refuses the damaged file by name.
        late = ct(rows=64, cols=64, patient_id="MIG2")
        assoc = associate(s.dimse_port, contexts=[(CTImageStorage, ["1.2.840.10008.1.2.1"])])
        assert assoc.send_c_store(late).Status == 0
        assoc.release()
        late_key = s.query("SELECT blob_key FROM instance WHERE sop_uid = ?", late.SOPInstanceUID)[0][0]
        path = s.data_dir / late_key
        damaged = bytearray(path.read_bytes())
        damaged[-1] ^= 0xFF
        path.write_bytes(bytes(damaged))
        r = migrate(s.data_dir, bucket, "--verify")
        assert r.returncode != 0
        assert "4 objects: 0 copied" in r.stdout and "3 already" in r.stdout, r.stdout
        assert late_key in r.stdout and "differs from what the index recorded" in r.stdout, r.stdout
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr  # one clear line
        # Repaired (the original bytes back), it is copied.
        damaged[-1] ^= 0xFF
        path.write_bytes(bytes(damaged))
        r = migrate(s.data_dir, bucket)
        assert r.returncode == 0 and "4 objects: 1 copied" in r.stdout, r.stdout + r.stderr
        # The switch: the node restarts on the bucket, the files set aside, and serves the
        # same objects.
        s.stop()
        os.rename(s.data_dir / "objects", s.data_dir / "objects.moved")
        s.env.update(bucket)
        s.start()
        h = region_reader(s)
        for ds in sent + [late]:
            url = (f"{s.url}/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
                   f"/instances/{ds.SOPInstanceUID}")
            r = requests.get(url, headers={**h, "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'})
            assert r.status_code == 200, r.text[:300]
            assert dataset_bytes(to_bytes(ds)) in {dataset_bytes(p) for p in multipart_parts(r)}
    finally:
        moto.terminate()
        moto.wait(timeout=10)
