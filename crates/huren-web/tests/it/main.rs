//! In-process tests of the web pages at their boundary: the real router (API and pages), use
//! cases and SQLite in a temporary directory (`huren-testkit`), driven with `tower::oneshot`.
//! What a person sees is tested in Chromium by the end-to-end suite; these pin the contract
//! around the pages — redirects, cookies, the Content-Security-Policy, both languages.

use axum::body::Body;
use axum::http::Request;
use huren_access::{Principal, Role, grant_admin};
use huren_archive::accounts::UserRequest;
use huren_testkit::{Harness, harness_with};

async fn pages() -> Harness {
    let h = harness_with(huren_web::routes(huren_web::WebConfig {
        frame_ancestors: Vec::new(),
    }))
    .await;
    let grant = grant_admin(&Principal::Console).expect("console");
    h.archive
        .add_user(
            &grant,
            UserRequest {
                username: "li.doctor",
                display_name: "李医生",
                role: Role::Doctor,
                institution_code: "h500002",
                department: Some("放射科"),
                password: "correct horse battery",
            },
        )
        .await
        .expect("user");
    h
}

fn form(path: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body.to_owned()))
        .expect("request")
}

#[tokio::test]
async fn sign_in_and_the_start_page() {
    let h = pages().await;
    // No session: the start page is the sign-in form (any other page redirects to it), Chinese
    // first and English when the language switch has set its cookie (the browser's
    // Accept-Language is not followed: the region's pages are Chinese first), under the pages'
    // policy.
    let r = h.get("/", None).await;
    assert_eq!(r.status, 200);
    let csp = r
        .headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    insta::assert_snapshot!("content_security_policy", csp);
    assert!(String::from_utf8_lossy(&r.body).contains("登录"));
    let r = h
        .get_with("/", &[("accept-language", "en-US,en;q=0.9")])
        .await;
    assert!(String::from_utf8_lossy(&r.body).contains("登录"));
    let r = h
        .get_with(
            "/",
            &[("accept-language", "en-US,en;q=0.9"), ("cookie", "lang=en")],
        )
        .await;
    assert!(String::from_utf8_lossy(&r.body).contains("Sign in"));

    // A wrong password is refused on the page; nothing is set.
    let r = h
        .send(form("/signin", "username=li.doctor&password=wrong&next=/"))
        .await;
    assert_eq!(r.status, 401);
    assert!(r.headers.get("set-cookie").is_none());

    // The right one: a session cookie the script cannot read, and the doctor's own start page.
    let r = h
        .send(form(
            "/signin",
            "username=li.doctor&password=correct+horse+battery&next=/",
        ))
        .await;
    assert_eq!(r.status, 303, "{}", String::from_utf8_lossy(&r.body));
    let cookie = r
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("huren_session="))
        .expect("session cookie")
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap_or_default();
    let r = h.get_with("/", &[("cookie", pair)]).await;
    assert_eq!(r.status, 200);
    let page = String::from_utf8_lossy(&r.body);
    assert!(!page.contains("name=\"password\""), "{page}");
    // Who is signed in, with the institution code as the operator wrote it.
    assert!(page.contains("li.doctor · H500002"), "{page}");

    // A page that needs a person sends a browser without a session to sign-in.
    let r = h.get("/qc", None).await;
    assert_eq!(r.status, 303);
    let to = r.headers.get("location").and_then(|v| v.to_str().ok());
    assert!(to.is_some_and(|l| l.starts_with("/?")), "{to:?}");
}
