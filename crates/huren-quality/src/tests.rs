use super::*;
use rand::{Rng, SeedableRng, rngs::StdRng};

/// A water phantom in air with a bone and a fat insert, plus Gaussian noise of `sigma` HU.
fn phantom(n: usize, sigma: f64, seed: u64) -> Pixels {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut values = Vec::with_capacity(n * n);
    let c = n as f64 / 2.0;
    for r in 0..n {
        for col in 0..n {
            let (y, x) = (r as f64 - c, col as f64 - c);
            let d = (x * x + y * y).sqrt();
            let base = if d > 0.42 * n as f64 {
                -1000.0
            } else if ((x - 0.15 * n as f64).powi(2) + y * y).sqrt() < 0.06 * n as f64 {
                700.0
            } else if ((x + 0.15 * n as f64).powi(2) + y * y).sqrt() < 0.06 * n as f64 {
                -100.0
            } else {
                0.0
            };
            // Box–Muller.
            let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
            let g = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            values.push((base + sigma * g) as f32);
        }
    }
    ct_frame(n, n, values)
}

/// A CT frame of these HU values (signed 16-bit stored, intercept −1024).
fn ct_frame(rows: usize, columns: usize, values: Vec<f32>) -> Pixels {
    Pixels::new(rows, columns, values, (-32768.0, 32767.0), 1.0, -1024.0)
}

fn ct_header() -> Header {
    Header {
        modality: "CT".into(),
        pixel_spacing: Some((0.7, 0.7)),
        slice_thickness: Some(5.0),
        ..Default::default()
    }
}

#[test]
fn the_noise_index_finds_the_noise_it_was_given() {
    for sigma in [6.0, 10.0, 20.0] {
        let gni = ct::noise_index(&phantom(256, sigma, 1), Some(0.7)).expect("soft tissue");
        assert!(
            (gni - sigma).abs() < 0.12 * sigma,
            "sigma {sigma}: index {gni}"
        );
    }
}

#[test]
fn more_noise_scores_lower_and_a_quarter_more_is_told_apart() {
    let h = ct_header();
    let score = |sigma: f64, seed: u64| {
        ct::noise(&h, Some(&phantom(192, sigma, seed)))
            .score
            .expect("assessable")
    };
    let mut last = f64::MAX;
    for sigma in [8.0, 12.0, 16.0, 20.0, 25.0, 30.0] {
        let s = score(sigma, 7);
        assert!(s <= last, "sigma {sigma}: {s} after {last}");
        last = s;
    }
    // Clean (14 HU) against noise SD +25% (17.5 HU), seeds 100-119: every clean image scores
    // above every degraded one (AUC 1).
    let clean: Vec<f64> = (100..120).map(|s| score(14.0, s)).collect();
    let worse: Vec<f64> = (100..120).map(|s| score(17.5, s + 1000)).collect();
    let pairs = clean
        .iter()
        .flat_map(|c| worse.iter().map(move |w| f64::from(u8::from(c > w))))
        .sum::<f64>();
    assert!(pairs / 400.0 >= 0.95, "AUC {}", pairs / 400.0);
}

#[test]
fn thin_slices_are_judged_at_a_five_millimetre_equivalent() {
    let mut h = ct_header();
    let px = phantom(192, 20.0, 3);
    let thick = ct::noise(&h, Some(&px)).score.expect("score");
    h.slice_thickness = Some(1.25);
    let thin = ct::noise(&h, Some(&px)).score.expect("score");
    assert!(thin > thick, "1.25 mm {thin} vs 5 mm {thick}");
}

#[test]
fn air_alone_is_not_assessable_for_noise() {
    let mut px = phantom(64, 10.0, 1);
    px.values.iter_mut().for_each(|v| *v = -1000.0);
    assert_eq!(ct::noise(&ct_header(), Some(&px)).score, None);
}

#[test]
fn exposure_needs_an_index_and_a_target_for_the_deviation() {
    let mut h = Header {
        modality: "DX".into(),
        ..Default::default()
    };
    assert_eq!(dr::exposure(&h, None).score, None);
    h.exposure_index = Some(400.0);
    assert_eq!(dr::exposure(&h, None).score, None, "no target, no DI");
    h.target_exposure_index = Some(400.0);
    assert_eq!(dr::exposure(&h, None).score, Some(100.0));
    h.exposure_index = Some(1600.0); // DI = +6.0
    let s = dr::exposure(&h, None);
    assert_eq!(s.grade, Some(Grade::Reject));
    assert_eq!(s.reasons[0].code, "dr_overexposed");
    h.deviation_index = Some(-1.2);
    assert_eq!(dr::exposure(&h, None).score, Some(95.0), "the sent DI wins");
}

#[test]
fn saturation_counts_the_centre_only() {
    let mut px = phantom(100, 5.0, 2);
    let before = dr::saturation(&Header::default(), Some(&px))
        .score
        .expect("score");
    assert!(before >= 99.0, "{before}");
    // Clip a tenth of the central region to the maximum.
    let hi = px.values.iter().copied().fold(f32::MIN, f32::max);
    for r in 40..60 {
        for c in 35..60 {
            px.values[r * 100 + c] = hi;
        }
    }
    let after = dr::saturation(&Header::default(), Some(&px));
    assert!(after.score.expect("score") < 70.0, "{after:?}");
}

#[test]
fn one_bad_slice_of_five_hundred_does_not_reject_the_series() {
    let good = ImageResult {
        score: Some(92.0),
        grade: Some(Grade::A),
        calibrated: true,
        assessable: true,
        scores: vec![Score::new("ct_noise", 92.0, Some(9.0), vec![])],
        position: None,
        images_in_acquisition: None,
    };
    let bad = ImageResult {
        score: Some(10.0),
        grade: Some(Grade::Reject),
        calibrated: true,
        assessable: true,
        scores: vec![Score::new("ct_noise", 10.0, Some(40.0), vec![])],
        position: None,
        images_in_acquisition: None,
    };
    let mut images = vec![good.clone(); 499];
    images.push(bad.clone());
    let s = aggregate_series("1.2.3", &images);
    assert_eq!((s.grade, s.images), (Some(Grade::A), 500));
    // A series that is bad throughout is rejected, and so is its study.
    let worse = aggregate_series("1.2.4", &vec![bad; 20]);
    assert_eq!(worse.grade, Some(Grade::Reject));
    let study = aggregate_study(vec![s, worse]);
    assert_eq!(study.grade, Some(Grade::Reject));
}

#[test]
fn localizers_secondary_captures_and_objects_without_pixels_are_not_scored() {
    let mut h = ct_header();
    assert!(excluded(&h, true).is_none());
    assert_eq!(
        excluded(&h, false).map(|r| r.code),
        Some("no_pixels".into())
    );
    h.image_type = vec!["ORIGINAL".into(), "PRIMARY".into(), "LOCALIZER".into()];
    assert_eq!(excluded(&h, true).map(|r| r.code), Some("localizer".into()));
    h.image_type.clear();
    h.sop_class = Some("1.2.840.10008.5.1.4.1.1.7".into());
    assert_eq!(
        excluded(&h, true).map(|r| r.code),
        Some("secondary_capture".into())
    );
    h.sop_class = Some("1.2.840.10008.5.1.4.1.1.88.67".into());
    assert_eq!(
        excluded(&h, true).map(|r| r.code),
        Some("not_an_image".into())
    );
}

#[test]
fn headers_read_numbers_sent_as_strings() {
    let doc: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
        r#"{"00080060":{"vr":"CS","Value":["CT"]},"00280030":{"vr":"DS","Value":["0.7","0.69"]},
            "00180050":{"vr":"DS","Value":[5]},"00080008":{"vr":"CS","Value":["original","PRIMARY","AXIAL"]}}"#,
    )
    .expect("json");
    let h = Header::from_json(&doc);
    assert_eq!(h.modality, "CT");
    assert_eq!(h.pixel_spacing, Some((0.7, 0.69)));
    assert_eq!(h.slice_thickness, Some(5.0));
    assert_eq!(h.image_type[0], "ORIGINAL");
    assert!(h.tags.contains("00280030"));
}

#[test]
fn pixels_from_signed_sixteen_bit_samples_are_rescaled() {
    let bytes: Vec<u8> = [-1000i16, 0, 40, 3071]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let px = Pixels::from_native(&bytes, 2, 2, 16, 16, true, 1.0, 0.0).expect("pixels");
    assert_eq!(px.values, vec![-1000.0, 0.0, 40.0, 3071.0]);
    let px =
        Pixels::from_native(&[0, 16, 0, 0], 1, 2, 16, 12, false, 1.0, -1024.0).expect("pixels");
    assert_eq!(
        px.values,
        vec![-1024.0, -1024.0],
        "bits above BitsStored are masked"
    );
}

fn slice_at(z: f64) -> ImageResult {
    let h = Header {
        modality: "CT".into(),
        image_position: Some([-100.0, -100.0, z]),
        image_orientation: Some([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]),
        ..Default::default()
    };
    let mut r = image_result(vec![
        Score::new("ct_noise", 95.0, Some(5.0), vec![]),
        Score::new("ct_sharpness", 95.0, Some(0.3), vec![]),
    ]);
    r.position = slice_position(&h);
    r
}

#[test]
fn one_missing_slice_in_three_hundred_is_found() {
    let whole: Vec<ImageResult> = (0..300).map(|k| slice_at(-1.25 * k as f64)).collect();
    let s = aggregate_series("1", &whole);
    assert_eq!((s.complete, s.grade), (Some(true), Some(Grade::A)));
    let mut gap = whole.clone();
    gap.remove(150);
    let s = aggregate_series("1", &gap);
    assert_eq!(s.complete, Some(false));
    assert_eq!(s.scorers.get("series_completeness"), Some(&70.0));
    assert_eq!(s.grade, Some(Grade::B));
    assert_eq!(s.reasons[0].code, "series_missing_slices");
    // Uneven spacing: one step of 2 mm among 1.25 mm steps.
    let mut uneven = whole.clone();
    for r in uneven.iter_mut().skip(200) {
        r.position = r.position.map(|p| p - 0.75);
    }
    let s = aggregate_series("1", &uneven);
    assert_eq!(s.complete, Some(false));
    assert_eq!(s.scorers.get("series_completeness"), Some(&90.0));
    // Fewer images than the acquisition made.
    let mut told = whole[..10].to_vec();
    told[0].images_in_acquisition = Some(12);
    assert_eq!(completeness(&told).map(|c| c.0.value), Some(Some(2.0)));
    let study = aggregate_study(vec![
        aggregate_series("1", &whole),
        aggregate_series("2", &gap),
    ]);
    assert_eq!(study.complete, Some(false));
}

/// The phantom with a ring of `hu` HU, two pixels wide, `radius` pixels from the centre.
fn with_ring(px: &Pixels, radius: f64, hu: f32) -> Pixels {
    let c = px.rows as f64 / 2.0;
    let mut values = px.values.clone();
    for r in 0..px.rows {
        for col in 0..px.columns {
            let d = ((r as f64 - c).powi(2) + (col as f64 - c).powi(2)).sqrt();
            if (d - radius).abs() < 1.0 {
                values[r * px.columns + col] += hu;
            }
        }
    }
    ct_frame(px.rows, px.columns, values)
}

#[test]
fn a_ring_is_found_at_its_radius_and_stronger_rings_score_lower() {
    let h = ct_header();
    let clean = phantom(256, 8.0, 41);
    let (clean_index, _, _) = ct::ring_index(&clean).expect("soft tissue");
    let mut last = ct::ring(&h, Some(&clean)).score.expect("score");
    // Up to rings far stronger than the noise (the clipping scale was the noise's, so the index
    // stopped growing once a ring dominated it; issue #18).
    for hu in [6.0, 12.0, 24.0, 48.0, 96.0] {
        let px = with_ring(&clean, 70.0, hu);
        let (index, radius, amplitude) = ct::ring_index(&px).expect("soft tissue");
        assert!(
            index > clean_index,
            "{hu} HU: {index} vs clean {clean_index}"
        );
        assert!(radius.abs_diff(70) <= 1, "{hu} HU ring found at {radius}");
        assert!(
            amplitude > 0.5 * f64::from(hu),
            "{hu} HU read as {amplitude}"
        );
        let score = ct::ring(&h, Some(&px)).score.expect("score");
        assert!(score < last, "{hu} HU: {score} after {last}");
        last = score;
    }
    // A dark ring is a ring too.
    let dark = ct::ring_index(&with_ring(&clean, 50.0, -12.0)).expect("soft tissue");
    assert!(dark.0 > clean_index && dark.1.abs_diff(50) <= 1, "{dark:?}");
    // Many rings at once (a failing detector bank) still read worse than one.
    let one = ct::ring(&h, Some(&with_ring(&clean, 70.0, 20.0)))
        .score
        .expect("score");
    let mut dense = clean.clone();
    for radius in (30..100).step_by(6) {
        dense = with_ring(&dense, f64::from(radius), 20.0);
    }
    let many = ct::ring(&h, Some(&dense)).score.expect("score");
    assert!(many <= one, "dense rings {many} vs one {one}");
}

/// The phantom blurred by a Gaussian of `sigma` pixels (separable, edges clamped).
fn blurred(px: &Pixels, sigma: f64) -> Pixels {
    let r = (3.0 * sigma).ceil() as isize;
    let kernel: Vec<f64> = (-r..=r)
        .map(|x| (-0.5 * (x as f64 / sigma).powi(2)).exp())
        .collect();
    let total: f64 = kernel.iter().sum();
    let (h, w) = (px.rows as isize, px.columns as isize);
    let pass = |src: &[f32], along_rows: bool| -> Vec<f32> {
        let mut out = vec![0f32; src.len()];
        for y in 0..h {
            for x in 0..w {
                let mut s = 0f64;
                for (k, weight) in kernel.iter().enumerate() {
                    let d = k as isize - r;
                    let (yy, xx) = if along_rows {
                        (y, (x + d).clamp(0, w - 1))
                    } else {
                        ((y + d).clamp(0, h - 1), x)
                    };
                    s += weight * f64::from(src[(yy * w + xx) as usize]);
                }
                out[(y * w + x) as usize] = (s / total) as f32;
            }
        }
        out
    };
    let values = pass(&pass(&px.values, true), false);
    ct_frame(px.rows, px.columns, values)
}

#[test]
fn ct_sharpness_spans_its_bands_as_blur_grows() {
    // σ 1 px to 4 px of blur on a 0.7 mm phantom: every step scores lower, through 乙 and 丙
    // (the 5×5 window it replaced moved from 84.8 to 80.3 over the same range; issue #18).
    let h = ct_header();
    let clean = phantom(256, 4.0, 12);
    let mut last = ct::sharpness(&h, Some(&clean)).score.expect("edges");
    assert!(last >= 85.0, "clean phantom {last}");
    let mut grades = Vec::new();
    for sigma in [1.0, 2.0, 3.0, 4.0] {
        let s = ct::sharpness(&h, Some(&blurred(&clean, sigma)));
        let score = s.score.expect("edges");
        assert!(score < last, "σ {sigma}: {score} after {last}");
        last = score;
        grades.push(s.grade.expect("graded"));
    }
    assert!(
        grades.contains(&Grade::B) && grades.contains(&Grade::C),
        "{grades:?}"
    );
}

#[test]
fn a_processed_ct_is_not_read_as_streaked() {
    // Noise flattened to nothing (a lossy or denoised image): the noise is not measurable, and
    // the streak ratio divides by a floor, not by 0.02 HU (a clean head CT graded 废片; #18).
    let h = ct_header();
    let mut flat = phantom(256, 0.0, 1);
    for (i, v) in flat.values.iter_mut().enumerate() {
        // A little anatomy-like texture in the soft tissue, nothing else.
        if (-50.0..150.0).contains(v) {
            *v += ((i % 97) as f32 / 97.0 - 0.5) * 1.5;
        }
    }
    assert!(ct::noise(&h, Some(&flat)).score.is_none());
    let streak = ct::streak(&h, Some(&flat));
    assert!(streak.score.expect("soft tissue") >= 85.0, "{streak:?}");
}

/// An MR-like object: an ellipse of 800 on a Rayleigh-ish background of about 12, with a copy
/// of the object at `ghost` of its signal displaced by half the field along `axis`.
fn mr_object(n: usize, ghost: f32, axis: usize, seed: u64) -> Pixels {
    let mut rng = StdRng::seed_from_u64(seed);
    let c = n as f64 / 2.0;
    let inside = |r: usize, col: usize| {
        let (y, x) = (r as f64 - c, col as f64 - c);
        (x / (0.3 * n as f64)).powi(2) + (y / (0.2 * n as f64)).powi(2) < 1.0
    };
    let mut values = Vec::with_capacity(n * n);
    for r in 0..n {
        for col in 0..n {
            let (gr, gc) = if axis == 0 {
                ((r + n / 2) % n, col)
            } else {
                (r, (col + n / 2) % n)
            };
            let base = if inside(r, col) { 800.0 } else { 0.0 };
            let ghosted = base + if inside(gr, gc) { ghost * 800.0 } else { 0.0 };
            let (a, b): (f64, f64) = (rng.random(), rng.random());
            let noise = 10.0 * (a + b);
            values.push(ghosted + noise as f32);
        }
    }
    Pixels::new(n, n, values, (0.0, 4095.0), 1.0, 0.0)
}

#[test]
fn ghosts_along_the_phase_direction_are_measured_and_scored() {
    let mut h = Header {
        modality: "MR".into(),
        phase_encoding: Some("COL".into()),
        ..Default::default()
    };
    let gsr = |px: &Pixels, h: &Header| mr::ghosting(h, Some(px)).value.expect("assessable");
    let clean = gsr(&mr_object(128, 0.0, 0, 5), &h);
    assert!(clean.abs() < 0.3, "clean: {clean}%");
    let mut last = mr::ghosting(&h, Some(&mr_object(128, 0.0, 0, 5)))
        .score
        .expect("score");
    for ghost in [0.02, 0.04, 0.08] {
        let px = mr_object(128, ghost, 0, 5);
        let got = gsr(&px, &h);
        assert!(got > 0.5 * 100.0 * f64::from(ghost), "{ghost}: {got}%");
        let score = mr::ghosting(&h, Some(&px)).score.expect("score");
        assert!(score < last, "{ghost}: {score} after {last}");
        last = score;
    }
    // A ghost across the rows is not along a COL phase direction; without the attribute both
    // directions are searched.
    let across = mr_object(128, 0.08, 1, 5);
    assert!(gsr(&across, &h) < 1.0);
    h.phase_encoding = None;
    assert!(gsr(&across, &h) > 4.0);
}

fn full_ct_header() -> Header {
    Header {
        kvp: Some(120.0),
        convolution_kernel: Some("B30f".into()),
        ctdi_vol: Some(12.0),
        ..ct_header()
    }
}

#[test]
fn blank_frames_are_rejected_whatever_the_header_says() {
    // All air with noise, a constant, and nothing but a few bright pixels in air: 废片 with the
    // reason, though the header scorers alone would grade them 甲 (issue #18).
    let n = 128;
    let air = {
        let mut rng = StdRng::seed_from_u64(3);
        let values = (0..n * n)
            .map(|_| -1000.0 + 16.0 * (rng.random::<f32>() - 0.5))
            .collect();
        Pixels::new(n, n, values, (-32768.0, 32767.0), 1.0, -1024.0)
    };
    let constant = Pixels::new(n, n, vec![40.0; n * n], (-32768.0, 32767.0), 1.0, -1024.0);
    let mut speck = constant.clone();
    for v in speck.values.iter_mut().take(20) {
        *v = 900.0;
    }
    for v in &mut speck.values[20..] {
        *v = -1000.0;
    }
    for (what, px) in [("air", air), ("constant", constant), ("speck", speck)] {
        let r = score_image(&full_ct_header(), Some(&px));
        assert_eq!(r.grade, Some(Grade::Reject), "{what}: {r:?}");
        let content = r.scores.iter().find(|s| s.scorer == "image_content");
        assert_eq!(
            content.map(|s| s.reasons[0].code.as_str()),
            Some("image_blank"),
            "{what}"
        );
    }
    // A blank radiograph and an MR of noise alone too.
    let flat = Pixels::new(n, n, vec![2000.0; n * n], (0.0, 4095.0), 1.0, 0.0);
    let dx = Header {
        modality: "DX".into(),
        ..Default::default()
    };
    assert_eq!(score_image(&dx, Some(&flat)).grade, Some(Grade::Reject));
    // Magnitude noise (Rayleigh, as an MR background is) and nothing else.
    let noise_only = {
        let mut rng = StdRng::seed_from_u64(9);
        let values = (0..n * n)
            .map(|_| {
                let (a, b): (f32, f32) = (rng.random::<f32>() - 0.5, rng.random::<f32>() - 0.5);
                60.0 * (a * a + b * b).sqrt()
            })
            .collect();
        Pixels::new(n, n, values, (0.0, 4095.0), 1.0, 0.0)
    };
    let mr = Header {
        modality: "MR".into(),
        ..Default::default()
    };
    let r = score_image(&mr, Some(&noise_only));
    assert_eq!(r.grade, Some(Grade::Reject), "{r:?}");
    // The phantom itself is an image, judged by its pixel scorers (its header here lacks the
    // identification the metadata scorer asks for).
    let r = score_image(&full_ct_header(), Some(&phantom(256, 8.0, 4)));
    let content = r.scores.iter().find(|s| s.scorer == "image_content");
    assert_eq!(content.and_then(|s| s.score), Some(100.0));
    assert!(r.assessable, "{r:?}");
}

#[test]
fn header_scorers_alone_do_not_grade_an_image() {
    // Two header scorers and one pixel scorer could judge: not assessable, no score.
    let r = image_result(vec![
        Score::new("ct_acquisition", 100.0, None, vec![]),
        Score::new("metadata", 100.0, Some(0.0), vec![]),
        Score::new("ct_noise", 95.0, Some(5.0), vec![]),
        Score::new("image_content", 100.0, Some(60.0), vec![]),
        Score::not_assessable("ct_sharpness", "", ""),
    ]);
    assert_eq!((r.assessable, r.score, r.grade), (false, None, None));
    // Its series and study say so, which is not "not scored".
    let s = aggregate_series("1", &[r.clone(), r]);
    assert_eq!((s.assessable, s.grade), (false, None));
    assert_eq!(s.reasons[0].code, "image_not_assessable");
    let study = aggregate_study(vec![s]);
    assert!(study.not_assessable && study.grade.is_none());
    // With a second pixel scorer it is graded by the weakest.
    let r = image_result(vec![
        Score::new("ct_acquisition", 100.0, None, vec![]),
        Score::new("ct_noise", 95.0, Some(5.0), vec![]),
        Score::new("ct_sharpness", 72.0, Some(0.1), vec![]),
    ]);
    assert_eq!((r.assessable, r.grade), (true, Some(Grade::B)));
}

/// A radiograph-like frame at 0.4 mm: a smooth thickness gradient, bony bands and small round
/// details of several sizes, sharp-edged, plus Gaussian noise of `sigma`.
fn radiograph(n: usize, sigma: f64, seed: u64) -> Pixels {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut values = Vec::with_capacity(n * n);
    for r in 0..n {
        for c in 0..n {
            let (y, x) = (r as f64, c as f64);
            let mut v = 1000.0 + 2.0 * x + 1.0 * y;
            if ((x - 0.3 * n as f64).abs() < 0.06 * n as f64) || ((y - 0.6 * n as f64).abs() < 4.0)
            {
                v += 400.0;
            }
            for k in 0..12 {
                let (cy, cx) = (((k * 37) % n) as f64, ((k * 71 + 19) % n) as f64);
                if ((x - cx).powi(2) + (y - cy).powi(2)).sqrt() < 3.0 + (k % 4) as f64 * 3.0 {
                    v += 250.0;
                }
            }
            let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
            let g = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            values.push((v + sigma * g) as f32);
        }
    }
    Pixels::new(n, n, values, (0.0, 4095.0), 1.0, 0.0)
}

fn dx_header() -> Header {
    Header {
        modality: "DX".into(),
        imager_pixel_spacing: Some((0.4, 0.4)),
        ..Default::default()
    }
}

#[test]
fn radiograph_noise_grows_with_noise_and_does_not_read_as_detail() {
    let h = dx_header();
    let value = |px: &Pixels, f: fn(&Header, Option<&Pixels>) -> Score| {
        f(&h, Some(px)).value.expect("assessable")
    };
    let (quiet, noisy) = (radiograph(256, 5.0, 1), radiograph(256, 10.0, 1));
    let (nq, nn) = (value(&quiet, dr::noise), value(&noisy, dr::noise));
    assert!(nn > 1.5 * nq, "{nq} → {nn}");
    // Noise is taken off the detail: twice the noise moves the sharpness by less than a tenth,
    // while a blur of σ 1 px halves it at least.
    let (sharp, sharp_noisy) = (value(&quiet, dr::sharpness), value(&noisy, dr::sharpness));
    assert!(
        (sharp_noisy - sharp).abs() < 0.1 * sharp,
        "{sharp} → {sharp_noisy}"
    );
    let blur = value(&blurred(&quiet, 1.0), dr::sharpness);
    assert!(blur < 0.5 * sharp, "{sharp} → {blur}");
}

#[test]
fn mr_sharpness_falls_with_blur() {
    let h = Header {
        modality: "MR".into(),
        ..Default::default()
    };
    let px = mr_object(128, 0.0, 0, 9);
    let at = |p: &Pixels| mr::sharpness(&h, Some(p)).value.expect("assessable");
    let (clean, soft, softer) = (at(&px), at(&blurred(&px, 0.7)), at(&blurred(&px, 1.4)));
    assert!(clean > soft && soft > softer, "{clean} {soft} {softer}");
}

#[test]
fn mr_snr_holds_under_a_crop_and_refuses_a_masked_background() {
    let h = Header {
        modality: "MR".into(),
        ..Default::default()
    };
    let px = mr_object(160, 0.0, 0, 4);
    let snr = |p: &Pixels| mr::snr(&h, Some(p)).value.expect("assessable");
    let whole = snr(&px);
    let crop = {
        let (r0, c0, n) = (5, 3, 150);
        let v = (r0..r0 + n)
            .flat_map(|r| (c0..c0 + n).map(move |c| (r, c)))
            .map(|(r, c)| px.at(r, c))
            .collect();
        Pixels::new(n, n, v, (0.0, 4095.0), 1.0, 0.0)
    };
    let cropped = snr(&crop);
    assert!((cropped - whole).abs() < 0.1 * whole, "{whole} → {cropped}");
    // The background zero-filled outside a noisy band: the method does not apply.
    let mut masked = px.clone();
    for r in 0..masked.rows {
        for c in 0..masked.columns {
            if !(40..=120).contains(&r) && masked.at(r, c) < 100.0 {
                masked.values[r * masked.columns + c] = 0.0;
            }
        }
    }
    assert!(mr::snr(&h, Some(&masked)).score.is_none());
}

#[test]
fn a_reformat_is_not_judged_for_ghosts_nor_a_crop_for_rings() {
    let mr = Header {
        modality: "MR".into(),
        image_type: vec!["DERIVED".into(), "SECONDARY".into(), "MPR".into()],
        phase_encoding: Some("COL".into()),
        ..Default::default()
    };
    assert!(
        mr::ghosting(&mr, Some(&mr_object(128, 0.08, 0, 5)))
            .score
            .is_none()
    );
    let crop = Header {
        reconstruction_diameter: Some(400.0),
        ..ct_header()
    };
    let px = with_ring(&phantom(256, 10.0, 3), 60.0, 20.0);
    assert!(ct::ring(&ct_header(), Some(&px)).score.is_some());
    // 256 × 0.7 mm = 179 mm of a 400 mm reconstruction.
    assert!(ct::ring(&crop, Some(&px)).score.is_none());
}
