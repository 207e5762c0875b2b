//! `/arvados/v1/collections`: manifests checked (422 malformed, 403 unsigned), stored
//! normalized and unsigned, returned re-signed for the caller's token; every change
//! keeps the previous version; `replace_files` edits atomically.

use std::time::SystemTime;

use keep_format::{Hash, Manifest, Pdh, UuidKind};
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::db::{b, s, table_of, Obj};
use crate::groups::{check_new_owner, check_owner_change, set_trashed, unique_name};
use crate::http::{body_obj, check_keys, check_name, opt_str, opt_time, short, Ctx};
use crate::list::{truthy, ListParams};
use crate::perm::{Perms, MANAGE, READ, WRITE};
use crate::store::{Op, Table};
use crate::{time, Core, Error};

const WRITABLE: &[&str] = &[
    "owner_uuid",
    "name",
    "description",
    "properties",
    "manifest_text",
    "portable_data_hash",
    "trash_at",
    "delete_at",
    "is_trashed",
    "replication_desired",
    "storage_classes_desired",
    "preserve_version",
    // computed; accepted (and ignored) so that clients may send a record back
    "file_count",
    "file_size_total",
    "version",
    "current_version_uuid",
    "unsigned_manifest_text",
];

/// Parses a manifest from a client and checks that it may name its blocks: every
/// locator (but the empty block's) must carry an unexpired signature for the caller's
/// token. 422 when malformed, 403 when unsigned.
pub fn check_manifest(core: &Core, caller: &Caller, text: &str) -> Result<Manifest, Error> {
    let m = Manifest::parse(text)
        .map_err(|e| Error::Unprocessable(format!("manifest_text is malformed: {e}")))?;
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

/// The form stored: normalized, every hint removed.
fn stored_text(m: &Manifest) -> String {
    let mut m = m.clone();
    m.map_locators(|l| l.bare());
    m.to_text()
}

/// `manifest_text` with every locator signed for `caller`.
fn signed_text(core: &Core, caller: &Caller, stored: &str) -> Result<String, Error> {
    if stored.is_empty() {
        return Ok(String::new());
    }
    let mut m = Manifest::parse(stored)
        .map_err(|e| Error::Store(format!("a stored manifest no longer parses: {e}")))?;
    let expiry = caller.signature_expiry(core.cfg.signer.ttl());
    m.map_locators(|l| core.cfg.signer.sign_until(l, &caller.token, expiry));
    Ok(m.to_text())
}

/// The record without its manifest (lists).
pub fn render_meta(mut o: Obj) -> Obj {
    o.remove("manifest_text");
    if crate::perm::trash_due(&o) {
        o.insert("is_trashed".into(), json!(true));
    }
    o
}

/// The record with `manifest_text` signed for the caller (and `unsigned_manifest_text`).
pub fn render_full(core: &Core, caller: &Caller, mut o: Obj) -> Result<Obj, Error> {
    let stored = match o.remove("manifest_text") {
        Some(Value::String(t)) => t,
        _ => core.db.manifest(s(&o, "uuid"))?,
    };
    let mut o = render_meta(o);
    o.insert(
        "manifest_text".into(),
        json!(signed_text(core, caller, &stored)?),
    );
    o.insert("unsigned_manifest_text".into(), json!(stored));
    Ok(o)
}

fn set_manifest_fields(o: &mut Obj, m: &Manifest) {
    o.insert("portable_data_hash".into(), json!(m.pdh().to_string()));
    o.insert("file_count".into(), json!(m.file_count()));
    o.insert("file_size_total".into(), json!(m.total_size()));
}

/// Applies the plain attributes of `patch`.
fn apply(o: &mut Obj, patch: &Obj) -> Result<(), Error> {
    if let Some(n) = opt_str(patch, "name", "collection")? {
        if let Some(n) = &n {
            check_name(n, "collection")?;
        }
        o.insert("name".into(), n.map(Value::String).unwrap_or(Value::Null));
    }
    if let Some(d) = opt_str(patch, "description", "collection")? {
        o.insert(
            "description".into(),
            d.map(Value::String).unwrap_or(Value::Null),
        );
    }
    match patch.get("properties") {
        None => {}
        Some(Value::Object(m)) => {
            o.insert("properties".into(), Value::Object(m.clone()));
        }
        Some(Value::Null) => {
            o.insert("properties".into(), json!({}));
        }
        Some(other) => {
            return Err(Error::Unprocessable(format!(
                "collection.properties must be an object, got {}",
                short(other)
            )))
        }
    }
    for k in ["trash_at", "delete_at"] {
        if let Some(t) = opt_time(patch, k, "collection")? {
            o.insert(k.into(), t.map(Value::String).unwrap_or(Value::Null));
        }
    }
    if let Some(t) = patch.get("is_trashed") {
        let t = t.as_bool().ok_or_else(|| {
            Error::Unprocessable("collection.is_trashed must be true or false".into())
        })?;
        set_trashed(o, t);
    }
    match patch.get("replication_desired") {
        None => {}
        Some(v @ (Value::Null | Value::Number(_))) => {
            o.insert("replication_desired".into(), v.clone());
        }
        Some(other) => {
            return Err(Error::Unprocessable(format!(
                "collection.replication_desired must be a number or null, got {other}"
            )))
        }
    }
    match patch.get("storage_classes_desired") {
        None => {}
        Some(v @ Value::Array(_)) => {
            o.insert("storage_classes_desired".into(), v.clone());
        }
        Some(_) => {
            return Err(Error::Unprocessable(
                "collection.storage_classes_desired must be a list".into(),
            ))
        }
    }
    if let Some(v) = patch.get("preserve_version") {
        o.insert("preserve_version".into(), json!(truthy(Some(v))));
    }
    Ok(())
}

fn check_claimed_pdh(patch: &Obj, m: &Manifest) -> Result<(), Error> {
    if let Some(claimed) = patch.get("portable_data_hash").and_then(Value::as_str) {
        let got = m.pdh().to_string();
        if claimed != got {
            return Err(Error::Unprocessable(format!(
                "collection.portable_data_hash {claimed} does not match the manifest's {got} (leave it out; the server computes it)"
            )));
        }
    }
    Ok(())
}

fn replace_files_param(ctx: &Ctx) -> Result<Option<Vec<(String, String)>>, Error> {
    match ctx.params.get("replace_files") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => {
            let mut out = Vec::new();
            for (k, v) in m {
                let v = v.as_str().ok_or_else(|| {
                    Error::Unprocessable(format!(
                        "replace_files[{k:?}] must be a string source like \"current/path\", \"manifest_text/path\", \"<pdh>/path\" or \"\""
                    ))
                })?;
                out.push((k.clone(), v.to_string()));
            }
            out.sort();
            Ok(Some(out))
        }
        Some(other) => Err(Error::Unprocessable(format!(
            "replace_files must be an object {{\"/target\": \"source\"}}, got {}",
            short(other)
        ))),
    }
}

fn norm_path(p: &str) -> String {
    p.trim_matches('/').to_string()
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}/{b}"),
    }
}

/// Copies the file or directory `sp` of `src` to `dp` in `dst` (keep-format has no
/// subtree copy; this is it).
pub fn copy_subtree(src: &Manifest, sp: &str, dst: &mut Manifest, dp: &str) -> Result<bool, Error> {
    let runs = |f: &keep_format::ManifestFile| -> Vec<(keep_format::Locator, u64, u64)> {
        f.segments
            .iter()
            .map(|seg| {
                (
                    src.blocks()[seg.block as usize].clone(),
                    seg.offset,
                    seg.len,
                )
            })
            .collect()
    };
    if !sp.is_empty() {
        if let Some(f) = src.file(sp) {
            if dp.is_empty() {
                return Err(Error::Unprocessable(format!(
                    "replace_files: cannot replace the collection root with the file {sp:?}"
                )));
            }
            dst.put_file(dp, runs(f))?;
            return Ok(true);
        }
        if !src.is_dir(sp) {
            return Ok(false);
        }
    }
    let prefix = if sp.is_empty() {
        String::new()
    } else {
        format!("{sp}/")
    };
    for (path, f) in src.files().range(prefix.clone()..) {
        let Some(rest) = path.strip_prefix(&prefix) else {
            break;
        };
        dst.put_file(&join(dp, rest), runs(f))?;
    }
    for d in src.explicit_dirs().range(prefix.clone()..) {
        let Some(rest) = d.strip_prefix(&prefix) else {
            break;
        };
        dst.put_dir(&join(dp, rest))?;
    }
    if !dp.is_empty() && !dst.is_dir(dp) {
        dst.put_dir(dp)?;
    }
    Ok(true)
}

/// Applies `replace_files` to `cur`: every target is first removed, then filled from its
/// source (the request's manifest_text, the current version, or a readable PDH).
fn apply_replace(
    core: &Core,
    p: &Perms,
    cur: &Manifest,
    req: Option<&Manifest>,
    ops: &[(String, String)],
) -> Result<Manifest, Error> {
    let mut out = cur.clone();
    for (dst, _) in ops {
        if !dst.starts_with('/') {
            return Err(Error::Unprocessable(format!(
                "replace_files target {dst:?} must start with \"/\""
            )));
        }
        let dp = norm_path(dst);
        if dp.is_empty() {
            out = Manifest::new();
        } else {
            out.remove(&dp);
            // as in any file system, a directory stays when its last entry goes
            if let Some((parent, _)) = dp.rsplit_once('/') {
                if cur.is_dir(parent) && !out.is_dir(parent) {
                    out.put_dir(parent)?;
                }
            }
        }
    }
    for (dst, src) in ops {
        if src.is_empty() {
            continue;
        }
        let dp = norm_path(dst);
        let (root, sp) = match src.split_once('/') {
            Some((r, rest)) => (r, norm_path(rest)),
            None => (src.as_str(), String::new()),
        };
        let pdh_source;
        let source: &Manifest = match root {
            "manifest_text" => req.ok_or_else(|| {
                Error::Unprocessable(format!(
                    "replace_files source {src:?} needs a manifest_text in the request"
                ))
            })?,
            "current" => cur,
            other => {
                let pdh = Pdh::parse_loose(other).map_err(|_| {
                    Error::Unprocessable(format!(
                        "replace_files source {src:?} must start with \"current/\", \"manifest_text/\" or a portable data hash"
                    ))
                })?;
                let rec = find_by_pdh(core, p, &pdh.to_string())?
                    .ok_or_else(|| Error::not_found("collection with portable data hash", other))?;
                let text = match rec.get("manifest_text") {
                    Some(Value::String(t)) => t.clone(),
                    _ => core.db.manifest(s(&rec, "uuid"))?,
                };
                pdh_source = Manifest::parse(&text).map_err(|e| {
                    Error::Store(format!("a stored manifest no longer parses: {e}"))
                })?;
                &pdh_source
            }
        };
        if !copy_subtree(source, &sp, &mut out, &dp)? {
            return Err(Error::Unprocessable(format!(
                "replace_files source {src:?} does not exist"
            )));
        }
    }
    Ok(out)
}

/// A readable, untrashed collection (current or past version) with this PDH.
fn find_by_pdh(core: &Core, p: &Perms, pdh: &str) -> Result<Option<Obj>, Error> {
    for uuid in core.db.by_pdh(pdh)? {
        let rec = match core.db.get(&uuid)? {
            Some(r) => Some(r),
            None => core.db.get_in(Table::Versions, &uuid)?,
        };
        let Some(rec) = rec else { continue };
        if p.level(&uuid)? >= READ && !p.trashed(&uuid)? {
            return Ok(Some(rec));
        }
    }
    Ok(None)
}

pub fn create(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let patch = body_obj(ctx, "collection")?;
    check_keys(&patch, WRITABLE, "collection")?;
    if ctx.caller.anonymous {
        return Err(Error::Forbidden(
            "the anonymous user may not create anything".into(),
        ));
    }
    let text = opt_str(&patch, "manifest_text", "collection")?
        .flatten()
        .unwrap_or_default();
    let req_m = check_manifest(core, &ctx.caller, &text)?;
    let replace = replace_files_param(ctx)?;
    let ensure = truthy(ctx.params.get("ensure_unique_name"));
    let _g = core.lock();
    let p = Perms::new(core, &ctx.caller)?;
    let m = match &replace {
        Some(ops) => apply_replace(core, &p, &Manifest::new(), Some(&req_m), ops)?,
        None => {
            check_claimed_pdh(&patch, &req_m)?;
            req_m
        }
    };
    let owner = patch
        .get("owner_uuid")
        .and_then(Value::as_str)
        .unwrap_or(&ctx.caller.user_uuid)
        .to_string();
    check_new_owner(core, &p, &owner)?;
    let uuid = core.new_uuid(UuidKind::Collection)?;
    let mut o = core.new_record(&uuid, &owner, &ctx.caller.user_uuid);
    o.insert("name".into(), Value::Null);
    o.insert("description".into(), Value::Null);
    o.insert("properties".into(), json!({}));
    o.insert("trash_at".into(), Value::Null);
    o.insert("delete_at".into(), Value::Null);
    o.insert("is_trashed".into(), json!(false));
    o.insert("replication_desired".into(), Value::Null);
    o.insert("storage_classes_desired".into(), json!(["default"]));
    o.insert("preserve_version".into(), json!(false));
    o.insert("version".into(), json!(1));
    o.insert("current_version_uuid".into(), json!(uuid));
    apply(&mut o, &patch)?;
    set_manifest_fields(&mut o, &m);
    if !b(&o, "is_trashed") {
        let name = unique_name(core, &owner, s(&o, "name"), &uuid, ensure)?;
        if !name.is_empty() {
            o.insert("name".into(), json!(name));
        }
    }
    core.touch(&mut o, &ctx.caller.user_uuid, &time::now());
    let stored = stored_text(&m);
    let mut ops = Vec::new();
    core.db
        .stage(&mut ops, Table::Collections, None, Some(&o))?;
    ops.push(Op::Put(
        Table::Manifests,
        uuid.as_bytes().to_vec(),
        stored.clone().into_bytes(),
    ));
    core.db.store.write(ops)?;
    o.insert("manifest_text".into(), json!(stored));
    render_full(core, &ctx.caller, o).map(Value::Object)
}

/// A current collection or past version by UUID that the caller can read.
fn load(core: &Core, p: &Perms, uuid: &str, include_trash: bool) -> Result<Obj, Error> {
    let rec = match table_of(uuid) {
        Some(Table::Collections) => match core.db.get(uuid)? {
            Some(r) => Some(r),
            None => core.db.get_in(Table::Versions, uuid)?,
        },
        _ => None,
    };
    match rec {
        Some(r) if p.level(uuid)? >= READ && (include_trash || !p.trashed(uuid)?) => Ok(r),
        _ => Err(Error::not_found("collection", uuid)),
    }
}

pub fn get(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    // `select` as in Arvados: without the manifest a get is cheap whatever the
    // collection's size (keep-web asks for the PDH alone on most requests)
    let lp = ListParams::parse(&ctx.params)?;
    let full = lp.select.is_none()
        || lp.selected("manifest_text")
        || lp.selected("unsigned_manifest_text");
    let render = |o: Obj| -> Result<Obj, Error> {
        match full {
            true => render_full(core, &ctx.caller, o),
            false => Ok(render_meta(o)),
        }
    };
    let p = Perms::new(core, &ctx.caller)?;
    if table_of(&ctx.id) == Some(Table::Collections) {
        // a sharing link reads the collection as it is: not once it is trashed
        let include_trash =
            truthy(ctx.params.get("include_trash")) && ctx.caller.sees_history(&ctx.id);
        let o = load(core, &p, &ctx.id, include_trash)?;
        // as in Arvados: what the caller may do with it (keep-web refuses a write
        // before reading the body)
        let current = s(&o, "current_version_uuid") == s(&o, "uuid");
        let scoped_out = !crate::auth::scope_allows(
            &ctx.caller.scopes,
            "PATCH",
            &format!("/arvados/v1/collections/{}", ctx.id),
        );
        let level = if ctx.caller.anonymous || !current || scoped_out {
            READ
        } else {
            p.level(&ctx.id)?
        };
        let mut o = render(o)?;
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
    let full = render(rec)?;
    let mut out = Obj::new();
    out.insert("kind".into(), json!("arvados#collection"));
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

pub fn list(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let lp = ListParams::parse(&ctx.params)?;
    let p = Perms::new(core, &ctx.caller)?;
    let eq = |attr: &str| {
        lp.filters
            .iter()
            .find(|f| f.op == "=" && (f.attr == attr || f.attr == format!("collections.{attr}")))
            .and_then(|f| f.val.as_str().map(str::to_string))
    };
    let mut recs = Vec::new();
    if let Some(owner) = eq("owner_uuid") {
        for c in core.db.children(&owner)? {
            if table_of(&c) == Some(Table::Collections) {
                if let Some(r) = core.db.get(&c)? {
                    recs.push(r);
                }
            }
        }
    } else if let Some(pdh) = eq("portable_data_hash") {
        for c in core.db.by_pdh(&pdh)? {
            if let Some(r) = core.db.get(&c)? {
                recs.push(r);
            }
        }
    } else {
        recs = core.db.all(Table::Collections)?;
    }
    if lp.include_old_versions {
        if let Some(cur) = eq("current_version_uuid") {
            for v in core.db.versions(&cur)? {
                if let Some(r) = core.db.get_in(Table::Versions, &v)? {
                    recs.push(r);
                }
            }
        } else {
            recs.extend(core.db.all(Table::Versions)?);
        }
    }
    let mut items = Vec::new();
    for r in recs {
        let uuid = s(&r, "uuid");
        if p.level(uuid)? < READ || (!lp.include_trash && p.trashed(uuid)?) {
            continue;
        }
        let r = render_meta(r);
        if crate::list::matches(&lp.filters, &r) {
            items.push(r);
        }
    }
    let full = lp.selected("manifest_text") || lp.selected("unsigned_manifest_text");
    lp.page(items, "arvados#collectionList", |o| {
        if full {
            render_full(core, &ctx.caller, o)
        } else {
            Ok(o)
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
    let mut items = Vec::new();
    for v in core.db.versions(s(&cur, "uuid"))? {
        if let Some(r) = core.db.get_in(Table::Versions, &v)? {
            items.push(Value::Object(render_meta(r)));
        }
    }
    items.push(Value::Object(render_meta(cur)));
    Ok(json!({
        "kind": "arvados#collectionList",
        "items_available": items.len(),
        "items": items,
    }))
}

/// Writes `new` over `cur`, keeping `cur` (with `cur_text`) as a past version.
fn commit(
    core: &Core,
    ctx: &Ctx,
    cur: &Obj,
    cur_text: &str,
    mut new: Obj,
    new_text: Option<String>,
    keep_version: bool,
) -> Result<Obj, Error> {
    let uuid = s(cur, "uuid").to_string();
    let mut ops = Vec::new();
    if keep_version {
        let mut old = cur.clone();
        let vu = core.new_uuid(UuidKind::Collection)?;
        old.insert("uuid".into(), json!(vu));
        old.insert("current_version_uuid".into(), json!(uuid));
        old.insert("manifest_text".into(), json!(cur_text));
        core.db.stage(&mut ops, Table::Versions, None, Some(&old))?;
        let v = cur.get("version").and_then(Value::as_u64).unwrap_or(1);
        new.insert("version".into(), json!(v + 1));
    }
    core.touch(&mut new, &ctx.caller.user_uuid, &time::now());
    core.db
        .stage(&mut ops, Table::Collections, Some(cur), Some(&new))?;
    if let Some(t) = &new_text {
        ops.push(Op::Put(
            Table::Manifests,
            uuid.as_bytes().to_vec(),
            t.clone().into_bytes(),
        ));
    }
    core.db.store.write(ops)?;
    Ok(new)
}

fn load_current_for_write(core: &Core, ctx: &Ctx, p: &Perms) -> Result<Obj, Error> {
    let cur = load(core, p, &ctx.id, true)?;
    if s(&cur, "current_version_uuid") != s(&cur, "uuid") {
        return Err(Error::Forbidden(format!(
            "{} is a past version of {}; past versions are read-only (change the current one)",
            ctx.id,
            s(&cur, "current_version_uuid")
        )));
    }
    if p.level(&ctx.id)? < WRITE || ctx.caller.anonymous {
        return Err(Error::Forbidden(format!(
            "you may not change collection {} (you need can_write on it)",
            ctx.id
        )));
    }
    Ok(cur)
}

pub fn update(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    let patch = body_obj(ctx, "collection")?;
    check_keys(&patch, WRITABLE, "collection")?;
    let replace = replace_files_param(ctx)?;
    let req_m = match opt_str(&patch, "manifest_text", "collection")? {
        Some(t) => Some(check_manifest(core, &ctx.caller, &t.unwrap_or_default())?),
        None => None,
    };
    let ensure = truthy(ctx.params.get("ensure_unique_name"));
    let _g = core.lock();
    let p = Perms::new(core, &ctx.caller)?;
    let cur = load_current_for_write(core, ctx, &p)?;
    // optimistic concurrency: change only the version the caller read, named by its
    // PDH (its content) or by its etag (any change, properties too)
    for (param, field) in [
        ("if_portable_data_hash", "portable_data_hash"),
        ("if_etag", "etag"),
    ] {
        let Some(want) = ctx.params.get(param).and_then(Value::as_str) else {
            continue;
        };
        let have = s(&cur, field);
        let same = match field {
            "portable_data_hash" => Pdh::parse_loose(want).is_ok_and(|p| p.to_string() == have),
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
    let mut new = cur.clone();
    apply(&mut new, &patch)?;
    if let Some(o) = patch.get("owner_uuid").and_then(Value::as_str) {
        if o != s(&cur, "owner_uuid") {
            check_owner_change(core, &p, &ctx.id, s(&cur, "owner_uuid"), o)?;
            new.insert("owner_uuid".into(), json!(o));
        }
    }
    let cur_text = core.db.manifest(&ctx.id)?;
    let new_m = match (&replace, &req_m) {
        (Some(ops), _) => {
            let cur_m = Manifest::parse(&cur_text)
                .map_err(|e| Error::Store(format!("a stored manifest no longer parses: {e}")))?;
            Some(apply_replace(core, &p, &cur_m, req_m.as_ref(), ops)?)
        }
        (None, Some(m)) => {
            check_claimed_pdh(&patch, m)?;
            Some(m.clone())
        }
        (None, None) => None,
    };
    let new_text = new_m.as_ref().map(stored_text);
    if let Some(m) = &new_m {
        set_manifest_fields(&mut new, m);
    }
    if !b(&new, "is_trashed")
        && (s(&new, "name") != s(&cur, "name")
            || s(&new, "owner_uuid") != s(&cur, "owner_uuid")
            || b(&cur, "is_trashed"))
    {
        let name = unique_name(
            core,
            s(&new, "owner_uuid"),
            s(&new, "name"),
            &ctx.id,
            ensure,
        )?;
        if !name.is_empty() {
            new.insert("name".into(), json!(name));
        }
    }
    let text_changed = new_text.as_ref().is_some_and(|t| *t != cur_text);
    if new == cur && !text_changed {
        let mut o = cur;
        o.insert("manifest_text".into(), json!(cur_text));
        return render_full(core, &ctx.caller, o).map(Value::Object);
    }
    let new = commit(
        core,
        ctx,
        &cur,
        &cur_text,
        new,
        new_text.filter(|_| text_changed),
        true,
    )?;
    render_full(core, &ctx.caller, new).map(Value::Object)
}

fn trash_or_untrash(core: &Core, ctx: &Ctx, trashed: bool) -> Result<Value, Error> {
    let ensure = truthy(ctx.params.get("ensure_unique_name"));
    let _g = core.lock();
    let p = Perms::new(core, &ctx.caller)?;
    let cur = load_current_for_write(core, ctx, &p)?;
    let mut new = cur.clone();
    set_trashed(&mut new, trashed);
    if !trashed {
        let name = unique_name(
            core,
            s(&new, "owner_uuid"),
            s(&new, "name"),
            &ctx.id,
            ensure,
        )?;
        if !name.is_empty() {
            new.insert("name".into(), json!(name));
        }
    }
    let new = commit(core, ctx, &cur, "", new, None, false)?;
    Ok(Value::Object(render_meta(new)))
}

/// DELETE and POST …/trash: the collection goes to the trash (untrash brings it back).
pub fn trash(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    trash_or_untrash(core, ctx, true)
}

pub fn untrash(core: &Core, ctx: &Ctx) -> Result<Value, Error> {
    trash_or_untrash(core, ctx, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keep_format::Locator;

    fn loc(data: &[u8]) -> Locator {
        Locator::new(Hash::of(data), data.len() as u64)
    }

    #[test]
    fn subtree_copy() {
        let mut src = Manifest::new();
        src.put_file("d/a", [(loc(b"aaa"), 0, 3)]).unwrap();
        src.put_file("d/e/b", [(loc(b"bb"), 0, 2)]).unwrap();
        src.put_dir("d/empty").unwrap();
        src.put_file("top", [(loc(b"t"), 0, 1)]).unwrap();
        let mut dst = Manifest::new();
        assert!(copy_subtree(&src, "d", &mut dst, "x/y").unwrap());
        assert!(dst.file("x/y/a").is_some());
        assert!(dst.file("x/y/e/b").is_some());
        assert!(dst.is_dir("x/y/empty"));
        assert!(dst.file("top").is_none());
        assert!(copy_subtree(&src, "top", &mut dst, "t2").unwrap());
        assert_eq!(dst.file("t2").map(|f| f.size()), Some(1));
        assert!(!copy_subtree(&src, "nope", &mut dst, "z").unwrap());
        let mut all = Manifest::new();
        assert!(copy_subtree(&src, "", &mut all, "").unwrap());
        assert_eq!(all.pdh(), src.pdh());
        assert!(copy_subtree(&src, "top", &mut all, "").is_err());
    }
}
