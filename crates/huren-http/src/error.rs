//! The one place errors become HTTP responses: a stable code, a status, a message safe to
//! show (RFC 9457 problem details). Internal causes are logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Why a request was refused with 403, carried on the response for the refusal audit.
#[derive(Clone, Debug)]
pub struct RefusalReason(pub String);

#[derive(Debug)]
pub struct ApiError {
    pub code: &'static str,
    pub status: StatusCode,
    pub message: String,
}

macro_rules! error_codes {
    ($($name:ident => ($code:literal, $status:ident, $fhir:literal)),* $(,)?) => {
        impl ApiError {
            $(pub fn $name(message: impl Into<String>) -> Self {
                ApiError { code: $code, status: StatusCode::$status, message: message.into() }
            })*
        }
        /// Every code the API can return with its status and FHIR issue type (R4 IssueType),
        /// for documentation and tests.
        pub const ERROR_CODES: &[(&str, u16, &str)] =
            &[$(($code, StatusCode::$status.as_u16(), $fhir)),*];
    };
}

// The one table. The first rows are protocol-level (what HTTP says when nothing more precise
// applies); the rest are the domain's named refusals (`huren_archive::refusal::Rule`), one row
// each. FHIR answers with an OperationOutcome whose issue type is the third column and whose
// `details` carry the code, so problem details and FHIR name the same rule.
error_codes! {
    unauthorized => ("unauthorized", UNAUTHORIZED, "security"),
    forbidden => ("forbidden", FORBIDDEN, "forbidden"),
    not_found => ("not_found", NOT_FOUND, "not-found"),
    bad_request => ("bad_request", BAD_REQUEST, "invalid"),
    not_supported => ("not_supported", BAD_REQUEST, "not-supported"),
    required => ("required", BAD_REQUEST, "required"),
    malformed_body => ("malformed_body", BAD_REQUEST, "structure"),
    conflict => ("conflict", CONFLICT, "conflict"),
    unprocessable => ("unprocessable", UNPROCESSABLE_ENTITY, "processing"),
    locked => ("account_locked", LOCKED, "lock-error"),
    too_many_requests => ("too_many_requests", TOO_MANY_REQUESTS, "throttled"),
    not_acceptable => ("not_acceptable", NOT_ACCEPTABLE, "not-supported"),
    unsupported_media_type => ("unsupported_media_type", UNSUPPORTED_MEDIA_TYPE, "not-supported"),
    range_not_satisfiable => ("range_not_satisfiable", RANGE_NOT_SATISFIABLE, "invalid"),
    payload_too_large => ("payload_too_large", PAYLOAD_TOO_LARGE, "too-long"),
    insufficient_storage => ("insufficient_storage", INSUFFICIENT_STORAGE, "transient"),
    bad_gateway => ("bad_gateway", BAD_GATEWAY, "transient"),
    internal => ("internal", INTERNAL_SERVER_ERROR, "exception"),
    consent_code_rejected => ("consent_code_rejected", BAD_REQUEST, "security"),
    authorization_not_live => ("authorization_not_live", NOT_FOUND, "not-found"),
    no_registered_mobile => ("no_registered_mobile", CONFLICT, "business-rule"),
    patient_not_found => ("patient_not_found", NOT_FOUND, "not-found"),
    patient_ambiguous => ("patient_ambiguous", CONFLICT, "multiple-matches"),
    record_not_registered => ("record_not_registered", CONFLICT, "business-rule"),
    institution_code_taken => ("institution_code_taken", CONFLICT, "duplicate"),
    numbering_taken => ("numbering_taken", CONFLICT, "business-rule"),
    reason_required => ("reason_required", BAD_REQUEST, "required"),
    break_glass_not_reviewable => ("break_glass_not_reviewable", CONFLICT, "business-rule"),
    keys_not_configured => ("keys_not_configured", SERVICE_UNAVAILABLE, "not-supported"),
    study_not_found => ("study_not_found", NOT_FOUND, "not-found"),
    institution_not_found => ("institution_not_found", NOT_FOUND, "not-found"),
    item_not_in_catalog => ("item_not_in_catalog", BAD_REQUEST, "code-invalid"),
    share_not_live => ("share_not_live", NOT_FOUND, "not-found"),
    token_not_live => ("token_not_live", NOT_FOUND, "not-found"),
    no_image => ("no_image", CONFLICT, "business-rule"),
    source_domain_unknown => ("source_domain_unknown", BAD_REQUEST, "code-invalid"),
    target_domain_unknown => ("target_domain_unknown", FORBIDDEN, "code-invalid"),
}

impl ApiError {
    /// The FHIR R4 issue type of this error's code (the table's third column).
    pub fn fhir_issue(&self) -> &'static str {
        ERROR_CODES
            .iter()
            .find(|(c, _, _)| *c == self.code)
            .map_or("exception", |(_, _, t)| t)
    }

    /// The row of the table for a named refusal of the domain.
    pub fn refused(rule: huren_archive::refusal::Rule, message: String) -> Self {
        use huren_archive::refusal::Rule::*;
        match rule {
            ConsentCodeRejected => ApiError::consent_code_rejected(message),
            AuthorizationNotLive => ApiError::authorization_not_live(message),
            NoRegisteredMobile => ApiError::no_registered_mobile(message),
            PatientNotFound => ApiError::patient_not_found(message),
            PatientAmbiguous => ApiError::patient_ambiguous(message),
            RecordNotRegistered => ApiError::record_not_registered(message),
            InstitutionCodeTaken => ApiError::institution_code_taken(message),
            NumberingTaken => ApiError::numbering_taken(message),
            ReasonRequired => ApiError::reason_required(message),
            BreakGlassNotReviewable => ApiError::break_glass_not_reviewable(message),
            KeysNotConfigured => ApiError::keys_not_configured(message),
            StudyNotFound => ApiError::study_not_found(message),
            InstitutionNotFound => ApiError::institution_not_found(message),
            ItemNotInCatalog => ApiError::item_not_in_catalog(message),
            ShareNotLive => ApiError::share_not_live(message),
            TokenNotLive => ApiError::token_not_live(message),
            NoImage => ApiError::no_image(message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "type": format!("https://huren.dev/errors/{}", self.code),
            "title": self.code,
            "status": self.status.as_u16(),
            "detail": self.message,
        });
        let mut resp = (self.status, body.to_string()).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::FORBIDDEN {
            resp.extensions_mut()
                .insert(RefusalReason(self.message.clone()));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"huren\""),
            );
        }
        resp
    }
}

impl From<huren_archive::ports::StoreError> for ApiError {
    fn from(e: huren_archive::ports::StoreError) -> Self {
        use huren_archive::ports::StoreError::*;
        match e {
            Backend { .. } => {
                // The step and the driver's own error go to the log only.
                tracing::error!(error = %e, "storage back end failed");
                ApiError::internal("internal error")
            }
            NotFound(m) => ApiError::not_found(m),
            Conflict(m) => ApiError::conflict(m),
            Invalid(m) => ApiError::bad_request(m),
            OutOfSpace(m) => {
                tracing::error!(error = %m, "out of space");
                ApiError::insufficient_storage("storage is full")
            }
        }
    }
}

impl From<huren_archive::retrieve::RetrieveError> for ApiError {
    fn from(e: huren_archive::retrieve::RetrieveError) -> Self {
        use huren_archive::retrieve::RetrieveError::*;
        match e {
            NotFound(m) => ApiError::not_found(m),
            NotAcceptable(m) => ApiError::not_acceptable(m),
            Transcode(t) => ApiError::not_acceptable(t.to_string()),
            Store(s) => s.into(),
        }
    }
}

impl From<huren_archive::consent::ConsentError> for ApiError {
    fn from(e: huren_archive::consent::ConsentError) -> Self {
        use huren_archive::consent::ConsentError::*;
        match e {
            Invalid(m) => ApiError::bad_request(m),
            Refused(rule, m) => ApiError::refused(rule, m),
            TooMany(m) => ApiError::too_many_requests(m),
            Denied(m) => ApiError::forbidden(m),
            Sealing(_) | Notify(_) => {
                // The keys or the gateway, not the request: logged with the cause, never sent.
                tracing::error!(error = %e, "consent step failed");
                ApiError::internal("internal error")
            }
            Store(s) => s.into(),
        }
    }
}

impl From<huren_archive::AdminError> for ApiError {
    fn from(e: huren_archive::AdminError) -> Self {
        match e {
            huren_archive::AdminError::Store(s) => s.into(),
            huren_archive::AdminError::Invalid(m) => ApiError::bad_request(m),
            huren_archive::AdminError::Forbidden(m) => ApiError::forbidden(m),
            huren_archive::AdminError::TooMany(m) => ApiError::too_many_requests(m),
            huren_archive::AdminError::Refused(rule, m) => ApiError::refused(rule, m),
            e @ huren_archive::AdminError::Failed { .. } => {
                // The step and its cause go to the log only.
                tracing::error!(error = %e, cause = ?std::error::Error::source(&e), "use case failed");
                ApiError::internal("internal error")
            }
        }
    }
}

impl From<huren_archive::submit::SubmitError> for ApiError {
    fn from(e: huren_archive::submit::SubmitError) -> Self {
        match e {
            huren_archive::submit::SubmitError::Store(s) => s.into(),
            huren_archive::submit::SubmitError::Invalid(m) => ApiError::unprocessable(m),
            huren_archive::submit::SubmitError::Forbidden(m) => ApiError::forbidden(m),
        }
    }
}

impl From<huren_access::Denied> for ApiError {
    fn from(e: huren_access::Denied) -> Self {
        ApiError::forbidden(e.to_string())
    }
}

/// `Json<T>` whose rejections (bad syntax, wrong fields, wrong content type) become problem
/// details from the table above instead of axum's plain-text bodies.
pub struct ApiJson<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::JsonRejection;
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::unsupported_media_type(
                "send Content-Type: application/json",
            )),
            // Above the body limit (axum's default, 2 MiB): RFC 9110 §15.5.14.
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(
                ApiError::payload_too_large("the request body is larger than this API accepts"),
            ),
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

/// `Query<T>` with rejections as problem details.
pub struct ApiQuery<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}
