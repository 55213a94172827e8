"""Objects in an S3 bucket (issue 23; run with `HUREN_E2E_STORAGE=s3`, as scripts/test.sh
does for its second pass): a large object goes up as a multipart upload and reads back whole
and by frame; an unavailable store is a refusal the sender sees, nothing is indexed without
its object, and ingest resumes when the store returns."""
import hashlib
import socket
import threading

import numpy as np
import pytest
import requests
from pynetdicom.sop_class import CTImageStorage

from conftest import STORAGE, free_port, object_bytes, object_etag, object_keys, region_reader, start_moto
from helpers import associate, ct, dataset_bytes, dcmtk, multipart_parts, to_bytes

pytestmark = pytest.mark.skipif(STORAGE != "s3", reason="objects are files here (HUREN_E2E_STORAGE=s3)")


def test_a_large_object_goes_up_in_parts_and_reads_back_whole_and_by_frame(server):
    # 2,048² × 16 bits: 8 MiB of pixels, above the in-memory spool and S3's 5 MiB part size.
    ds = ct(rows=2048, cols=2048, patient_id="S3BIG")
    ds.PixelData = (np.arange(2048 * 2048, dtype=np.uint32) % 4096).astype(np.uint16).tobytes()
    sent = to_bytes(ds)
    assoc = associate(server.dimse_port, contexts=[(CTImageStorage, ["1.2.840.10008.1.2.1"])])
    assert assoc.send_c_store(ds).Status == 0
    assoc.release()
    key = server.query("SELECT blob_key FROM instance WHERE sop_uid = ?", ds.SOPInstanceUID)[0][0]
    # The bucket holds it, byte for byte as received (the data set; the File Meta is huren's).
    stored = server.object_bytes(key)
    assert dataset_bytes(stored) == dataset_bytes(sent)
    # An object that went up in parts has an ETag of the form "<md5 of the parts' md5s>-<parts>".
    assert object_etag(server.data_dir, key).endswith("-2")
    h = region_reader(server)
    base = (f"{server.url}/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}")
    r = requests.get(base, headers={**h, "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'})
    assert r.status_code == 200
    assert hashlib.sha256(dataset_bytes(sent)).digest() in {
        hashlib.sha256(dataset_bytes(part)).digest() for part in multipart_parts(r)}
    # One frame is read by range from the bucket.
    r = requests.get(base + "/frames/1", headers={**h, "Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=*'})
    assert r.status_code == 200
    assert multipart_parts(r) == [ds.PixelData]


class Cuttable:
    """A TCP relay between huren and a private S3 server that the test can cut (connections
    accepted and dropped at once) and mend, as a network or the store failing would."""

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.port = free_port()
        self.cut = False
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            if self.cut:
                c.close()
                continue
            try:
                u = socket.create_connection(("127.0.0.1", self.upstream))
            except OSError:
                c.close()
                continue
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src, dst):
        try:
            while not self.cut:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.close()
            except OSError:
                pass


def test_an_unavailable_store_is_a_refusal_and_nothing_is_indexed_without_its_object(fresh_server, tmp_path):
    moto, private = start_moto()
    try:
        relay = Cuttable(int(private.rsplit(":", 1)[1]))
        s = fresh_server({"HUREN__STORAGE__ENDPOINT": f"http://127.0.0.1:{relay.port}",
                          "HUREN__STORAGE__RETRY_SECS": "1", "HUREN__STORAGE__REQUEST_TIMEOUT_SECS": "3"})
        assoc = associate(s.dimse_port, contexts=[(CTImageStorage, ["1.2.840.10008.1.2.1"])])
        first = ct(rows=64, cols=64, patient_id="S3CUT")
        assert assoc.send_c_store(first).Status == 0
        relay.cut = True
        lost = ct(rows=64, cols=64, patient_id="S3CUT")
        status = assoc.send_c_store(lost).Status
        # A failure the sender sees (PS3.4 B.2.3: 0xA7xx out of resources or 0x0110 processing
        # failure), never success.
        assert status in (0xA700, 0x0110), hex(status)
        assoc.release()
        assert not s.query("SELECT 1 FROM instance WHERE sop_uid = ?", lost.SOPInstanceUID)
        # Still serving: an echo is answered while the store is away.
        assert dcmtk("echoscu", "-aet", "COUNTY", "-aec", "HUREN", "127.0.0.1", str(s.dimse_port)).returncode == 0
        relay.cut = False
        assoc = associate(s.dimse_port, contexts=[(CTImageStorage, ["1.2.840.10008.1.2.1"])])
        assert assoc.send_c_store(lost).Status == 0
        assoc.release()
        # Both are there, each with its object, and the bucket holds nothing else.
        keys = {r[0] for r in s.query("SELECT blob_key FROM instance WHERE sop_uid IN (?, ?)",
                                      first.SOPInstanceUID, lost.SOPInstanceUID)}
        assert len(keys) == 2
        assert object_keys(s.data_dir, private) == keys
        for ds in (first, lost):
            k = s.query("SELECT blob_key FROM instance WHERE sop_uid = ?", ds.SOPInstanceUID)[0][0]
            assert dataset_bytes(object_bytes(s.data_dir, k, private)) == dataset_bytes(to_bytes(ds))
    finally:
        moto.terminate()
        moto.wait(timeout=10)
