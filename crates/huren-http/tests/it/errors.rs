//! The one error table and the problem details (RFC 9457) clients get from it.

use axum::body::Body;
use axum::http::Request;
use huren_testkit::{ADMIN, harness};

/// Every code the API can answer, with its status: a change here is a change clients see.
#[test]
fn the_error_table() {
    let table: Vec<String> = huren_http::error::ERROR_CODES
        .iter()
        .map(|(code, status, fhir)| format!("{status} {code} (FHIR {fhir})"))
        .collect();
    insta::assert_snapshot!(table.join("\n"));
}

/// Every named refusal of the domain has its row, under the rule's own code.
#[test]
fn every_rule_has_its_row() {
    for rule in huren_archive::refusal::Rule::ALL {
        let e = huren_http::error::ApiError::refused(rule, String::new());
        assert_eq!(e.code, rule.code(), "{rule:?}");
        assert!(
            huren_http::error::ERROR_CODES
                .iter()
                .any(|(c, s, _)| *c == e.code && *s == e.status.as_u16()),
            "{rule:?} has no row"
        );
    }
}

/// What each kind of refusal looks like on the wire: status, media type, body.
#[tokio::test]
async fn problem_details() {
    let h = harness().await;
    let mut seen = Vec::new();
    let mut look = |what: &str, r: huren_testkit::Reply| {
        assert_eq!(r.content_type(), "application/problem+json", "{what}");
        seen.push(
            serde_json::json!({ "case": what, "status": r.status.as_u16(), "body": r.json() }),
        );
    };
    look("no credentials", h.get("/dicom-web/studies", None).await);
    look(
        "an unknown token",
        h.get("/dicom-web/studies", Some("hr_not-a-token")).await,
    );
    look(
        "no such endpoint",
        h.get("/dicom-web/nothing-here", Some(&h.system)).await,
    );
    look(
        "a system asking for the operators' API",
        h.get("/api/admin/institutions", Some(&h.system)).await,
    );
    look(
        "a path segment that is no UID",
        h.get("/dicom-web/studies/1.2.abc/series", Some(&h.system))
            .await,
    );
    look(
        "a QIDO key that is not an attribute",
        h.get("/dicom-web/studies?NoSuchKeyword=1", Some(&h.system))
            .await,
    );
    let json = |body: &str| {
        Request::post("/api/admin/institutions")
            .header("authorization", format!("Bearer {ADMIN}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .expect("request")
    };
    look("malformed JSON", h.send(json("{\"code\": ")).await);
    look(
        "a second spelling of an institution code",
        h.send(json(
            r#"{"code": "h500002", "name": "又一个", "level": "二级"}"#,
        ))
        .await,
    );
    look(
        "a body that is not JSON",
        h.send(
            Request::post("/api/admin/institutions")
                .header("authorization", format!("Bearer {ADMIN}"))
                .header("content-type", "text/plain")
                .body(Body::from("code=x"))
                .expect("request"),
        )
        .await,
    );
    look(
        "revoking a token that is not live",
        h.send(
            Request::post("/api/admin/tokens/987654/revoke")
                .header("authorization", format!("Bearer {ADMIN}"))
                .body(Body::empty())
                .expect("request"),
        )
        .await,
    );
    insta::assert_json_snapshot!(seen);
}

/// FHIR answers from the same table: an OperationOutcome whose issue type is the table's FHIR
/// column and whose details carry the table's code.
#[tokio::test]
async fn fhir_refusals_come_from_the_same_table() {
    let h = harness().await;
    let mut seen = Vec::new();
    for (case, uri, token) in [
        ("no credentials", "/fhir/Patient?name=Li", None),
        (
            "an unsupported search parameter",
            "/fhir/Observation?no-such-parameter=1",
            Some(h.system.as_str()),
        ),
        (
            "a malformed cursor",
            "/fhir/Observation?_cursor=not-ours",
            Some(h.system.as_str()),
        ),
    ] {
        let r = h.get(uri, token).await;
        assert!(
            r.content_type().starts_with("application/fhir+json"),
            "{case}"
        );
        seen.push(
            serde_json::json!({ "case": case, "status": r.status.as_u16(), "body": r.json() }),
        );
    }
    insta::assert_json_snapshot!(seen);
}

/// Consent's failed steps, each answered by what it was: a refused rule or a denial in the
/// caller's terms, a broken gateway as an internal error that names nothing inside.
#[test]
fn consent_steps_in_the_table() {
    use huren_archive::consent::ConsentError;
    use huren_archive::ports::StoreError;
    use huren_archive::refusal::Rule;
    let table = |e: ConsentError| {
        let a = huren_http::error::ApiError::from(e);
        (a.status.as_u16(), a.code, a.message)
    };
    assert_eq!(
        table(ConsentError::Refused(
            Rule::ConsentCodeRejected,
            "wrong code".into()
        )),
        (400, "consent_code_rejected", "wrong code".into())
    );
    assert_eq!(
        table(ConsentError::Denied("another hospital's patient".into())).1,
        "forbidden"
    );
    assert_eq!(
        table(ConsentError::Notify(StoreError::broken(
            "gateway at 10.0.0.9 refused"
        ))),
        (500, "internal", "internal error".into())
    );
}

/// A step of huren's own that failed (hashing, a rendering task) is huren's failure, not the
/// caller's: 500 with nothing of the cause on the wire.
#[test]
fn a_failed_step_is_internal() {
    let e = huren_archive::AdminError::Failed {
        step: "hashing a password",
        source: "argon2: memory cost too high at 10.0.0.9".into(),
    };
    let a = huren_http::error::ApiError::from(e);
    assert_eq!(
        (a.status.as_u16(), a.code, a.message.as_str()),
        (500, "internal", "internal error")
    );
}
