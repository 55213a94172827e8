"""OHIF v3 (the published @ohif/app build) opens a 500-slice CT from huren in headless Chromium:
the image renders (the viewport is not blank) and scrolling changes it."""
import http.server
import io
import re
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.uid import generate_uid

from conftest import ROOT, cli
from helpers import CHROMIUM, CHROMIUM_ARGS, ct, dcmtk

OHIF_DIST = ROOT / ".web-assets" / "src" / "ohif-3.13.2" / "package" / "dist"


def ohif_config(dicomweb: str) -> bytes:
    cfg = (OHIF_DIST / "app-config.js").read_text()
    cfg = re.sub(r"https://d14fa38qiwhyfd\.cloudfront\.net/dicomweb", dicomweb, cfg)
    cfg = cfg.replace("staticWado: true", "staticWado: false").replace("qidoSupportsIncludeField: false", "qidoSupportsIncludeField: true")
    return cfg.encode()


class OhifServer(http.server.ThreadingHTTPServer):
    daemon_threads = True


def serve_ohif(config: bytes):
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(OHIF_DIST), **kw)

        def log_message(self, *a):
            pass

        def do_GET(self):
            path = self.path.split("?")[0]
            if path == "/app-config.js":
                self.send_response(200)
                self.send_header("Content-Type", "application/javascript")
                self.end_headers()
                self.wfile.write(config)
                return
            # Single-page app: unknown paths (/viewer, /…) get index.html.
            if not (OHIF_DIST / path.lstrip("/")).is_file():
                self.path = "/index.html"
            return super().do_GET()

    httpd = OhifServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def viewport_pixels(page):
    el = page.locator(".cornerstone-viewport-element, [data-viewport-uid]").first
    return np.asarray(Image.open(io.BytesIO(el.screenshot())).convert("L"), dtype=np.float64)


@pytest.mark.skipif(not OHIF_DIST.is_dir() or not Path(CHROMIUM).exists(), reason="OHIF dist or Chromium not installed")
def test_ohif_opens_500_slice_ct(fresh_server, tmp_path):
    from playwright.sync_api import sync_playwright
    s = fresh_server({"HUREN__HTTP__CORS_ALLOW_ORIGINS": '["*"]', "HUREN__HTTP__CROSS_ORIGIN_RESOURCE_POLICY": "cross-origin"})
    token = cli(s.data_dir, "token", "create", "--institution", "city", "--scope", "read:region")
    study, series = generate_uid(), generate_uid()
    d = tmp_path / "ct"
    d.mkdir()
    yy, xx = np.mgrid[:512, :512]
    for i in range(500):
        ds = ct(study=study, series=series, patient_id="OHIF1", name="Zhao^Lei=赵^磊", rows=512, cols=512)
        ds.InstanceNumber = i + 1
        ds.ImagePositionPatient = [-250, -250, i * 1.25]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.98, 0.98]
        ds.SliceThickness = 1.25
        ds.RescaleIntercept, ds.RescaleSlope, ds.WindowCenter, ds.WindowWidth = -1024, 1, 40, 400
        r = 60 + 150 * abs(np.sin(i / 40))  # a disc whose radius changes along the series
        ds.PixelData = np.where((yy - 256) ** 2 + (xx - 256) ** 2 < r * r, 1100, 24).astype(np.uint16).tobytes()
        ds.save_as(d / f"{i:03}.dcm", enforce_file_format=True)
    rr = dcmtk("storescu", "-aet", "COUNTY", "-aec", "HUREN", "+sd", "127.0.0.1", str(s.dimse_port), str(d), timeout=600)
    assert rr.returncode == 0, rr.stderr[-1000:]
    shutil.rmtree(d)
    httpd = serve_ohif(ohif_config(s.url + "/dicom-web"))
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 900},
                                          extra_http_headers={"Authorization": f"Bearer {token}"})
            page = context.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/viewer?StudyInstanceUIDs={study}", timeout=120_000)
            page.wait_for_selector("canvas", timeout=120_000)
            deadline = time.time() + 120
            first = None
            while time.time() < deadline:
                first = viewport_pixels(page)
                if first.std() > 10:
                    break
                time.sleep(1)
            assert first is not None and first.std() > 10, f"viewport stayed blank; page errors: {errors[:3]}"
            box = page.locator(".cornerstone-viewport-element, [data-viewport-uid]").first.bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            changed = False
            for _ in range(20):
                page.mouse.wheel(0, 400)
                time.sleep(0.5)
                after = viewport_pixels(page)
                if after.std() > 10 and np.abs(after - first).mean() > 1.0:
                    changed = True
                    break
            page.screenshot(path=str(tmp_path / "ohif.png"))
            browser.close()
            assert changed, "scrolling did not change the image"
    finally:
        httpd.shutdown()
