//! Every error sluice itself answers with, classified once and turned into an
//! OpenAI-shaped response here: `{"error":{"message","type","param","code"}}`, with
//! the status repeated as a string in `code`, as LiteLLM does.

use crate::body::ProxyBody;
use http::{header, HeaderValue, Response, StatusCode};

/// Why sluice answered a request itself instead of passing an upstream response on.
#[derive(Debug, Clone, PartialEq)]
pub enum ProxyError {
    /// The body is not JSON (message says where), not an object, or has a bad field.
    BadRequest(String),
    /// `model` missing from the body.
    MissingModel,
    /// The requested model is no group, alias or deployment id.
    UnknownModel(String),
    /// No key in any of the accepted headers while a master key is set.
    NoApiKey,
    /// A key was sent but it is not the master key.
    InvalidApiKey,
    /// Body larger than `max_request_size_mb`.
    PayloadTooLarge { limit_mb: f64 },
    /// Known path, wrong method.
    MethodNotAllowed { allow: &'static str },
    /// Unknown path.
    NotFound(String),
    /// Every deployment of the group is unusable (cooling down or over its limits).
    NoDeployments {
        group: String,
        retry_after_secs: u64,
    },
    /// The prompt is larger than the context window of every deployment of the group.
    ContextWindowExceeded { group: String },
    /// `mock_testing_rate_limit_error` asked for a 429 from the picked deployment.
    MockRateLimit { group: String },
    /// `mock_testing_fallbacks` asked for a 500 from the picked deployment.
    MockInternalError { group: String },
    /// Could not connect to or talk with the upstream (after retries).
    UpstreamUnreachable(String),
    /// The upstream did not answer within the timeout (after retries).
    UpstreamTimeout { secs: f64 },
}

impl ProxyError {
    /// HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::BadRequest(_)
            | ProxyError::MissingModel
            | ProxyError::UnknownModel(_)
            | ProxyError::ContextWindowExceeded { .. } => StatusCode::BAD_REQUEST,
            ProxyError::NoApiKey | ProxyError::InvalidApiKey => StatusCode::UNAUTHORIZED,
            ProxyError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ProxyError::NotFound(_) => StatusCode::NOT_FOUND,
            ProxyError::NoDeployments { .. } | ProxyError::MockRateLimit { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ProxyError::MockInternalError { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            ProxyError::UpstreamUnreachable(_) => StatusCode::BAD_GATEWAY,
            ProxyError::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The OpenAI error `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            ProxyError::BadRequest(_)
            | ProxyError::MissingModel
            | ProxyError::UnknownModel(_)
            | ProxyError::ContextWindowExceeded { .. }
            | ProxyError::PayloadTooLarge { .. }
            | ProxyError::MethodNotAllowed { .. } => "invalid_request_error",
            ProxyError::NoApiKey | ProxyError::InvalidApiKey => "auth_error",
            ProxyError::NotFound(_) => "not_found_error",
            ProxyError::NoDeployments { .. } | ProxyError::MockRateLimit { .. } => {
                "rate_limit_error"
            }
            ProxyError::MockInternalError { .. } => "internal_server_error",
            ProxyError::UpstreamUnreachable(_) => "api_connection_error",
            ProxyError::UpstreamTimeout { .. } => "timeout",
        }
    }

    /// The human-readable message.
    pub fn message(&self) -> String {
        match self {
            ProxyError::BadRequest(m) => m.clone(),
            ProxyError::MissingModel => {
                "Invalid model name passed in model=None. The request body needs a \"model\" string."
                    .into()
            }
            ProxyError::UnknownModel(m) => format!(
                "Invalid model name passed in model={m}. Call `/v1/models` to view available models."
            ),
            ProxyError::NoApiKey => "Authentication Error, No api key passed in.".into(),
            ProxyError::InvalidApiKey => {
                "Authentication Error, Invalid proxy server token passed.".into()
            }
            ProxyError::PayloadTooLarge { limit_mb } => {
                format!("Request size is too large. Maximum allowed size is {limit_mb} MB.")
            }
            ProxyError::MethodNotAllowed { allow } => {
                format!("Method Not Allowed. Allowed: {allow}.")
            }
            ProxyError::NotFound(path) => format!("Not Found: {path}"),
            ProxyError::NoDeployments { group, retry_after_secs } => format!(
                "No deployments available for selected model, Try again in {retry_after_secs} seconds. Passed model={group}."
            ),
            ProxyError::ContextWindowExceeded { group } => format!(
                "litellm.ContextWindowExceededError: the prompt is longer than the context window (model_info.max_input_tokens) of every deployment of model={group}."
            ),
            ProxyError::MockRateLimit { group } => {
                format!("litellm.RateLimitError: This is a mock rate limit error. Model group={group}.")
            }
            ProxyError::MockInternalError { group } => format!(
                "litellm.InternalServerError: This is a mock internal server error. Model group={group}."
            ),
            ProxyError::UpstreamUnreachable(why) => {
                format!("Upstream unreachable after retries: {why}")
            }
            ProxyError::UpstreamTimeout { secs } => {
                format!("Request timed out: the upstream did not answer within {secs} seconds.")
            }
        }
    }

    /// The JSON error body.
    pub fn body(&self) -> Vec<u8> {
        error_body(self.status(), self.kind(), &self.message())
    }

    /// The complete response, headers included.
    pub fn into_response(self) -> Response<ProxyBody> {
        let mut resp = Response::new(ProxyBody::full(self.body()));
        *resp.status_mut() = self.status();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        match &self {
            ProxyError::MethodNotAllowed { allow } => {
                h.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            ProxyError::NoDeployments {
                retry_after_secs, ..
            } => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            _ => {}
        }
        resp
    }
}

/// `{"error":{"message":..,"type":..,"param":null,"code":"<status>"}}`.
pub fn error_body(status: StatusCode, kind: &str, message: &str) -> Vec<u8> {
    let v = serde_json::json!({
        "error": {
            "message": message,
            "type": kind,
            "param": null,
            "code": status.as_str(),
        }
    });
    serde_json::to_vec(&v).expect("a json! value always serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_openai_shaped_with_status_as_string_code() {
        let e = ProxyError::UnknownModel("gpt-5".into());
        let v: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(v["error"]["code"], "400");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert!(v["error"]["param"].is_null());
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Invalid model name passed in model=gpt-5"));
    }

    #[test]
    fn no_deployments_carries_retry_after() {
        let r = ProxyError::NoDeployments {
            group: "g".into(),
            retry_after_secs: 7,
        }
        .into_response();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()[header::RETRY_AFTER], "7");
    }
}
