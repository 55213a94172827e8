//! Micro-benchmarks of the query and frame hot paths (issue #4): turning QIDO keys into one SQL
//! statement, decoding a 101-row page as SQLite returns it and writing its DICOM JSON, and
//! reading one frame of a stored 512×512 CT by range. `cargo bench -p huren-store`.
//! The matching itself is SQL; its end-to-end cost is measured with wrk in bench/.

use criterion::{Criterion, criterion_group, criterion_main};
use huren_archive::ports::BlobStore;
use huren_archive::query::{Condition, Key, Level, Matcher, Query, to_json, write_json};
use huren_archive::{Body, Spool};
use std::hint::black_box;

fn page_json(rows: usize) -> String {
    let mut out = Vec::with_capacity(rows);
    for k in 0..rows {
        out.push(serde_json::json!([
            k,
            null,
            null,
            format!("Wang^{k}=王^{k}"),
            format!("P{k:06}"),
            "urn:huren:institution:bench",
            "19700101",
            "M",
            format!("1.2.826.0.1.3680043.8.498.{k}"),
            "20250327",
            "101500",
            format!("A{k}"),
            null,
            "胸部CT平扫",
            null,
            "CT\\SR",
            2,
            502,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null
        ]));
    }
    serde_json::Value::Array(out).to_string()
}

fn benches(c: &mut Criterion) {
    let q = Query {
        level: Level::Study,
        conditions: [
            (Key::PatientName, Matcher::Wildcard("Wang^12*".into())),
            (
                Key::StudyDate,
                Matcher::Range(Some("20250301".into()), Some("20250331".into())),
            ),
            (Key::Modality, Matcher::Single("CT".into())),
        ]
        .into_iter()
        .map(|(key, matcher)| Condition { key, matcher })
        .collect(),
        limit: 101,
        offset: 0,
        after_key: None,
        person: None,
        persons_in: None,
        institutions_or: None,
    };
    c.bench_function("QIDO: SQL for name wildcard + date range + modality", |b| {
        b.iter(|| huren_store::query::build(black_box(&q)))
    });
    let page = page_json(101);
    c.bench_function("QIDO: decode a 101-study page from SQLite's JSON", |b| {
        b.iter(|| {
            let rows: Vec<huren_store::query::Row> =
                serde_json::from_str(black_box(&page)).expect("page");
            rows.into_iter()
                .map(|r| huren_store::query::to_match(r, Level::Study))
                .collect::<Vec<_>>()
        })
    });
    let rows: Vec<huren_store::query::Row> = serde_json::from_str(&page).expect("page");
    let matches: Vec<_> = rows
        .into_iter()
        .map(|r| huren_store::query::to_match(r, Level::Study))
        .collect();
    c.bench_function(
        "QIDO: DICOM JSON response for 101 studies (written directly)",
        |b| {
            b.iter(|| {
                let mut out = Vec::with_capacity(128 * 1024);
                for m in black_box(&matches) {
                    write_json(m, Level::Study, "http://h/dicom-web", &mut out);
                }
                out
            })
        },
    );
    c.bench_function(
        "QIDO: DICOM JSON for 101 studies through maps (C-FIND's path)",
        |b| {
            b.iter(|| {
                let docs: Vec<_> = black_box(&matches)
                    .iter()
                    .map(|m| {
                        serde_json::Value::Object(to_json(m, Level::Study, "http://h/dicom-web"))
                    })
                    .collect();
                serde_json::to_vec(&docs).expect("json")
            })
        },
    );

    // One frame of a stored CT: the range read WADO-RS frames and rendering start from.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let blobs = huren_store::LocalBlobs::open(dir.path()).expect("blobs");
    let object: Vec<u8> = (0..(512 * 512 * 2 + 1024))
        .map(|i| (i % 251) as u8)
        .collect();
    rt.block_on(async {
        let mut spool = Spool::new(dir.path(), u64::MAX, u64::MAX);
        spool.write(&object).await.expect("spool");
        let spooled = spool.finish().await.expect("finish");
        blobs
            .persist(spooled.body(), "objects/2025/03/01/ct.dcm")
            .await
            .expect("persist");
        assert!(matches!(spooled.body(), Body::Memory(_)));
    });
    c.bench_function("frame: range read of one 512×512×16-bit frame", |b| {
        b.iter(|| {
            rt.block_on(blobs.read_range("objects/2025/03/01/ct.dcm", 1024..1024 + 512 * 512 * 2))
                .expect("frame")
        })
    });
}

criterion_group!(qido_frames, benches);
criterion_main!(qido_frames);
