//! Tokens from the `Authorization` header.

use std::str::FromStr;

use actix_web::http::header::AUTHORIZATION;
use actix_web::HttpRequest;
use keep_format::Token;

use crate::Error;

/// The token in `Authorization: Bearer <token>` (or `OAuth2 <token>`); `None` if absent.
pub(crate) fn token(req: &HttpRequest) -> Result<Option<Token>, Error> {
    let Some(v) = req.headers().get(AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| Error::BadToken("the Authorization header is not ASCII".into()))?
        .trim();
    let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
    if !(scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth2")) {
        return Err(Error::BadToken(
            "use `Authorization: Bearer <token>` (or `OAuth2 <token>`)".into(),
        ));
    }
    let rest = rest.trim();
    if rest.is_empty() {
        return Ok(None);
    }
    Token::from_str(rest)
        .map(Some)
        .map_err(|e| Error::BadToken(e.to_string()))
}

/// A token is required.
pub(crate) fn require(req: &HttpRequest) -> Result<Token, Error> {
    token(req)?.ok_or(Error::NoToken)
}

pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The request must carry exactly `want` (compared by secret, so the `v2/…` and bare
/// forms both work): 401 without a token, 403 with another one.
pub(crate) fn require_exact(
    req: &HttpRequest,
    want: &str,
    action: &'static str,
    which: &'static str,
) -> Result<(), Error> {
    let got = require(req)?;
    let want_secret = Token::from_str(want)
        .map(|t| t.secret().to_string())
        .unwrap_or_else(|_| want.to_string());
    if want.is_empty() || !ct_eq(got.secret().as_bytes(), want_secret.as_bytes()) {
        return Err(Error::Forbidden(action, which));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn schemes() {
        let r = TestRequest::default()
            .insert_header(("Authorization", "Bearer abc"))
            .to_http_request();
        assert_eq!(token(&r).unwrap().unwrap().secret(), "abc");
        let r = TestRequest::default()
            .insert_header(("Authorization", "OAuth2 abc"))
            .to_http_request();
        assert_eq!(token(&r).unwrap().unwrap().secret(), "abc");
        let r = TestRequest::default().to_http_request();
        assert!(token(&r).unwrap().is_none());
        assert!(matches!(require(&r), Err(Error::NoToken)));
        let r = TestRequest::default()
            .insert_header(("Authorization", "Basic abc"))
            .to_http_request();
        assert!(token(&r).is_err());
        let r = TestRequest::default()
            .insert_header(("Authorization", "Bearer abc"))
            .to_http_request();
        assert!(require_exact(&r, "abc", "x", "y").is_ok());
        assert!(matches!(
            require_exact(&r, "abd", "x", "y"),
            Err(Error::Forbidden(..))
        ));
        assert!(matches!(
            require_exact(&r, "", "x", "y"),
            Err(Error::Forbidden(..))
        ));
    }
}
