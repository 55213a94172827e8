#!/usr/bin/env bash
# Fetches the web pages' third-party assets from the npm registry at pinned versions and
# prepares them for embedding in the huren binary (crates/huren-web/build.rs picks them up):
#   htmx.org   — partial page updates
#   echarts    — the lab trend charts (the "common" build: line, bar, pie, scatter, legend, marks)
#   @ohif/app  — the image viewer, served at /viewer on huren's own origin
# OHIF's published build assumes it is served at `/`: its paths are rewritten to `/viewer/`,
# its inline scripts moved into a file (huren's Content-Security-Policy allows no inline
# script), and what a CT/MR/CR reading never loads is left out (the ONNX runtime of the AI
# segmentation tools, the slide microscopy viewer, source maps). Files are stored gzip-compressed
# and served as such.
#
# Idempotent: does nothing when the prepared set for these versions is present. Without npm it
# says so and exits 0: huren still builds, and its pages say the viewer and charts are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

HTMX_VERSION=2.0.8
ECHARTS_VERSION=6.1.0
OHIF_VERSION=3.13.2
STAMP="htmx.org@$HTMX_VERSION echarts@$ECHARTS_VERSION @ohif/app@$OHIF_VERSION layout-2"

OUT=.web-assets
if [ -f "$OUT/embed/VERSIONS" ] && [ "$(cat "$OUT/embed/VERSIONS")" = "$STAMP" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "web-assets: npm is not installed; building without the viewer and charts" >&2
  exit 0
fi
echo "fetching web assets from the npm registry: $STAMP"
SRC="$OUT/src"
mkdir -p "$SRC"
fetch() { # package version dir
  if [ ! -f "$SRC/$3/package/package.json" ]; then
    rm -rf "$SRC/$3" && mkdir -p "$SRC/$3"
    (cd "$SRC/$3" && npm pack --silent "$1@$2" >/dev/null && tar xzf ./*.tgz && rm -f ./*.tgz)
  fi
}
fetch htmx.org "$HTMX_VERSION" "htmx-$HTMX_VERSION"
fetch echarts "$ECHARTS_VERSION" "echarts-$ECHARTS_VERSION"
fetch @ohif/app "$OHIF_VERSION" "ohif-$OHIF_VERSION"

rm -rf "$OUT/embed.tmp" && mkdir -p "$OUT/embed.tmp/static" "$OUT/embed.tmp/viewer"
cp "$SRC/htmx-$HTMX_VERSION/package/dist/htmx.min.js" "$OUT/embed.tmp/static/htmx.min.js"
cp "$SRC/echarts-$ECHARTS_VERSION/package/dist/echarts.common.min.js" "$OUT/embed.tmp/static/echarts.min.js"

python3 - "$SRC/ohif-$OHIF_VERSION/package/dist" "$OUT/embed.tmp/viewer" <<'PY'
import os, re, shutil, sys
src, dst = sys.argv[1], sys.argv[2]
SKIP_DIRS = {"ort", "dicom-microscopy-viewer"}
SKIP_FILES = {"app-config.js", "sw.js", "init-service-worker.js", "service-worker.js"}
for root, dirs, files in os.walk(src):
    rel = os.path.relpath(root, src)
    if rel.split(os.sep)[0] in SKIP_DIRS:
        continue
    os.makedirs(os.path.join(dst, rel), exist_ok=True)
    for f in files:
        if f.endswith(".map") or f.endswith(".LICENSE.txt") or (rel == "." and f in SKIP_FILES):
            continue
        s, d = os.path.join(root, f), os.path.join(dst, rel, f)
        if f.endswith(".js"):
            t = open(s, encoding="utf-8").read()
            # webpack's public path, in the app bundle and its workers
            t = re.sub(r'\.p\s*=\s*"/"', '.p = "/viewer/"', t)
            open(d, "w", encoding="utf-8").write(t)
        elif f.endswith(".css"):
            t = open(s, encoding="utf-8").read()
            open(d, "w", encoding="utf-8").write(re.sub(r"url\(/(?!/)", "url(/viewer/", t))
        elif rel == "." and f == "index.html":
            t = open(s, encoding="utf-8").read()
            inline = []
            def lift(m):
                inline.append(m.group(1).replace('window.PUBLIC_URL="/"', 'window.PUBLIC_URL="/viewer/"'))
                return ""
            t = re.sub(r"<script>([^<]*)</script>", lift, t)
            t = re.sub(r'<script[^>]*init-service-worker[^>]*></script>', "", t)
            t = re.sub(r'(href|src)="/(?!/)', r'\1="/viewer/', t)
            # huren's own inline-script replacement first, then the app's configuration
            t = t.replace('<script rel="preload" as="script" src="/viewer/app-config.js"></script>',
                          '<script src="/viewer/ohif-init.js"></script><script src="/viewer/app-config.js"></script>')
            if "/viewer/ohif-init.js" not in t:
                sys.exit("OHIF index.html changed shape: app-config.js script tag not found")
            open(d, "w", encoding="utf-8").write(t)
            open(os.path.join(dst, "ohif-init.js"), "w", encoding="utf-8").write(";\n".join(inline) + ";\n")
        else:
            shutil.copyfile(s, d)
PY
find "$OUT/embed.tmp" -type f -exec gzip -9 -n {} +
echo "$STAMP" > "$OUT/embed.tmp/VERSIONS"
rm -rf "$OUT/embed" && mv "$OUT/embed.tmp" "$OUT/embed"
echo "web assets ready: $(du -sh "$OUT/embed" | cut -f1) compressed"
