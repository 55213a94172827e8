"""MLLP ingest: ORU^R01 messages (1 OBR + 20 OBX) over 4 connections, each waiting for its ACK
(closed loop; an ACK is sent only after the message's commit). Issue #5 target: ≥ 2,000/s.
Then the patient timeline of a person with 200 lab results (wrk, 8 clients, 10 s); target
p99 ≤ 20 ms.

Usage (from the repository root, after `bash bench/run.sh` has built huren):
    HUREN_BIN=<target>/release/huren .venv/bin/python bench/mllp.py [--messages 2000]
"""
import argparse
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import bench  # noqa: E402


def message(conn, k, patient=None):
    obx = "\r".join(f"OBX|{i}|NM|{1000 + i}-0^Analyte {i}^LN||{i}.5|mmol/L|1-9|N|||F|||20250301083000"
                    for i in range(1, 21))
    return (f"MSH|^~\\&|LIS|LIS01|HUREN|REGION|20250301101500||ORU^R01^ORU_R01|B{conn}-{k}|P|2.5.1|||||CHN|UNICODE UTF-8\r"
            f"PID|1||{patient or f'P{conn}-{k % 200}'}^^^urn:oid:1.2.3^MR||王^{k % 200}||19700101|M\r"
            f"OBR|1|P{k}|F{conn}-{k}|PANEL^Panel^L|||20250301080000\r{obx}\r").encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--connections", type=int, default=4)
    args = ap.parse_args()
    server = bench.Huren()
    server.dir = bench.WORK / "huren-mllp"
    port = bench.free_port()
    os.environ["HUREN__MLLP__LISTEN"] = f"127.0.0.1:{port}"
    bench.ENV["HUREN__MLLP__LISTEN"] = f"127.0.0.1:{port}"
    server.start()
    try:
        bench.run([bench.HUREN, "hl7-sender", "add", "--data-dir", server.dir, "--institution", "bench", "--host", "127.0.0.1"])
        bench.wait_port(port)
        per = args.messages // args.connections
        refused = []

        def client(c):
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                for k in range(per):
                    s.sendall(b"\x0b" + message(c, k) + b"\x1c\x0d")
                    buf = b""
                    while not buf.endswith(b"\x1c\x0d"):
                        buf += s.recv(65536)
                    if b"MSA|AA" not in buf:
                        refused.append(buf[:120])

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client, args=(c,)) for c in range(args.connections)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        dt = time.perf_counter() - t0
        print(f"{per * args.connections / dt:.0f} ORU/s ({args.connections} connections, 20 OBX each, "
              f"{per * args.connections} messages, {len(refused)} not AA)")
        # A person with 200 results: ten more messages for one record.
        with socket.create_connection(("127.0.0.1", port)) as s:
            for k in range(10):
                s.sendall(b"\x0b" + message(9, 10_000 + k, patient="TIMELINE200") + b"\x1c\x0d")
                buf = b""
                while not buf.endswith(b"\x1c\x0d"):
                    buf += s.recv(65536)
        import requests
        found = requests.get(f"http://127.0.0.1:{server.http}/api/patients",
                             params={"patient_id": "TIMELINE200", "issuer": "urn:oid:1.2.3"}, headers=server.headers).json()
        person = found[0]["person"]
        url = f"http://127.0.0.1:{server.http}/api/patients/{person}/timeline"
        n = len(requests.get(url, headers=server.headers).json()["lab_results"])
        single = sorted(bench.timed_get(url, server.headers)[1] for _ in range(21))[10]
        print(f"timeline of a person with {n} results, one request at a time: median {single * 1000:.1f} ms")
        w = bench.wrk(url, server.headers)
        print(f"timeline of a person with {n} results: {w['rps']:.0f} req/s, p50 {w['p50']}, p99 {w['p99']} {w['errors']}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
