//! The storage layer: a small key-value trait with tables (RocksDB column families),
//! prefix scans and atomic batches. [`RocksStore`] is the real backend; [`MemStore`]
//! keeps everything in memory (unit tests, and proof that nothing above this file
//! knows about RocksDB).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use parking_lot::RwLock;

use crate::error::Error;

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

    /// The table whose column family is named `name`.
    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }

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

/// What bounds RocksDB's memory and disk use: one LRU block cache shared by every
/// column family, one budget for all memtables (a `WriteBufferManager`), and a bound on
/// the write-ahead log. Without the last, a write-heavy load grew the WAL to 970 MB:
/// with 15 column families, a WAL file lives until every family with data in it is
/// flushed, and RocksDB's default bound is 4 × the memtables of all families (~7.5 GB).
/// doc/api.md ("Storage") documents the defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// Capacity of the block cache that every column family shares. Default 64 MiB.
    pub block_cache_bytes: usize,
    /// The memory all memtables may take together; past it the largest are flushed
    /// (and writes stall rather than grow it). Each family's memtable is at most a
    /// quarter of it. Default 64 MiB.
    pub write_buffer_bytes: usize,
    /// When the WAL files add up to more than this, RocksDB flushes the column
    /// families that keep the oldest ones alive, so they can go. Default 128 MiB.
    pub max_wal_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            block_cache_bytes: 64 << 20,
            write_buffer_bytes: 64 << 20,
            max_wal_bytes: 128 << 20,
        }
    }
}

/// The RocksDB backend: one column family per [`Table`], LZ4-compressed, every batch
/// written through the WAL (and synced when `sync` is set) before it is acknowledged;
/// memory and WAL bounded by [`StoreOptions`].
pub struct RocksStore {
    db: rocksdb::DB,
    sync: bool,
    cache: rocksdb::Cache,
    write_buffers: rocksdb::WriteBufferManager,
}

fn store_err(what: &str, e: rocksdb::Error) -> Error {
    Error::Store {
        what: what.to_string(),
        source: e,
    }
}

/// A composite index key: `a\0b`.
pub fn key2(a: &str, b: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(a.len() + b.len() + 1);
    k.extend_from_slice(a.as_bytes());
    k.push(0);
    k.extend_from_slice(b.as_bytes());
    k
}

/// The prefix of every composite key whose first part is `a`: `a\0`.
pub fn prefix1(a: &str) -> Vec<u8> {
    let mut k = a.as_bytes().to_vec();
    k.push(0);
    k
}

impl RocksStore {
    /// Opens with the default [`StoreOptions`].
    pub fn open(path: &Path, sync: bool) -> Result<RocksStore, Error> {
        RocksStore::open_with(path, sync, &StoreOptions::default())
    }

    pub fn open_with(path: &Path, sync: bool, so: &StoreOptions) -> Result<RocksStore, Error> {
        let cache = rocksdb::Cache::new_lru_cache(so.block_cache_bytes);
        let write_buffers =
            rocksdb::WriteBufferManager::new_write_buffer_manager(so.write_buffer_bytes, true);
        let family = || {
            let mut o = rocksdb::Options::default();
            o.set_compression_type(rocksdb::DBCompressionType::Lz4);
            let mut table = rocksdb::BlockBasedOptions::default();
            table.set_block_cache(&cache);
            o.set_block_based_table_factory(&table);
            o.set_write_buffer_size((so.write_buffer_bytes / 4).max(64 << 10));
            o
        };
        let mut opts = family();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_write_buffer_manager(&write_buffers);
        opts.set_max_total_wal_size(so.max_wal_bytes);
        let cfs: Vec<rocksdb::ColumnFamilyDescriptor> = Table::ALL
            .iter()
            .map(|t| rocksdb::ColumnFamilyDescriptor::new(t.name(), family()))
            .collect();
        let db = rocksdb::DB::open_cf_descriptors(&opts, path, cfs).map_err(|e| {
            store_err(
                &format!(
                    "cannot open the metadata database at {} (is another keep server using it?)",
                    path.display()
                ),
                e,
            )
        })?;
        Ok(RocksStore {
            db,
            sync,
            cache,
            write_buffers,
        })
    }

    fn cf(&self, t: Table) -> Result<&rocksdb::ColumnFamily, Error> {
        self.db
            .cf_handle(t.name())
            .ok_or_else(|| Error::StoreFormat(format!("column family {} is missing", t.name())))
    }

    /// Bytes the shared block cache holds now, and its capacity.
    pub fn block_cache_usage(&self) -> (usize, usize) {
        let cap = self
            .db
            .cf_handle(Table::Meta.name())
            .and_then(|cf| {
                self.db
                    .property_int_value_cf(cf, rocksdb::properties::BLOCK_CACHE_CAPACITY)
                    .ok()
                    .flatten()
            })
            .unwrap_or(0) as usize;
        (self.cache.get_usage(), cap)
    }

    /// Bytes all memtables take now, and their budget.
    pub fn write_buffer_usage(&self) -> (usize, usize) {
        (
            self.write_buffers.get_usage(),
            self.write_buffers.get_buffer_size(),
        )
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

    /// Bytes of the write-ahead log files in a RocksDB directory.
    fn wal_bytes(dir: &Path) -> u64 {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    }

    #[test]
    fn bounds_are_applied() {
        let dir = tempfile::tempdir().unwrap();
        let so = StoreOptions {
            block_cache_bytes: 3 << 20,
            write_buffer_bytes: 2 << 20,
            max_wal_bytes: 1 << 20,
        };
        let s = RocksStore::open_with(dir.path(), false, &so).unwrap();
        assert_eq!(s.block_cache_usage().1, 3 << 20);
        assert_eq!(s.write_buffer_usage().1, 2 << 20);
        let options: String = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("OPTIONS-"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap())
            .collect();
        assert!(options.contains("max_total_wal_size=1048576"), "{options}");
        assert!(options.contains("write_buffer_size=524288"), "{options}");
        assert_eq!(StoreOptions::default().max_wal_bytes, 128 << 20);
    }

    /// Issue 11 item 6: a write burst on one table, while another holds one early
    /// write, keeps the WAL near its bound (without the bound, the quiet table keeps
    /// every WAL file alive: the whole burst stays on disk).
    #[test]
    fn a_write_burst_keeps_the_wal_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let so = StoreOptions {
            block_cache_bytes: 4 << 20,
            write_buffer_bytes: 4 << 20,
            max_wal_bytes: 2 << 20,
        };
        let s = RocksStore::open_with(dir.path(), false, &so).unwrap();
        s.write(vec![Op::Put(Table::Meta, b"quiet".to_vec(), b"1".to_vec())])
            .unwrap();
        let value = vec![7u8; 64 << 10];
        let mut most = 0;
        for i in 0..1024u32 {
            let key = format!("{i:08}").into_bytes();
            s.write(vec![Op::Put(Table::Users, key, value.clone())])
                .unwrap();
            if i % 16 == 0 {
                most = most.max(wal_bytes(dir.path()));
            }
        }
        // 64 MiB written; the WAL stays within a few memtables of its 2 MiB bound
        assert!(most < 16 << 20, "the WAL reached {most} bytes");
        let (used, budget) = s.write_buffer_usage();
        assert!(used <= budget + (1 << 20), "memtables {used} of {budget}");
        assert_eq!(s.get(Table::Meta, b"quiet").unwrap(), Some(b"1".to_vec()));
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
