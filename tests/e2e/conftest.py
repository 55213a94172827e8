"""End-to-end fixtures: a real `huren serve` process on loopback in its own data directory,
configured through the real CLI, driven by real peers (DCMTK, pynetdicom, dicomweb-client)."""
import hashlib
import os
import random
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("HUREN_BIN", str(ROOT / "target" / "debug" / "huren"))
PYDICOM_DATA = Path(pydicom.__file__).parent / "data"
TEST_FILES = PYDICOM_DATA / "test_files"
CHARSET_FILES = PYDICOM_DATA / "charset_files"
ADMIN = "test-admin-token"
MPI_SM4_KEY = "0123456789abcdeffedcba9876543210"
MPI_INDEX_KEY = "00112233445566778899aabbccddeeff"


# `HUREN_E2E_STORAGE=s3` runs the whole suite with the objects in an S3 bucket (moto's
# server on loopback) instead of files under each data directory (issue 23). Each data
# directory gets its own prefix in the bucket, as separate deployments would.
STORAGE = os.environ.get("HUREN_E2E_STORAGE", "file")
S3_BUCKET = "huren-e2e"
_s3 = {}


def start_moto():
    """moto's S3 server on a loopback port, with the suite's bucket; returns (process, endpoint)."""
    import requests
    port = free_port()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.time() + 20
    while True:
        try:
            if requests.put(f"{endpoint}/{S3_BUCKET}", timeout=2).status_code == 200:
                return proc, endpoint
        except requests.ConnectionError:
            pass
        if time.time() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("moto_server did not start")
        time.sleep(0.1)


def pytest_configure(config):
    if STORAGE == "s3":
        proc, endpoint = start_moto()
        _s3.update(proc=proc, endpoint=endpoint)


def pytest_unconfigure(config):
    if _s3.get("proc"):
        _s3["proc"].terminate()
        _s3["proc"].wait(timeout=10)


def s3_prefix(data_dir):
    return hashlib.sha1(str(Path(data_dir).resolve()).encode()).hexdigest()[:16]


def storage_env(data_dir):
    """The settings that put a data directory's objects in the bucket (empty for files)."""
    if STORAGE != "s3":
        return {}
    return {"HUREN__STORAGE__URL": f"s3://{S3_BUCKET}/{s3_prefix(data_dir)}",
            "HUREN__STORAGE__ENDPOINT": _s3["endpoint"], "HUREN__STORAGE__ALLOW_HTTP": "true",
            # One node per prefix here: an orphan may go at once (docs/deploy.md).
            "HUREN__STORAGE__ORPHAN_GRACE_SECS": "0",
            "AWS_ACCESS_KEY_ID": "huren-e2e", "AWS_SECRET_ACCESS_KEY": "huren-e2e-secret"}


_clients = {}


def s3_client(endpoint=None):
    """A signed client for the suite's bucket (moto answers unsigned requests for some objects
    and refuses them for others, as a real store refuses them all); one per endpoint, as
    making a boto3 client costs more than a request."""
    import boto3
    endpoint = endpoint or _s3["endpoint"]
    if endpoint not in _clients:
        _clients[endpoint] = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                                          aws_access_key_id="huren-e2e",
                                          aws_secret_access_key="huren-e2e-secret")
    return _clients[endpoint]


def s3_key(data_dir, key):
    return f"{s3_prefix(data_dir)}/{key}"


def object_bytes(data_dir, key, endpoint=None):
    """A stored object's bytes, wherever the suite keeps them."""
    if STORAGE != "s3":
        return (Path(data_dir) / key).read_bytes()
    c = s3_client(endpoint)
    try:
        return c.get_object(Bucket=S3_BUCKET, Key=s3_key(data_dir, key))["Body"].read()
    except c.exceptions.NoSuchKey:
        raise FileNotFoundError(key)


def object_exists(data_dir, key):
    try:
        object_bytes(data_dir, key)
        return True
    except FileNotFoundError:
        return False


def object_keys(data_dir, endpoint=None):
    """Every stored object's key (relative to the data directory or the prefix)."""
    if STORAGE != "s3":
        return {str(p.relative_to(data_dir)) for p in (Path(data_dir) / "objects").rglob("*.dcm")}
    return bucket_keys(data_dir, endpoint)


def bucket_keys(data_dir, endpoint=None):
    """The keys under a data directory's prefix in the bucket, whatever this pass stores in."""
    prefix = s3_prefix(data_dir) + "/"
    pages = s3_client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=S3_BUCKET, Prefix=prefix)
    return {o["Key"][len(prefix):] for page in pages for o in page.get("Contents", [])}


def object_etag(data_dir, key):
    return s3_client().head_object(Bucket=S3_BUCKET, Key=s3_key(data_dir, key))["ETag"].strip('"')


def put_object(data_dir, key, data):
    """Writes an object behind huren's back (what a crash would leave)."""
    if STORAGE != "s3":
        path = Path(data_dir) / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    s3_client().put_object(Bucket=S3_BUCKET, Key=s3_key(data_dir, key), Body=data)


def region_today():
    """Today in the region's zone (the server's default, Asia/Shanghai): the day the server
    dates decisions, arrivals and "today" by. The machine's own date is UTC's, another day
    from 16:00 to 24:00 UTC."""
    import datetime
    from zoneinfo import ZoneInfo
    return datetime.datetime.now(ZoneInfo("Asia/Shanghai")).date()


def _below_ephemeral():
    """The ports below the kernel's ephemeral range (outgoing connections take theirs from it)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return 10000, max(low - 1, 10001)


_handed_out = set()


def free_port():
    """A port free now, chosen below the ephemeral range. A port the kernel hands out (bind to
    0) is in that range, and any outgoing connection, such as a storescu's, could take it
    before the server binds it; that made start-ups fail now and then ("binding DIMSE")."""
    lo, hi = _below_ephemeral()
    for _ in range(500):
        port = random.randint(lo, hi)
        if port in _handed_out:  # not yet bound by the server it was chosen for
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port below the ephemeral range")


def cli(data_dir, *args):
    out = subprocess.run([BIN, *args, "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, **storage_env(data_dir)))
    if out.returncode != 0:
        raise RuntimeError(f"huren {' '.join(args)} failed: {out.stderr}")
    return out.stdout.strip()


class Server:
    def __init__(self, data_dir, env=None):
        self.data_dir = Path(data_dir)
        self.http_port = free_port()
        self.dimse_port = free_port()
        self.env = env or {}
        self.proc = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.http_port}"

    def start(self):
        # Test keys for sealing identity numbers (configuration, never the database).
        keys = {"HUREN__MPI__SM4_KEY": MPI_SM4_KEY, "HUREN__MPI__INDEX_KEY": MPI_INDEX_KEY}
        env = dict(os.environ, HUREN_BOOTSTRAP_ADMIN_TOKEN=ADMIN, RUST_LOG="warn",
                   **{**keys, **storage_env(self.data_dir), **self.env})
        self.log = open(self.data_dir / "server.log", "ab")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--data-dir", str(self.data_dir), "--http", f"127.0.0.1:{self.http_port}",
             "--dimse", f"127.0.0.1:{self.dimse_port}", "--ae-title", "HUREN"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("huren exited at start; see server.log")
            try:
                with socket.create_connection(("127.0.0.1", self.http_port), timeout=0.2):
                    with socket.create_connection(("127.0.0.1", self.dimse_port), timeout=0.2):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("huren did not start")

    def stop(self, kill=False):
        if self.proc and self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            self.proc.wait(timeout=20)
        if getattr(self, "log", None):
            self.log.close()

    def db(self):
        return sqlite3.connect(str(self.data_dir / "index.sqlite"))

    def object_bytes(self, key):
        return object_bytes(self.data_dir, key)

    def object_exists(self, key):
        return object_exists(self.data_dir, key)

    def object_keys(self):
        return object_keys(self.data_dir)

    def query(self, sql, *params):
        c = self.db()
        try:
            return c.execute(sql, params).fetchall()
        finally:
            c.close()


def setup_region(data_dir):
    """Three institutions and their senders, as an operator would register them."""
    cli(data_dir, "institution", "add", "--code", "city", "--name", "市人民医院", "--level", "三级", "--city", "重庆",
        "--identifier-system", "urn:oid:1.2.156.1")
    cli(data_dir, "institution", "add", "--code", "county", "--name", "县人民医院", "--level", "二级")
    cli(data_dir, "institution", "add", "--code", "town", "--name", "镇卫生院", "--level", "一级")
    cli(data_dir, "ae", "add", "--institution", "county", "--ae-title", "COUNTY", "--host", "127.0.0.1")
    cli(data_dir, "ae", "add", "--institution", "city", "--ae-title", "CITY", "--host", "127.0.0.1")
    # Same title as another hospital's PACS, different network: must not be confused.
    cli(data_dir, "ae", "add", "--institution", "town", "--ae-title", "PACS", "--host", "127.0.0.2")
    cli(data_dir, "ae", "add", "--institution", "county", "--ae-title", "GBKSENDER", "--host", "127.0.0.1",
        "--assumed-charset", "GB18030")
    cli(data_dir, "send-for", "--sender", "county", "--performer", "town", "--institution-name", "镇卫生院")


def load_recognition_config(data_dir):
    """What recognition needs to judge the suite's CTs: the county located in 重庆 (for the HR
    scopes), the demo catalog with its study rules, and the 川渝HR scope."""
    catalog = ROOT / "crates" / "huren" / "demo" / "catalog"
    cli(data_dir, "institution", "set", "--code", "county", "--attribute", "city", "--value", "重庆",
        "--valid-from", "2020-01-01")
    cli(data_dir, "catalog", "import", "--file", str(catalog / "items.csv"), "--label", "v1",
        "--effective-from", "2024-01-01")
    cli(data_dir, "catalog", "rules", "--file", str(catalog / "study-rules.csv"))
    (Path(data_dir) / "scopes.csv").write_text("label,covers\n川渝HR,city:重庆;city:成都\n")
    cli(data_dir, "catalog", "scopes", "--file", str(Path(data_dir) / "scopes.csv"))


_readers = {}


def region_reader(server):
    """Headers for a regional service's token (`--scope read:region`): it reads every
    institution's data. Operators' tokens read no patient data, and a hospital system's token
    reads its own institution's."""
    key = str(server.data_dir)
    if key not in _readers:
        _readers[key] = cli(server.data_dir, "token", "create", "--institution", "city", "--scope", "read:region")
    return {"Authorization": f"Bearer {_readers[key]}"}


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("huren")
    setup_region(d)
    s = Server(d).start()
    yield s
    s.stop()


@pytest.fixture
def fresh_server(tmp_path):
    servers = []

    def make(env=None):
        setup_region(tmp_path)
        s = Server(tmp_path, env).start()
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()
