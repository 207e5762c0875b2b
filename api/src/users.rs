//! `/arvados/v1/users`: create is admin-only; `current`; a user reads and edits its own
//! record; admins all.

use keep_format::UuidKind;
use serde_json::Value;

use crate::core::Core;
use crate::error::Error;
use crate::params::{Ctx, UserPatch};
use crate::perm::{Perms, MANAGE, READ};
use crate::records::{Common, Obj, Record, Token, User};

/// Applies `patch` to `u`.
fn apply(u: &mut User, patch: UserPatch) {
    if let Some(v) = patch.email {
        u.email = v;
    }
    if let Some(v) = patch.first_name {
        u.first_name = v;
    }
    if let Some(v) = patch.last_name {
        u.last_name = v;
    }
    if let Some(v) = patch.username {
        u.username = v;
    }
    if let Some(v) = patch.is_admin {
        u.is_admin = v;
    }
    if let Some(v) = patch.is_active {
        u.is_active = v;
    }
    if let Some(v) = patch.prefs {
        u.prefs = v;
    }
    u.set_full_name();
}

/// A new user record (not yet written).
pub fn new_user(uuid: &str, owner: &str, by: &str, username: &str, first: &str) -> User {
    let mut u = User {
        common: Common::new(uuid, owner, by),
        username: username.to_string(),
        email: None,
        first_name: first.to_string(),
        last_name: String::new(),
        full_name: String::new(),
        is_admin: false,
        is_active: true,
        prefs: Obj::new(),
    };
    u.set_full_name();
    u
}

pub fn create(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    if !ctx.caller.is_admin {
        return Err(Error::Forbidden(
            "only an admin may create users (ask your cluster's admin: keep user create)".into(),
        ));
    }
    let patch = UserPatch::parse(&ctx.params.object("user")?)?;
    let uuid = core.new_uuid(UuidKind::User)?;
    let mut u = new_user(&uuid, &core.system_user, &ctx.caller.user_uuid, "", "");
    apply(&mut u, patch);
    if u.username.is_empty() {
        return Err(Error::Unprocessable(
            "user.username is required, e.g. {\"user\": {\"username\": \"alice\"}}".into(),
        ));
    }
    u.touch(&ctx.caller.user_uuid);
    let _g = core.lock();
    if core.db.user_by_name(&u.username)?.is_some() {
        return Err(Error::Unprocessable(format!(
            "username {:?} is already taken (choose another)",
            u.username
        )));
    }
    core.db.put(None, &u)?;
    Ok(Value::Object(u.to_obj()))
}

fn load_readable(core: &Core, p: &Perms, uuid: &str) -> Result<User, Error> {
    match core.db.get::<User>(uuid)? {
        Some(u) if p.level(uuid)? >= READ => Ok(u),
        _ => Err(Error::not_found("user", uuid)),
    }
}

pub fn current(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    core.db
        .get::<User>(&ctx.caller.user_uuid)?
        .map(|u| Value::Object(u.to_obj()))
        .ok_or_else(|| Error::not_found("user", &ctx.caller.user_uuid))
}

pub fn get(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let p = Perms::new(core, &ctx.caller)?;
    load_readable(core, &p, &ctx.id).map(|u| Value::Object(u.to_obj()))
}

pub fn list(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let lp = ctx.params.list()?;
    let p = Perms::new(core, &ctx.caller)?;
    let mut items = Vec::new();
    for u in core.db.all::<User>()? {
        if p.level(u.uuid())? < READ {
            continue;
        }
        let o = u.to_obj();
        if crate::list::matches(&lp.filters, &o) {
            items.push(o);
        }
    }
    lp.page(items, "arvados#userList", Ok)
}

pub fn update(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let patch = UserPatch::parse(&ctx.params.object("user")?)?;
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
        let changes = [
            (
                "username",
                patch.username.as_ref().is_some_and(|v| *v != cur.username),
            ),
            (
                "is_admin",
                patch.is_admin.is_some_and(|v| v != cur.is_admin),
            ),
            (
                "is_active",
                patch.is_active.is_some_and(|v| v != cur.is_active),
            ),
        ];
        if let Some((k, _)) = changes.iter().find(|(_, changed)| *changed) {
            return Err(Error::Forbidden(format!(
                "only an admin may change user.{k}"
            )));
        }
    }
    if patch
        .owner_uuid
        .as_ref()
        .is_some_and(|o| *o != cur.common.owner_uuid)
    {
        return Err(Error::Unprocessable(
            "user.owner_uuid cannot be changed".into(),
        ));
    }
    let mut u = cur.clone();
    apply(&mut u, patch);
    if u.username != cur.username {
        if let Some(other) = core.db.user_by_name(&u.username)? {
            if other != ctx.id {
                return Err(Error::Unprocessable(format!(
                    "username {:?} is already taken (choose another)",
                    u.username
                )));
            }
        }
    }
    u.touch(&ctx.caller.user_uuid);
    core.db.put(Some(&cur), &u)?;
    Ok(Value::Object(u.to_obj()))
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
    core.db.stage(&mut ops, Some(&cur), None)?;
    // the user's tokens go with it
    for t in core.db.children_of::<Token>(&ctx.id)? {
        core.db.stage(&mut ops, Some(&t), None)?;
    }
    core.db.store.write(ops)?;
    Ok(Value::Object(cur.to_obj()))
}
