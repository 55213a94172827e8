"""No degradation improves a grade (issue #18, build item 1): a property test over every
degradation kind the validation suite knows, on every source it uses (phantoms, real images,
lossy encodings), at three levels, each degraded image paired with its own clean original (the
same noise draw, the same crop). Scored by `huren quality score`, as the workers score.

- Both graded: the degraded image's grade is never better than the clean one's
  (甲 > 乙 > 丙 > 废片).
- The clean image not assessable: its degraded copy is never graded 甲 (a degradation cannot
  make an image that could not be judged a good one).
"""
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

import test_quality_validation as V
from conftest import BIN

RANK = {"A": 3, "B": 2, "C": 1, "reject": 0}


def shift(img, rng, k, _):
    """The anatomy shifted 6% of the width per level to the right, the gap filled with the
    image's lowest value (a patient off the detector's centre)."""
    if not k:
        return img
    s = int(0.06 * img.shape[1] * k)
    return np.concatenate([np.full((img.shape[0], s), img.min()), img[:, :-s]], axis=1)


def clip_mr(img, rng, k, _):
    """The brightest 2% per level clipped (a window saved into the pixels)."""
    return V.clip(img, rng, k, None) if k else img


KINDS = {
    "CT": [V.noise_sd, V.textured_noise, V.blur, V.box_blur, V.ring, V.dense_rings, V.streaks,
           V.metal_streaks, V.truncate, V.truncate_right],
    "DX": [V.noise_sd, V.signal_noise, V.blur, V.box_blur, V.motion_blur, V.contrast, V.flatten,
           V.clip, V.clip_steps, V.rotate, V.rotate_back, V.open_collimation, V.collimation_bottom,
           shift],
    "MR": [V.rician, V.rician_b, V.blur, V.box_blur, V.ghost, V.kspace_ghost, V.motion,
           V.periodic_motion, clip_mr],
}
SOURCES = {
    "CT": V.CT_SRC + V.CT_HELD[:2],
    "DX": V.DX_SRC + V.DX_HELD,
    "MR": V.MR_SRC + V.MR_HELD,
}
SEEDS = 2


def run():
    jobs = []  # (modality, source, kind, level, seed, path)
    with tempfile.TemporaryDirectory() as t:
        for modality, sources in SOURCES.items():
            for source, make in sources:
                ds, img0, sd0 = make()
                for seed in range(SEEDS):
                    rng0 = np.random.default_rng(2000 + seed)
                    if sd0:
                        base = img0 + rng0.normal(0, sd0, img0.shape)
                    else:
                        dy, dx = rng0.integers(0, 8, 2)
                        base = img0[dy:dy + img0.shape[0] - 8, dx:dx + img0.shape[1] - 8]
                    cases = [("clean", 0, base)]
                    for kind in KINDS[modality]:
                        for k in (1, 2, 3):
                            rng = np.random.default_rng(3000 + 31 * seed + k)
                            cases.append((kind.__name__, k, kind(base, rng, k, sd0)))
                    for kind, k, img in cases:
                        path = Path(t) / f"{len(jobs):05}.dcm"
                        V.write(ds, img, path)
                        jobs.append((modality, source, kind, k, seed, path))
        out = subprocess.run([BIN, "quality", "score", *[str(j[5]) for j in jobs]], capture_output=True,
                             text=True, timeout=900)
        assert out.returncode == 0, out.stderr[-2000:]
        lines = [json.loads(line) for line in out.stdout.splitlines()]
    results = {}
    for (modality, source, kind, k, seed, _), line in zip(jobs, lines):
        r = line.get("result") or {}
        results[(source, seed, kind, k)] = (r.get("grade"), r.get("score"),
                                             [s["code"] for s in r.get("reasons", [])][:3])
    return results


def inversions(results):
    bad, compared = [], 0
    for (source, seed, kind, k), (grade, score, reasons) in results.items():
        if kind == "clean":
            continue
        clean_grade, clean_score, _ = results[(source, seed, "clean", 0)]
        if clean_grade is None:
            if grade == "A":
                bad.append((source, seed, kind, k, "not assessable", grade, score, reasons))
            continue
        if grade is None:
            continue
        compared += 1
        if RANK[grade] > RANK[clean_grade]:
            bad.append((source, seed, kind, k, f"{clean_grade} {clean_score}", grade, score, reasons))
    return bad, compared


def test_no_degradation_improves_the_grade():
    results = run()
    bad, compared = inversions(results)
    # Enough pairs were graded on both sides for the property to mean something.
    assert compared >= 400, compared
    assert not bad, "\n".join(map(str, bad))


if __name__ == "__main__":
    res = run()
    bad, compared = inversions(res)
    print("compared", compared, "inversions", len(bad))
    for b in bad:
        print(b)
    for key in sorted(k for k in res if k[2] == "clean"):
        print(key, res[key])
