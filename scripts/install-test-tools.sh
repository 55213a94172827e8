#!/usr/bin/env bash
# Installs the external peers the test suite drives: DCMTK and dicom3tools (Debian),
# openjph-tools for HTJ2K samples, and the Python peers (pydicom, pynetdicom, pydicom-data,
# dicomweb-client, zxing-cpp to read QR codes back, moto's S3 server for the suite's S3 pass)
# into .venv. Idempotent: does nothing when
# everything is present.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
[ -x /usr/bin/storescu ] || need_apt+=(dcmtk)
# cmake builds CharLS (JPEG-LS) inside dicom-pixeldata.
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
[ -x /usr/bin/dciodvfy ] || need_apt+=(dicom3tools)
command -v ojph_compress >/dev/null 2>&1 || need_apt+=(openjph-tools)
# openssl makes the CA and client certificate of the mutual DICOM TLS test.
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
# curl: the HTTPS handshakes in test_tls.py.
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
# strace: the durability-order test watches the syscalls of a C-STORE.
command -v strace >/dev/null 2>&1 || need_apt+=(strace)
# PostgreSQL: the index's second dialect (issue 23); scripts/pg-cluster.sh starts a throwaway
# cluster from its binaries.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
# Headless Chromium for the OHIF viewer test (driven by Playwright, which uses it by path).
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # openjph-tools is optional (HTJ2K sample generation); the suite skips that case without it.
  apt-get install -y -qq "${need_apt[@]}" >/dev/null || apt-get install -y -qq cmake dcmtk dicom3tools chromium openssl curl >/dev/null
fi

PY_PKGS=(pydicom==3.0.2 pynetdicom==3.0.4 pydicom-data==1.0.0 dicomweb-client==0.61.2 hl7apy==1.3.5 jsonschema==4.23.0 fhirclient==4.4.0 cryptography==50.0.2 zxing-cpp==3.1.1 "moto[server]==5.2.5" pytest requests playwright)
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import pydicom, pynetdicom, dicomweb_client, data_store, hl7apy, jsonschema, fhirclient, cryptography, zxingcpp, moto.server, pytest, requests, playwright" 2>/dev/null; then
  echo "installing Python test peers into .venv"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check "${PY_PKGS[@]}"
fi

# The web pages' assets (htmx, ECharts, the OHIF viewer) from the npm registry, pinned; the
# build embeds them, and test_ohif.py serves OHIF's unmodified build from the same download.
bash scripts/web-assets.sh
