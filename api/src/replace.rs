//! `replace_files`: a collection update that edits the manifest atomically, target by
//! target (`{"/target": "source"}`). Pure manifest editing; where a PDH source comes
//! from is the caller's business.

use keep_format::{Manifest, Pdh};

use crate::error::Error;

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

/// Where `replace_files` sources come from.
pub struct Sources<'a> {
    /// The collection as it is.
    pub current: &'a Manifest,
    /// The request's `manifest_text`, if it has one.
    pub request: Option<&'a Manifest>,
    /// The manifest of a readable collection with this PDH.
    pub by_pdh: &'a dyn Fn(&Pdh, &str) -> Result<Manifest, Error>,
}

/// Removes every target of `ops` from `out` (a directory stays when its last entry
/// goes, as in any file system).
fn clear_targets(
    cur: &Manifest,
    out: &mut Manifest,
    ops: &[(String, String)],
) -> Result<(), Error> {
    for (dst, _) in ops {
        if !dst.starts_with('/') {
            return Err(Error::Unprocessable(format!(
                "replace_files target {dst:?} must start with \"/\""
            )));
        }
        let dp = norm_path(dst);
        if dp.is_empty() {
            *out = Manifest::new();
            continue;
        }
        out.remove(&dp);
        if let Some((parent, _)) = dp.rsplit_once('/') {
            if cur.is_dir(parent) && !out.is_dir(parent) {
                out.put_dir(parent)?;
            }
        }
    }
    Ok(())
}

/// Applies `replace_files` to `src.current`: every target is first removed, then filled
/// from its source (the request's manifest_text, the current version, or a readable PDH).
pub fn apply(src: &Sources, ops: &[(String, String)]) -> Result<Manifest, Error> {
    let mut out = src.current.clone();
    clear_targets(src.current, &mut out, ops)?;
    for (dst, source) in ops {
        if source.is_empty() {
            continue;
        }
        let dp = norm_path(dst);
        let (root, sp) = match source.split_once('/') {
            Some((r, rest)) => (r, norm_path(rest)),
            None => (source.as_str(), String::new()),
        };
        let from_pdh;
        let m: &Manifest = match root {
            "manifest_text" => src.request.ok_or_else(|| {
                Error::Unprocessable(format!(
                    "replace_files source {source:?} needs a manifest_text in the request"
                ))
            })?,
            "current" => src.current,
            other => {
                let pdh = Pdh::parse_loose(other).map_err(|_| {
                    Error::Unprocessable(format!(
                        "replace_files source {source:?} must start with \"current/\", \"manifest_text/\" or a portable data hash"
                    ))
                })?;
                from_pdh = (src.by_pdh)(&pdh, other)?;
                &from_pdh
            }
        };
        if !copy_subtree(m, &sp, &mut out, &dp)? {
            return Err(Error::Unprocessable(format!(
                "replace_files source {source:?} does not exist"
            )));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keep_format::{Hash, Locator};

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
