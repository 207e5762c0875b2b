//! One structured log line per request, with a request id, and never a credential:
//! `api_token` query values, `t=` path tokens, `+A` locator signatures, Authorization
//! and cookies are all kept out.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::Error;
use rand::Rng;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Path and query with every credential replaced by `<redacted>`, whatever its
/// %-encoding (`api%5Ftoken=`, `t%3D…`): keep-web's one redaction rule.
pub fn redact(path: &str, query: &str) -> String {
    keep_web::credentials::redact(path, query)
}

fn request_id(req: &ServiceRequest) -> String {
    if let Some(v) = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()) {
        if !v.is_empty()
            && v.len() <= 64
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return v.to_string();
        }
    }
    const A: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..20)
        .map(|_| A[rng.random_range(0..A.len())] as char)
        .collect();
    format!("req-{tail}")
}

/// `actix_web::middleware::from_fn(access_log::log)` with the service's name bound by the caller.
pub async fn log(
    service: &'static str,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let start = Instant::now();
    let id = request_id(&req);
    let method = req.method().to_string();
    let target = redact(req.path(), req.query_string());
    let peer = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let result = next.call(req).await;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(mut res) => {
            let status = res.status().as_u16();
            if let Ok(v) = HeaderValue::from_str(&id) {
                res.headers_mut().insert(REQUEST_ID, v);
            }
            tracing::info!(target: "keep::access", service, request_id = %id, %peer, %method, path = %target, status, ms = format_args!("{ms:.2}"));
            Ok(res)
        }
        Err(e) => {
            let status = e.as_response_error().status_code().as_u16();
            tracing::info!(target: "keep::access", service, request_id = %id, %peer, %method, path = %target, status, ms = format_args!("{ms:.2}"), error = %e);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn strips_credentials() {
        let h = "a".repeat(64);
        let p = format!("/{h}+3+A{}@00000001+Kzzzzz", "b".repeat(64));
        assert_eq!(redact(&p, ""), format!("/{h}+3+A<redacted>+Kzzzzz"));
        assert_eq!(
            redact("/c=x/t=secret123/_/f", "a=1&api_token=s3cr3t&b=2"),
            "/c=x/t=<redacted>/_/f?a=1&api_token=<redacted>&b=2"
        );
        assert!(!redact("/t%3Dabc/", "").contains("abc"));
        assert!(!redact("/", "api%5Ftoken=abc").contains("abc"));
        assert!(!redact("/", "API_TOKEN=abc").contains("abc"));
    }
}
