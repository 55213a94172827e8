//! The one place errors become HTTP responses: a stable code, a status, a message safe to
//! show (RFC 9457 problem details). Internal causes are logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug)]
pub struct ApiError {
    pub code: &'static str,
    pub status: StatusCode,
    pub message: String,
}

macro_rules! error_codes {
    ($($name:ident => ($code:literal, $status:ident)),* $(,)?) => {
        impl ApiError {
            $(pub fn $name(message: impl Into<String>) -> Self {
                ApiError { code: $code, status: StatusCode::$status, message: message.into() }
            })*
        }
        /// Every code the API can return, for documentation and tests.
        pub const ERROR_CODES: &[(&str, u16)] = &[$(($code, StatusCode::$status.as_u16())),*];
    };
}

error_codes! {
    unauthorized => ("unauthorized", UNAUTHORIZED),
    forbidden => ("forbidden", FORBIDDEN),
    not_found => ("not_found", NOT_FOUND),
    bad_request => ("bad_request", BAD_REQUEST),
    conflict => ("conflict", CONFLICT),
    unprocessable => ("unprocessable", UNPROCESSABLE_ENTITY),
    locked => ("account_locked", LOCKED),
    too_many_requests => ("too_many_requests", TOO_MANY_REQUESTS),
    not_acceptable => ("not_acceptable", NOT_ACCEPTABLE),
    unsupported_media_type => ("unsupported_media_type", UNSUPPORTED_MEDIA_TYPE),
    range_not_satisfiable => ("range_not_satisfiable", RANGE_NOT_SATISFIABLE),
    payload_too_large => ("payload_too_large", PAYLOAD_TOO_LARGE),
    insufficient_storage => ("insufficient_storage", INSUFFICIENT_STORAGE),
    bad_gateway => ("bad_gateway", BAD_GATEWAY),
    internal => ("internal", INTERNAL_SERVER_ERROR),
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
                .insert(crate::auth::RefusalReason(self.message.clone()));
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

impl From<huren_archive::AdminError> for ApiError {
    fn from(e: huren_archive::AdminError) -> Self {
        match e {
            huren_archive::AdminError::Store(s) => s.into(),
            huren_archive::AdminError::Invalid(m) => ApiError::bad_request(m),
            huren_archive::AdminError::Forbidden(m) => ApiError::forbidden(m),
            huren_archive::AdminError::TooMany(m) => ApiError::too_many_requests(m),
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
