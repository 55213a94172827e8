"""A bounded smoke of bench/dashboards.py, which docs/benchmarks.md runs over a year for 1,000
institutions: here 20 institutions, 3,000 decisions and 2,000 graded studies, each page asked
twice through the binary under test. It checks that the benchmark still runs and that every
page answers with what it should show; how fast is the benchmark's business, not the suite's."""
import json
import os
import subprocess
import sys

from conftest import BIN, ROOT


def test_the_dashboards_benchmark_runs(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "dashboards.py"), "3000", "2000",
                          "--institutions", "20", "--repeats", "2", "--work", str(tmp_path)],
                         env=dict(os.environ, HUREN_BIN=str(BIN)), capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads(out.stdout)
    assert results["institutions"] == 20 and results["decisions"] == 3000
    pages = [k for k in results if k.startswith(("statistics", "QC"))]
    assert len(pages) == 9, results
    assert all(results[k]["p50_ms"] > 0 for k in pages)
