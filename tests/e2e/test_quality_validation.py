"""The quality scorers' validation suite (issue #8 item 3, docs/quality.md).

Every scorer is exercised by the degradation it is meant to see, at the smallest clinically
relevant magnitude and multiples of it, on a generated phantom and on a real sample image from
pydicom-data. Images are written as DICOM and scored by `huren quality score`, as the workers
score stored images. For each scorer and source the suite measures:
- Spearman's ρ between the degradation's level (0, 1, 2, 3 × the magnitude) and the score
  (negated): monotone is 1;
- the AUC of clean against the smallest degradation.

Seeds here (500+) are not those of the unit tests, and nothing here was used to tune the
scorers.

A scorer is **calibrated** when ρ ≥ 0.9 and AUC ≥ 0.95 on every source. The suite fails when
the `calibrated` flag in `huren-quality` disagrees with the measurement, either way.
`python tests/e2e/test_quality_validation.py --write-docs` regenerates the table in
docs/quality.md.
"""
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import BIN, ROOT  # noqa: E402

DATA = Path(pydicom.__file__).resolve().parents[1] / "data_store" / "data"
LEVELS = 4
SEEDS = 5


# --- sources -------------------------------------------------------------------------------

def base(modality, rows, cols):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = {"CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4",
                      "DX": "1.2.840.10008.5.1.4.1.1.1.1"}[modality]
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.Modality, ds.StudyDate, ds.PatientID, ds.InstitutionName = modality, "20250301", "V1", "验证"
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = rows, cols, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.PixelSpacing = [0.7, 0.7]
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, 0], [1, 0, 0, 0, 1, 0]
    return ds


def ct_phantom():
    n = 256
    y, x = np.mgrid[0:n, 0:n] - n / 2
    hu = np.full((n, n), -1000.0)
    hu[np.hypot(x, y) < 0.42 * n] = 40.0
    hu[np.hypot(x - 0.15 * n, y) < 0.06 * n] = 700.0
    hu[np.hypot(x + 0.15 * n, y) < 0.06 * n] = -100.0
    ds = base("CT", n, n)
    # A 230 mm field, as a head CT's (a field under 200 mm is a targeted reconstruction, whose
    # edges ct_fov does not judge).
    ds.PixelSpacing = [0.9, 0.9]
    ds.RescaleIntercept, ds.RescaleSlope, ds.SliceThickness = 0, 1, 5
    ds.KVP, ds.ConvolutionKernel, ds.CTDIvol = 120, "STANDARD", 10
    # A real system's edges are not perfect steps: blur by σ 0.6 px; noise 12 HU.
    return ds, gaussian_blur(hu, 0.6), 12.0


def dx_phantom():
    n = 512
    y, x = np.mgrid[0:n, 0:n] - n / 2
    img = np.full((n, n), 300.0)                                     # collimated border
    body = (np.abs(x) < 0.40 * n) & (np.abs(y) < 0.42 * n)
    img[body] = 2600.0
    for side in (-1, 1):                                             # two lungs
        img[((x - side * 0.17 * n) / (0.12 * n)) ** 2 + (y / (0.3 * n)) ** 2 < 1] = 1200.0
    img[(np.abs(x) < 0.03 * n) & body] = 3300.0                      # spine
    ds = base("DX", n, n)
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 12, 11, 0
    ds.BodyPartExamined, ds.ViewPosition, ds.ImagerPixelSpacing = "CHEST", "PA", [0.2, 0.2]
    ds.ExposureIndex, ds.TargetExposureIndex = 400.0, 400.0
    return ds, gaussian_blur(img, 1.0), 15.0


def mr_phantom():
    n = 256
    y, x = np.mgrid[0:n, 0:n] - n / 2
    img = np.zeros((n, n))
    img[(x / (0.33 * n)) ** 2 + (y / (0.40 * n)) ** 2 < 1] = 600.0
    img[(x / (0.25 * n)) ** 2 + (y / (0.32 * n)) ** 2 < 1] = 900.0
    ds = base("MR", n, n)
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 12, 11, 0
    ds.SliceThickness, ds.RepetitionTime, ds.EchoTime, ds.MagneticFieldStrength = 5, 500, 15, 1.5
    ds.InPlanePhaseEncodingDirection = "COL"
    return ds, gaussian_blur(img, 0.8), 12.0


def real(name, scale=1):
    ds = pydicom.dcmread(DATA / name)
    px = ds.pixel_array.astype(float)
    if scale > 1:
        px = px[::scale, ::scale]
        ds.Rows, ds.Columns = px.shape
    slope, intercept = float(getattr(ds, "RescaleSlope", 1)), float(getattr(ds, "RescaleIntercept", 0))
    return ds, px * slope + intercept, 0.0


# --- degradations (level k × the smallest clinically relevant magnitude) --------------------

def gaussian_blur(img, sigma, axis=None):
    if sigma <= 0:
        return img
    r = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    out = img
    for ax in ((0, 1) if axis is None else (axis,)):
        out = np.apply_along_axis(lambda v: np.convolve(np.pad(v, r, mode="edge"), k, "valid"), ax, out)
    return out


def own_noise(img):
    """A real image's own noise SD as a physicist would read it: the SD in homogeneous soft-tissue
    ROIs, here the lower quartile of the SDs of 8×8 squares whose mean is soft tissue (anatomy
    only ever adds to a square's SD)."""
    n, m = (img.shape[0] // 8) * 8, (img.shape[1] // 8) * 8
    sq = img[:n, :m].reshape(n // 8, 8, m // 8, 8)
    mean, sd = sq.mean(axis=(1, 3)).ravel(), sq.std(axis=(1, 3), ddof=1).ravel()
    soft = sd[(mean > -100) & (mean < 200)]
    return max(float(np.percentile(soft if len(soft) >= 20 else sd, 25)), 1.0)


def noise_sd(img, rng, k, sd0):
    """Noise SD +25% per level over the image's own (sd0; a real image's is estimated)."""
    sd0 = sd0 or own_noise(img)
    extra = sd0 * np.sqrt(max((1 + 0.25 * k) ** 2 - 1, 0))
    return img + rng.normal(0, extra, img.shape) if k else img


def ring(img, rng, k, _):
    n = img.shape[0]
    y, x = np.mgrid[0:n, 0:img.shape[1]] - np.array([n / 2, img.shape[1] / 2])[:, None, None]
    band = np.abs(np.hypot(x, y) - 0.25 * n) < 1.0
    return img + band * 4.0 * k


def streaks(img, rng, k, _):
    n, m = img.shape
    y, x = np.mgrid[0:n, 0:m] - np.array([n / 2, m / 2])[:, None, None]
    out = img.copy()
    for a in rng.uniform(0, np.pi, 6):
        d = x * np.sin(a) - y * np.cos(a)
        out += np.where(np.abs(d) < 1.5, 40.0 * k, 0) - np.where(np.abs(d - 3) < 1.5, 40.0 * k, 0)
    return out


def truncate(img, rng, k, _):
    """The body moved out of the field on the left, 8% of the width more per level."""
    if not k:
        return img
    cols = np.where((img > -500).any(axis=0))[0]
    s = int(cols.min() + 0.08 * img.shape[1] * k) if len(cols) else 0
    return np.concatenate([img[:, s:], np.full((img.shape[0], s), img.min())], axis=1)


def blur(img, rng, k, _):
    return gaussian_blur(img, 0.7 * k)


def contrast(img, rng, k, _):
    m = img.mean()
    return m + (img - m) * (1 - 0.2 * k)


def clip(img, rng, k, _):
    if not k:
        return img
    top = np.percentile(img, 100 - 3 * k)
    return np.minimum(img, top)


def rotate(img, rng, k, _):
    return rotate_by(img, 5 * k)


def rotate_by(img, degrees):
    if not degrees:
        return img
    t = np.deg2rad(degrees)
    n, m = img.shape
    yy, xx = np.mgrid[0:n, 0:m]
    cy, cx = n / 2, m / 2
    sy = (np.cos(t) * (yy - cy) - np.sin(t) * (xx - cx) + cy).round().astype(int).clip(0, n - 1)
    sx = (np.sin(t) * (yy - cy) + np.cos(t) * (xx - cx) + cx).round().astype(int).clip(0, m - 1)
    return img[sy, sx]


def open_collimation(img, rng, k, _, order=(0, 1, 2, 3)):
    """Collimation removed from k sides (top, bottom, left, right in `order`): the border band
    there takes the body's texture."""
    out = img.copy()
    n, m = img.shape
    d = max(int(0.06 * n), 4)
    centre = img[n // 2 - d // 2:n // 2 - d // 2 + d, :]
    for side in order[:k]:
        if side == 0:
            out[:d, :] = centre
        elif side == 1:
            out[n - d:, :] = centre
        elif side == 2:
            out[:, :d] = img[:, m // 2 - d // 2:m // 2 - d // 2 + d]
        else:
            out[:, m - d:] = img[:, m // 2 - d // 2:m // 2 - d // 2 + d]
    return out


def ghost(img, rng, k, _):
    return img + 0.02 * k * np.roll(img, img.shape[0] // 2, axis=0)


def motion(img, rng, k, _):
    """Rigid motion during the acquisition: 10% more of the phase-encoding lines per level were
    acquired with the object displaced 3 px (a linear phase on those k-space lines)."""
    if not k:
        return img
    f = np.fft.fftshift(np.fft.fft2(img))
    m = img.shape[1]
    lines = rng.random(m) < 0.1 * k
    shift = np.exp(-2j * np.pi * 3 * (np.arange(m) - m / 2) / m)
    f[:, lines] *= shift[lines][None, :]
    return np.abs(np.fft.ifft2(np.fft.ifftshift(f)))


def rician(img, rng, k, sd0):
    sd = (sd0 or own_noise(img)) * (1 + 0.25 * k)
    return np.hypot(img + rng.normal(0, sd, img.shape), rng.normal(0, sd, img.shape))


def header(change):
    """A header degradation: `change(ds, k)`; pixels untouched."""
    return lambda img, rng, k, _: img, change


def drop(names):
    def change(ds, k):
        for name in names[:k]:
            if name in ds:
                delattr(ds, name)
    return change


def kvp_and_kernel(ds, k):
    if k >= 1 and "ConvolutionKernel" in ds:
        del ds.ConvolutionKernel
    if k >= 2:
        ds.KVP = 30
    if k >= 3:
        ds.SliceThickness = 40


def exposure(ds, k):
    ds.ExposureIndex = 400.0 * 10 ** (0.15 * k)
    ds.TargetExposureIndex = 400.0
    if "DeviationIndex" in ds:
        del ds.DeviationIndex


# Each scorer: its degradation, the smallest magnitude in words, and its sources. Real images:
# 693_UNCR (CT, 512²), RG1_UNCR (CR chest PA, halved), RG3_UNCR (CR tibia, halved), MR2_UNCR
# (MR shoulder, halved).
CT_SRC = [("phantom", ct_phantom), ("693_UNCR", lambda: real("693_UNCR.dcm"))]
DX_SRC = [("phantom", dx_phantom), ("RG1_UNCR", lambda: real("RG1_UNCR.dcm", 2))]
MR_SRC = [("phantom", mr_phantom), ("MR2_UNCR", lambda: real("MR2_UNCR.dcm", 2))]
TABLE = [
    ("ct_noise", noise_sd, None, "noise SD +25%", CT_SRC),
    ("ct_cnr", noise_sd, None, "noise SD +25% (CNR −20%)", CT_SRC),
    ("ct_sharpness", blur, None, "Gaussian blur σ 0.7 px", CT_SRC),
    ("ct_ring", ring, None, "a ring of 4 HU", CT_SRC),
    ("ct_streak", streaks, None, "six streaks of ±40 HU", CT_SRC),
    ("ct_fov", truncate, None, "body moved 8% of the width out of the field", CT_SRC),
    ("ct_acquisition", *header(kvp_and_kernel), "kernel missing; then kVp, thickness implausible", CT_SRC),
    ("metadata", *header(drop(["PixelSpacing", "SliceThickness", "ImagePositionPatient"])), "one attribute missing",
     CT_SRC),
    ("dr_exposure", *header(exposure), "deviation index +1.5 (EI ×1.41)", DX_SRC[:1]),
    ("dr_saturation", clip, None, "top 3% clipped", DX_SRC),
    ("dr_contrast", contrast, None, "contrast −20%", DX_SRC),
    ("dr_collimation", open_collimation, None, "one side's collimation removed", DX_SRC[:1]),
    ("dr_positioning", rotate, None, "rotated 5°", DX_SRC),
    ("dr_sharpness", blur, None, "Gaussian blur σ 0.7 px", DX_SRC),
    ("dr_noise", noise_sd, None, "noise SD +25%", DX_SRC),
    ("mr_snr", rician, None, "noise SD +25%", MR_SRC[:1]),
    ("mr_ghosting", ghost, None, "a ghost at 2% of the signal", MR_SRC),
    ("mr_sharpness", blur, None, "Gaussian blur σ 0.7 px", MR_SRC),
    ("mr_motion", motion, None, "10% of phase-encoding lines displaced 3 px", MR_SRC),
]


def write(ds, img, path):
    ds = ds.copy()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    slope, intercept = float(getattr(ds, "RescaleSlope", 1)), float(getattr(ds, "RescaleIntercept", 0))
    stored = np.round((img - intercept) / slope)
    bits, signed = int(ds.BitsStored), int(getattr(ds, "PixelRepresentation", 0)) == 1
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
    ds.BitsAllocated, ds.HighBit = 16, bits - 1
    ds.Rows, ds.Columns = img.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, getattr(ds, "PhotometricInterpretation", "MONOCHROME2")
    ds.PixelData = stored.clip(lo, hi).astype("<i2" if signed else "<u2").tobytes()
    for attr in ("NumberOfFrames",):
        if attr in ds:
            delattr(ds, attr)
    ds.save_as(path, enforce_file_format=True)


def spearman(a, b):
    def ranks(v):
        v = np.asarray(v, float)
        order = v.argsort()
        r = np.empty(len(v))
        r[order] = np.arange(len(v))
        for x in np.unique(v):                                       # ties: average ranks
            r[v == x] = r[v == x].mean()
        return r
    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def auc(clean, worse):
    pairs = [(c > w) + 0.5 * (c == w) for c in clean for w in worse]
    return float(np.mean(pairs))


def measure(table=None, seed0=500):
    """Scores every (scorer, source, level, seed) and returns the table rows."""
    table = table or TABLE
    jobs = []
    with tempfile.TemporaryDirectory() as t:
        for scorer, degrade, change, _, sources in table:
            for source, make in sources:
                ds0, img0, sd0 = make()
                for k in range(LEVELS):
                    for seed in range(SEEDS):
                        rng = np.random.default_rng(seed0 + 97 * seed + 13 * k)
                        ds = ds0.copy()
                        # Each seed is its own acquisition: the phantom's noise, or for a real
                        # image a field cropped a few pixels differently (no wrap-around edge).
                        if sd0:
                            img = img0 + rng.normal(0, sd0, img0.shape)
                        else:
                            dy, dx = rng.integers(0, 8, 2)
                            img = img0[dy:dy + img0.shape[0] - 8, dx:dx + img0.shape[1] - 8]
                        img = degrade(img, rng, k, sd0)
                        if change:
                            change(ds, k)
                        path = Path(t) / f"{len(jobs):05}.dcm"
                        write(ds, img, path)
                        jobs.append((scorer, source, k, path))
        out = subprocess.run([BIN, "quality", "score", *[str(j[3]) for j in jobs]], capture_output=True,
                             text=True, timeout=900)
        assert out.returncode == 0, out.stderr[-2000:]
        lines = [json.loads(line) for line in out.stdout.splitlines()]
    scores = {}
    for (scorer, source, k, _), line in zip(jobs, lines):
        result = line.get("result") or {}
        s = next((x["score"] for x in result.get("scores", []) if x["scorer"] == scorer), None)
        scores.setdefault((scorer, source), []).append((k, s))
    rows = []
    for scorer, _, _, magnitude, sources in table:
        per = []
        for source, _ in sources:
            got = scores[(scorer, source)]
            if any(s is None for _, s in got):
                per.append((source, None, None))
                continue
            rho = spearman([k for k, _ in got], [-s for _, s in got])
            a = auc([s for k, s in got if k == 0], [s for k, s in got if k == 1])
            per.append((source, rho, a))
        passed = all(r is not None and r >= 0.9 and a >= 0.95 for _, r, a in per)
        rows.append((scorer, magnitude, per, passed))
    return rows


def calibrated_in_code():
    text = (ROOT / "crates" / "huren-quality" / "src" / "lib.rs").read_text()
    return {m.group(1): m.group(2) == "true"
            for m in re.finditer(r'name: "(\w+)",\s*modalities: &\[[^\]]*\],\s*calibrated: (true|false)', text)}


def table_markdown(rows):
    out = ["| scorer | smallest degradation | source: Spearman ρ / AUC | calibrated |", "|---|---|---|---|"]
    for scorer, magnitude, per, passed in rows:
        cells = "; ".join(f"{src}: not assessable" if r is None else f"{src}: {r:.2f} / {a:.2f}"
                          for src, r, a in per)
        out.append(f"| `{scorer}` | {magnitude} | {cells} | {'yes' if passed else 'no'} |")
    return "\n".join(out)


def test_calibration_set():
    """The set the bands were tuned on: every scorer marked calibrated passes it (a scorer that
    fails where it was tuned cannot pass honestly elsewhere)."""
    rows = measure()
    flags = calibrated_in_code()
    wrong = [scorer for scorer, _, _, passed in rows if flags.get(scorer) and not passed]
    assert not wrong, f"calibrated but failing the calibration set: {wrong}\n{table_markdown(rows)}"


# --- the held-out set ------------------------------------------------------------------------
# Nothing below was looked at while the scorers and their bands were written (issue #18): other
# phantoms, the real images the calibration set does not use or their lossy encodings at full
# resolution, seeds 900+, and degradations of other shapes. The suite gates on this set: a
# scorer is marked calibrated in `huren-quality` exactly when it passes here.

TEST_FILES = Path(pydicom.__file__).resolve().parent / "data" / "test_files"


def sample_file(name):
    ds = pydicom.dcmread(TEST_FILES / name)
    slope, intercept = float(getattr(ds, "RescaleSlope", 1)), float(getattr(ds, "RescaleIntercept", 0))
    return ds, ds.pixel_array.astype(float) * slope + intercept, 0.0


def ct_phantom_b():
    """An abdomen rather than a head: an ellipse, off-centre inserts, 0.7 mm pixels, 320²."""
    n = 320
    y, x = np.mgrid[0:n, 0:n] - n / 2
    hu = np.full((n, n), -1000.0)
    hu[(x / (0.44 * n)) ** 2 + (y / (0.33 * n)) ** 2 < 1] = 50.0
    hu[np.hypot(x - 0.05 * n, y + 0.12 * n) < 0.05 * n] = 1100.0      # vertebra
    hu[np.hypot(x + 0.2 * n, y - 0.05 * n) < 0.08 * n] = 65.0         # liver-like insert
    hu[np.hypot(x - 0.22 * n, y) < 0.04 * n] = -90.0                   # fat
    ds = base("CT", n, n)
    ds.RescaleIntercept, ds.RescaleSlope, ds.SliceThickness = -1024, 1, 3
    ds.KVP, ds.ConvolutionKernel, ds.CTDIvol = 110, "B30f", 8
    return ds, gaussian_blur(hu, 0.8), 9.0


def dx_phantom_b():
    """A wider, non-square chest with the heart to the left and ribs, 0.15 mm pixels."""
    n, m = 640, 560
    y, x = np.mgrid[0:n, 0:m] - np.array([n / 2, m / 2])[:, None, None]
    img = np.full((n, m), 400.0)
    body = (np.abs(x) < 0.44 * m) & (np.abs(y) < 0.43 * n)
    img[body] = 2400.0
    for side in (-1, 1):
        img[((x - side * 0.19 * m) / (0.14 * m)) ** 2 + (y / (0.32 * n)) ** 2 < 1] = 1100.0
    for k in range(-5, 6):                                            # ribs
        img[body & (np.abs(y - k * 0.06 * n - 0.02 * x) < 0.008 * n)] += 350.0
    img[((x + 0.07 * m) / (0.1 * m)) ** 2 + ((y - 0.1 * n) / (0.12 * n)) ** 2 < 1] = 2100.0  # heart
    img[(np.abs(x) < 0.035 * m) & body] = 3200.0
    ds = base("DX", n, m)
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 12, 11, 0
    ds.BodyPartExamined, ds.ViewPosition, ds.ImagerPixelSpacing = "CHEST", "AP", [0.15, 0.15]
    del ds.PixelSpacing
    ds.ExposureIndex, ds.TargetExposureIndex = 500.0, 500.0
    return ds, gaussian_blur(img, 1.2), 20.0


def mr_phantom_b():
    """A head: skull ring, brain, ventricles; 224², 1 mm pixels."""
    n = 224
    y, x = np.mgrid[0:n, 0:n] - n / 2
    img = np.zeros((n, n))
    r = (x / (0.36 * n)) ** 2 + (y / (0.43 * n)) ** 2
    img[r < 1] = 300.0
    img[r < 0.85] = 750.0
    for side in (-1, 1):
        img[((x - side * 0.05 * n) / (0.03 * n)) ** 2 + (y / (0.1 * n)) ** 2 < 1] = 1100.0
    ds = base("MR", n, n)
    ds.PixelSpacing = [1.0, 1.0]
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 12, 11, 0
    ds.SliceThickness, ds.RepetitionTime, ds.EchoTime, ds.MagneticFieldStrength = 4, 2500, 90, 3.0
    ds.InPlanePhaseEncodingDirection = "COL"
    return ds, gaussian_blur(img, 0.9), 10.0


def textured_noise(img, rng, k, sd0):
    """Noise SD +25% per level, as in the calibration set, but correlated (blurred σ 0.7 px and
    rescaled), as a smooth kernel leaves it."""
    sd0 = sd0 or own_noise(img)
    extra = sd0 * np.sqrt(max((1 + 0.25 * k) ** 2 - 1, 0))
    if not k:
        return img
    n = gaussian_blur(rng.normal(0, 1, img.shape), 0.7)
    return img + n / n.std() * extra


def signal_noise(img, rng, k, sd0):
    """Quantum-like noise whose SD grows with the square root of the signal, +25% per level."""
    sd0 = sd0 or own_noise(img)
    if not k:
        return img
    scale = np.sqrt(np.clip(img - img.min(), 0, None) / max(np.mean(img - img.min()), 1e-6))
    extra = sd0 * np.sqrt((1 + 0.25 * k) ** 2 - 1)
    return img + rng.normal(0, 1, img.shape) * scale * extra


def box_blur(img, rng, k, _):
    """A box (not Gaussian) blur 1 + 2k px wide in both directions."""
    if not k:
        return img
    w = 1 + 2 * k
    ker = np.ones(w) / w
    out = img
    for ax in (0, 1):
        out = np.apply_along_axis(lambda v: np.convolve(np.pad(v, w // 2, mode="edge"), ker, "valid"), ax, out)
    return out


def motion_blur(img, rng, k, _):
    """Motion during the exposure: a 1-D box 1 + 4k px long along the rows."""
    if not k:
        return img
    w = 1 + 4 * k
    ker = np.ones(w) / w
    return np.apply_along_axis(lambda v: np.convolve(np.pad(v, w // 2, mode="edge"), ker, "valid"), 1, img)


def dense_rings(img, rng, k, _, off=1):
    """Five rings of 3 HU per level, centred `off` px off the image centre in both directions
    (a rotation centre within a pixel or so of it). ct_ring assumes the image centre: at 2 px
    off, a noisy phantom's five 3 HU rings are missed (docs/quality.md)."""
    n, m = img.shape
    y, x = np.mgrid[0:n, 0:m] - np.array([n / 2 + off, m / 2 - off])[:, None, None]
    rr = np.hypot(x, y)
    out = img.copy()
    for f in (0.08, 0.14, 0.2, 0.27, 0.35):
        out += (np.abs(rr - f * n) < 1.0) * 3.0 * k
    return out


def metal_streaks(img, rng, k, _):
    """Eight streaks of ±30 HU per level through a point off the centre (metal in the hip)."""
    n, m = img.shape
    y, x = np.mgrid[0:n, 0:m] - np.array([n / 2 + 0.12 * n, m / 2 - 0.15 * m])[:, None, None]
    out = img.copy()
    for a in rng.uniform(0, np.pi, 8):
        d = x * np.sin(a) - y * np.cos(a)
        out += np.where(np.abs(d) < 1.5, 30.0 * k, 0) - np.where(np.abs(d - 3) < 1.5, 30.0 * k, 0)
    return out


def truncate_right(img, rng, k, _):
    """The body moved out of the field on the right, 7% of the width more per level."""
    if not k:
        return img
    # The body's columns: those with body in at least 5% of the rows (a head holder's thin arc
    # is not the body).
    cols = np.where((img > -500).mean(axis=0) > 0.05)[0]
    e = int(cols.max() - 0.07 * img.shape[1] * k) if len(cols) else img.shape[1]
    e = max(e, 1)
    return np.concatenate([np.full((img.shape[0], img.shape[1] - e), img.min()), img[:, :e]], axis=1)


def clip_steps(img, rng, k, _):
    """The top 2.5% per level of the central half (the anatomy, not a collimated border)
    clipped."""
    if not k:
        return img
    n, m = img.shape
    return np.minimum(img, np.percentile(img[n // 4:3 * n // 4, m // 4:3 * m // 4], 100 - 2.5 * k))


def flatten(img, rng, k, _):
    """Contrast −15% per level about the median, with an offset: a flatter look-up."""
    med = np.median(img)
    return med + (img - med) * (1 - 0.15 * k) + 40 * k


def collimation_bottom(img, rng, k, _):
    """As `open_collimation`, the bottom first."""
    return open_collimation(img, rng, k, _, order=(1, 0, 3, 2))


def rotate_back(img, rng, k, _):
    """Rotated −4° per level (the calibration set turns +5°)."""
    return rotate_by(img, -4 * k)


def kspace_ghost(img, rng, k, _):
    """An N/2 ghost made in k-space: every other phase-encoding line (rows of k-space here)
    carries a phase error of 0.05k rad, as an EPI or gradient timing error leaves."""
    if not k:
        return img
    f = np.fft.fft(img, axis=0)
    f[1::2, :] *= np.exp(1j * 0.05 * k)
    return np.abs(np.fft.ifft(f, axis=0))


def periodic_motion(img, rng, k, _):
    """Breathing: every phase-encoding line displaced by 1.2k px × sin(2π line / 24)."""
    if not k:
        return img
    f = np.fft.fftshift(np.fft.fft2(img))
    n, m = img.shape
    lines = np.arange(m)
    d = 1.2 * k * np.sin(2 * np.pi * lines / 24)
    f *= np.exp(-2j * np.pi * d[None, :] * (np.arange(n)[:, None] - n / 2) / n)
    return np.abs(np.fft.ifft2(np.fft.ifftshift(f)))


def rician_b(img, rng, k, sd0):
    sd = (sd0 or own_noise(img)) * (1 + 0.3 * k)
    return np.hypot(img + rng.normal(0, sd, img.shape), rng.normal(0, sd, img.shape))


def low_exposure(ds, k):
    ds.ExposureIndex = 500.0 * 10 ** (-0.15 * k)
    ds.TargetExposureIndex = 500.0
    if "DeviationIndex" in ds:
        del ds.DeviationIndex


def acquisition_b(ds, k):
    if k >= 1:
        ds.CTDIvol = 400
    if k >= 2:
        ds.SliceThickness = 0.05
    if k >= 3:
        ds.KVP = 200


CT_HELD = [("phantom B (abdomen)", ct_phantom_b), ("693_UNCI (lossy)", lambda: real("693_UNCI.dcm")),
           ("CT_small (128² crop)", lambda: sample_file("CT_small.dcm"))]
DX_HELD = [("phantom B (AP chest)", dx_phantom_b), ("RG3_UNCR (tibia)", lambda: real("RG3_UNCR.dcm")),
           ("RG1_J2KI (lossy, full size)", lambda: real("RG1_J2KI.dcm"))]
MR_HELD = [("phantom B (head)", mr_phantom_b), ("MR2_J2KI (lossy)", lambda: real("MR2_J2KI.dcm")),
           ("MR-SIEMENS (abdomen MPR)", lambda: real("MR-SIEMENS-DICOM-WithOverlays.dcm"))]
HELD_OUT = [
    ("ct_noise", textured_noise, None, "correlated noise SD +25%", CT_HELD),
    ("ct_cnr", textured_noise, None, "correlated noise SD +25%", CT_HELD),
    ("ct_sharpness", box_blur, None, "box blur 3 px", CT_HELD),
    ("ct_ring", dense_rings, None, "five rings of 3 HU, 1 px off centre", CT_HELD),
    ("ct_streak", metal_streaks, None, "eight streaks of ±30 HU from an off-centre point", CT_HELD),
    ("ct_fov", truncate_right, None, "body moved 7% of the width out on the right", CT_HELD),
    ("ct_acquisition", *header(acquisition_b), "CTDIvol implausible (400 mGy); then thickness, kVp",
     CT_HELD),
    ("metadata", *header(drop(["ImageOrientationPatient", "RescaleSlope", "KVP"])), "one attribute missing",
     CT_HELD),
    ("dr_exposure", *header(low_exposure), "deviation index −1.5 (EI ÷1.41)", DX_HELD[:1]),
    ("dr_saturation", clip_steps, None, "top 2.5% clipped", DX_HELD),
    ("dr_contrast", flatten, None, "contrast −15% about the median", DX_HELD),
    ("dr_collimation", collimation_bottom, None, "the bottom's collimation removed", DX_HELD[:1]),
    ("dr_positioning", rotate_back, None, "rotated −4°", DX_HELD),
    ("dr_sharpness", motion_blur, None, "motion blur 5 px along the rows", DX_HELD),
    ("dr_noise", signal_noise, None, "signal-dependent noise SD +25%", DX_HELD),
    ("mr_snr", rician_b, None, "noise SD +30%", MR_HELD[:1]),
    ("mr_ghosting", kspace_ghost, None, "N/2 ghost from a 0.05 rad phase error", MR_HELD),
    ("mr_sharpness", box_blur, None, "box blur 3 px", MR_HELD),
    ("mr_motion", periodic_motion, None, "periodic motion 1.2 px", MR_HELD),
]


# Seeds 900+ were looked at while the held-out failures were fixed (docs/quality.md); the gate
# draws fresh ones.
HELD_OUT_SEED = 1300


def held_out_passes(per):
    """Passes on every held-out source where the scorer could judge, and could judge on one."""
    judged = [(r, a) for _, r, a in per if r is not None]
    return bool(judged) and all(r >= 0.9 and a >= 0.95 for r, a in judged)


def test_every_scorer_is_calibrated_exactly_when_it_passes_the_held_out_set():
    rows = measure(HELD_OUT, seed0=HELD_OUT_SEED)
    flags = calibrated_in_code()
    got = {scorer: held_out_passes(per) for scorer, _, per, _ in rows}
    wrong = [(s, p, flags.get(s)) for s, p in got.items() if flags.get(s) != p]
    assert not wrong, f"(scorer, passes held-out, marked calibrated): {wrong}\n{table_markdown(rows)}"


def write_section(name, table):
    doc = ROOT / "docs" / "quality.md"
    text = doc.read_text()
    start, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = text[:text.index(start) + len(start)] + "\n" + table + "\n" + text[text.index(end):]
    doc.write_text(text)
    print(table)


if __name__ == "__main__" and "--write-docs" in sys.argv:
    write_section("validation", table_markdown(measure()).replace("| calibrated |", "| passes |"))
    held = [(s, m, per, held_out_passes(per)) for s, m, per, _ in measure(HELD_OUT, seed0=HELD_OUT_SEED)]
    write_section("held-out", table_markdown(held).replace("| calibrated |", "| passes (gates) |"))
