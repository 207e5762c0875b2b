//! `/arvados/v1/users`: create is admin-only; `current`; a user reads and edits its own
//! record; admins all.

use keep_format::UuidKind;
use serde_json::{json, Value};

use crate::db::{s, Obj};
use crate::http::{body_obj, check_keys, opt_str, Ctx};
use crate::list::ListParams;
use crate::perm::{Perms, MANAGE, READ};
use crate::store::Table;
use crate::{time, Core, Error};

const WRITABLE: &[&str] = &[
    "username",
    "email",
    "first_name",
    "last_name",
    "is_admin",
    "is_active",
    "prefs",
    "owner_uuid",
    "full_name",
];
const ADMIN_ONLY: &[&str] = &["username", "is_admin", "is_active"];

fn check_username(u: &str) -> Result<(), Error> {
    let ok = !u.is_empty()
        && u.len() <= 64
        && u.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && u.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Unprocessable(format!(
            "username {u:?} must be 1-64 characters [A-Za-z0-9._-], starting with a letter or digit"
        )))
    }
}

fn full_name(u: &mut Obj) {
    let f = format!("{} {}", s(u, "first_name"), s(u, "last_name"));
    u.insert("full_name".into(), json!(f.trim()));
}

/// Applies the attributes of `patch` to `u`.
fn apply(u: &mut Obj, patch: &Obj) -> Result<(), Error> {
    for k in ["email", "first_name", "last_name"] {
        if let Some(v) = opt_str(patch, k, "user")? {
            u.insert(k.into(), v.map(Value::String).unwrap_or(Value::Null));
        }
    }
    if let Some(v) = opt_str(patch, "username", "user")? {
        let v = v.ok_or_else(|| Error::Unprocessable("user.username may not be null".into()))?;
        check_username(&v)?;
        u.insert("username".into(), json!(v));
    }
    for k in ["is_admin", "is_active"] {
        match patch.get(k) {
            None => {}
            Some(Value::Bool(b)) => {
                u.insert(k.into(), json!(b));
            }
            Some(other) => {
                return Err(Error::Unprocessable(format!(
                    "user.{k} must be true or false, got {other}"
                )))
            }
        }
    }
    match patch.get("prefs") {
        None => {}
        Some(Value::Object(m)) => {
            u.insert("prefs".into(), Value::Object(m.clone()));
        }
        Some(_) => return Err(Error::Unprocessable("user.prefs must be an object".into())),
    }
    full_name(u);
    Ok(())
}

pub fn create(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    if !ctx.caller.is_admin {
        return Err(Error::Forbidden(
            "only an admin may create users (ask your cluster's admin: keep user create)".into(),
        ));
    }
    let patch = body_obj(ctx, "user")?;
    check_keys(&patch, WRITABLE, "user")?;
    let uuid = core.new_uuid(UuidKind::User)?;
    let mut u = core.new_record(&uuid, &core.system_user, &ctx.caller.user_uuid);
    u.insert("email".into(), Value::Null);
    u.insert("first_name".into(), json!(""));
    u.insert("last_name".into(), json!(""));
    u.insert("is_admin".into(), json!(false));
    u.insert("is_active".into(), json!(true));
    u.insert("prefs".into(), json!({}));
    apply(&mut u, &patch)?;
    let username = s(&u, "username").to_string();
    if username.is_empty() {
        return Err(Error::Unprocessable(
            "user.username is required, e.g. {\"user\": {\"username\": \"alice\"}}".into(),
        ));
    }
    let now = time::now();
    core.touch(&mut u, &ctx.caller.user_uuid, &now);
    let _g = core.lock();
    if core.db.user_by_name(&username)?.is_some() {
        return Err(Error::Unprocessable(format!(
            "username {username:?} is already taken (choose another)"
        )));
    }
    let mut ops = Vec::new();
    core.db.stage(&mut ops, Table::Users, None, Some(&u))?;
    core.db.store.write(ops)?;
    Ok(Value::Object(u))
}

fn load_readable(core: &Core, p: &Perms, uuid: &str) -> Result<Obj, Error> {
    let u = match crate::db::table_of(uuid) {
        Some(Table::Users) => core.db.get(uuid)?,
        _ => None,
    };
    match u {
        Some(u) if p.level(uuid)? >= READ => Ok(u),
        _ => Err(Error::not_found("user", uuid)),
    }
}

pub fn current(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    core.db
        .get(&ctx.caller.user_uuid)?
        .map(Value::Object)
        .ok_or_else(|| Error::not_found("user", &ctx.caller.user_uuid))
}

pub fn get(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let p = Perms::new(core, &ctx.caller)?;
    load_readable(core, &p, &ctx.id).map(Value::Object)
}

pub fn list(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let lp = ListParams::parse(&ctx.params)?;
    let p = Perms::new(core, &ctx.caller)?;
    let mut items = Vec::new();
    for u in core.db.all(Table::Users)? {
        if p.level(s(&u, "uuid"))? >= READ && crate::list::matches(&lp.filters, &u) {
            items.push(u);
        }
    }
    lp.page(items, "arvados#userList", Ok)
}

pub fn update(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let patch = body_obj(ctx, "user")?;
    check_keys(&patch, WRITABLE, "user")?;
    let _g = core.lock();
    let p = Perms::new(core, &ctx.caller)?;
    let cur = load_readable(core, &p, &ctx.id)?;
    if p.level(&ctx.id)? < MANAGE || ctx.caller.anonymous {
        return Err(Error::Forbidden(format!(
            "you may not change user {} (only the user itself or an admin may)",
            ctx.id
        )));
    }
    if !ctx.caller.is_admin {
        for k in ADMIN_ONLY {
            if patch.get(*k).is_some_and(|v| Some(v) != cur.get(*k)) {
                return Err(Error::Forbidden(format!(
                    "only an admin may change user.{k}"
                )));
            }
        }
    }
    if patch
        .get("owner_uuid")
        .is_some_and(|v| v.as_str() != Some(s(&cur, "owner_uuid")))
    {
        return Err(Error::Unprocessable(
            "user.owner_uuid cannot be changed".into(),
        ));
    }
    let mut u = cur.clone();
    apply(&mut u, &patch)?;
    let username = s(&u, "username").to_string();
    if username != s(&cur, "username") {
        if let Some(other) = core.db.user_by_name(&username)? {
            if other != ctx.id {
                return Err(Error::Unprocessable(format!(
                    "username {username:?} is already taken (choose another)"
                )));
            }
        }
    }
    core.touch(&mut u, &ctx.caller.user_uuid, &time::now());
    let mut ops = Vec::new();
    core.db
        .stage(&mut ops, Table::Users, Some(&cur), Some(&u))?;
    core.db.store.write(ops)?;
    Ok(Value::Object(u))
}

pub fn delete(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let _g = core.lock();
    let p = Perms::new(core, &ctx.caller)?;
    let cur = load_readable(core, &p, &ctx.id)?;
    if !ctx.caller.is_admin {
        return Err(Error::Forbidden("only an admin may delete users".into()));
    }
    if ctx.id == core.system_user || ctx.id == core.anonymous_user {
        return Err(Error::Unprocessable(
            "the system and anonymous users cannot be deleted".into(),
        ));
    }
    let mut ops = Vec::new();
    core.db.stage(&mut ops, Table::Users, Some(&cur), None)?;
    // the user's tokens go with it
    for child in core.db.children(&ctx.id)? {
        if child.get(6..11) == Some("gj3su") {
            if let Some(t) = core.db.get(&child)? {
                core.db.stage(&mut ops, Table::Tokens, Some(&t), None)?;
            }
        }
    }
    core.db.store.write(ops)?;
    Ok(Value::Object(cur))
}
