"""A person's judged timeline is kept for the next page (issue #19, huren_archive::judged_cache):
every change to what it is made of must show at once. The reads below come back within the
cache's ten seconds of each other, so a judgement that missed a change would be served again:
a new lab result, an image quality grade arriving after the first read, a record merged into
the person. A new configuration from another process shows within the configuration caches'
ten seconds."""
import datetime
import time
import uuid

import pytest
import requests
from pydicom.uid import generate_uid

from conftest import Server, cli, region_reader, region_today
from test_persons import steward, store
from test_quality import phantom_slice, wait_for
from test_recognition import configure, observation

TTL = 10  # seconds (judged_cache::TTL)


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    d = tmp_path_factory.mktemp("freshness")
    configure(d)
    # Grading starts once the study has been quiet for 3 s: the first read comes before it.
    s = Server(d, {"HUREN__ARCHIVE__STABLE_AFTER_SECS": "3", "HUREN__QUALITY__WORKERS": "2"}).start()
    yield s
    s.stop()


def judged(s, person):
    r = requests.get(f"{s.url}/api/patients/{person}/recognition", headers=region_reader(s))
    assert r.status_code == 200, r.text
    return {x["id"]: x for x in r.json()["results"]}


def reasons(result):
    return [x["code"] for x in result["decision"]["reasons"]]


def test_every_change_shows_at_once(region):
    s = region
    county = {"Authorization": "Bearer " + cli(s.data_dir, "token", "create", "--institution", "county"),
              "Content-Type": "application/fhir+json"}
    pid = "JF" + uuid.uuid4().hex[:6].upper()
    study, series = generate_uid(), generate_uid()
    for n in range(1, 5):
        ds = phantom_slice(study, series, n, 8.0, n, pid)
        ds.StudyDate = (region_today() - datetime.timedelta(days=2)).strftime("%Y%m%d")
        ds.StudyDescription, ds.BodyPartExamined = "胸部CT平扫", "CHEST"
        store(s, ds)
    issuer = s.query("SELECT issuer FROM patient WHERE patient_id = ?", pid)[0][0]
    person = s.query("SELECT pe.public_id FROM patient p JOIN person pe ON pe.id = p.person_id "
                     "WHERE p.patient_id = ?", pid)[0][0]

    # 1. The CT, before image quality control has graded it.
    first = time.monotonic()
    view = judged(s, person)
    assert list(view) == [study] and reasons(view[study]) == ["qc_absent"], view

    # 2. A lab result arrives.
    r = requests.post(f"{s.url}/fhir/Observation", json=observation(issuer, pid, "2345-7", 1), headers=county)
    assert r.status_code == 201, r.text
    glucose = r.json()["id"]
    view = judged(s, person)
    assert set(view) == {study, glucose}
    assert view[glucose]["decision"]["verdict"] == "recognizable", view[glucose]

    # 3. The CT's grade arrives (written by the QC workers, not by a request).
    wait_for(s, "SELECT q.aggregated_at FROM qc_study q JOIN study st ON st.id = q.study_id "
                "WHERE st.study_uid = ?", study, timeout=30)
    view = judged(s, person)
    assert "qc_absent" not in reasons(view[study]), view[study]
    assert view[study]["qc"] != "absent", view[study]

    # 4. Another record of the same person, found by a data steward and merged into this one.
    other = "JG" + uuid.uuid4().hex[:6].upper()
    r = requests.post(f"{s.url}/fhir/Observation", json=observation(issuer, other, "2885-2", 1), headers=county)
    assert r.status_code == 201, r.text
    protein = r.json()["id"]
    merged = r.json()["subject"]["reference"].split("/")[1]
    assert merged != person
    assert protein not in judged(s, person)
    r = steward(s, "POST", "/persons/merge", json={"survivor": person, "merged": merged, "reason": "同一人,电话核实"})
    assert r.status_code == 200, r.text
    assert protein in judged(s, person)
    # Every read above came within the cache's lifetime of the first: had a change been
    # missed, the old judgement would have been served.
    assert time.monotonic() - first < TTL, "too slow to show anything about the cache"

    # 5. A new configuration: 川渝HR narrowed to 成都, so the county's glucose is no longer
    # recognized. Loaded through the CLI (another process), it is seen within the configuration
    # caches' ten seconds, and the judgement follows it.
    (s.data_dir / "scopes2.csv").write_text("label,covers\n川渝HR,city:成都\n")
    assert cli(s.data_dir, "catalog", "scopes", "--file", str(s.data_dir / "scopes2.csv")).startswith("scope set")
    deadline = time.monotonic() + 2 * TTL + 5
    while (v := judged(s, person)[glucose])["decision"]["verdict"] == "recognizable":
        assert time.monotonic() < deadline, v
        time.sleep(0.5)
    assert "scope" in " ".join(reasons(v)), v
