//! `GET /groups/<uuid>/contents` (or `/groups/contents?uuid=`): the collections and
//! projects/filter groups a user or project owns (`recursive=true`: the whole subtree),
//! or for a filter group everything readable that its `properties.filters` match.

use std::collections::HashSet;

use serde_json::Value;

use crate::collections::render_full;
use crate::core::Core;
use crate::db::Any;
use crate::error::Error;
use crate::list::{parse_filters, Filter, ListParams};
use crate::params::Ctx;
use crate::perm::{Perms, READ};
use crate::records::{Collection, Group, GroupClass, Obj, Record};

/// What a contents listing gathers: items (as clients see them) and the collections
/// among them (to render their manifests when `select` asks).
struct Gathered<'a> {
    p: &'a Perms<'a>,
    lp: &'a ListParams,
    items: Vec<Obj>,
    collections: std::collections::HashMap<String, Collection>,
}

impl Gathered<'_> {
    /// Adds `r` if the caller may read it and it passes `extra` and the list's filters.
    fn consider(&mut self, r: Any, extra: &[Filter]) -> Result<(), Error> {
        let (uuid, o) = match &r {
            Any::Group(g) => (g.uuid().to_string(), g.render()),
            Any::Collection(c) => (c.uuid().to_string(), c.render_meta()),
            _ => return Ok(()),
        };
        if self.p.level(&uuid)? < READ || (!self.lp.include_trash && self.p.trashed(&uuid)?) {
            return Ok(());
        }
        if crate::list::matches(extra, &o) && crate::list::matches(&self.lp.filters, &o) {
            self.items.push(o);
            if let Any::Collection(c) = r {
                self.collections.insert(uuid, c);
            }
        }
        Ok(())
    }
}

/// The user or group whose contents are asked for, if the caller may read it.
fn target(core: &Core, p: &Perms, id: &str, include_trash: bool) -> Result<Option<Group>, Error> {
    match core.db.get_any(id)? {
        Some(Any::User(_)) if p.level(id).is_ok_and(|l| l >= READ) => Ok(None),
        Some(Any::User(_)) => Err(Error::not_found("user", id)),
        Some(Any::Group(_)) => crate::groups::load(core, p, id, include_trash).map(Some),
        _ => Err(Error::not_found("group", id)),
    }
}

/// A filter group's contents: every readable project, filter group and collection its
/// `properties.filters` match.
fn filter_group(core: &Core, g: &Group, out: &mut Gathered) -> Result<(), Error> {
    let f = parse_filters(
        g.properties.get("filters").unwrap_or(&Value::Null),
        "the filter group's properties.filters",
    )?;
    for g in core.db.all::<Group>()? {
        if g.group_class != GroupClass::Role {
            out.consider(Any::Group(g), &f)?;
        }
    }
    for c in core.db.all::<Collection>()? {
        out.consider(Any::Collection(c), &f)?;
    }
    Ok(())
}

/// What `id` owns (with `recursive`, what its subprojects own too); roles excluded.
fn owned(core: &Core, id: &str, recursive: bool, out: &mut Gathered) -> Result<(), Error> {
    let mut seen = HashSet::from([id.to_string()]);
    let mut queue = vec![id.to_string()];
    while let Some(owner) = queue.pop() {
        for child in core.db.children(&owner)? {
            match core.db.get_any(&child)? {
                Some(Any::Group(g)) if g.group_class == GroupClass::Role => {}
                Some(Any::Group(g)) => {
                    if recursive
                        && g.group_class == GroupClass::Project
                        && seen.insert(child.clone())
                    {
                        queue.push(child);
                    }
                    out.consider(Any::Group(g), &[])?;
                }
                Some(c @ Any::Collection(_)) => out.consider(c, &[])?,
                _ => {}
            }
        }
    }
    Ok(())
}

pub fn contents(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let lp = ctx.params.list()?;
    let p = Perms::new(core, &ctx.caller)?;
    let id = if ctx.id.is_empty() {
        ctx.params
            .str("uuid")
            .unwrap_or(&ctx.caller.user_uuid)
            .to_string()
    } else {
        ctx.id.clone()
    };
    let target = target(core, &p, &id, lp.include_trash)?;
    let mut out = Gathered {
        p: &p,
        lp: &lp,
        items: Vec::new(),
        collections: Default::default(),
    };
    match &target {
        Some(g) if g.group_class == GroupClass::Filter => filter_group(core, g, &mut out)?,
        _ => owned(core, &id, ctx.params.flag("recursive"), &mut out)?,
    }
    let Gathered {
        items, collections, ..
    } = out;
    let want_manifest = lp.selected("manifest_text") || lp.selected("unsigned_manifest_text");
    lp.page(items, "arvados#objectList", |o| {
        let uuid = o.get("uuid").and_then(Value::as_str).unwrap_or("");
        match collections.get(uuid) {
            Some(c) if want_manifest => render_full(core, &ctx.caller, c),
            _ => Ok(o),
        }
    })
}
