#!/usr/bin/env bash
# Runs huren with demo data. Installs the one build tool the pixel codecs need when it is
# missing (cmake, for CharLS/JPEG-LS), then builds and starts the platform.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cmake >/dev/null 2>&1; then
  echo "installing cmake (needed to build the JPEG-LS codec)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq cmake >/dev/null
fi
# The web pages' assets (htmx, ECharts, the OHIF viewer) from the npm registry, pinned, for
# embedding; without npm the platform still runs and its pages say what is missing.
bash scripts/web-assets.sh
export HUREN_BOOTSTRAP_ADMIN_TOKEN="${HUREN_BOOTSTRAP_ADMIN_TOKEN:-demo}"
echo "admin token: $HUREN_BOOTSTRAP_ADMIN_TOKEN"
DATA="${HUREN_DATA_DIR:-./huren-data-demo}"
mkdir -p "$DATA"
if [ ! -f "$DATA/huren.toml" ]; then
  # Demo keys for sealing identity numbers, generated once per demo data directory. Real
  # deployments keep keys outside the data directory (docs/mpi.md).
  key() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }
  # The audit chain's key and checkpoints likewise; checkpoints go beside, not inside, the
  # data directory (docs/audit.md).
  mkdir -p "${DATA%/}-audit"
  printf '# Generated for the demo.\n[mpi]\nsm4_key = "%s"\nindex_key = "%s"\n[audit]\nchain_key = "%s"\ncheckpoint_file = "%s"\n[notify]\nsms_outbox = "%s"\n' \
    "$(key)" "$(key)" "$(key)$(key)" "$(cd "${DATA%/}-audit" && pwd)/checkpoints.jsonl" \
    "$(cd "${DATA%/}-audit" && pwd)/sms-outbox.jsonl" > "$DATA/huren.toml"
fi
exec cargo run --release -p huren -- demo --data-dir "$DATA" "$@"
