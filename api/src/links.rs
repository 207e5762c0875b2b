//! `/arvados/v1/links`: permission links (`can_read` < `can_write` < `can_manage`, from
//! a user or role to an object) and other link classes (tags and the like).

use keep_format::UuidKind;
use serde_json::{json, Value};

use crate::db::{s, table_of, Obj};
use crate::groups::check_owner_change;
use crate::http::{body_obj, check_keys, opt_str, Ctx};
use crate::list::ListParams;
use crate::perm::{level_of_name, Perms, MANAGE, READ, WRITE};
use crate::store::Table;
use crate::{time, Core, Error};

const WRITABLE: &[&str] = &[
    "link_class",
    "name",
    "tail_uuid",
    "head_uuid",
    "properties",
    "owner_uuid",
];

/// Checks a link's endpoints and the caller's right to make it.
fn check(core: &Core, p: &Perms, l: &Obj) -> Result<(), Error> {
    let class = s(l, "link_class");
    let head = s(l, "head_uuid");
    let tail = s(l, "tail_uuid");
    if class.is_empty() {
        return Err(Error::Unprocessable(
            "link.link_class is required (e.g. \"permission\")".into(),
        ));
    }
    let head_exists = match table_of(head) {
        Some(Table::Users) | Some(Table::Groups) | Some(Table::Collections) => {
            core.db.get(head)?.is_some()
        }
        _ => false,
    };
    if !head_exists || p.level(head)? < READ {
        return Err(Error::not_found("link.head_uuid", head));
    }
    if class == "permission" {
        if level_of_name(s(l, "name")).is_none() {
            return Err(Error::Unprocessable(format!(
                "a permission link's name must be can_read, can_write or can_manage, not {:?}",
                s(l, "name")
            )));
        }
        let tail_ok = match table_of(tail) {
            Some(Table::Users) => core.db.get(tail)?.is_some(),
            Some(Table::Groups) => core
                .db
                .get(tail)?
                .is_some_and(|g| s(&g, "group_class") == "role"),
            _ => false,
        };
        if !tail_ok {
            return Err(Error::Unprocessable(format!(
                "a permission link's tail_uuid must be a user or a role group; {tail:?} is neither"
            )));
        }
        if p.level(head)? < MANAGE {
            return Err(Error::Forbidden(format!(
                "you may not grant permissions on {head} (you need can_manage on it)"
            )));
        }
    } else if p.level(head)? < WRITE {
        return Err(Error::Forbidden(format!(
            "you may not link to {head} (you need can_write on it)"
        )));
    }
    Ok(())
}

fn apply(l: &mut Obj, patch: &Obj) -> Result<(), Error> {
    for k in ["link_class", "name", "tail_uuid", "head_uuid"] {
        if let Some(v) = opt_str(patch, k, "link")? {
            l.insert(k.into(), json!(v.unwrap_or_default()));
        }
    }
    match patch.get("properties") {
        None => {}
        Some(Value::Object(m)) => {
            l.insert("properties".into(), Value::Object(m.clone()));
        }
        Some(Value::Null) => {
            l.insert("properties".into(), json!({}));
        }
        Some(_) => {
            return Err(Error::Unprocessable(
                "link.properties must be an object".into(),
            ))
        }
    }
    Ok(())
}

pub fn create(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let patch = body_obj(ctx, "link")?;
    check_keys(&patch, WRITABLE, "link")?;
    if ctx.caller.anonymous {
        return Err(Error::Forbidden(
            "the anonymous user may not create anything".into(),
        ));
    }
    let _g = core.lock();
    let p = Perms::new(core, &ctx.caller)?;
    let uuid = core.new_uuid(UuidKind::Link)?;
    let mut l = core.new_record(&uuid, &ctx.caller.user_uuid, &ctx.caller.user_uuid);
    l.insert("properties".into(), json!({}));
    apply(&mut l, &patch)?;
    check(core, &p, &l)?;
    core.touch(&mut l, &ctx.caller.user_uuid, &time::now());
    let mut ops = Vec::new();
    core.db.stage(&mut ops, Table::Links, None, Some(&l))?;
    core.db.store.write(ops)?;
    Ok(Value::Object(l))
}

fn load(core: &Core, p: &Perms, uuid: &str) -> Result<(Obj, u8), Error> {
    let l = match table_of(uuid) {
        Some(Table::Links) => core.db.get(uuid)?,
        _ => None,
    };
    if let Some(l) = l {
        let lvl = p.level_obj(&l)?;
        if lvl >= READ {
            return Ok((l, lvl));
        }
    }
    Err(Error::not_found("link", uuid))
}

pub fn get(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let p = Perms::new(core, &ctx.caller)?;
    load(core, &p, &ctx.id).map(|(l, _)| Value::Object(l))
}

pub fn list(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let lp = ListParams::parse(&ctx.params)?;
    let p = Perms::new(core, &ctx.caller)?;
    let eq = |attr: &str| {
        lp.filters
            .iter()
            .find(|f| f.op == "=" && f.attr == attr)
            .and_then(|f| f.val.as_str().map(str::to_string))
    };
    let recs: Vec<Obj> = if let Some(h) = eq("head_uuid") {
        let mut v = Vec::new();
        for u in core.db.links_by_head(&h)? {
            v.extend(core.db.get(&u)?);
        }
        v
    } else if let Some(t) = eq("tail_uuid") {
        let mut v = Vec::new();
        for u in core.db.links_by_tail(&t)? {
            v.extend(core.db.get(&u)?);
        }
        v
    } else {
        core.db.all(Table::Links)?
    };
    let mut items = Vec::new();
    for l in recs {
        if p.level_obj(&l)? >= READ && crate::list::matches(&lp.filters, &l) {
            items.push(l);
        }
    }
    lp.page(items, "arvados#linkList", Ok)
}

pub fn update(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let patch = body_obj(ctx, "link")?;
    check_keys(&patch, WRITABLE, "link")?;
    let _g = core.lock();
    let p = Perms::new(core, &ctx.caller)?;
    let (cur, lvl) = load(core, &p, &ctx.id)?;
    if lvl < MANAGE && s(&cur, "owner_uuid") != ctx.caller.user_uuid {
        return Err(Error::Forbidden(format!(
            "you may not change link {} (you need can_manage on its head)",
            ctx.id
        )));
    }
    let mut l = cur.clone();
    apply(&mut l, &patch)?;
    if let Some(o) = patch.get("owner_uuid").and_then(Value::as_str) {
        if o != s(&cur, "owner_uuid") {
            check_owner_change(core, &p, &ctx.id, s(&cur, "owner_uuid"), o)?;
            l.insert("owner_uuid".into(), json!(o));
        }
    }
    check(core, &p, &l)?;
    core.touch(&mut l, &ctx.caller.user_uuid, &time::now());
    let mut ops = Vec::new();
    core.db
        .stage(&mut ops, Table::Links, Some(&cur), Some(&l))?;
    core.db.store.write(ops)?;
    Ok(Value::Object(l))
}

pub fn delete(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let _g = core.lock();
    let p = Perms::new(core, &ctx.caller)?;
    let (cur, lvl) = load(core, &p, &ctx.id)?;
    let own_membership = s(&cur, "tail_uuid") == ctx.caller.user_uuid;
    if lvl < MANAGE && s(&cur, "owner_uuid") != ctx.caller.user_uuid && !own_membership {
        return Err(Error::Forbidden(format!(
            "you may not delete link {} (you need can_manage on its head)",
            ctx.id
        )));
    }
    let mut ops = Vec::new();
    core.db.stage(&mut ops, Table::Links, Some(&cur), None)?;
    core.db.store.write(ops)?;
    Ok(Value::Object(cur))
}
