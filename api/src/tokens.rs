//! `/arvados/v1/api_client_authorizations`: tokens. Only the hash of a secret is stored;
//! the secret is shown once, in the create response (`api_token`; the full token is
//! `v2/<uuid>/<api_token>`, and the bare secret works too).

use keep_format::time::Timestamp;
use keep_format::{Uuid, UuidKind};
use serde_json::{json, Value};

use crate::auth::check_scope;
use crate::core::Core;
use crate::error::Error;
use crate::params::{Ctx, TokenPatch};
use crate::perm::{Perms, READ};
use crate::records::{Common, Record, Token, User};

/// A new token for `user` and its record (not yet written).
pub fn new_token_record(
    core: &Core,
    user: &str,
    by: &str,
    scopes: Vec<String>,
    expires_at: Option<Timestamp>,
) -> Result<(keep_format::Token, Token), Error> {
    let uuid = core.new_uuid(UuidKind::Token)?;
    let parsed: Uuid = uuid
        .parse()
        .map_err(|e| Error::internal("a generated token UUID does not parse", e))?;
    let token = keep_format::Token::generate(parsed);
    let mut r = Token {
        common: Common::new(&uuid, user, by),
        secret_hash: token.secret_hash(),
        scopes,
        expires_at,
    };
    r.touch(by);
    Ok((token, r))
}

/// A token may not mint or widen tokens beyond its own scopes and expiry.
fn within_caller(ctx: &Ctx, scopes: &[String], expires_at: Option<Timestamp>) -> Result<(), Error> {
    let own = &ctx.caller.scopes;
    if !own.iter().any(|s| s == "all") {
        if let Some(extra) = scopes.iter().find(|s| !own.contains(s)) {
            return Err(Error::Forbidden(format!(
                "your token's scopes do not include {extra:?}, so it may not give it to another token"
            )));
        }
    }
    if let Some(own_exp) = ctx.caller.expires_at {
        if expires_at.is_none_or(|e| e > own_exp) {
            return Err(Error::Forbidden(format!(
                "your token expires at {own_exp}; a token it creates must expire no later"
            )));
        }
    }
    Ok(())
}

/// Creates a token for `user` as the system user (`Api::create_token`).
pub fn create_for(
    core: &Core,
    user: &str,
    scopes: Option<Vec<String>>,
    expires_at: Option<String>,
) -> Result<keep_format::Token, Error> {
    let expires_at = match expires_at {
        Some(e) => Some(Timestamp::parse(&e).map_err(|e| Error::input("expires_at", e))?),
        None => None,
    };
    let scopes = scopes.unwrap_or_else(|| vec!["all".into()]);
    for sc in &scopes {
        check_scope(sc)?;
    }
    let _g = core.lock();
    if core.db.get::<User>(user)?.is_none() {
        return Err(Error::not_found("user", user));
    }
    let (tok, rec) = new_token_record(core, user, &core.system_user, scopes, expires_at)?;
    core.db.put(None, &rec)?;
    Ok(tok)
}

pub fn create(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let patch = TokenPatch::parse_create(&ctx.params.object("api_client_authorization")?)?;
    let user = patch
        .owner_uuid
        .unwrap_or_else(|| ctx.caller.user_uuid.clone());
    if ctx.caller.anonymous {
        return Err(Error::Forbidden(
            "the anonymous user may not create tokens".into(),
        ));
    }
    if user != ctx.caller.user_uuid && !ctx.caller.is_admin {
        let p = Perms::new(core, &ctx.caller)?;
        if core.db.get::<User>(&user)?.is_some() && p.level(&user)? >= READ {
            return Err(Error::Forbidden(
                "only an admin may create a token for another user".into(),
            ));
        }
        return Err(Error::not_found("user", &user));
    }
    let scopes = patch.scopes.unwrap_or_else(|| vec!["all".into()]);
    let mut expires_at = patch.expires_at.flatten();
    if user == ctx.caller.user_uuid {
        if expires_at.is_none() {
            expires_at = ctx.caller.expires_at;
        }
        within_caller(ctx, &scopes, expires_at)?;
    }
    let _g = core.lock();
    if core.db.get::<User>(&user)?.is_none() {
        return Err(Error::not_found("user", &user));
    }
    let (tok, rec) = new_token_record(core, &user, &ctx.caller.user_uuid, scopes, expires_at)?;
    core.db.put(None, &rec)?;
    let mut out = rec.render();
    out.insert("api_token".into(), json!(tok.secret()));
    Ok(Value::Object(out))
}

fn load(core: &Core, ctx: &Ctx, uuid: &str) -> Result<Token, Error> {
    match core.db.get::<Token>(uuid)? {
        Some(r) if ctx.caller.is_admin || r.owner() == ctx.caller.user_uuid => Ok(r),
        _ => Err(Error::not_found("api_client_authorization", uuid)),
    }
}

pub fn current(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    match &ctx.caller.token_uuid {
        Some(u) => load(core, ctx, u).map(|r| Value::Object(r.render())),
        None => Ok(json!({
            "kind": UuidKind::Token.arvados_kind(),
            "uuid": null,
            "owner_uuid": ctx.caller.user_uuid,
            "scopes": ["all"],
            "expires_at": null,
        })),
    }
}

pub fn get(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    load(core, ctx, &ctx.id).map(|r| Value::Object(r.render()))
}

pub fn list(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let lp = ctx.params.list()?;
    let recs = if ctx.caller.is_admin {
        core.db.all::<Token>()?
    } else {
        core.db.children_of::<Token>(&ctx.caller.user_uuid)?
    };
    let items = recs
        .iter()
        .map(Token::render)
        .filter(|r| crate::list::matches(&lp.filters, r))
        .collect();
    lp.page(items, "arvados#apiClientAuthorizationList", Ok)
}

pub fn update(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let patch = TokenPatch::parse_update(&ctx.params.object("api_client_authorization")?)?;
    let _g = core.lock();
    let cur = load(core, ctx, &ctx.id)?;
    let mut r = cur.clone();
    if let Some(sc) = patch.scopes {
        r.scopes = sc;
    }
    if let Some(e) = patch.expires_at {
        r.expires_at = e;
    }
    if !ctx.caller.is_admin {
        within_caller(ctx, &r.scopes, r.expires_at)?;
    }
    r.touch(&ctx.caller.user_uuid);
    core.db.put(Some(&cur), &r)?;
    Ok(Value::Object(r.render()))
}

/// Revokes a token: it stops working with the next request.
pub fn delete(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let _g = core.lock();
    let cur = load(core, ctx, &ctx.id)?;
    let mut ops = Vec::new();
    core.db.stage(&mut ops, Some(&cur), None)?;
    core.db.store.write(ops)?;
    Ok(Value::Object(cur.render()))
}
