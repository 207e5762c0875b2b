//! The stored records, typed: [`User`], [`Token`] (Arvados's ApiClientAuthorization),
//! [`Group`], [`Collection`] and [`Link`]. Each struct is the one place its field names
//! are spelled: serde writes them to the store and, with `kind` added, to clients.
//!
//! **Stored encoding.** A record is one byte of format version, then JSON.
//! - format 1 (the first releases): the JSON object the API returned, `kind` included,
//!   written from untyped maps;
//! - format 2 (now, [`FORMAT`]): the typed struct's JSON, without the derived `kind`.
//!
//! [`decode`] reads both (read old); [`encode`] writes format 2 (write new). On open,
//! a database in format 1 is rewritten record by record (`Db::migrate`). A new layout is
//! a new format number, a branch in [`decode`] and a step in the migration.

use keep_format::time::Timestamp;
use keep_format::{Pdh, UuidKind};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::store::{key2, Table};

/// A JSON object: what clients send and get.
pub type Obj = Map<String, Value>;

/// The record encoding this server writes.
pub const FORMAT: u8 = 2;
/// The untyped encoding of the first releases: read, and migrated on open.
pub const FORMAT_V1: u8 = 1;

/// How long a trashed project or collection is kept before it may be deleted for good.
pub const TRASH_LIFETIME: std::time::Duration = std::time::Duration::from_secs(14 * 86_400);

/// The attributes every record has.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Common {
    pub uuid: String,
    pub owner_uuid: String,
    pub created_at: Timestamp,
    pub modified_at: Timestamp,
    pub modified_by_user_uuid: String,
    /// A hash of the record's content, changed by every change ([`Record::touch`]).
    #[serde(default)]
    pub etag: String,
}

impl Common {
    /// A new record's common part, created now by `by`.
    pub fn new(uuid: &str, owner: &str, by: &str) -> Common {
        let now = Timestamp::now();
        Common {
            uuid: uuid.to_string(),
            owner_uuid: owner.to_string(),
            created_at: now,
            modified_at: now,
            modified_by_user_uuid: by.to_string(),
            etag: String::new(),
        }
    }
}

/// One secondary index entry: (index table, key, value).
pub type IndexEntry = (Table, Vec<u8>, Vec<u8>);

/// What the store and the API need of every record type.
pub trait Record: Serialize + DeserializeOwned + Clone {
    /// The UUID kind of records of this type.
    const KIND: UuidKind;
    /// The table holding them (current collections for [`Collection`]).
    const TABLE: Table;

    fn common(&self) -> &Common;
    fn common_mut(&mut self) -> &mut Common;

    /// The index entries this record contributes when stored in `table`.
    fn index_entries(&self, table: Table) -> Vec<IndexEntry>;

    fn uuid(&self) -> &str {
        &self.common().uuid
    }

    fn owner(&self) -> &str {
        &self.common().owner_uuid
    }

    /// Stamps `modified_*` (now, by `by`) and a new etag.
    fn touch(&mut self, by: &str) {
        let c = self.common_mut();
        c.modified_at = Timestamp::now();
        c.modified_by_user_uuid = by.to_string();
        c.etag.clear();
        let mut h = Sha256::new();
        h.update(serde_json::to_vec(&*self).unwrap_or_default());
        self.common_mut().etag = hex::encode(&h.finalize()[..12]);
    }

    /// The JSON object clients see: the stored attributes and `kind`.
    fn to_obj(&self) -> Obj {
        let mut o = match serde_json::to_value(self) {
            Ok(Value::Object(m)) => m,
            _ => Obj::new(),
        };
        o.insert("kind".into(), Value::from(Self::KIND.arvados_kind()));
        o
    }
}

/// The kind, table and common part of a record type (in its `impl Record`).
macro_rules! record_basics {
    ($kind:expr, $table:expr) => {
        const KIND: UuidKind = $kind;
        const TABLE: Table = $table;
        fn common(&self) -> &Common {
            &self.common
        }
        fn common_mut(&mut self) -> &mut Common {
            &mut self.common
        }
    };
}

/// A past `trash_at` counts as trashed.
pub fn trash_due(trash_at: Option<Timestamp>) -> bool {
    trash_at.is_some_and(|t| t <= Timestamp::now())
}

/// `trash_at`, `delete_at` and `is_trashed` of projects and collections.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trash {
    #[serde(default)]
    pub trash_at: Option<Timestamp>,
    #[serde(default)]
    pub delete_at: Option<Timestamp>,
    #[serde(default)]
    pub is_trashed: bool,
}

impl Trash {
    pub const NOT: Trash = Trash {
        trash_at: None,
        delete_at: None,
        is_trashed: false,
    };

    /// Into the trash (now, kept for [`TRASH_LIFETIME`]; an earlier trashing stays), or
    /// out of it.
    pub fn set(&mut self, trashed: bool) {
        if !trashed {
            *self = Trash::NOT;
            return;
        }
        if !self.is_trashed {
            let now = Timestamp::now();
            self.trash_at = Some(now);
            self.delete_at = Some(now.checked_add(TRASH_LIFETIME).unwrap_or(Timestamp::MAX));
        }
        self.is_trashed = true;
    }

    /// Trashed itself, or by a `trash_at` that has passed.
    pub fn now(&self) -> bool {
        self.is_trashed || trash_due(self.trash_at)
    }

    /// What clients see: `is_trashed` reflects a `trash_at` that has passed.
    fn render(&self, o: &mut Obj) {
        if trash_due(self.trash_at) {
            o.insert("is_trashed".into(), Value::Bool(true));
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    #[serde(flatten)]
    pub common: Common,
    pub username: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    /// `first_name last_name`, trimmed (kept by [`User::set_full_name`]).
    #[serde(default)]
    pub full_name: String,
    #[serde(default)]
    pub is_admin: bool,
    #[serde(default)]
    pub is_active: bool,
    #[serde(default)]
    pub prefs: Obj,
}

impl User {
    pub fn set_full_name(&mut self) {
        self.full_name = format!("{} {}", self.first_name, self.last_name)
            .trim()
            .to_string();
    }
}

impl Record for User {
    record_basics!(UuidKind::User, Table::Users);
    fn index_entries(&self, _: Table) -> Vec<IndexEntry> {
        if self.username.is_empty() {
            return vec![];
        }
        vec![(
            Table::IdxName,
            key2(USER_NAMES, &self.username),
            self.common.uuid.as_bytes().to_vec(),
        )]
    }
}

/// The owner part of the name index's keys for usernames (no UUID starts with NUL).
pub const USER_NAMES: &str = "\0user";

/// An API token (Arvados's ApiClientAuthorization). Only the hash of the secret is kept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Token {
    #[serde(flatten)]
    pub common: Common,
    /// Never shown to clients ([`Token::render`]).
    pub secret_hash: String,
    pub scopes: Vec<String>,
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
}

impl Token {
    /// What clients see: never the hash.
    pub fn render(&self) -> Obj {
        let mut o = self.to_obj();
        o.remove("secret_hash");
        o
    }
}

impl Record for Token {
    record_basics!(UuidKind::Token, Table::Tokens);
    fn index_entries(&self, _: Table) -> Vec<IndexEntry> {
        let uuid = &self.common.uuid;
        vec![
            (Table::IdxOwner, key2(&self.common.owner_uuid, uuid), vec![]),
            (
                Table::IdxToken,
                self.secret_hash.as_bytes().to_vec(),
                uuid.as_bytes().to_vec(),
            ),
        ]
    }
}

/// What a group is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupClass {
    /// Owns collections and subprojects.
    Project,
    /// Lists what its `properties.filters` match.
    Filter,
    /// A set of users that permissions can name.
    Role,
}

impl GroupClass {
    pub fn parse(s: &str) -> Option<GroupClass> {
        match s {
            "project" => Some(GroupClass::Project),
            "filter" => Some(GroupClass::Filter),
            "role" => Some(GroupClass::Role),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GroupClass::Project => "project",
            GroupClass::Filter => "filter",
            GroupClass::Role => "role",
        }
    }
}

/// A project, filter group or role.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Group {
    #[serde(flatten)]
    pub common: Common,
    pub name: String,
    pub group_class: GroupClass,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub properties: Obj,
    #[serde(flatten)]
    pub trash: Trash,
}

impl Group {
    /// What clients see.
    pub fn render(&self) -> Obj {
        let mut o = self.to_obj();
        self.trash.render(&mut o);
        o
    }
}

impl Record for Group {
    record_basics!(UuidKind::Group, Table::Groups);
    fn index_entries(&self, _: Table) -> Vec<IndexEntry> {
        let (owner, uuid) = (&self.common.owner_uuid, &self.common.uuid);
        let mut out = vec![(Table::IdxOwner, key2(owner, uuid), vec![])];
        if !self.name.is_empty() && !self.trash.is_trashed {
            out.push((
                Table::IdxName,
                key2(owner, &self.name),
                uuid.as_bytes().to_vec(),
            ));
        }
        out
    }
}

/// A collection: the current one (in [`Table::Collections`], its manifest in
/// [`Table::Manifests`]) or a past version (in [`Table::Versions`], with its manifest).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Collection {
    #[serde(flatten)]
    pub common: Common,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub properties: Obj,
    #[serde(flatten)]
    pub trash: Trash,
    #[serde(default)]
    pub replication_desired: Option<Number>,
    #[serde(default)]
    pub storage_classes_desired: Vec<String>,
    #[serde(default)]
    pub preserve_version: bool,
    pub version: u64,
    pub current_version_uuid: String,
    pub portable_data_hash: String,
    #[serde(default)]
    pub file_count: u64,
    #[serde(default)]
    pub file_size_total: u64,
    /// Only on past versions: their manifest (normalized, unsigned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_text: Option<String>,
}

impl Collection {
    /// A new, empty collection (not yet stored).
    pub fn new(uuid: &str, owner: &str, by: &str) -> Collection {
        Collection {
            common: Common::new(uuid, owner, by),
            name: None,
            description: None,
            properties: Obj::new(),
            trash: Trash::NOT,
            replication_desired: None,
            storage_classes_desired: vec!["default".into()],
            preserve_version: false,
            version: 1,
            current_version_uuid: uuid.to_string(),
            portable_data_hash: Pdh::empty().to_string(),
            file_count: 0,
            file_size_total: 0,
            manifest_text: None,
        }
    }

    /// Is this the current version (not a past one)?
    pub fn is_current(&self) -> bool {
        self.current_version_uuid == self.common.uuid
    }

    pub fn name_str(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }

    /// What lists show: the record without its manifest.
    pub fn render_meta(&self) -> Obj {
        let mut o = self.to_obj();
        o.remove("manifest_text");
        self.trash.render(&mut o);
        o
    }
}

impl Record for Collection {
    record_basics!(UuidKind::Collection, Table::Collections);
    fn index_entries(&self, table: Table) -> Vec<IndexEntry> {
        let (owner, uuid) = (&self.common.owner_uuid, &self.common.uuid);
        let pdh = (Table::IdxPdh, key2(&self.portable_data_hash, uuid), vec![]);
        if table == Table::Versions {
            return vec![
                (
                    Table::IdxVersion,
                    key2(&self.current_version_uuid, &format!("{:020}", self.version)),
                    uuid.as_bytes().to_vec(),
                ),
                pdh,
            ];
        }
        let mut out = vec![(Table::IdxOwner, key2(owner, uuid), vec![])];
        if !self.name_str().is_empty() && !self.trash.is_trashed {
            out.push((
                Table::IdxName,
                key2(owner, self.name_str()),
                uuid.as_bytes().to_vec(),
            ));
        }
        out.push(pdh);
        out
    }
}

/// A link: a permission (`can_read` < `can_write` < `can_manage`, from a user or role
/// to an object) or another class (tags and the like).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Link {
    #[serde(flatten)]
    pub common: Common,
    #[serde(default)]
    pub link_class: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail_uuid: Option<String>,
    #[serde(default)]
    pub head_uuid: String,
    #[serde(default)]
    pub properties: Obj,
}

impl Link {
    pub fn name_str(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }

    pub fn tail_str(&self) -> &str {
        self.tail_uuid.as_deref().unwrap_or("")
    }

    pub fn is_permission(&self) -> bool {
        self.link_class == "permission"
    }
}

impl Record for Link {
    record_basics!(UuidKind::Link, Table::Links);
    fn index_entries(&self, _: Table) -> Vec<IndexEntry> {
        let uuid = &self.common.uuid;
        vec![
            (Table::IdxLinkHead, key2(&self.head_uuid, uuid), vec![]),
            (Table::IdxLinkTail, key2(self.tail_str(), uuid), vec![]),
        ]
    }
}

/// The table holding current records of this UUID's kind (`None`: not a UUID).
pub fn table_of(uuid: &str) -> Option<Table> {
    Some(match UuidKind::of(uuid)? {
        UuidKind::User => Table::Users,
        UuidKind::Group => Table::Groups,
        UuidKind::Collection => Table::Collections,
        UuidKind::Token => Table::Tokens,
        UuidKind::Link => Table::Links,
    })
}

/// The Arvados `kind` of a UUID (`""` when it is none).
pub fn kind_of(uuid: &str) -> &'static str {
    UuidKind::of(uuid).map(UuidKind::arvados_kind).unwrap_or("")
}

/// The stored bytes of a record: [`FORMAT`], then the JSON of the typed record.
pub fn encode<T: Record>(r: &T) -> Result<Vec<u8>, Error> {
    let mut v = vec![FORMAT];
    serde_json::to_writer(&mut v, r)
        .map_err(|e| Error::internal(format!("cannot encode record {}", r.uuid()), e))?;
    Ok(v)
}

/// Reads a stored record of either format.
pub fn decode<T: Record>(bytes: &[u8]) -> Result<T, Error> {
    let corrupt = |e: serde_json::Error| Error::corrupt(T::KIND, e);
    match bytes.split_first() {
        Some((&FORMAT, rest)) => serde_json::from_slice(rest).map_err(corrupt),
        Some((&FORMAT_V1, rest)) => {
            let v: Value = serde_json::from_slice(rest).map_err(corrupt)?;
            serde_json::from_value(upgrade_v1(v)).map_err(corrupt)
        }
        Some((v, _)) => Err(Error::StoreFormat(format!(
            "record format version {v} is unknown to this server (upgrade keep)"
        ))),
        None => Err(Error::StoreFormat("empty record".into())),
    }
}

/// A format-1 record as format 2 reads it: `kind` goes (it is derived from the UUID),
/// and values that the untyped code let through are made to fit their types.
fn upgrade_v1(mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        m.remove("kind");
        if let Some(Value::Array(a)) = m.get_mut("storage_classes_desired") {
            a.retain(Value::is_string);
        }
        for k in ["properties", "prefs"] {
            if m.get(k).is_some_and(Value::is_null) {
                m.insert(k.into(), Value::Object(Obj::new()));
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn collection() -> Collection {
        let mut c = Collection::new(
            "zzzzz-4zz18-000000000000001",
            "zzzzz-tpzed-000000000000001",
            "zzzzz-tpzed-000000000000001",
        );
        c.name = Some("a".into());
        c
    }

    #[test]
    fn encode_decode_and_version() {
        let c = collection();
        let b = encode(&c).unwrap();
        assert_eq!(b[0], FORMAT);
        assert!(!String::from_utf8_lossy(&b).contains("\"kind\""));
        assert_eq!(decode::<Collection>(&b).unwrap(), c);
        let mut bad = b.clone();
        bad[0] = 99;
        assert!(decode::<Collection>(&bad)
            .unwrap_err()
            .to_string()
            .contains("version 99"));
        assert!(decode::<Collection>(&[]).is_err());
    }

    #[test]
    fn reads_format_1() {
        let c = collection();
        let mut old = c.to_obj();
        old.insert("storage_classes_desired".into(), json!(["default", 7]));
        let mut bytes = vec![FORMAT_V1];
        bytes.extend(serde_json::to_vec(&old).unwrap());
        assert_eq!(decode::<Collection>(&bytes).unwrap(), c);
        // a record of another type is corrupt, not silently empty
        assert!(decode::<User>(&bytes).is_err());
    }

    #[test]
    fn json_shape() {
        let c = collection();
        let o = c.render_meta();
        assert_eq!(o["kind"], json!("arvados#collection"));
        assert_eq!(o["name"], json!("a"));
        assert_eq!(o["trash_at"], Value::Null);
        assert_eq!(o["is_trashed"], json!(false));
        assert!(o["created_at"].as_str().unwrap().ends_with('Z'));
        assert!(!o.contains_key("manifest_text"));
        let mut t = c.clone();
        t.trash.trash_at = Some(Timestamp::UNIX_EPOCH);
        assert_eq!(t.render_meta()["is_trashed"], json!(true));
        let mut e = c.clone();
        e.touch("zzzzz-tpzed-000000000000001");
        assert_eq!(e.common.etag.len(), 24);
        let before = e.common.etag.clone();
        e.name = Some("b".into());
        e.touch("zzzzz-tpzed-000000000000001");
        assert_ne!(e.common.etag, before);
    }

    #[test]
    fn kinds_and_tables() {
        assert_eq!(
            table_of("zzzzz-4zz18-000000000000001"),
            Some(Table::Collections)
        );
        assert_eq!(table_of("zzzzz-4zz18-short"), None);
        assert_eq!(
            kind_of("zzzzz-gj3su-000000000000001"),
            "arvados#apiClientAuthorization"
        );
        assert_eq!(kind_of("nope"), "");
    }
}
