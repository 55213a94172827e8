#!/usr/bin/env bash
# One command: installs what the benchmark needs (Orthanc + DICOMweb plugin, wrk, DCMTK, the
# Python peers), builds huren in release mode, generates the data and measures huren and
# Orthanc side by side on loopback. Results: bench/.work/results.json and a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-tools.sh
need=()
[ -x /usr/sbin/Orthanc ] || need+=(orthanc orthanc-dicomweb)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/huren/target}"
cargo build --release -q -p huren
export HUREN_BIN="$CARGO_TARGET_DIR/release/huren"
exec .venv/bin/python bench/bench.py "$@"
