//! `/arvados/v1/collections`: manifests checked (422 malformed, 403 unsigned), stored
//! normalized and unsigned, returned re-signed for the caller's token; every change
//! keeps the previous version; `replace_files` edits atomically ([`crate::replace`]).

use std::time::SystemTime;

use keep_format::{Hash, Manifest, Pdh, UuidKind};
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::core::Core;
use crate::error::Error;
use crate::params::{CollectionPatch, Ctx};
use crate::perm::{Perms, MANAGE, READ, WRITE};
use crate::records::{Collection, Obj, Record};
use crate::replace::{self, Sources};
use crate::rules::{check_new_owner, check_owner_change, unique_name};
use crate::store::{Op, Table};

/// Parses a manifest from a client and checks that it may name its blocks: every
/// locator (but the empty block's) must carry an unexpired signature for the caller's
/// token. 422 when malformed, 403 when unsigned.
pub fn check_manifest(core: &Core, caller: &Caller, text: &str) -> Result<Manifest, Error> {
    let m = Manifest::parse(text).map_err(|e| Error::input("manifest_text is malformed", e))?;
    let now = SystemTime::now();
    for l in m.blocks() {
        if l.size == 0 && l.hash == Hash::EMPTY {
            continue;
        }
        core.cfg.signer.verify(l, &caller.token, now).map_err(|e| {
            Error::Forbidden(format!(
                "manifest_text names block {}: {e}; a manifest may only name blocks whose locators were signed for your token (upload them with it, or fetch them from a collection you can read)",
                l.bare()
            ))
        })?;
    }
    Ok(m)
}

/// The form stored: normalized, every hint removed, checked to parse back to the same
/// collection (nothing is stored otherwise).
fn stored_text(m: &Manifest) -> Result<String, Error> {
    let mut m = m.clone();
    m.map_locators(|l| l.bare());
    m.to_checked_text()
        .map_err(|e| Error::input("manifest_text cannot be stored", e))
}

/// A stored manifest, parsed.
fn parse_stored(text: &str) -> Result<Manifest, Error> {
    Manifest::parse(text).map_err(|e| Error::stored("a stored manifest no longer parses", e))
}

/// `manifest_text` with every locator signed for `caller`.
fn signed_text(core: &Core, caller: &Caller, stored: &str) -> Result<String, Error> {
    if stored.is_empty() {
        return Ok(String::new());
    }
    let mut m = parse_stored(stored)?;
    let expiry = caller.signature_expiry(core.cfg.signer.ttl());
    m.map_locators(|l| core.cfg.signer.sign_until(l, &caller.token, expiry));
    Ok(m.to_text())
}

/// The stored (unsigned) manifest of a collection or past version.
fn stored_manifest(core: &Core, c: &Collection) -> Result<String, Error> {
    match &c.manifest_text {
        Some(t) => Ok(t.clone()),
        None => core.db.manifest(c.uuid()),
    }
}

/// The record with `manifest_text` signed for the caller (and `unsigned_manifest_text`).
pub fn render_full(core: &Core, caller: &Caller, c: &Collection) -> Result<Obj, Error> {
    let stored = stored_manifest(core, c)?;
    let mut o = c.render_meta();
    o.insert(
        "manifest_text".into(),
        json!(signed_text(core, caller, &stored)?),
    );
    o.insert("unsigned_manifest_text".into(), json!(stored));
    Ok(o)
}

fn set_manifest_fields(c: &mut Collection, m: &Manifest) {
    c.portable_data_hash = m.pdh().to_string();
    c.file_count = m.file_count();
    c.file_size_total = m.total_size();
}

/// Applies the plain attributes of `patch`.
fn apply(c: &mut Collection, patch: &CollectionPatch) {
    if let Some(n) = &patch.name {
        c.name = n.clone();
    }
    if let Some(d) = &patch.description {
        c.description = d.clone();
    }
    if let Some(p) = &patch.properties {
        c.properties = p.clone();
    }
    if let Some(t) = patch.trash_at {
        c.trash.trash_at = t;
    }
    if let Some(t) = patch.delete_at {
        c.trash.delete_at = t;
    }
    if let Some(t) = patch.is_trashed {
        c.trash.set(t);
    }
    if let Some(r) = &patch.replication_desired {
        c.replication_desired = r.clone();
    }
    if let Some(s) = &patch.storage_classes_desired {
        c.storage_classes_desired = s.clone();
    }
    if let Some(v) = patch.preserve_version {
        c.preserve_version = v;
    }
}

fn check_claimed_pdh(patch: &CollectionPatch, m: &Manifest) -> Result<(), Error> {
    if let Some(claimed) = &patch.portable_data_hash {
        let got = m.pdh().to_string();
        if *claimed != got {
            return Err(Error::Unprocessable(format!(
                "collection.portable_data_hash {claimed} does not match the manifest's {got} (leave it out; the server computes it)"
            )));
        }
    }
    Ok(())
}

/// A readable, untrashed collection (current or past version) with this PDH.
fn find_by_pdh(core: &Core, p: &Perms, pdh: &str) -> Result<Option<Collection>, Error> {
    for uuid in core.db.by_pdh(pdh)? {
        let Some(rec) = core.db.collection_or_version(&uuid)? else {
            continue;
        };
        if p.level(&uuid)? >= READ && !p.trashed(&uuid)? {
            return Ok(Some(rec));
        }
    }
    Ok(None)
}

/// The manifest of a readable collection with this PDH (a `replace_files` source).
fn manifest_by_pdh(core: &Core, p: &Perms, pdh: &Pdh, given: &str) -> Result<Manifest, Error> {
    let rec = find_by_pdh(core, p, &pdh.to_string())?
        .ok_or_else(|| Error::not_found("collection with portable data hash", given))?;
    parse_stored(&stored_manifest(core, &rec)?)
}

/// `replace_files` applied to `current`.
fn replaced(
    core: &Core,
    p: &Perms,
    current: &Manifest,
    request: Option<&Manifest>,
    ops: &[(String, String)],
) -> Result<Manifest, Error> {
    let by_pdh = |pdh: &Pdh, given: &str| manifest_by_pdh(core, p, pdh, given);
    replace::apply(
        &Sources {
            current,
            request,
            by_pdh: &by_pdh,
        },
        ops,
    )
}

pub fn create(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let patch = CollectionPatch::parse(&ctx.params.object("collection")?)?;
    if ctx.caller.anonymous {
        return Err(Error::Forbidden(
            "the anonymous user may not create anything".into(),
        ));
    }
    let text = patch.manifest_text.clone().flatten().unwrap_or_default();
    let req_m = check_manifest(core, &ctx.caller, &text)?;
    let replace = ctx.params.replace_files()?;
    let ensure = ctx.params.flag("ensure_unique_name");
    let me = &ctx.caller.user_uuid;
    let _g = core.lock();
    let p = Perms::new(core, &ctx.caller)?;
    let m = match &replace {
        Some(ops) => replaced(core, &p, &Manifest::new(), Some(&req_m), ops)?,
        None => {
            check_claimed_pdh(&patch, &req_m)?;
            req_m
        }
    };
    let owner = patch.owner_uuid.clone().unwrap_or_else(|| me.clone());
    check_new_owner(core, &p, &owner)?;
    let uuid = core.new_uuid(UuidKind::Collection)?;
    let mut c = Collection::new(&uuid, &owner, me);
    apply(&mut c, &patch);
    set_manifest_fields(&mut c, &m);
    if !c.trash.is_trashed {
        let name = unique_name(core, &owner, c.name_str(), &uuid, ensure)?;
        if !name.is_empty() {
            c.name = Some(name);
        }
    }
    c.touch(me);
    let stored = stored_text(&m)?;
    let mut ops = Vec::new();
    core.db.stage(&mut ops, None, Some(&c))?;
    ops.push(Op::Put(
        Table::Manifests,
        uuid.as_bytes().to_vec(),
        stored.into_bytes(),
    ));
    core.db.store.write(ops)?;
    render_full(core, &ctx.caller, &c).map(Value::Object)
}

/// A current collection or past version by UUID that the caller can read.
fn load(core: &Core, p: &Perms, uuid: &str, include_trash: bool) -> Result<Collection, Error> {
    match core.db.collection_or_version(uuid)? {
        Some(r) if p.level(uuid)? >= READ && (include_trash || !p.trashed(uuid)?) => Ok(r),
        _ => Err(Error::not_found("collection", uuid)),
    }
}

pub fn get(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    // `select` as in Arvados: without the manifest a get is cheap whatever the
    // collection's size (keep-web asks for the PDH alone on most requests)
    let lp = ctx.params.list()?;
    let full = lp.select.is_none()
        || lp.selected("manifest_text")
        || lp.selected("unsigned_manifest_text");
    let render = |c: &Collection| -> Result<Obj, Error> {
        match full {
            true => render_full(core, &ctx.caller, c),
            false => Ok(c.render_meta()),
        }
    };
    let p = Perms::new(core, &ctx.caller)?;
    if UuidKind::of(&ctx.id) == Some(UuidKind::Collection) {
        // a sharing link reads the collection as it is: not once it is trashed
        let include_trash = ctx.params.flag("include_trash") && ctx.caller.sees_history(&ctx.id);
        let c = load(core, &p, &ctx.id, include_trash)?;
        // as in Arvados: what the caller may do with it (keep-web refuses a write
        // before reading the body)
        let scoped_out = !crate::auth::scope_allows(
            &ctx.caller.scopes,
            "PATCH",
            &format!("/arvados/v1/collections/{}", ctx.id),
        );
        let level = if ctx.caller.anonymous || !c.is_current() || scoped_out {
            READ
        } else {
            p.level(&ctx.id)?
        };
        let mut o = render(&c)?;
        o.insert("can_write".into(), json!(level >= WRITE));
        o.insert("can_manage".into(), json!(level >= MANAGE));
        return Ok(Value::Object(lp.project(o)));
    }
    let pdh = Pdh::parse_loose(&ctx.id).map_err(|_| {
        Error::NotFound(format!(
            "{:?} is neither a collection UUID nor a portable data hash",
            ctx.id
        ))
    })?;
    let rec = find_by_pdh(core, &p, &pdh.to_string())?
        .ok_or_else(|| Error::not_found("collection with portable data hash", &ctx.id))?;
    let full = render(&rec)?;
    let mut out = Obj::new();
    out.insert("kind".into(), json!(UuidKind::Collection.arvados_kind()));
    out.insert("uuid".into(), Value::Null);
    for k in [
        "portable_data_hash",
        "manifest_text",
        "unsigned_manifest_text",
        "file_count",
        "file_size_total",
    ] {
        if let Some(v) = full.get(k) {
            out.insert(k.into(), v.clone());
        }
    }
    Ok(Value::Object(lp.project(out)))
}

/// The candidates of a list: through an index when a filter allows.
fn list_candidates(core: &Core, lp: &crate::list::ListParams) -> Result<Vec<Collection>, Error> {
    let mut recs = if let Some(owner) = lp.eq("owner_uuid") {
        core.db.children_of::<Collection>(&owner)?
    } else if let Some(pdh) = lp.eq("portable_data_hash") {
        let mut v = Vec::new();
        for c in core.db.by_pdh(&pdh)? {
            v.extend(core.db.get::<Collection>(&c)?);
        }
        v
    } else {
        core.db.all::<Collection>()?
    };
    if lp.include_old_versions {
        match lp.eq("current_version_uuid") {
            Some(cur) => recs.extend(core.db.versions(&cur)?),
            None => recs.extend(core.db.all_in::<Collection>(Table::Versions)?),
        }
    }
    Ok(recs)
}

pub fn list(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let lp = ctx.params.list()?;
    let p = Perms::new(core, &ctx.caller)?;
    let mut items = Vec::new();
    let mut recs = Vec::new();
    for c in list_candidates(core, &lp)? {
        let uuid = c.uuid();
        if p.level(uuid)? < READ || (!lp.include_trash && p.trashed(uuid)?) {
            continue;
        }
        let o = c.render_meta();
        if crate::list::matches(&lp.filters, &o) {
            items.push(o);
            recs.push(c);
        }
    }
    if !(lp.selected("manifest_text") || lp.selected("unsigned_manifest_text")) {
        return lp.page(items, "arvados#collectionList", Ok);
    }
    // the manifest is rendered for the page's items only
    let by_uuid: std::collections::HashMap<String, Collection> = recs
        .into_iter()
        .map(|c| (c.common.uuid.clone(), c))
        .collect();
    lp.page(items, "arvados#collectionList", |o| {
        let uuid = o.get("uuid").and_then(Value::as_str).unwrap_or("");
        match by_uuid.get(uuid) {
            Some(c) => render_full(core, &ctx.caller, c),
            None => Ok(o),
        }
    })
}

/// Every version of a collection, oldest first, the current one last.
pub fn versions(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    if !ctx.caller.sees_history(&ctx.id) {
        return Err(Error::Forbidden(format!(
            "this token shares collection {} as it is, not its history (its versions need a token whose scopes allow GET /arvados/v1/collections/{}/versions)",
            ctx.id, ctx.id
        )));
    }
    let p = Perms::new(core, &ctx.caller)?;
    let cur = load(core, &p, &ctx.id, true)?;
    let mut items: Vec<Value> = core
        .db
        .versions(cur.uuid())?
        .iter()
        .map(|v| Value::Object(v.render_meta()))
        .collect();
    items.push(Value::Object(cur.render_meta()));
    Ok(json!({
        "kind": "arvados#collectionList",
        "items_available": items.len(),
        "items": items,
    }))
}

/// Writes `new` over `cur`; with `keep_version`, `cur` (with `cur_text`) is kept as a
/// past version. `new_text`: the new manifest, if it changed.
fn commit(
    core: &Core,
    ctx: &Ctx,
    cur: &Collection,
    keep_version: Option<&str>,
    mut new: Collection,
    new_text: Option<String>,
) -> Result<Collection, Error> {
    let mut ops = Vec::new();
    if let Some(cur_text) = keep_version {
        let mut old = cur.clone();
        old.common.uuid = core.new_uuid(UuidKind::Collection)?;
        old.current_version_uuid = cur.common.uuid.clone();
        old.manifest_text = Some(cur_text.to_string());
        core.db
            .stage_in(&mut ops, Table::Versions, None, Some(&old))?;
        new.version = cur.version + 1;
    }
    new.touch(&ctx.caller.user_uuid);
    core.db.stage(&mut ops, Some(cur), Some(&new))?;
    if let Some(t) = new_text {
        ops.push(Op::Put(
            Table::Manifests,
            cur.common.uuid.as_bytes().to_vec(),
            t.into_bytes(),
        ));
    }
    core.db.store.write(ops)?;
    Ok(new)
}

fn load_current_for_write(core: &Core, ctx: &Ctx, p: &Perms) -> Result<Collection, Error> {
    let cur = load(core, p, &ctx.id, true)?;
    if !cur.is_current() {
        return Err(Error::Forbidden(format!(
            "{} is a past version of {}; past versions are read-only (change the current one)",
            ctx.id, cur.current_version_uuid
        )));
    }
    crate::rules::check_level(p, ctx.caller.anonymous, &ctx.id, WRITE, || {
        format!(
            "you may not change collection {} (you need can_write on it)",
            ctx.id
        )
    })?;
    Ok(cur)
}

/// Optimistic concurrency: change only the version the caller read, named by its PDH
/// (its content, `if_portable_data_hash`) or by its etag (any change, `if_etag`).
fn check_preconditions(ctx: &Ctx, cur: &Collection) -> Result<(), Error> {
    let checks = [
        (
            "if_portable_data_hash",
            "portable_data_hash",
            &cur.portable_data_hash,
        ),
        ("if_etag", "etag", &cur.common.etag),
    ];
    for (param, field, have) in checks {
        let Some(want) = ctx.params.str(param) else {
            continue;
        };
        let same = match field {
            "portable_data_hash" => Pdh::parse_loose(want).is_ok_and(|p| p.to_string() == *have),
            _ => want == have,
        };
        if !same {
            return Err(Error::PreconditionFailed(format!(
                "collection {} changed since you read it ({field} {have}, not {want}): read \
                 it again and retry",
                ctx.id
            )));
        }
    }
    Ok(())
}

/// The new manifest an update asks for (`None`: unchanged).
fn updated_manifest(
    core: &Core,
    p: &Perms,
    patch: &CollectionPatch,
    req_m: Option<Manifest>,
    replace: Option<&[(String, String)]>,
    cur_text: &str,
) -> Result<Option<Manifest>, Error> {
    match (replace, req_m) {
        (Some(ops), req_m) => {
            let cur_m = parse_stored(cur_text)?;
            replaced(core, p, &cur_m, req_m.as_ref(), ops).map(Some)
        }
        (None, Some(m)) => {
            check_claimed_pdh(patch, &m)?;
            Ok(Some(m))
        }
        (None, None) => Ok(None),
    }
}

pub fn update(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let patch = CollectionPatch::parse(&ctx.params.object("collection")?)?;
    let replace = ctx.params.replace_files()?;
    let req_m = match &patch.manifest_text {
        Some(t) => Some(check_manifest(
            core,
            &ctx.caller,
            t.as_deref().unwrap_or_default(),
        )?),
        None => None,
    };
    let ensure = ctx.params.flag("ensure_unique_name");
    let _g = core.lock();
    let p = Perms::new(core, &ctx.caller)?;
    let cur = load_current_for_write(core, ctx, &p)?;
    check_preconditions(ctx, &cur)?;
    let mut new = cur.clone();
    apply(&mut new, &patch);
    if let Some(o) = patch.owner_uuid.as_ref().filter(|o| *o != cur.owner()) {
        check_owner_change(core, &p, &ctx.id, cur.owner(), o)?;
        new.common.owner_uuid = o.clone();
    }
    let cur_text = core.db.manifest(&ctx.id)?;
    let new_m = updated_manifest(core, &p, &patch, req_m, replace.as_deref(), &cur_text)?;
    let new_text = match &new_m {
        Some(m) => {
            set_manifest_fields(&mut new, m);
            Some(stored_text(m)?)
        }
        None => None,
    };
    let renamed = new.name != cur.name || new.owner() != cur.owner() || cur.trash.is_trashed;
    if !new.trash.is_trashed && renamed {
        let name = unique_name(core, new.owner(), new.name_str(), &ctx.id, ensure)?;
        if !name.is_empty() {
            new.name = Some(name);
        }
    }
    let new_text = new_text.filter(|t| *t != cur_text);
    if new == cur && new_text.is_none() {
        return render_full(core, &ctx.caller, &cur).map(Value::Object);
    }
    let new = commit(core, ctx, &cur, Some(cur_text.as_str()), new, new_text)?;
    render_full(core, &ctx.caller, &new).map(Value::Object)
}

fn trash_or_untrash(core: &Core, ctx: &Ctx, trashed: bool) -> Result<Value, Error> {
    let ensure = ctx.params.flag("ensure_unique_name");
    let _g = core.lock();
    let p = Perms::new(core, &ctx.caller)?;
    let cur = load_current_for_write(core, ctx, &p)?;
    let mut new = cur.clone();
    new.trash.set(trashed);
    if !trashed {
        let name = unique_name(core, new.owner(), new.name_str(), &ctx.id, ensure)?;
        if !name.is_empty() {
            new.name = Some(name);
        }
    }
    let new = commit(core, ctx, &cur, None, new, None)?;
    Ok(Value::Object(new.render_meta()))
}

/// DELETE and POST …/trash: the collection goes to the trash (untrash brings it back).
pub fn trash(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    trash_or_untrash(core, ctx, true)
}

pub fn untrash(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    trash_or_untrash(core, ctx, false)
}
