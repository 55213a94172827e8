"""Which day "today" is (issue 21): a default date — an institution's first day when none is
given, the day its attributes are read as of — is the region's, in the configured zone, never
UTC's. Run in two zones, one far ahead of UTC and one far behind, so that at any hour at least
one of them is on another calendar day than UTC and a UTC default would be caught."""
import datetime
import os
import sqlite3
import subprocess
from zoneinfo import ZoneInfo

import pytest

from conftest import BIN


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago"])
def test_a_default_day_is_the_regions(tmp_path, zone):
    env = dict(os.environ, HUREN__ARCHIVE__ZONE=zone)
    out = subprocess.run([BIN, "institution", "add", "--data-dir", str(tmp_path), "--code", "zz",
                          "--name", "时区医院", "--level", "三级"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    today = datetime.datetime.now(ZoneInfo(zone)).date().isoformat()
    with sqlite3.connect(tmp_path / "index.sqlite") as db:
        (first,) = db.execute("SELECT MIN(valid_from) FROM institution_attribute").fetchone()
    assert first == today, (first, today, datetime.datetime.now(datetime.timezone.utc).date())
    # Read as of today (no --date): the institution is there with its name.
    out = subprocess.run([BIN, "institution", "show", "--data-dir", str(tmp_path), "--code", "zz"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0 and "时区医院" in out.stdout, (out.stdout, out.stderr)
