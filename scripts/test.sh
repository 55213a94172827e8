#!/usr/bin/env bash
# The whole test suite: installs its external peers when missing, builds, runs the Rust tests,
# then drives the real binary with DCMTK, pynetdicom and dicomweb-client.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-tools.sh
# A target directory outside the clone lets repeated runs (and CI on the same machine) reuse
# compilation; the suite passes without it too.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/huren/target}"
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
# A throwaway PostgreSQL cluster for the store's PostgreSQL tests (issue 23), stopped on exit.
pg_dir=$(mktemp -d)
pg_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
root=$PWD
trap 'bash "$root/scripts/pg-cluster.sh" stop "$pg_dir" || true; rm -rf "$pg_dir"' EXIT
HUREN_TEST_PG_URL=$(bash scripts/pg-cluster.sh start "$pg_dir" "$pg_port")
export HUREN_TEST_PG_URL
export HUREN_REQUIRE_PG=1
# Snapshots (insta) are read from this clone: a test binary reused from a shared target
# directory was compiled in another clone, whose path it would otherwise look in. In CI (CI
# set) a snapshot that differs fails the test instead of being written.
INSTA_WORKSPACE_ROOT="$PWD" cargo test --workspace --quiet
cargo build --quiet -p huren
export HUREN_BIN="$CARGO_TARGET_DIR/debug/huren"
cd tests/e2e
../../.venv/bin/python -m pytest -q -p no:cacheprovider --durations=8 "$@"
# The same suite again with the objects in an S3 bucket (moto's server on loopback; conftest
# starts it): every flow must work without a local object path (issue 23).
echo "end-to-end suite, objects in S3:"
HUREN_E2E_STORAGE=s3 ../../.venv/bin/python -m pytest -q -p no:cacheprovider --durations=8 "$@"
