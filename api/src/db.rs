//! Records on top of a [`Store`]: JSON objects with a format-version byte, and the
//! secondary indexes kept in the same atomic batch as the record.

use serde_json::{Map, Value};

use crate::store::{Op, Store, Table};
use crate::Error;

/// A record: the JSON object the API returns (collections without `manifest_text`).
pub type Obj = Map<String, Value>;

/// Version of the on-disk record encoding. Bump it (and teach `decode` the old one)
/// when the layout changes.
pub const RECORD_FORMAT: u8 = 1;

pub fn encode(obj: &Obj) -> Result<Vec<u8>, Error> {
    let mut v = vec![RECORD_FORMAT];
    serde_json::to_writer(&mut v, obj).map_err(|e| Error::Internal(format!("encode: {e}")))?;
    Ok(v)
}

pub fn decode(bytes: &[u8]) -> Result<Obj, Error> {
    match bytes.split_first() {
        Some((&RECORD_FORMAT, rest)) => {
            serde_json::from_slice(rest).map_err(|e| Error::Store(format!("corrupt record: {e}")))
        }
        Some((v, _)) => Err(Error::Store(format!(
            "record format version {v} is unknown to this server (upgrade keep)"
        ))),
        None => Err(Error::Store("empty record".into())),
    }
}

pub fn s<'a>(o: &'a Obj, k: &str) -> &'a str {
    o.get(k).and_then(Value::as_str).unwrap_or("")
}

pub fn b(o: &Obj, k: &str) -> bool {
    o.get(k).and_then(Value::as_bool).unwrap_or(false)
}

fn key2(a: &str, b: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(a.len() + b.len() + 1);
    k.extend_from_slice(a.as_bytes());
    k.push(0);
    k.extend_from_slice(b.as_bytes());
    k
}

fn prefix1(a: &str) -> Vec<u8> {
    let mut k = a.as_bytes().to_vec();
    k.push(0);
    k
}

/// The table holding records with this UUID's type infix (current collections).
pub fn table_of(uuid: &str) -> Option<Table> {
    match uuid.get(6..11)? {
        "tpzed" => Some(Table::Users),
        "j7d0g" => Some(Table::Groups),
        "4zz18" => Some(Table::Collections),
        "gj3su" => Some(Table::Tokens),
        "o0j2j" => Some(Table::Links),
        _ => None,
    }
}

/// The Arvados `kind` of a UUID.
pub fn kind_of(uuid: &str) -> &'static str {
    match uuid.get(6..11) {
        Some("tpzed") => "arvados#user",
        Some("j7d0g") => "arvados#group",
        Some("4zz18") => "arvados#collection",
        Some("gj3su") => "arvados#apiClientAuthorization",
        Some("o0j2j") => "arvados#link",
        _ => "",
    }
}

/// The index entries a record of `table` contributes.
fn index_entries(table: Table, o: &Obj) -> Vec<(Table, Vec<u8>, Vec<u8>)> {
    let uuid = s(o, "uuid");
    let owner = s(o, "owner_uuid");
    let mut out = Vec::new();
    match table {
        Table::Users => {
            let name = s(o, "username");
            if !name.is_empty() {
                out.push((
                    Table::IdxName,
                    key2("\0user", name),
                    uuid.as_bytes().to_vec(),
                ));
            }
        }
        Table::Groups | Table::Collections => {
            out.push((Table::IdxOwner, key2(owner, uuid), vec![]));
            let name = s(o, "name");
            if !name.is_empty() && !b(o, "is_trashed") {
                out.push((Table::IdxName, key2(owner, name), uuid.as_bytes().to_vec()));
            }
            if table == Table::Collections {
                out.push((
                    Table::IdxPdh,
                    key2(s(o, "portable_data_hash"), uuid),
                    vec![],
                ));
            }
        }
        Table::Tokens => {
            out.push((Table::IdxOwner, key2(owner, uuid), vec![]));
            out.push((
                Table::IdxToken,
                s(o, "secret_hash").as_bytes().to_vec(),
                uuid.as_bytes().to_vec(),
            ));
        }
        Table::Links => {
            out.push((Table::IdxLinkHead, key2(s(o, "head_uuid"), uuid), vec![]));
            out.push((Table::IdxLinkTail, key2(s(o, "tail_uuid"), uuid), vec![]));
        }
        Table::Versions => {
            let cur = s(o, "current_version_uuid");
            let ver = o.get("version").and_then(Value::as_u64).unwrap_or(0);
            out.push((
                Table::IdxVersion,
                key2(cur, &format!("{ver:020}")),
                uuid.as_bytes().to_vec(),
            ));
            out.push((
                Table::IdxPdh,
                key2(s(o, "portable_data_hash"), uuid),
                vec![],
            ));
        }
        _ => {}
    }
    out
}

/// Typed access to records and indexes.
pub struct Db {
    pub store: Box<dyn Store>,
}

impl Db {
    pub fn get_in(&self, table: Table, uuid: &str) -> Result<Option<Obj>, Error> {
        match self.store.get(table, uuid.as_bytes())? {
            Some(b) => decode(&b).map(Some),
            None => Ok(None),
        }
    }

    /// A record by UUID from the table its infix names (current collections only).
    pub fn get(&self, uuid: &str) -> Result<Option<Obj>, Error> {
        match table_of(uuid) {
            Some(t) => self.get_in(t, uuid),
            None => Ok(None),
        }
    }

    pub fn manifest(&self, uuid: &str) -> Result<String, Error> {
        Ok(self
            .store
            .get(Table::Manifests, uuid.as_bytes())?
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default())
    }

    /// Adds to `ops` what it takes to replace `old` with `new` in `table` (either may
    /// be None for a create or a delete), indexes included.
    pub fn stage(
        &self,
        ops: &mut Vec<Op>,
        table: Table,
        old: Option<&Obj>,
        new: Option<&Obj>,
    ) -> Result<(), Error> {
        if let Some(o) = old {
            for (t, k, _) in index_entries(table, o) {
                ops.push(Op::Delete(t, k));
            }
            if new.is_none() {
                ops.push(Op::Delete(table, s(o, "uuid").as_bytes().to_vec()));
            }
        }
        if let Some(n) = new {
            ops.push(Op::Put(table, s(n, "uuid").as_bytes().to_vec(), encode(n)?));
            for (t, k, v) in index_entries(table, n) {
                ops.push(Op::Put(t, k, v));
            }
        }
        Ok(())
    }

    fn scan_suffixes(&self, table: Table, prefix: &[u8]) -> Result<Vec<String>, Error> {
        let mut out = Vec::new();
        self.store.scan(table, prefix, &mut |k, _| {
            out.push(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
            true
        })?;
        Ok(out)
    }

    /// UUIDs of the groups, collections and tokens `owner` owns.
    pub fn children(&self, owner: &str) -> Result<Vec<String>, Error> {
        self.scan_suffixes(Table::IdxOwner, &prefix1(owner))
    }

    pub fn links_by_head(&self, head: &str) -> Result<Vec<String>, Error> {
        self.scan_suffixes(Table::IdxLinkHead, &prefix1(head))
    }

    pub fn links_by_tail(&self, tail: &str) -> Result<Vec<String>, Error> {
        self.scan_suffixes(Table::IdxLinkTail, &prefix1(tail))
    }

    pub fn by_pdh(&self, pdh: &str) -> Result<Vec<String>, Error> {
        self.scan_suffixes(Table::IdxPdh, &prefix1(pdh))
    }

    /// The UUID holding `name` under `owner`, if any.
    pub fn name_taken(&self, owner: &str, name: &str) -> Result<Option<String>, Error> {
        Ok(self
            .store
            .get(Table::IdxName, &key2(owner, name))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    pub fn user_by_name(&self, username: &str) -> Result<Option<String>, Error> {
        self.name_taken("\0user", username)
    }

    pub fn token_by_hash(&self, hash: &str) -> Result<Option<String>, Error> {
        Ok(self
            .store
            .get(Table::IdxToken, hash.as_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// UUIDs of a collection's past versions, oldest first.
    pub fn versions(&self, current: &str) -> Result<Vec<String>, Error> {
        let mut out = Vec::new();
        self.store
            .scan(Table::IdxVersion, &prefix1(current), &mut |_, v| {
                out.push(String::from_utf8_lossy(v).into_owned());
                true
            })?;
        Ok(out)
    }

    /// Every record of a table (for lists without a narrower index).
    pub fn all(&self, table: Table) -> Result<Vec<Obj>, Error> {
        let mut out = Vec::new();
        let mut err = None;
        self.store.scan(table, b"", &mut |_, v| match decode(v) {
            Ok(o) => {
                out.push(o);
                true
            }
            Err(e) => {
                err = Some(e);
                false
            }
        })?;
        match err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, Error> {
        Ok(self
            .store
            .get(Table::Meta, key.as_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemStore;
    use serde_json::json;

    fn obj(v: Value) -> Obj {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn encode_decode_and_version() {
        let o = obj(json!({"uuid": "x", "n": 1}));
        let b = encode(&o).unwrap();
        assert_eq!(b[0], RECORD_FORMAT);
        assert_eq!(decode(&b).unwrap(), o);
        let mut bad = b.clone();
        bad[0] = 99;
        assert!(decode(&bad).unwrap_err().to_string().contains("version 99"));
    }

    #[test]
    fn indexes_follow_records() {
        let db = Db {
            store: Box::new(MemStore::default()),
        };
        let c1 = obj(
            json!({"uuid": "zzzzz-4zz18-000000000000001", "owner_uuid": "zzzzz-tpzed-000000000000001",
            "name": "a", "portable_data_hash": "h+1"}),
        );
        let mut ops = vec![];
        db.stage(&mut ops, Table::Collections, None, Some(&c1))
            .unwrap();
        db.store.write(ops).unwrap();
        assert_eq!(
            db.children("zzzzz-tpzed-000000000000001").unwrap(),
            vec!["zzzzz-4zz18-000000000000001"]
        );
        assert_eq!(
            db.name_taken("zzzzz-tpzed-000000000000001", "a")
                .unwrap()
                .as_deref(),
            Some("zzzzz-4zz18-000000000000001")
        );
        assert_eq!(db.by_pdh("h+1").unwrap().len(), 1);
        // rename and move: old entries vanish
        let mut c2 = c1.clone();
        c2.insert("name".into(), json!("b"));
        c2.insert("owner_uuid".into(), json!("zzzzz-j7d0g-000000000000001"));
        let mut ops = vec![];
        db.stage(&mut ops, Table::Collections, Some(&c1), Some(&c2))
            .unwrap();
        db.store.write(ops).unwrap();
        assert!(db
            .children("zzzzz-tpzed-000000000000001")
            .unwrap()
            .is_empty());
        assert!(db
            .name_taken("zzzzz-tpzed-000000000000001", "a")
            .unwrap()
            .is_none());
        assert_eq!(db.children("zzzzz-j7d0g-000000000000001").unwrap().len(), 1);
        let mut ops = vec![];
        db.stage(&mut ops, Table::Collections, Some(&c2), None)
            .unwrap();
        db.store.write(ops).unwrap();
        assert!(db.get("zzzzz-4zz18-000000000000001").unwrap().is_none());
        assert!(db.by_pdh("h+1").unwrap().is_empty());
    }
}
