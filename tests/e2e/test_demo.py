"""The first of the README's two commands, `huren demo`: it seeds the demo region, prints a
viewer token that reads it, and the demo's patients have studies, timelines and recognition
decisions."""
import os
import re
import socket
import subprocess
import time

import requests

from conftest import BIN, MPI_INDEX_KEY, MPI_SM4_KEY, free_port, storage_env


def test_demo_seeds_a_region_a_viewer_can_read(tmp_path):
    http, dimse = free_port(), free_port()
    env = dict(os.environ, HUREN_BOOTSTRAP_ADMIN_TOKEN="demo", RUST_LOG="warn",
               HUREN__MPI__SM4_KEY=MPI_SM4_KEY, HUREN__MPI__INDEX_KEY=MPI_INDEX_KEY,
               **storage_env(tmp_path / "data"))
    out = open(tmp_path / "demo.out", "w+")
    proc = subprocess.Popen([BIN, "demo", "--data-dir", str(tmp_path / "data"), "--http", f"127.0.0.1:{http}",
                             "--dimse", f"127.0.0.1:{dimse}"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            assert proc.poll() is None, (tmp_path / "demo.out").read_text()
            try:
                socket.create_connection(("127.0.0.1", http), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.2)
        text = ""
        while time.time() < deadline and "viewer token" not in text:
            time.sleep(0.2)
            text = (tmp_path / "demo.out").read_text()
        token = re.search(r"viewer token \(reads every institution's data, read:region\): (\S+)", text).group(1)
        h = {"Authorization": f"Bearer {token}"}
        studies = requests.get(f"http://127.0.0.1:{http}/dicom-web/studies", headers=h).json()
        assert len(studies) >= 10
        # The operator's token configures but reads no patient data.
        assert requests.get(f"http://127.0.0.1:{http}/dicom-web/studies",
                            headers={"Authorization": "Bearer demo"}).status_code == 403
        person = requests.get(f"http://127.0.0.1:{http}/api/patients", params={"name": "王"}, headers=h).json()[0]["person"]
        r = requests.get(f"http://127.0.0.1:{http}/api/patients/{person}/recognition",
                         params={"receiver": "cq-city-1"}, headers={**h})
        assert r.status_code == 200, r.text
        v = r.json()
        assert v["catalog_version"] and v["scope_set"] and v["results"]
        # The first visit, as printed: the city's HIS registers 孙丽珍 from her identity card,
        # opens the visit, and the reminder shows her county CT.
        assert "first visit" in text
        curls = re.findall(r"curl -X (\w+) '?(\S+?)'? -H 'Authorization: Bearer (\S+?)'.*?-d '(.*)'", text)
        assert len(curls) == 4, text
        base = f"http://127.0.0.1:{http}"
        results = []
        for method, url, his, body in curls:
            url = url.replace(re.match(r"http://[^/]+", url).group(0), base)
            extra = {"X-Huren-On-Behalf-Of": "demo.doctor"} if "reminders" in url else {}
            ctype = "application/fhir+json" if "/fhir/" in url else "application/json"
            r = requests.request(method, url, data=body.encode(),
                                 headers={"Authorization": f"Bearer {his}", "Content-Type": ctype, **extra})
            assert r.status_code in (200, 201), (url, r.text)
            results.append(r.json())
        reminder = results[2]
        assert reminder["patient"] == "known" and reminder["person"] == results[0]["id"]
        assert [x["kind"] for x in reminder["results"]] == ["imaging_study"], reminder
        assert reminder["results"][0]["performing_institution"] == "cq-county-1"
        # The launch link opens the workstation on her page, with the reminder.
        landing = requests.get(results[3]["url"].replace(re.match(r"http://[^/]+", results[3]["url"]).group(0), base),
                               allow_redirects=False)
        assert landing.headers["location"] == f"/patients/{results[0]['id']}", landing.headers
        page = requests.get(base + landing.headers["location"], cookies=landing.cookies)
        assert page.status_code == 200 and "孙丽珍" in page.text and "胸部CT平扫" in page.text
        # Reference only until quality control has graded the CT: its explanation (fetched
        # when opened) says so.
        if "可互认" not in page.text:
            assert "仅供参考" in page.text
            why = re.search(r'href="(/patients/[^"]+/why\?[^"]+)"', page.text).group(1).replace("&amp;", "&")
            explained = requests.get(base + why, cookies=landing.cookies)
            assert explained.status_code == 200 and "尚无可靠的影像质控等级" in explained.text, explained.text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        out.close()
