//! `/arvados/v1/api_client_authorizations`: tokens. Only the hash of a secret is stored;
//! the secret is shown once, in the create response (`api_token`; the full token is
//! `v2/<uuid>/<api_token>`, and the bare secret works too).

use keep_format::{Token, Uuid, UuidKind};
use serde_json::{json, Value};

use crate::auth::check_scope;
use crate::db::{s, Obj};
use crate::http::{body_obj, check_keys, opt_time, Ctx};
use crate::list::ListParams;
use crate::perm::{Perms, READ};
use crate::store::Table;
use crate::{time, Core, Error};

const WRITABLE: &[&str] = &["owner_uuid", "scopes", "expires_at", "api_token"];

/// A new token for `user` and its record (not yet written).
pub fn new_token_record(
    core: &Core,
    user: &str,
    by: &str,
    scopes: Vec<String>,
    expires_at: Option<String>,
) -> Result<(Token, Obj), Error> {
    let uuid = core.new_uuid(UuidKind::Token)?;
    let parsed: Uuid = uuid
        .parse()
        .map_err(|e: keep_format::Error| Error::Internal(e.to_string()))?;
    let token = Token::generate(parsed);
    let mut r = core.new_record(&uuid, user, by);
    r.insert("secret_hash".into(), json!(token.secret_hash()));
    r.insert("scopes".into(), json!(scopes));
    r.insert(
        "expires_at".into(),
        expires_at.map(Value::String).unwrap_or(Value::Null),
    );
    core.touch(&mut r, by, &time::now());
    Ok((token, r))
}

/// What clients see: never the hash.
fn render(mut r: Obj) -> Obj {
    r.remove("secret_hash");
    r
}

fn parse_scopes(v: Option<&Value>) -> Result<Option<Vec<String>>, Error> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => {
            let mut out = Vec::new();
            for x in a {
                let sc = x
                    .as_str()
                    .ok_or_else(|| Error::Unprocessable(format!("scopes: {x} is not a string")))?;
                check_scope(sc)?;
                out.push(sc.to_string());
            }
            Ok(Some(out))
        }
        Some(other) => Err(Error::Unprocessable(format!(
            "scopes must be a list like [\"all\"], got {other}"
        ))),
    }
}

/// A token may not mint or widen tokens beyond its own scopes and expiry.
fn within_caller(ctx: &Ctx, scopes: &[String], expires_at: &Option<String>) -> Result<(), Error> {
    let own = &ctx.caller.scopes;
    if !own.iter().any(|s| s == "all") {
        if let Some(extra) = scopes.iter().find(|s| !own.contains(s)) {
            return Err(Error::Forbidden(format!(
                "your token's scopes do not include {extra:?}, so it may not give it to another token"
            )));
        }
    }
    if let Some(own_exp) = &ctx.caller.expires_at {
        match expires_at {
            Some(e) if e <= own_exp => {}
            _ => {
                return Err(Error::Forbidden(format!(
                    "your token expires at {own_exp}; a token it creates must expire no later"
                )))
            }
        }
    }
    Ok(())
}

pub fn create_for(
    core: &Core,
    user: &str,
    scopes: Option<Vec<String>>,
    expires_at: Option<String>,
) -> Result<Token, Error> {
    let expires_at = match expires_at {
        Some(e) => Some(time::normalize(&e).map_err(Error::Unprocessable)?),
        None => None,
    };
    let scopes = scopes.unwrap_or_else(|| vec!["all".into()]);
    for sc in &scopes {
        check_scope(sc)?;
    }
    let _g = core.lock();
    if core.db.get(user)?.is_none() || crate::db::table_of(user) != Some(Table::Users) {
        return Err(Error::not_found("user", user));
    }
    let (tok, rec) = new_token_record(core, user, &core.system_user, scopes, expires_at)?;
    let mut ops = Vec::new();
    core.db.stage(&mut ops, Table::Tokens, None, Some(&rec))?;
    core.db.store.write(ops)?;
    Ok(tok)
}

pub fn create(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let body = body_obj(ctx, "api_client_authorization")?;
    check_keys(&body, WRITABLE, "api_client_authorization")?;
    if body.contains_key("api_token") {
        return Err(Error::Unprocessable(
            "api_client_authorization.api_token cannot be chosen; the server generates it".into(),
        ));
    }
    let user = match body.get("owner_uuid").and_then(Value::as_str) {
        Some(u) => u.to_string(),
        None => ctx.caller.user_uuid.clone(),
    };
    if ctx.caller.anonymous {
        return Err(Error::Forbidden(
            "the anonymous user may not create tokens".into(),
        ));
    }
    if user != ctx.caller.user_uuid && !ctx.caller.is_admin {
        let p = Perms::new(core, &ctx.caller)?;
        if crate::db::table_of(&user) == Some(Table::Users)
            && core.db.get(&user)?.is_some()
            && p.level(&user)? >= READ
        {
            return Err(Error::Forbidden(
                "only an admin may create a token for another user".into(),
            ));
        }
        return Err(Error::not_found("user", &user));
    }
    let scopes = parse_scopes(body.get("scopes"))?.unwrap_or_else(|| vec!["all".into()]);
    let mut expires_at = opt_time(&body, "expires_at", "api_client_authorization")?.flatten();
    if expires_at.is_none() && user == ctx.caller.user_uuid {
        expires_at = ctx.caller.expires_at.clone();
    }
    if user == ctx.caller.user_uuid {
        within_caller(ctx, &scopes, &expires_at)?;
    }
    let _g = core.lock();
    if crate::db::table_of(&user) != Some(Table::Users) || core.db.get(&user)?.is_none() {
        return Err(Error::not_found("user", &user));
    }
    let (tok, rec) = new_token_record(core, &user, &ctx.caller.user_uuid, scopes, expires_at)?;
    let mut ops = Vec::new();
    core.db.stage(&mut ops, Table::Tokens, None, Some(&rec))?;
    core.db.store.write(ops)?;
    let mut out = render(rec);
    out.insert("api_token".into(), json!(tok.secret()));
    Ok(Value::Object(out))
}

fn load(core: &Core, ctx: &Ctx, uuid: &str) -> Result<Obj, Error> {
    let rec = match crate::db::table_of(uuid) {
        Some(Table::Tokens) => core.db.get(uuid)?,
        _ => None,
    };
    match rec {
        Some(r) if ctx.caller.is_admin || s(&r, "owner_uuid") == ctx.caller.user_uuid => Ok(r),
        _ => Err(Error::not_found("api_client_authorization", uuid)),
    }
}

pub fn current(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    match &ctx.caller.token_uuid {
        Some(u) => load(core, ctx, u).map(|r| Value::Object(render(r))),
        None => Ok(json!({
            "kind": "arvados#apiClientAuthorization",
            "uuid": null,
            "owner_uuid": ctx.caller.user_uuid,
            "scopes": ["all"],
            "expires_at": null,
        })),
    }
}

pub fn get(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    load(core, ctx, &ctx.id).map(|r| Value::Object(render(r)))
}

pub fn list(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let lp = ListParams::parse(&ctx.params)?;
    let recs = if ctx.caller.is_admin {
        core.db.all(Table::Tokens)?
    } else {
        let mut v = Vec::new();
        for c in core.db.children(&ctx.caller.user_uuid)? {
            if c.get(6..11) == Some("gj3su") {
                if let Some(r) = core.db.get(&c)? {
                    v.push(r);
                }
            }
        }
        v
    };
    let items: Vec<Obj> = recs
        .into_iter()
        .map(render)
        .filter(|r| crate::list::matches(&lp.filters, r))
        .collect();
    lp.page(items, "arvados#apiClientAuthorizationList", Ok)
}

pub fn update(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let body = body_obj(ctx, "api_client_authorization")?;
    check_keys(&body, &["scopes", "expires_at"], "api_client_authorization")?;
    let _g = core.lock();
    let cur = load(core, ctx, &ctx.id)?;
    let mut r = cur.clone();
    if let Some(sc) = parse_scopes(body.get("scopes"))? {
        r.insert("scopes".into(), json!(sc));
    }
    if let Some(e) = opt_time(&body, "expires_at", "api_client_authorization")? {
        r.insert(
            "expires_at".into(),
            e.map(Value::String).unwrap_or(Value::Null),
        );
    }
    if !ctx.caller.is_admin {
        let scopes: Vec<String> = r
            .get("scopes")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let exp = r
            .get("expires_at")
            .and_then(Value::as_str)
            .map(str::to_string);
        within_caller(ctx, &scopes, &exp)?;
    }
    core.touch(&mut r, &ctx.caller.user_uuid, &time::now());
    let mut ops = Vec::new();
    core.db
        .stage(&mut ops, Table::Tokens, Some(&cur), Some(&r))?;
    core.db.store.write(ops)?;
    Ok(Value::Object(render(r)))
}

/// Revokes a token: it stops working with the next request.
pub fn delete(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let _g = core.lock();
    let cur = load(core, ctx, &ctx.id)?;
    let mut ops = Vec::new();
    core.db.stage(&mut ops, Table::Tokens, Some(&cur), None)?;
    core.db.store.write(ops)?;
    Ok(Value::Object(render(cur)))
}
