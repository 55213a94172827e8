//! Micro-benchmarks of the ingest and retrieve hot paths (issue #4): header scan with index
//! extraction, per-instance DICOM JSON, frame location and re-alignment, C-FIND identifier
//! encoding. `cargo bench -p huren-dicom`.

use criterion::{Criterion, criterion_group, criterion_main};
use huren_dicom::charset::Assumed;
use huren_dicom::synth::{SynthImage, SynthPatient, image, uid};
use std::hint::black_box;

fn ct_file(dir: &std::path::Path) -> std::path::PathBuf {
    let patient = SynthPatient {
        id: "P1".into(),
        issuer: None,
        other_id: None,
        name: "Zhang^San=张^三".into(),
        birth_date: "19800101".into(),
        sex: "M".into(),
    };
    let bytes = image(&SynthImage {
        patient: &patient,
        modality: "CT",
        study_uid: &uid(&[1]),
        series_uid: &uid(&[1, 1]),
        sop_uid: &uid(&[1, 1, 1]),
        study_date: "20250301",
        study_time: "101500",
        accession: "A1",
        institution_name: "县人民医院",
        study_description: "胸部CT平扫",
        series_number: 1,
        instance_number: 1,
        rows: 512,
        columns: 512,
        slice_position: 0.0,
    });
    let path = dir.join("ct.dcm");
    std::fs::write(&path, bytes).expect("write sample");
    path
}

fn benches(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("huren-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = ct_file(&dir);
    c.bench_function(
        "scan_part10 (512² CT: header, index attributes, DICOM JSON, frame layout)",
        |b| b.iter(|| huren_dicom::scan_part10(black_box(&path), Assumed::Declared).expect("scan")),
    );
    let scanned = huren_dicom::scan_part10(&path, Assumed::Declared).expect("scan");
    c.bench_function(
        "DICOM JSON deflate (per-instance metadata at ingest)",
        |b| b.iter(|| huren_dicom::json::deflate(black_box(&scanned.json))),
    );
    let packed: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    c.bench_function("realign 1-bit frame (512² bits, shift 3)", |b| {
        b.iter(|| huren_dicom::pixel::realign_bits(black_box(&packed), 3, 512 * 512))
    });
    let pn = serde_json::json!({"vr": "PN", "Value": [{"Alphabetic": "Zhang^San", "Ideographic": "张^三"}]});
    c.bench_function("encode C-FIND identifier element (PN)", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(64);
            huren_dicom::encode::element(
                &mut out,
                0x0010_0010,
                "PN",
                Some(black_box(&pn)),
                true,
                false,
            );
            out
        })
    });
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(hot_paths, benches);
criterion_main!(hot_paths);
