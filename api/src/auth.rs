//! Who is calling: token lookup (by the hash of its secret), expiry, scopes.
//!
//! There is no token cache: every request reads the token record (one point lookup in
//! RocksDB), so a revoked token stops working at once.

use keep_format::secret::ct_eq_str;
use keep_format::time::Timestamp;

use crate::core::Core;
use crate::error::Error;
use crate::records::{Token, User};

/// The authenticated caller of one request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user_uuid: String,
    pub is_admin: bool,
    /// The anonymous user: may read what is public, never write.
    pub anonymous: bool,
    /// The token as presented (locators are signed for it).
    pub token: keep_format::Token,
    /// None for the system root token.
    pub token_uuid: Option<String>,
    pub scopes: Vec<String>,
    pub expires_at: Option<Timestamp>,
}

impl Caller {
    /// When signatures made for this caller expire (Unix seconds): the signer's TTL from
    /// now, but never after the token itself expires — a signed locator must not
    /// outlive the token that asked for it (issue 11 item 5).
    pub fn signature_expiry(&self, ttl: std::time::Duration) -> u32 {
        let now = Timestamp::now().as_unix_seconds().max(0) as u64;
        let mut expiry = now.saturating_add(ttl.as_secs());
        if let Some(exp) = self.expires_at {
            expiry = expiry.min(exp.as_unix_seconds().max(0) as u64);
        }
        expiry.min(u32::MAX as u64) as u32
    }

    /// May this caller see collection `uuid`'s history — its past versions, and the
    /// collection once trashed? A sharing link's scope pair (`GET …/collections/<uuid>`
    /// and `GET …/collections/<uuid>/`) shares the collection as it is, not its history
    /// (issue 11 item 12): its `…/<uuid>/` prefix does not reach `…/<uuid>/versions`.
    /// Any other scope that allows `GET …/collections/<uuid>/versions` does.
    pub fn sees_history(&self, uuid: &str) -> bool {
        let bound = format!("GET /arvados/v1/collections/{uuid}/");
        let wider: Vec<String> = self
            .scopes
            .iter()
            .filter(|sc| **sc != bound)
            .cloned()
            .collect();
        scope_allows(
            &wider,
            "GET",
            &format!("/arvados/v1/collections/{uuid}/versions"),
        )
    }
}

/// Is `method path` allowed by these scopes? `"all"` allows everything; a scope is
/// `"METHOD /path"`, a trailing `/` making it a prefix. HEAD is allowed by GET.
pub fn scope_allows(scopes: &[String], method: &str, path: &str) -> bool {
    let method = if method == "HEAD" { "GET" } else { method };
    scopes.iter().any(|sc| {
        if sc == "all" {
            return true;
        }
        let Some((m, p)) = sc.split_once(' ') else {
            return false;
        };
        m == method && (p == path || (p.ends_with('/') && path.starts_with(p)))
    })
}

/// Checks a scope given by a client when creating a token.
pub fn check_scope(sc: &str) -> Result<(), Error> {
    if sc == "all" {
        return Ok(());
    }
    let ok = sc.split_once(' ').is_some_and(|(m, p)| {
        matches!(m, "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE") && p.starts_with('/')
    });
    if ok {
        Ok(())
    } else {
        Err(Error::Unprocessable(format!(
            "scope {sc:?} is not \"all\" or \"METHOD /path\" (e.g. \"GET /arvados/v1/collections/\")"
        )))
    }
}

/// Extracts the token text: `Authorization: Bearer X` (or `OAuth2 X`), else the
/// `api_token` parameter.
pub fn token_text(authorization: Option<&str>, api_token_param: Option<&str>) -> Option<String> {
    if let Some(h) = authorization {
        let h = h.trim();
        for pfx in ["Bearer ", "OAuth2 ", "bearer "] {
            if let Some(t) = h.strip_prefix(pfx) {
                let t = t.trim();
                if !t.is_empty() {
                    return Some(t.to_string());
                }
            }
        }
    }
    api_token_param
        .filter(|t| !t.is_empty())
        .map(|t| t.to_string())
}

/// Resolves a token and checks it may make this request.
pub fn authenticate(
    core: &Core,
    text: Option<&str>,
    method: &str,
    path: &str,
) -> Result<Caller, Error> {
    let text = text.ok_or_else(|| {
        Error::Unauthorized(
            "no API token: send it as \"Authorization: Bearer <token>\" (see keep token create)"
                .into(),
        )
    })?;
    let token: keep_format::Token = text.parse().map_err(|e: keep_format::Error| {
        Error::Unauthorized(format!("the API token is malformed: {e}"))
    })?;
    let root = &core.cfg.system_root_token;
    if !root.is_empty() && token.uuid().is_none() && ct_eq_str(token.secret(), root) {
        return Ok(Caller {
            user_uuid: core.system_user.clone(),
            is_admin: true,
            anonymous: false,
            token,
            token_uuid: None,
            scopes: vec!["all".into()],
            expires_at: None,
        });
    }
    let unknown = || {
        Error::Unauthorized(
            "the API token is unknown or was revoked (get a new one with keep token create)".into(),
        )
    };
    let uuid = core
        .db
        .token_by_hash(&token.secret_hash())?
        .ok_or_else(unknown)?;
    if token.uuid().is_some_and(|u| u.as_str() != uuid) {
        return Err(unknown());
    }
    let rec: Token = core.db.get(&uuid)?.ok_or_else(unknown)?;
    if let Some(exp) = rec.expires_at {
        if exp <= Timestamp::now() {
            return Err(Error::Unauthorized(format!(
                "the API token expired at {exp} (get a new one with keep token create)"
            )));
        }
    }
    let user_uuid = rec.common.owner_uuid;
    let user: User = core
        .db
        .get(&user_uuid)?
        .ok_or_else(|| Error::Unauthorized("the API token's user no longer exists".into()))?;
    if !user.is_active {
        return Err(Error::Unauthorized(
            "the API token's user is inactive (ask an admin to activate it)".into(),
        ));
    }
    let always = method == "GET" && path == "/arvados/v1/api_client_authorizations/current";
    if !always && !scope_allows(&rec.scopes, method, path) {
        return Err(Error::Forbidden(format!(
            "this token's scopes do not allow {method} {path} (use a token with scope \"all\" or one naming this path)"
        )));
    }
    Ok(Caller {
        anonymous: user_uuid == core.anonymous_user,
        is_admin: user.is_admin,
        user_uuid,
        token,
        token_uuid: Some(uuid),
        scopes: rec.scopes,
        expires_at: rec.expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        let sc = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let share = sc(&[
            "GET /arvados/v1/collections/zzzzz-4zz18-000000000000001",
            "GET /arvados/v1/collections/zzzzz-4zz18-000000000000001/",
        ]);
        assert!(scope_allows(
            &share,
            "GET",
            "/arvados/v1/collections/zzzzz-4zz18-000000000000001"
        ));
        assert!(scope_allows(
            &share,
            "HEAD",
            "/arvados/v1/collections/zzzzz-4zz18-000000000000001"
        ));
        assert!(scope_allows(
            &share,
            "GET",
            "/arvados/v1/collections/zzzzz-4zz18-000000000000001/x"
        ));
        assert!(!scope_allows(
            &share,
            "GET",
            "/arvados/v1/collections/zzzzz-4zz18-000000000000002"
        ));
        assert!(!scope_allows(
            &share,
            "PUT",
            "/arvados/v1/collections/zzzzz-4zz18-000000000000001"
        ));
        assert!(!scope_allows(&share, "GET", "/arvados/v1/collections"));
        assert!(scope_allows(&sc(&["all"]), "DELETE", "/x"));
        assert!(!scope_allows(&[], "GET", "/x"));
        assert!(check_scope("GET /x").is_ok());
        assert!(check_scope("FETCH /x").is_err());
        assert!(check_scope("GET x").is_err());
    }

    #[test]
    fn token_sources() {
        assert_eq!(token_text(Some("Bearer abc"), None).as_deref(), Some("abc"));
        assert_eq!(
            token_text(Some("OAuth2 abc"), Some("q")).as_deref(),
            Some("abc")
        );
        assert_eq!(
            token_text(Some("Basic xyz"), Some("q")).as_deref(),
            Some("q")
        );
        assert_eq!(token_text(None, None), None);
    }
}
