//! The storage layer: a small key-value trait with tables (RocksDB column families),
//! prefix scans and atomic batches. [`RocksStore`] is the real backend; [`MemStore`]
//! keeps everything in memory (unit tests, and proof that nothing above this file
//! knows about RocksDB).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use parking_lot::RwLock;

use crate::Error;

/// One column family. Records are keyed by UUID; index tables hold composite keys
/// (`part\0part`) with small values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Store-wide facts: format version, bootstrap state.
    Meta,
    Users,
    Groups,
    /// Current collections, without their manifests.
    Collections,
    /// Current manifest text (normalized, unsigned) by collection UUID.
    Manifests,
    /// Past collection versions (records with their manifest) by their own UUID.
    Versions,
    Tokens,
    Links,
    /// `owner\0child` → "" for groups, collections and tokens.
    IdxOwner,
    /// `owner\0name` → uuid (projects, filter groups, roles and collections share a
    /// namespace under an owner so paths stay unambiguous); `\0user\0<username>` → uuid.
    IdxName,
    /// `pdh\0uuid` → "" for current collections.
    IdxPdh,
    /// `sha256(secret)` → token uuid.
    IdxToken,
    /// `head\0link` → "".
    IdxLinkHead,
    /// `tail\0link` → "".
    IdxLinkTail,
    /// `collection\0<version:020>` → uuid of that past version.
    IdxVersion,
}

impl Table {
    pub const ALL: [Table; 15] = [
        Table::Meta,
        Table::Users,
        Table::Groups,
        Table::Collections,
        Table::Manifests,
        Table::Versions,
        Table::Tokens,
        Table::Links,
        Table::IdxOwner,
        Table::IdxName,
        Table::IdxPdh,
        Table::IdxToken,
        Table::IdxLinkHead,
        Table::IdxLinkTail,
        Table::IdxVersion,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Users => "users",
            Table::Groups => "groups",
            Table::Collections => "collections",
            Table::Manifests => "manifests",
            Table::Versions => "collection_versions",
            Table::Tokens => "api_client_authorizations",
            Table::Links => "links",
            Table::IdxOwner => "idx_owner",
            Table::IdxName => "idx_name",
            Table::IdxPdh => "idx_pdh",
            Table::IdxToken => "idx_token",
            Table::IdxLinkHead => "idx_link_head",
            Table::IdxLinkTail => "idx_link_tail",
            Table::IdxVersion => "idx_version",
        }
    }
}

/// One change in an atomic batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Put(Table, Vec<u8>, Vec<u8>),
    Delete(Table, Vec<u8>),
}

/// What the API needs from a storage engine.
pub trait Store: Send + Sync + 'static {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, Error>;
    /// Calls `f(key, value)` for each key starting with `prefix`, in key order, until
    /// `f` returns false.
    fn scan(
        &self,
        table: Table,
        prefix: &[u8],
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), Error>;
    /// Applies every op, in order, atomically and durably: all or nothing.
    fn write(&self, ops: Vec<Op>) -> Result<(), Error>;
}

/// The RocksDB backend: one column family per [`Table`], LZ4-compressed, every batch
/// written through the WAL (and synced when `sync` is set) before it is acknowledged.
pub struct RocksStore {
    db: rocksdb::DB,
    sync: bool,
}

fn store_err(what: &str, e: rocksdb::Error) -> Error {
    Error::Store(format!("{what}: {e}"))
}

impl RocksStore {
    pub fn open(path: &Path, sync: bool) -> Result<RocksStore, Error> {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        let cfs: Vec<rocksdb::ColumnFamilyDescriptor> = Table::ALL
            .iter()
            .map(|t| {
                let mut o = rocksdb::Options::default();
                o.set_compression_type(rocksdb::DBCompressionType::Lz4);
                rocksdb::ColumnFamilyDescriptor::new(t.name(), o)
            })
            .collect();
        let db = rocksdb::DB::open_cf_descriptors(&opts, path, cfs).map_err(|e| {
            Error::Store(format!(
                "cannot open the metadata database at {}: {e} (is another keep server using it?)",
                path.display()
            ))
        })?;
        Ok(RocksStore { db, sync })
    }

    fn cf(&self, t: Table) -> Result<&rocksdb::ColumnFamily, Error> {
        self.db
            .cf_handle(t.name())
            .ok_or_else(|| Error::Store(format!("column family {} is missing", t.name())))
    }
}

impl Store for RocksStore {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        self.db
            .get_cf(self.cf(table)?, key)
            .map_err(|e| store_err("read", e))
    }

    fn scan(
        &self,
        table: Table,
        prefix: &[u8],
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), Error> {
        let it = self.db.iterator_cf(
            self.cf(table)?,
            rocksdb::IteratorMode::From(prefix, rocksdb::Direction::Forward),
        );
        for item in it {
            let (k, v) = item.map_err(|e| store_err("scan", e))?;
            if !k.starts_with(prefix) || !f(&k, &v) {
                break;
            }
        }
        Ok(())
    }

    fn write(&self, ops: Vec<Op>) -> Result<(), Error> {
        let mut batch = rocksdb::WriteBatch::default();
        for op in ops {
            match op {
                Op::Put(t, k, v) => batch.put_cf(self.cf(t)?, k, v),
                Op::Delete(t, k) => batch.delete_cf(self.cf(t)?, k),
            }
        }
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(self.sync);
        self.db
            .write_opt(batch, &wo)
            .map_err(|e| store_err("write", e))
    }
}

type MemTable = BTreeMap<Vec<u8>, Vec<u8>>;

/// Everything in memory, for tests.
#[derive(Default)]
pub struct MemStore {
    tables: RwLock<HashMap<Table, MemTable>>,
}

impl Store for MemStore {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let g = self.tables.read();
        Ok(g.get(&table).and_then(|t| t.get(key)).cloned())
    }

    fn scan(
        &self,
        table: Table,
        prefix: &[u8],
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), Error> {
        let g = self.tables.read();
        if let Some(t) = g.get(&table) {
            for (k, v) in t.range(prefix.to_vec()..) {
                if !k.starts_with(prefix) || !f(k, v) {
                    break;
                }
            }
        }
        Ok(())
    }

    fn write(&self, ops: Vec<Op>) -> Result<(), Error> {
        let mut g = self.tables.write();
        for op in ops {
            match op {
                Op::Put(t, k, v) => {
                    g.entry(t).or_default().insert(k, v);
                }
                Op::Delete(t, k) => {
                    g.entry(t).or_default().remove(&k);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise(s: &dyn Store) {
        s.write(vec![
            Op::Put(Table::IdxOwner, b"a\0x".to_vec(), vec![]),
            Op::Put(Table::IdxOwner, b"a\0y".to_vec(), vec![]),
            Op::Put(Table::IdxOwner, b"ab\0z".to_vec(), vec![]),
            Op::Put(Table::Users, b"a".to_vec(), b"1".to_vec()),
        ])
        .unwrap();
        let mut seen = vec![];
        s.scan(Table::IdxOwner, b"a\0", &mut |k, _| {
            seen.push(k.to_vec());
            true
        })
        .unwrap();
        assert_eq!(seen, vec![b"a\0x".to_vec(), b"a\0y".to_vec()]);
        assert_eq!(s.get(Table::Users, b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(s.get(Table::Groups, b"a").unwrap(), None);
        // delete then put in one batch: the put wins
        s.write(vec![
            Op::Delete(Table::Users, b"a".to_vec()),
            Op::Put(Table::Users, b"a".to_vec(), b"2".to_vec()),
            Op::Delete(Table::IdxOwner, b"a\0x".to_vec()),
        ])
        .unwrap();
        assert_eq!(s.get(Table::Users, b"a").unwrap(), Some(b"2".to_vec()));
        let mut n = 0;
        s.scan(Table::IdxOwner, b"", &mut |_, _| {
            n += 1;
            true
        })
        .unwrap();
        assert_eq!(n, 2);
    }

    #[test]
    fn mem_store() {
        exercise(&MemStore::default());
    }

    #[test]
    fn rocks_store_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = RocksStore::open(dir.path(), false).unwrap();
            exercise(&s);
        }
        let s = RocksStore::open(dir.path(), false).unwrap();
        assert_eq!(s.get(Table::Users, b"a").unwrap(), Some(b"2".to_vec()));
    }
}
