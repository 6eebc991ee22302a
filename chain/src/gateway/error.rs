//! Errors the gateway answers with: an HTTP status, a stable snake_case code and a message, as JSON
//! ([`super::types::ErrorBody`]).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::types::ErrorBody;
use super::Rejection;
use crate::app::AppError;
use crate::mempool::MempoolError;
use crate::state::StateError;
use crate::tx::TxError;

/// An error answer of the API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable snake_case code.
    pub code: &'static str,
    /// For people.
    pub message: String,
}

impl ApiError {
    /// An error with any status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 with a code.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 500: the node failed (never the client's fault).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code.to_string(),
            message: self.message.clone(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if self.code == "mempool_full" {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        let message = r.to_string();
        match r {
            Rejection::Tx(TxError::Codec(_)) => Self::bad_request("malformed_tx", message),
            Rejection::Tx(TxError::WrongChain { .. }) => Self::bad_request("wrong_chain", message),
            Rejection::Tx(TxError::Key(_) | TxError::Signature(_)) => {
                Self::bad_request("bad_signature", message)
            }
            Rejection::Mempool(MempoolError::Full { .. }) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "mempool_full", message)
            }
            Rejection::Mempool(MempoolError::Duplicate) => {
                Self::new(StatusCode::CONFLICT, "duplicate_tx", message)
            }
            Rejection::Mempool(MempoolError::NonceTaken(_)) => {
                Self::new(StatusCode::CONFLICT, "nonce_taken", message)
            }
            Rejection::Mempool(MempoolError::NonceTooLow { .. }) => {
                Self::new(StatusCode::CONFLICT, "nonce_too_low", message)
            }
            Rejection::Mempool(MempoolError::NonceTooHigh { .. }) => {
                Self::bad_request("nonce_too_high", message)
            }
            Rejection::Unavailable(_) => Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message),
        }
    }
}

impl From<StateError> for ApiError {
    fn from(e: StateError) -> Self {
        match e {
            StateError::UnknownHeight { .. } => Self::not_found("height_not_found", e.to_string()),
            StateError::Pruned { .. } => Self::new(StatusCode::GONE, "height_pruned", e.to_string()),
            StateError::Limit(_) => Self::bad_request("bad_key", e.to_string()),
            other => Self::internal(other.to_string()),
        }
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::State(s) => s.into(),
            other => Self::internal(other.to_string()),
        }
    }
}
