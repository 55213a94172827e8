//! DICOMweb in-process: an object stored by STOW-RS is found by QIDO-RS and given back by
//! WADO-RS — its DICOM JSON pinned by snapshot, its bytes identical to what was sent.

use axum::body::Body;
use axum::http::Request;
use huren_dicom::synth::{self, SynthImage, SynthPatient};
use huren_testkit::harness;

const BOUNDARY: &str = "it-boundary-1f2e";

fn ct() -> (Vec<u8>, String, String, String) {
    let patient = SynthPatient {
        id: "IT-1".into(),
        issuer: None,
        other_id: None,
        name: "Zhang^San=张^三".into(),
        birth_date: "19800101".into(),
        sex: "M".into(),
    };
    let (study, series, sop) = (
        synth::uid(&[1]),
        synth::uid(&[1, 2]),
        synth::uid(&[1, 2, 3]),
    );
    let bytes = synth::image(&SynthImage {
        patient: &patient,
        modality: "CT",
        study_uid: &study,
        series_uid: &series,
        sop_uid: &sop,
        study_date: "20261201",
        study_time: "083000",
        accession: "A1",
        institution_name: "县人民医院",
        study_description: "胸部CT平扫",
        series_number: 1,
        instance_number: 1,
        rows: 8,
        columns: 8,
        slice_position: 0.0,
    });
    (bytes, study, series, sop)
}

fn stow(token: &str, object: &[u8]) -> Request<Body> {
    let mut body = format!("--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n").into_bytes();
    body.extend_from_slice(object);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    Request::post("/dicom-web/studies")
        .header("authorization", format!("Bearer {token}"))
        .header(
            "content-type",
            format!("multipart/related; type=\"application/dicom\"; boundary={BOUNDARY}"),
        )
        .body(Body::from(body))
        .expect("request")
}

#[tokio::test]
async fn stored_found_and_given_back() {
    let h = harness().await;
    let (object, study, series, sop) = ct();
    let r = h.send(stow(&h.system, &object)).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    let r = h
        .get(
            &format!("/dicom-web/studies?StudyInstanceUID={study}"),
            Some(&h.system),
        )
        .await;
    assert_eq!(r.status, 200);
    insta::assert_json_snapshot!("qido_study", r.json());

    let base = format!("/dicom-web/studies/{study}/series/{series}/instances/{sop}");
    let r = h.get(&format!("{base}/metadata"), Some(&h.system)).await;
    assert_eq!(r.status, 200);
    insta::assert_json_snapshot!("instance_metadata", r.json());

    // The object as stored, byte for byte, inside one multipart part.
    let r = h
        .send(
            Request::get(&base)
                .header("authorization", format!("Bearer {}", h.system))
                .header(
                    "accept",
                    "multipart/related; type=\"application/dicom\"; transfer-syntax=*",
                )
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(r.status, 200);
    let at = r
        .body
        .windows(object.len())
        .position(|w| w == object.as_slice());
    assert!(at.is_some(), "the stored object is not in the response");

    // A frame past the last is a clear 404 from the retrieval use case.
    let r = h.get(&format!("{base}/frames/2"), Some(&h.system)).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["title"], "not_found");
}
