//! `/arvados/v1/groups`: projects, filter groups and roles (their `contents` are in
//! [`crate::contents`]).

use keep_format::UuidKind;
use serde_json::Value;

use crate::core::Core;
use crate::error::Error;
use crate::links::new_link;
use crate::params::{Ctx, GroupPatch};
use crate::perm::{Perms, READ, WRITE};
use crate::records::{Common, Group, GroupClass, Obj, Record, Trash};
use crate::rules::{check_level, check_new_owner, check_owner_change, unique_name};

/// Applies the simple attributes of `patch`.
fn apply(g: &mut Group, patch: &GroupPatch) {
    if let Some(n) = &patch.name {
        g.name = n.clone();
    }
    if let Some(d) = &patch.description {
        g.description = d.clone();
    }
    if let Some(p) = &patch.properties {
        g.properties = p.clone();
    }
    if let Some(t) = patch.trash_at {
        g.trash.trash_at = t;
    }
    if let Some(t) = patch.delete_at {
        g.trash.delete_at = t;
    }
}

/// A new group record (not yet written).
pub fn new_group(uuid: &str, owner: &str, by: &str, name: &str, class: GroupClass) -> Group {
    Group {
        common: Common::new(uuid, owner, by),
        name: name.to_string(),
        group_class: class,
        description: None,
        properties: Obj::new(),
        trash: Trash::NOT,
    }
}

pub fn create(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let patch = GroupPatch::parse(&ctx.params.object("group")?)?;
    if ctx.caller.anonymous {
        return Err(Error::Forbidden(
            "the anonymous user may not create anything".into(),
        ));
    }
    let class = patch.group_class.ok_or_else(|| {
        Error::Unprocessable(
            "group.group_class must be \"project\", \"filter\" or \"role\", got null".into(),
        )
    })?;
    if patch.name.is_none() {
        return Err(Error::Unprocessable("group.name is required".into()));
    }
    let ensure = ctx.params.flag("ensure_unique_name");
    let me = &ctx.caller.user_uuid;
    let _g = core.lock();
    let p = Perms::new(core, &ctx.caller)?;
    let owner = if class == GroupClass::Role {
        if patch
            .owner_uuid
            .as_ref()
            .is_some_and(|o| *o != core.system_user)
        {
            return Err(Error::Unprocessable(
                "a role is owned by the system user; its creator gets can_manage on it".into(),
            ));
        }
        core.system_user.clone()
    } else {
        let o = patch.owner_uuid.clone().unwrap_or_else(|| me.clone());
        check_new_owner(core, &p, &o)?;
        o
    };
    let uuid = core.new_uuid(UuidKind::Group)?;
    let mut g = new_group(&uuid, &owner, me, "", class);
    apply(&mut g, &patch);
    g.name = unique_name(core, &owner, &g.name, &uuid, ensure)?;
    g.touch(me);
    let mut ops = Vec::new();
    core.db.stage(&mut ops, None, Some(&g))?;
    if class == GroupClass::Role && !ctx.caller.is_admin {
        let lu = core.new_uuid(UuidKind::Link)?;
        let mut l = new_link(&lu, me, "permission", "can_manage", me, &uuid);
        l.touch(me);
        core.db.stage(&mut ops, None, Some(&l))?;
    }
    core.db.store.write(ops)?;
    Ok(Value::Object(g.render()))
}

/// A group the caller can read (trashed ones only with `include_trash`).
pub fn load(core: &Core, p: &Perms, uuid: &str, include_trash: bool) -> Result<Group, Error> {
    match core.db.get::<Group>(uuid)? {
        Some(g) if p.level(uuid)? >= READ && (include_trash || !p.trashed(uuid)?) => Ok(g),
        _ => Err(Error::not_found("group", uuid)),
    }
}

pub fn get(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let p = Perms::new(core, &ctx.caller)?;
    let g = load(core, &p, &ctx.id, ctx.params.flag("include_trash"))?;
    Ok(Value::Object(g.render()))
}

pub fn list(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let lp = ctx.params.list()?;
    let p = Perms::new(core, &ctx.caller)?;
    let mut items = Vec::new();
    for g in core.db.all::<Group>()? {
        if p.level(g.uuid())? < READ || (!lp.include_trash && p.trashed(g.uuid())?) {
            continue;
        }
        let o = g.render();
        if crate::list::matches(&lp.filters, &o) {
            items.push(o);
        }
    }
    lp.page(items, "arvados#groupList", Ok)
}

pub fn update(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let patch = GroupPatch::parse(&ctx.params.object("group")?)?;
    let ensure = ctx.params.flag("ensure_unique_name");
    let _g = core.lock();
    let p = Perms::new(core, &ctx.caller)?;
    let cur = load(core, &p, &ctx.id, true)?;
    check_level(&p, ctx.caller.anonymous, &ctx.id, WRITE, || {
        format!(
            "you may not change group {} (you need can_write on it)",
            ctx.id
        )
    })?;
    if patch.group_class.is_some_and(|c| c != cur.group_class) {
        return Err(Error::Unprocessable(
            "group.group_class cannot be changed".into(),
        ));
    }
    let mut g = cur.clone();
    apply(&mut g, &patch);
    if let Some(t) = patch.is_trashed {
        g.trash.set(t);
    }
    if let Some(o) = patch.owner_uuid.as_ref().filter(|o| *o != cur.owner()) {
        if cur.group_class == GroupClass::Role {
            return Err(Error::Unprocessable(
                "a role's owner cannot be changed".into(),
            ));
        }
        check_owner_change(core, &p, &ctx.id, cur.owner(), o)?;
        if p.is_ancestor_or_self(&ctx.id, o)? {
            return Err(Error::Unprocessable(format!(
                "cannot move {} into {o}: it is the group itself or one of its subprojects",
                ctx.id
            )));
        }
        g.common.owner_uuid = o.clone();
    }
    if !g.trash.is_trashed {
        g.name = unique_name(core, g.owner(), &g.name, &ctx.id, ensure)?;
    }
    g.touch(&ctx.caller.user_uuid);
    core.db.put(Some(&cur), &g)?;
    Ok(Value::Object(g.render()))
}

fn trash_or_untrash(core: &Core, ctx: &Ctx, trashed: bool) -> Result<Value, Error> {
    let ensure = ctx.params.flag("ensure_unique_name");
    let _g = core.lock();
    let p = Perms::new(core, &ctx.caller)?;
    let cur = load(core, &p, &ctx.id, true)?;
    check_level(&p, ctx.caller.anonymous, &ctx.id, WRITE, || {
        format!(
            "you may not trash or untrash group {} (you need can_write on it)",
            ctx.id
        )
    })?;
    let mut g = cur.clone();
    g.trash.set(trashed);
    if !trashed {
        g.name = unique_name(core, g.owner(), &g.name, &ctx.id, ensure)?;
    }
    g.touch(&ctx.caller.user_uuid);
    core.db.put(Some(&cur), &g)?;
    Ok(Value::Object(g.render()))
}

/// DELETE and POST …/trash: projects go to the trash (untrash brings them back).
pub fn trash(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    trash_or_untrash(core, ctx, true)
}

pub fn untrash(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    trash_or_untrash(core, ctx, false)
}
