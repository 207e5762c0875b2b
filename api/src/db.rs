//! Typed records on top of a [`Store`]: each record is written with its secondary
//! indexes in the same atomic batch, and read back as its type (see [`crate::records`]
//! for the encoding and its versions).

use keep_format::UuidKind;

use crate::error::Error;
use crate::records::{
    self, decode, encode, Collection, Group, Link, Record, Token, User, FORMAT, USER_NAMES,
};
use crate::store::{key2, prefix1, Op, Store, Table};

/// The meta key holding the database's record format.
const FORMAT_KEY: &[u8] = b"format";

/// Records migrated per write batch.
const MIGRATE_BATCH: usize = 1000;

/// A record of any type (for code that walks owners and mixes types).
#[derive(Clone, Debug)]
pub enum Any {
    User(User),
    Group(Group),
    Collection(Collection),
    Token(Token),
    Link(Link),
}

impl Any {
    pub fn owner(&self) -> &str {
        match self {
            Any::User(r) => r.owner(),
            Any::Group(r) => r.owner(),
            Any::Collection(r) => r.owner(),
            Any::Token(r) => r.owner(),
            Any::Link(r) => r.owner(),
        }
    }
}

/// Typed access to records and indexes.
pub struct Db {
    pub store: Box<dyn Store>,
}

impl Db {
    /// The record `uuid` in `table`, if there is one.
    pub fn get_in<T: Record>(&self, table: Table, uuid: &str) -> Result<Option<T>, Error> {
        match self.store.get(table, uuid.as_bytes())? {
            Some(b) => decode(&b).map(Some),
            None => Ok(None),
        }
    }

    /// The current record `uuid` of type `T` (`None` for a UUID of another kind).
    pub fn get<T: Record>(&self, uuid: &str) -> Result<Option<T>, Error> {
        if UuidKind::of(uuid) != Some(T::KIND) {
            return Ok(None);
        }
        self.get_in(T::TABLE, uuid)
    }

    /// Whether a current record `uuid` exists.
    pub fn exists(&self, uuid: &str) -> Result<bool, Error> {
        match records::table_of(uuid) {
            Some(t) => Ok(self.store.get(t, uuid.as_bytes())?.is_some()),
            None => Ok(false),
        }
    }

    /// A record of any type; for a collection UUID, a past version too.
    pub fn get_any(&self, uuid: &str) -> Result<Option<Any>, Error> {
        Ok(match UuidKind::of(uuid) {
            Some(UuidKind::User) => self.get(uuid)?.map(Any::User),
            Some(UuidKind::Group) => self.get(uuid)?.map(Any::Group),
            Some(UuidKind::Collection) => self.collection_or_version(uuid)?.map(Any::Collection),
            Some(UuidKind::Token) => self.get(uuid)?.map(Any::Token),
            Some(UuidKind::Link) => self.get(uuid)?.map(Any::Link),
            None => None,
        })
    }

    /// A current collection, or else a past version with this UUID.
    pub fn collection_or_version(&self, uuid: &str) -> Result<Option<Collection>, Error> {
        match self.get::<Collection>(uuid)? {
            Some(c) => Ok(Some(c)),
            None if UuidKind::of(uuid) == Some(UuidKind::Collection) => {
                self.get_in(Table::Versions, uuid)
            }
            None => Ok(None),
        }
    }

    /// The current manifest text of collection `uuid` (`""` if it has none).
    pub fn manifest(&self, uuid: &str) -> Result<String, Error> {
        Ok(self
            .store
            .get(Table::Manifests, uuid.as_bytes())?
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default())
    }

    /// Adds to `ops` what it takes to replace `old` with `new` in `T`'s table (either
    /// may be None for a create or a delete), indexes included.
    pub fn stage<T: Record>(
        &self,
        ops: &mut Vec<Op>,
        old: Option<&T>,
        new: Option<&T>,
    ) -> Result<(), Error> {
        self.stage_in(ops, T::TABLE, old, new)
    }

    /// [`Db::stage`] in a given table (past collection versions).
    pub fn stage_in<T: Record>(
        &self,
        ops: &mut Vec<Op>,
        table: Table,
        old: Option<&T>,
        new: Option<&T>,
    ) -> Result<(), Error> {
        if let Some(o) = old {
            for (t, k, _) in o.index_entries(table) {
                ops.push(Op::Delete(t, k));
            }
            if new.is_none() {
                ops.push(Op::Delete(table, o.uuid().as_bytes().to_vec()));
            }
        }
        if let Some(n) = new {
            ops.push(Op::Put(table, n.uuid().as_bytes().to_vec(), encode(n)?));
            for (t, k, v) in n.index_entries(table) {
                ops.push(Op::Put(t, k, v));
            }
        }
        Ok(())
    }

    /// Stages `new` and writes the batch.
    pub fn put<T: Record>(&self, old: Option<&T>, new: &T) -> Result<(), Error> {
        let mut ops = Vec::new();
        self.stage(&mut ops, old, Some(new))?;
        self.store.write(ops)
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

    /// The records of type `T` that `owner` owns.
    pub fn children_of<T: Record>(&self, owner: &str) -> Result<Vec<T>, Error> {
        let mut out = Vec::new();
        for c in self.children(owner)? {
            if let Some(r) = self.get::<T>(&c)? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// The links whose head is `head`.
    pub fn links_by_head(&self, head: &str) -> Result<Vec<Link>, Error> {
        self.links(Table::IdxLinkHead, head)
    }

    /// The links whose tail is `tail`.
    pub fn links_by_tail(&self, tail: &str) -> Result<Vec<Link>, Error> {
        self.links(Table::IdxLinkTail, tail)
    }

    fn links(&self, index: Table, end: &str) -> Result<Vec<Link>, Error> {
        let mut out = Vec::new();
        for u in self.scan_suffixes(index, &prefix1(end))? {
            out.extend(self.get::<Link>(&u)?);
        }
        Ok(out)
    }

    /// UUIDs of the current collections and past versions with this PDH.
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
        self.name_taken(USER_NAMES, username)
    }

    pub fn token_by_hash(&self, hash: &str) -> Result<Option<String>, Error> {
        Ok(self
            .store
            .get(Table::IdxToken, hash.as_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// A collection's past versions, oldest first.
    pub fn versions(&self, current: &str) -> Result<Vec<Collection>, Error> {
        let mut uuids = Vec::new();
        self.store
            .scan(Table::IdxVersion, &prefix1(current), &mut |_, v| {
                uuids.push(String::from_utf8_lossy(v).into_owned());
                true
            })?;
        let mut out = Vec::new();
        for u in uuids {
            out.extend(self.get_in::<Collection>(Table::Versions, &u)?);
        }
        Ok(out)
    }

    /// Every record of `T`'s table.
    pub fn all<T: Record>(&self) -> Result<Vec<T>, Error> {
        self.all_in(T::TABLE)
    }

    /// Every record of a table (for lists without a narrower index).
    pub fn all_in<T: Record>(&self, table: Table) -> Result<Vec<T>, Error> {
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

    /// Brings the database to [`FORMAT`]: a new one is marked, one in format 1 is
    /// rewritten record by record (read old, write new; the indexes do not change), and
    /// one in a format this server does not know is refused. Returns the format found.
    ///
    /// Safe to interrupt: records are read in either format, and the database is marked
    /// as migrated only after its last record was rewritten.
    pub fn migrate(&self) -> Result<Option<u8>, Error> {
        let found = match self.meta("format")? {
            None => None,
            Some(v) => Some(v.parse::<u8>().map_err(|_| {
                Error::StoreFormat(format!(
                    "the database's record format {v:?} is not a number"
                ))
            })?),
        };
        match found {
            Some(FORMAT) => return Ok(found),
            Some(records::FORMAT_V1) => {
                self.rewrite::<User>(Table::Users)?;
                self.rewrite::<Group>(Table::Groups)?;
                self.rewrite::<Collection>(Table::Collections)?;
                self.rewrite::<Collection>(Table::Versions)?;
                self.rewrite::<Token>(Table::Tokens)?;
                self.rewrite::<Link>(Table::Links)?;
                tracing::info!(from = records::FORMAT_V1, to = FORMAT, "migrated the metadata database's records");
            }
            None => {}
            Some(v) => {
                return Err(Error::StoreFormat(format!(
                    "the database uses record format {v}; this server knows formats up to {FORMAT} (upgrade keep)"
                )))
            }
        }
        self.store.write(vec![Op::Put(
            Table::Meta,
            FORMAT_KEY.to_vec(),
            FORMAT.to_string().into_bytes(),
        )])?;
        Ok(found)
    }

    /// Rewrites every record of `table` in the current format.
    fn rewrite<T: Record>(&self, table: Table) -> Result<(), Error> {
        let mut ops = Vec::new();
        for r in self.all_in::<T>(table)? {
            ops.push(Op::Put(table, r.uuid().as_bytes().to_vec(), encode(&r)?));
            if ops.len() >= MIGRATE_BATCH {
                self.store.write(std::mem::take(&mut ops))?;
            }
        }
        if !ops.is_empty() {
            self.store.write(ops)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemStore;

    fn collection(uuid: &str, owner: &str, name: &str) -> Collection {
        let mut c = Collection::new(uuid, owner, owner);
        c.name = Some(name.into());
        c.portable_data_hash = "h+1".into();
        c
    }

    #[test]
    fn indexes_follow_records() {
        let db = Db {
            store: Box::new(MemStore::default()),
        };
        let (u, c) = ("zzzzz-tpzed-000000000000001", "zzzzz-4zz18-000000000000001");
        let c1 = collection(c, u, "a");
        db.put(None, &c1).unwrap();
        assert_eq!(db.children(u).unwrap(), vec![c]);
        assert_eq!(db.name_taken(u, "a").unwrap().as_deref(), Some(c));
        assert_eq!(db.by_pdh("h+1").unwrap().len(), 1);
        assert_eq!(db.get::<Collection>(c).unwrap(), Some(c1.clone()));
        // a UUID of another kind is not looked up as a collection
        assert!(db.get::<User>(c).unwrap().is_none());
        // rename and move: old entries vanish
        let mut c2 = c1.clone();
        c2.name = Some("b".into());
        c2.common.owner_uuid = "zzzzz-j7d0g-000000000000001".into();
        db.put(Some(&c1), &c2).unwrap();
        assert!(db.children(u).unwrap().is_empty());
        assert!(db.name_taken(u, "a").unwrap().is_none());
        assert_eq!(db.children("zzzzz-j7d0g-000000000000001").unwrap().len(), 1);
        let mut ops = vec![];
        db.stage(&mut ops, Some(&c2), None).unwrap();
        db.store.write(ops).unwrap();
        assert!(db.get::<Collection>(c).unwrap().is_none());
        assert!(db.by_pdh("h+1").unwrap().is_empty());
    }

    #[test]
    fn migrates_format_1_and_refuses_unknown_formats() {
        let db = Db {
            store: Box::new(MemStore::default()),
        };
        let (u, c) = ("zzzzz-tpzed-000000000000001", "zzzzz-4zz18-000000000000001");
        let c1 = collection(c, u, "a");
        let mut old = vec![records::FORMAT_V1];
        old.extend(serde_json::to_vec(&c1.to_obj()).unwrap());
        db.store
            .write(vec![
                Op::Put(Table::Collections, c.as_bytes().to_vec(), old),
                Op::Put(Table::Meta, FORMAT_KEY.to_vec(), b"1".to_vec()),
            ])
            .unwrap();
        assert_eq!(db.migrate().unwrap(), Some(1));
        let raw = db
            .store
            .get(Table::Collections, c.as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(raw[0], FORMAT);
        assert_eq!(db.get::<Collection>(c).unwrap(), Some(c1));
        assert_eq!(db.meta("format").unwrap().as_deref(), Some("2"));
        assert_eq!(db.migrate().unwrap(), Some(FORMAT));
        db.store
            .write(vec![Op::Put(
                Table::Meta,
                FORMAT_KEY.to_vec(),
                b"3".to_vec(),
            )])
            .unwrap();
        assert!(db.migrate().unwrap_err().to_string().contains("format 3"));
    }
}
