//! `/arvados/v1/links`: permission links (`can_read` < `can_write` < `can_manage`, from
//! a user or role to an object) and other link classes (tags and the like).

use keep_format::UuidKind;
use serde_json::Value;

use crate::core::Core;
use crate::db::Any;
use crate::error::Error;
use crate::params::{Ctx, LinkPatch};
use crate::perm::{level_of_name, Perms, MANAGE, READ, WRITE};
use crate::records::{Common, GroupClass, Link, Obj, Record};
use crate::rules::check_owner_change;

/// Checks a link's endpoints and the caller's right to make it.
fn check(core: &Core, p: &Perms, l: &Link) -> Result<(), Error> {
    let head = &l.head_uuid;
    if l.link_class.is_empty() {
        return Err(Error::Unprocessable(
            "link.link_class is required (e.g. \"permission\")".into(),
        ));
    }
    let head_exists = matches!(
        UuidKind::of(head),
        Some(UuidKind::User | UuidKind::Group | UuidKind::Collection)
    ) && core.db.exists(head)?;
    if !head_exists || p.level(head)? < READ {
        return Err(Error::not_found("link.head_uuid", head));
    }
    if l.is_permission() {
        if level_of_name(l.name_str()).is_none() {
            return Err(Error::Unprocessable(format!(
                "a permission link's name must be can_read, can_write or can_manage, not {:?}",
                l.name_str()
            )));
        }
        let tail = l.tail_str();
        let tail_ok = match core.db.get_any(tail)? {
            Some(Any::User(_)) => true,
            Some(Any::Group(g)) => g.group_class == GroupClass::Role,
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

fn apply(l: &mut Link, patch: LinkPatch) {
    if let Some(v) = patch.link_class {
        l.link_class = v;
    }
    if let Some(v) = patch.name {
        l.name = Some(v);
    }
    if let Some(v) = patch.tail_uuid {
        l.tail_uuid = Some(v);
    }
    if let Some(v) = patch.head_uuid {
        l.head_uuid = v;
    }
    if let Some(v) = patch.properties {
        l.properties = v;
    }
}

/// A new link record (not yet written).
pub fn new_link(uuid: &str, by: &str, class: &str, name: &str, tail: &str, head: &str) -> Link {
    Link {
        common: Common::new(uuid, by, by),
        link_class: class.to_string(),
        name: Some(name.to_string()),
        tail_uuid: Some(tail.to_string()),
        head_uuid: head.to_string(),
        properties: Obj::new(),
    }
}

pub fn create(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let patch = LinkPatch::parse(&ctx.params.object("link")?)?;
    if ctx.caller.anonymous {
        return Err(Error::Forbidden(
            "the anonymous user may not create anything".into(),
        ));
    }
    let _g = core.lock();
    let p = Perms::new(core, &ctx.caller)?;
    let uuid = core.new_uuid(UuidKind::Link)?;
    let me = &ctx.caller.user_uuid;
    let mut l = Link {
        common: Common::new(&uuid, me, me),
        link_class: String::new(),
        name: None,
        tail_uuid: None,
        head_uuid: String::new(),
        properties: Obj::new(),
    };
    apply(&mut l, patch);
    check(core, &p, &l)?;
    l.touch(me);
    core.db.put(None, &l)?;
    Ok(Value::Object(l.to_obj()))
}

fn load(core: &Core, p: &Perms, uuid: &str) -> Result<(Link, u8), Error> {
    if let Some(l) = core.db.get::<Link>(uuid)? {
        let lvl = p.level_link(&l)?;
        if lvl >= READ {
            return Ok((l, lvl));
        }
    }
    Err(Error::not_found("link", uuid))
}

pub fn get(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let p = Perms::new(core, &ctx.caller)?;
    load(core, &p, &ctx.id).map(|(l, _)| Value::Object(l.to_obj()))
}

pub fn list(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let lp = ctx.params.list()?;
    let p = Perms::new(core, &ctx.caller)?;
    let recs = if let Some(h) = lp.eq("head_uuid") {
        core.db.links_by_head(&h)?
    } else if let Some(t) = lp.eq("tail_uuid") {
        core.db.links_by_tail(&t)?
    } else {
        core.db.all::<Link>()?
    };
    let mut items = Vec::new();
    for l in recs {
        if p.level_link(&l)? < READ {
            continue;
        }
        let o = l.to_obj();
        if crate::list::matches(&lp.filters, &o) {
            items.push(o);
        }
    }
    lp.page(items, "arvados#linkList", Ok)
}

pub fn update(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let patch = LinkPatch::parse(&ctx.params.object("link")?)?;
    let _g = core.lock();
    let p = Perms::new(core, &ctx.caller)?;
    let (cur, lvl) = load(core, &p, &ctx.id)?;
    if lvl < MANAGE && cur.owner() != ctx.caller.user_uuid {
        return Err(Error::Forbidden(format!(
            "you may not change link {} (you need can_manage on its head)",
            ctx.id
        )));
    }
    let mut l = cur.clone();
    let new_owner = patch.owner_uuid.clone();
    apply(&mut l, patch);
    if let Some(o) = new_owner.filter(|o| o != cur.owner()) {
        check_owner_change(core, &p, &ctx.id, cur.owner(), &o)?;
        l.common.owner_uuid = o;
    }
    check(core, &p, &l)?;
    l.touch(&ctx.caller.user_uuid);
    core.db.put(Some(&cur), &l)?;
    Ok(Value::Object(l.to_obj()))
}

pub fn delete(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let _g = core.lock();
    let p = Perms::new(core, &ctx.caller)?;
    let (cur, lvl) = load(core, &p, &ctx.id)?;
    let own_membership = cur.tail_str() == ctx.caller.user_uuid;
    if lvl < MANAGE && cur.owner() != ctx.caller.user_uuid && !own_membership {
        return Err(Error::Forbidden(format!(
            "you may not delete link {} (you need can_manage on its head)",
            ctx.id
        )));
    }
    let mut ops = Vec::new();
    core.db.stage(&mut ops, Some(&cur), None)?;
    core.db.store.write(ops)?;
    Ok(Value::Object(cur.to_obj()))
}
