//! `/arvados/v1/groups`: projects, filter groups and roles, and `contents`.

use std::collections::HashSet;

use keep_format::UuidKind;
use serde_json::{json, Value};

use crate::db::{b, s, table_of, Obj};
use crate::http::{body_obj, check_keys, check_name, opt_str, opt_time, Ctx};
use crate::list::{parse_filters, truthy, ListParams};
use crate::perm::{Perms, READ, WRITE};
use crate::store::Table;
use crate::{collections, time, Core, Error};

const WRITABLE: &[&str] = &[
    "name",
    "description",
    "group_class",
    "properties",
    "owner_uuid",
    "trash_at",
    "delete_at",
    "is_trashed",
];

/// How long a trashed project or collection is kept before it may be deleted for good.
pub const TRASH_LIFETIME_NS: i64 = 14 * 86_400 * 1_000_000_000;

/// Checks that the caller may put something in `owner` (a user, or a project).
pub fn check_new_owner(core: &Core, p: &Perms, owner: &str) -> Result<(), Error> {
    let rec = match table_of(owner) {
        Some(Table::Users) | Some(Table::Groups) => core.db.get(owner)?,
        _ => None,
    };
    let Some(rec) = rec else {
        return Err(Error::not_found("owner_uuid", owner));
    };
    if p.level(owner)? < READ {
        return Err(Error::not_found("owner_uuid", owner));
    }
    if table_of(owner) == Some(Table::Groups) && s(&rec, "group_class") != "project" {
        return Err(Error::Unprocessable(format!(
            "owner_uuid {owner} is a {} group; only users and projects can own things",
            s(&rec, "group_class")
        )));
    }
    if p.level(owner)? < WRITE {
        return Err(Error::Forbidden(format!(
            "you may not add things to {owner} (you need can_write on it)"
        )));
    }
    Ok(())
}

/// Checks that the caller may move `uuid` from `old` to `new`: an owner change needs
/// can_write on the old owner as well as on the new one, for every kind of object
/// (Arvados's rule; DESIGN §7: a writer cannot take an object from its owner).
pub fn check_owner_change(
    core: &Core,
    p: &Perms,
    uuid: &str,
    old: &str,
    new: &str,
) -> Result<(), Error> {
    check_new_owner(core, p, new)?;
    if p.level(old)? < WRITE {
        return Err(Error::Forbidden(format!(
            "you may not move {uuid} out of {old}: changing an owner needs can_write on the current owner as well as on the new one"
        )));
    }
    Ok(())
}

/// Returns `name`, or with `ensure` a free variant `name (2)`, `name (3)`…; refuses a
/// name another project or collection holds under `owner`.
pub fn unique_name(
    core: &Core,
    owner: &str,
    name: &str,
    me: &str,
    ensure: bool,
) -> Result<String, Error> {
    if name.is_empty() {
        return Ok(String::new());
    }
    let free = |n: &str| -> Result<bool, Error> {
        Ok(core.db.name_taken(owner, n)?.is_none_or(|u| u == me))
    };
    if free(name)? {
        return Ok(name.to_string());
    }
    if ensure {
        for i in 2..10_000 {
            let cand = format!("{name} ({i})");
            if free(&cand)? {
                return Ok(cand);
            }
        }
    }
    Err(Error::Unprocessable(format!(
        "the name {name:?} is already used by a project or collection in {owner} (choose another name, or pass ensure_unique_name=true)"
    )))
}

fn validate_filters(props: &Obj) -> Result<(), Error> {
    match props.get("filters") {
        None | Some(Value::Null) => Ok(()),
        Some(v @ Value::Array(_)) => parse_filters(v, "group.properties.filters").map(|_| ()),
        Some(other) => Err(Error::Unprocessable(format!(
            "group.properties.filters must be a list of [attr, op, value] triples, got {other}"
        ))),
    }
}

/// Applies the simple attributes of `patch`.
fn apply(g: &mut Obj, patch: &Obj) -> Result<(), Error> {
    if let Some(n) = opt_str(patch, "name", "group")? {
        let n = n.unwrap_or_default();
        check_name(&n, "group")?;
        if n.is_empty() {
            return Err(Error::Unprocessable("group.name may not be empty".into()));
        }
        g.insert("name".into(), json!(n));
    }
    if let Some(d) = opt_str(patch, "description", "group")? {
        g.insert(
            "description".into(),
            d.map(Value::String).unwrap_or(Value::Null),
        );
    }
    match patch.get("properties") {
        None => {}
        Some(Value::Object(m)) => {
            validate_filters(m)?;
            g.insert("properties".into(), Value::Object(m.clone()));
        }
        Some(Value::Null) => {
            g.insert("properties".into(), json!({}));
        }
        Some(_) => {
            return Err(Error::Unprocessable(
                "group.properties must be an object".into(),
            ))
        }
    }
    if let Some(t) = opt_time(patch, "trash_at", "group")? {
        g.insert(
            "trash_at".into(),
            t.map(Value::String).unwrap_or(Value::Null),
        );
    }
    if let Some(t) = opt_time(patch, "delete_at", "group")? {
        g.insert(
            "delete_at".into(),
            t.map(Value::String).unwrap_or(Value::Null),
        );
    }
    Ok(())
}

/// Output form: `is_trashed` reflects a `trash_at` that has passed.
pub fn render(mut g: Obj) -> Obj {
    if crate::perm::trash_due(&g) {
        g.insert("is_trashed".into(), json!(true));
    }
    g
}

pub fn create(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let patch = body_obj(ctx, "group")?;
    check_keys(&patch, WRITABLE, "group")?;
    if ctx.caller.anonymous {
        return Err(Error::Forbidden(
            "the anonymous user may not create anything".into(),
        ));
    }
    let class = patch
        .get("group_class")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !matches!(class, "project" | "filter" | "role") {
        return Err(Error::Unprocessable(format!(
            "group.group_class must be \"project\", \"filter\" or \"role\", got {:?}",
            patch.get("group_class").cloned().unwrap_or(Value::Null)
        )));
    }
    if !patch.get("name").is_some_and(|n| n.is_string()) {
        return Err(Error::Unprocessable("group.name is required".into()));
    }
    let ensure = truthy(ctx.params.get("ensure_unique_name"));
    let _g = core.lock();
    let p = Perms::new(core, &ctx.caller)?;
    let owner = if class == "role" {
        if patch
            .get("owner_uuid")
            .is_some_and(|o| o.as_str() != Some(&core.system_user))
        {
            return Err(Error::Unprocessable(
                "a role is owned by the system user; its creator gets can_manage on it".into(),
            ));
        }
        core.system_user.clone()
    } else {
        let o = patch
            .get("owner_uuid")
            .and_then(Value::as_str)
            .unwrap_or(&ctx.caller.user_uuid)
            .to_string();
        check_new_owner(core, &p, &o)?;
        o
    };
    let uuid = core.new_uuid(UuidKind::Group)?;
    let mut g = core.new_record(&uuid, &owner, &ctx.caller.user_uuid);
    g.insert("group_class".into(), json!(class));
    g.insert("description".into(), Value::Null);
    g.insert("properties".into(), json!({}));
    g.insert("trash_at".into(), Value::Null);
    g.insert("delete_at".into(), Value::Null);
    g.insert("is_trashed".into(), json!(false));
    apply(&mut g, &patch)?;
    let name = unique_name(core, &owner, s(&g, "name"), &uuid, ensure)?;
    g.insert("name".into(), json!(name));
    let now = time::now();
    core.touch(&mut g, &ctx.caller.user_uuid, &now);
    let mut ops = Vec::new();
    core.db.stage(&mut ops, Table::Groups, None, Some(&g))?;
    if class == "role" && !ctx.caller.is_admin {
        let lu = core.new_uuid(UuidKind::Link)?;
        let mut l = core.new_record(&lu, &ctx.caller.user_uuid, &ctx.caller.user_uuid);
        l.insert("link_class".into(), json!("permission"));
        l.insert("name".into(), json!("can_manage"));
        l.insert("tail_uuid".into(), json!(ctx.caller.user_uuid));
        l.insert("head_uuid".into(), json!(uuid));
        l.insert("properties".into(), json!({}));
        core.touch(&mut l, &ctx.caller.user_uuid, &now);
        core.db.stage(&mut ops, Table::Links, None, Some(&l))?;
    }
    core.db.store.write(ops)?;
    Ok(Value::Object(render(g)))
}

/// A group the caller can read (trashed ones only with `include_trash`).
fn load(core: &Core, p: &Perms, uuid: &str, include_trash: bool) -> Result<Obj, Error> {
    let g = match table_of(uuid) {
        Some(Table::Groups) => core.db.get(uuid)?,
        _ => None,
    };
    match g {
        Some(g) if p.level(uuid)? >= READ && (include_trash || !p.trashed(uuid)?) => Ok(g),
        _ => Err(Error::not_found("group", uuid)),
    }
}

pub fn get(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let p = Perms::new(core, &ctx.caller)?;
    let g = load(core, &p, &ctx.id, truthy(ctx.params.get("include_trash")))?;
    Ok(Value::Object(render(g)))
}

pub fn list(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let lp = ListParams::parse(&ctx.params)?;
    let p = Perms::new(core, &ctx.caller)?;
    let mut items = Vec::new();
    for g in core.db.all(Table::Groups)? {
        let uuid = s(&g, "uuid");
        if p.level(uuid)? < READ || (!lp.include_trash && p.trashed(uuid)?) {
            continue;
        }
        let g = render(g);
        if crate::list::matches(&lp.filters, &g) {
            items.push(g);
        }
    }
    lp.page(items, "arvados#groupList", Ok)
}

pub fn update(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let patch = body_obj(ctx, "group")?;
    check_keys(&patch, WRITABLE, "group")?;
    let ensure = truthy(ctx.params.get("ensure_unique_name"));
    let _g = core.lock();
    let p = Perms::new(core, &ctx.caller)?;
    let cur = load(core, &p, &ctx.id, true)?;
    if p.level(&ctx.id)? < WRITE || ctx.caller.anonymous {
        return Err(Error::Forbidden(format!(
            "you may not change group {} (you need can_write on it)",
            ctx.id
        )));
    }
    if patch
        .get("group_class")
        .is_some_and(|c| Some(c) != cur.get("group_class"))
    {
        return Err(Error::Unprocessable(
            "group.group_class cannot be changed".into(),
        ));
    }
    let mut g = cur.clone();
    apply(&mut g, &patch)?;
    if let Some(t) = patch.get("is_trashed") {
        let t = t
            .as_bool()
            .ok_or_else(|| Error::Unprocessable("group.is_trashed must be true or false".into()))?;
        set_trashed(&mut g, t);
    }
    if let Some(o) = patch.get("owner_uuid").and_then(Value::as_str) {
        if o != s(&cur, "owner_uuid") {
            if s(&cur, "group_class") == "role" {
                return Err(Error::Unprocessable(
                    "a role's owner cannot be changed".into(),
                ));
            }
            check_owner_change(core, &p, &ctx.id, s(&cur, "owner_uuid"), o)?;
            if p.is_ancestor_or_self(&ctx.id, o)? {
                return Err(Error::Unprocessable(format!(
                    "cannot move {} into {o}: it is the group itself or one of its subprojects",
                    ctx.id
                )));
            }
            g.insert("owner_uuid".into(), json!(o));
        }
    }
    if !b(&g, "is_trashed") {
        let name = unique_name(core, s(&g, "owner_uuid"), s(&g, "name"), &ctx.id, ensure)?;
        g.insert("name".into(), json!(name));
    }
    core.touch(&mut g, &ctx.caller.user_uuid, &time::now());
    let mut ops = Vec::new();
    core.db
        .stage(&mut ops, Table::Groups, Some(&cur), Some(&g))?;
    core.db.store.write(ops)?;
    Ok(Value::Object(render(g)))
}

pub fn set_trashed(o: &mut Obj, trashed: bool) {
    if trashed {
        let now = time::now_ns();
        if !b(o, "is_trashed") {
            o.insert("trash_at".into(), json!(time::format_ns(now)));
            o.insert(
                "delete_at".into(),
                json!(time::format_ns(now + TRASH_LIFETIME_NS)),
            );
        }
        o.insert("is_trashed".into(), json!(true));
    } else {
        o.insert("is_trashed".into(), json!(false));
        o.insert("trash_at".into(), Value::Null);
        o.insert("delete_at".into(), Value::Null);
    }
}

fn trash_or_untrash(core: &Core, ctx: &Ctx, trashed: bool) -> Result<Value, Error> {
    let ensure = truthy(ctx.params.get("ensure_unique_name"));
    let _g = core.lock();
    let p = Perms::new(core, &ctx.caller)?;
    let cur = load(core, &p, &ctx.id, true)?;
    if p.level(&ctx.id)? < WRITE || ctx.caller.anonymous {
        return Err(Error::Forbidden(format!(
            "you may not trash or untrash group {} (you need can_write on it)",
            ctx.id
        )));
    }
    let mut g = cur.clone();
    set_trashed(&mut g, trashed);
    if !trashed {
        let name = unique_name(core, s(&g, "owner_uuid"), s(&g, "name"), &ctx.id, ensure)?;
        g.insert("name".into(), json!(name));
    }
    core.touch(&mut g, &ctx.caller.user_uuid, &time::now());
    let mut ops = Vec::new();
    core.db
        .stage(&mut ops, Table::Groups, Some(&cur), Some(&g))?;
    core.db.store.write(ops)?;
    Ok(Value::Object(render(g)))
}

/// DELETE and POST …/trash: projects go to the trash (untrash brings them back).
pub fn trash(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    trash_or_untrash(core, ctx, true)
}

pub fn untrash(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    trash_or_untrash(core, ctx, false)
}

/// `GET /groups/<uuid>/contents` (or `/groups/contents?uuid=`): the collections and
/// projects/filter groups a user or project owns (`recursive=true`: the whole subtree),
/// or for a filter group everything readable that its `properties.filters` match.
pub fn contents(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let lp = ListParams::parse(&ctx.params)?;
    let p = Perms::new(core, &ctx.caller)?;
    let id = if ctx.id.is_empty() {
        ctx.params
            .get("uuid")
            .and_then(Value::as_str)
            .unwrap_or(&ctx.caller.user_uuid)
            .to_string()
    } else {
        ctx.id.clone()
    };
    let target = match table_of(&id) {
        Some(Table::Users) => core
            .db
            .get(&id)?
            .filter(|_| p.level(&id).is_ok_and(|l| l >= READ))
            .ok_or_else(|| Error::not_found("user", &id))?,
        Some(Table::Groups) => load(core, &p, &id, lp.include_trash)?,
        _ => return Err(Error::not_found("group", &id)),
    };
    let want_manifest = lp.selected("manifest_text") || lp.selected("unsigned_manifest_text");
    let mut items = Vec::new();
    let consider =
        |o: Obj, items: &mut Vec<Obj>, extra: &[crate::list::Filter]| -> Result<(), Error> {
            let uuid = s(&o, "uuid").to_string();
            if p.level(&uuid)? < READ || (!lp.include_trash && p.trashed(&uuid)?) {
                return Ok(());
            }
            let o = if uuid.get(6..11) == Some("j7d0g") {
                render(o)
            } else {
                collections::render_meta(o)
            };
            if crate::list::matches(extra, &o) && crate::list::matches(&lp.filters, &o) {
                items.push(o);
            }
            Ok(())
        };
    if s(&target, "group_class") == "filter" {
        let props = target.get("properties").and_then(Value::as_object);
        let null = Value::Null;
        let f = parse_filters(
            props.and_then(|m| m.get("filters")).unwrap_or(&null),
            "the filter group's properties.filters",
        )?;
        for g in core.db.all(Table::Groups)? {
            if matches!(s(&g, "group_class"), "project" | "filter") {
                consider(g, &mut items, &f)?;
            }
        }
        for c in core.db.all(Table::Collections)? {
            consider(c, &mut items, &f)?;
        }
    } else {
        let recursive = truthy(ctx.params.get("recursive"));
        let mut seen = HashSet::new();
        let mut queue = vec![id.clone()];
        seen.insert(id.clone());
        while let Some(owner) = queue.pop() {
            for child in core.db.children(&owner)? {
                let Some(t) = table_of(&child) else { continue };
                if t != Table::Groups && t != Table::Collections {
                    continue;
                }
                let Some(o) = core.db.get(&child)? else {
                    continue;
                };
                if t == Table::Groups && s(&o, "group_class") == "role" {
                    continue;
                }
                if recursive
                    && t == Table::Groups
                    && s(&o, "group_class") == "project"
                    && seen.insert(child.clone())
                {
                    queue.push(child.clone());
                }
                consider(o, &mut items, &[])?;
            }
        }
    }
    lp.page(items, "arvados#objectList", |o| {
        if want_manifest && s(&o, "uuid").get(6..11) == Some("4zz18") {
            collections::render_full(core, &ctx.caller, o)
        } else {
            Ok(o)
        }
    })
}
