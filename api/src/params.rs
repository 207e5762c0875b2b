//! Request parameters, parsed into types: the query string and body as one [`Params`]
//! map, the [`Ctx`] every handler gets, and one typed patch per resource
//! ([`CollectionPatch`], [`GroupPatch`], [`UserPatch`], [`TokenPatch`], [`LinkPatch`]):
//! what a create or update body may say, checked here so that handlers work on types.

use keep_format::time::Timestamp;
use serde_json::{Number, Value};

use crate::auth::Caller;
use crate::error::{short, Error};
use crate::list::{parse_filters, truthy, ListParams};
use crate::records::{GroupClass, Obj};

/// Parameters whose query-string values are JSON.
const JSON_PARAMS: &[&str] = &[
    "filters",
    "order",
    "select",
    "limit",
    "offset",
    "include_trash",
    "include_old_versions",
    "ensure_unique_name",
    "replace_files",
    "collection",
    "group",
    "user",
    "link",
    "api_client_authorization",
    "recursive",
];

/// Query parameters and the body's top-level keys (the body wins).
#[derive(Clone, Debug, Default)]
pub struct Params(pub Obj);

impl Params {
    /// Parses a query string (`qs`) and a body (JSON object or form).
    pub fn parse(qs: &str, body: &[u8], content_type: &str) -> Result<Params, Error> {
        let mut params = Obj::new();
        let pairs = |text: &str, what: &str| -> Result<Vec<(String, String)>, Error> {
            form_urlencoded_pairs(text)
                .map_err(|e| Error::BadRequest(format!("cannot parse the {what}: {e}")))
        };
        let mut add = |k: String, v: String| {
            let val = if JSON_PARAMS.contains(&k.as_str()) {
                serde_json::from_str(&v).unwrap_or(Value::String(v))
            } else {
                Value::String(v)
            };
            params.insert(k, val);
        };
        for (k, v) in pairs(qs, "query string")? {
            add(k, v);
        }
        if body.iter().any(|b| !b.is_ascii_whitespace()) {
            if content_type.starts_with("application/x-www-form-urlencoded") {
                let text = std::str::from_utf8(body)
                    .map_err(|_| Error::BadRequest("the form body is not UTF-8".into()))?;
                for (k, v) in pairs(text, "form body")? {
                    add(k, v);
                }
            } else {
                let v: Value = serde_json::from_slice(body).map_err(|e| {
                    if e.to_string().contains("recursion limit") {
                        return Error::BadRequest(format!(
                            "the request body nests deeper than {} levels (the limit on JSON nesting, see \"Limits\" in doc/api.md)",
                            crate::limits::JSON_DEPTH_MAX
                        ));
                    }
                    Error::BadJson {
                        context: "the request body is not valid JSON (send an object like {\"collection\": {…}})".into(),
                        source: e,
                    }
                })?;
                match v {
                    Value::Object(m) => params.extend(m),
                    _ => {
                        return Err(Error::BadRequest(
                            "the request body must be a JSON object like {\"collection\": {…}}"
                                .into(),
                        ))
                    }
                }
            }
        }
        Ok(Params(params))
    }

    pub fn remove(&mut self, k: &str) -> Option<Value> {
        self.0.remove(k)
    }

    pub fn extend(&mut self, other: Params) {
        self.0.extend(other.0)
    }

    /// A string parameter.
    pub fn str(&self, k: &str) -> Option<&str> {
        self.0.get(k).and_then(Value::as_str)
    }

    /// A boolean parameter (`true`, `1`, `yes`, `t`; absent is false).
    pub fn flag(&self, k: &str) -> bool {
        truthy(self.0.get(k))
    }

    /// `filters`, `limit`, `offset`, `order`, `select`, `count`, `include_*`.
    pub fn list(&self) -> Result<ListParams, Error> {
        ListParams::parse(&self.0)
    }

    /// `params[name]` as an object (the `{"collection": {…}}` wrapper); `{}` when absent.
    pub fn object(&self, name: &str) -> Result<Obj, Error> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(Obj::new()),
            Some(Value::Object(m)) => Ok(m.clone()),
            Some(other) => Err(Error::BadRequest(format!(
                "{name} must be a JSON object, got {}",
                short(other)
            ))),
        }
    }

    /// `replace_files`: `{"/target": "source"}`, sorted by target.
    pub fn replace_files(&self) -> Result<Option<Vec<(String, String)>>, Error> {
        match self.0.get("replace_files") {
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
}

fn form_urlencoded_pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    actix_web::web::Query::<Vec<(String, String)>>::from_query(text)
        .map(|q| q.into_inner())
        .map_err(|e| e.to_string())
}

/// One authenticated request, as the handlers see it.
pub struct Ctx {
    pub caller: Caller,
    pub params: Params,
    /// The `{id}` path segment, if the route has one.
    pub id: String,
}

/// A name for a project or collection: no `/`, no NUL, at most 255 bytes.
pub fn check_name(name: &str, what: &str) -> Result<(), Error> {
    if name.contains('/') || name.contains('\0') {
        return Err(Error::Unprocessable(format!(
            "{what}.name {name:?} may not contain \"/\" or NUL (it becomes a directory name)"
        )));
    }
    if name == "." || name == ".." {
        return Err(Error::Unprocessable(format!(
            "{what}.name may not be \".\" or \"..\""
        )));
    }
    if name.len() > 255 {
        return Err(Error::Unprocessable(format!(
            "{what}.name is {} bytes long; the limit is 255",
            name.len()
        )));
    }
    Ok(())
}

/// Read-only attributes clients echo back: accepted and ignored in every body.
const ECHOED: &[&str] = &[
    "uuid",
    "kind",
    "etag",
    "created_at",
    "modified_at",
    "modified_by_user_uuid",
    "href",
];

/// Typed reads of one object of a body (`what` names it in errors: `collection`).
struct Fields<'a> {
    o: &'a Obj,
    what: &'static str,
}

impl<'a> Fields<'a> {
    /// Refuses attributes outside `writable` (ignoring read-only ones clients echo back).
    fn new(o: &'a Obj, what: &'static str, writable: &[&str]) -> Result<Fields<'a>, Error> {
        if let Some(k) = o
            .keys()
            .find(|k| !writable.contains(&k.as_str()) && !ECHOED.contains(&k.as_str()))
        {
            return Err(Error::Unprocessable(format!(
                "{what} has no writable attribute {k:?} (writable: {})",
                writable.join(", ")
            )));
        }
        Ok(Fields { o, what })
    }

    fn bad(&self, k: &str, want: &str, got: &Value) -> Error {
        Error::Unprocessable(format!(
            "{}.{k} must be {want}, got {}",
            self.what,
            short(got)
        ))
    }

    fn raw(&self, k: &str) -> Option<&'a Value> {
        self.o.get(k)
    }

    /// Absent: None; null: Some(None); a string: Some(Some(s)).
    fn nullable_str(&self, k: &str) -> Result<Option<Option<String>>, Error> {
        match self.o.get(k) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
            Some(other) => Err(self.bad(k, "a string", other)),
        }
    }

    /// A string; null counts as absent.
    fn str(&self, k: &str) -> Result<Option<String>, Error> {
        Ok(self.nullable_str(k)?.flatten())
    }

    /// A timestamp, normalized: Some(None) for null.
    fn time(&self, k: &str) -> Result<Option<Option<Timestamp>>, Error> {
        match self.nullable_str(k)? {
            Some(Some(t)) => Timestamp::parse(&t)
                .map(|t| Some(Some(t)))
                .map_err(|e| Error::input(format!("{}.{k}", self.what), e)),
            Some(None) => Ok(Some(None)),
            None => Ok(None),
        }
    }

    /// An object; null means `{}`.
    fn object(&self, k: &str) -> Result<Option<Obj>, Error> {
        match self.o.get(k) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(Obj::new())),
            Some(Value::Object(m)) => Ok(Some(m.clone())),
            Some(other) => Err(self.bad(k, "an object", other)),
        }
    }

    fn bool(&self, k: &str) -> Result<Option<bool>, Error> {
        match self.o.get(k) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.bad(k, "true or false", other)),
        }
    }

    fn strings(&self, k: &str) -> Result<Option<Vec<String>>, Error> {
        match self.o.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| self.bad(k, "a list of strings", x))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(self.bad(k, "a list of strings", other)),
        }
    }
}

/// What a collection create or update may say.
#[derive(Debug, Default)]
pub struct CollectionPatch {
    pub owner_uuid: Option<String>,
    pub name: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub properties: Option<Obj>,
    pub manifest_text: Option<Option<String>>,
    /// What the client believes the manifest's PDH is (checked, never stored).
    pub portable_data_hash: Option<String>,
    pub trash_at: Option<Option<Timestamp>>,
    pub delete_at: Option<Option<Timestamp>>,
    pub is_trashed: Option<bool>,
    pub replication_desired: Option<Option<Number>>,
    pub storage_classes_desired: Option<Vec<String>>,
    pub preserve_version: Option<bool>,
}

impl CollectionPatch {
    pub fn parse(o: &Obj) -> Result<CollectionPatch, Error> {
        let f = Fields::new(
            o,
            "collection",
            &[
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
            ],
        )?;
        let name = f.nullable_str("name")?;
        if let Some(Some(n)) = &name {
            check_name(n, "collection")?;
        }
        Ok(CollectionPatch {
            owner_uuid: f.str("owner_uuid")?,
            name,
            description: f.nullable_str("description")?,
            properties: f.object("properties")?,
            manifest_text: f.nullable_str("manifest_text")?,
            portable_data_hash: f.str("portable_data_hash")?,
            trash_at: f.time("trash_at")?,
            delete_at: f.time("delete_at")?,
            is_trashed: f.bool("is_trashed")?,
            replication_desired: match f.raw("replication_desired") {
                None => None,
                Some(Value::Null) => Some(None),
                Some(Value::Number(n)) => Some(Some(n.clone())),
                Some(other) => return Err(f.bad("replication_desired", "a number or null", other)),
            },
            storage_classes_desired: f.strings("storage_classes_desired")?,
            preserve_version: f.raw("preserve_version").map(|v| truthy(Some(v))),
        })
    }
}

/// What a group create or update may say.
#[derive(Debug, Default)]
pub struct GroupPatch {
    pub owner_uuid: Option<String>,
    /// Never empty.
    pub name: Option<String>,
    pub group_class: Option<GroupClass>,
    pub description: Option<Option<String>>,
    pub properties: Option<Obj>,
    pub trash_at: Option<Option<Timestamp>>,
    pub delete_at: Option<Option<Timestamp>>,
    pub is_trashed: Option<bool>,
}

impl GroupPatch {
    pub fn parse(o: &Obj) -> Result<GroupPatch, Error> {
        let f = Fields::new(
            o,
            "group",
            &[
                "name",
                "description",
                "group_class",
                "properties",
                "owner_uuid",
                "trash_at",
                "delete_at",
                "is_trashed",
            ],
        )?;
        let name = match f.nullable_str("name")? {
            None => None,
            Some(n) => {
                let n = n.unwrap_or_default();
                check_name(&n, "group")?;
                if n.is_empty() {
                    return Err(Error::Unprocessable("group.name may not be empty".into()));
                }
                Some(n)
            }
        };
        let group_class = match f.raw("group_class") {
            None => None,
            Some(v) => Some(v.as_str().and_then(GroupClass::parse).ok_or_else(|| {
                Error::Unprocessable(format!(
                    "group.group_class must be \"project\", \"filter\" or \"role\", got {}",
                    short(v)
                ))
            })?),
        };
        let properties = f.object("properties")?;
        if let Some(filters) = properties.as_ref().and_then(|p| p.get("filters")) {
            match filters {
                Value::Null => {}
                v @ Value::Array(_) => {
                    parse_filters(v, "group.properties.filters")?;
                }
                other => {
                    return Err(Error::Unprocessable(format!(
                    "group.properties.filters must be a list of [attr, op, value] triples, got {}",
                    short(other)
                )))
                }
            }
        }
        Ok(GroupPatch {
            owner_uuid: f.str("owner_uuid")?,
            name,
            group_class,
            description: f.nullable_str("description")?,
            properties,
            trash_at: f.time("trash_at")?,
            delete_at: f.time("delete_at")?,
            is_trashed: f.bool("is_trashed")?,
        })
    }
}

/// What a user create or update may say.
#[derive(Debug, Default)]
pub struct UserPatch {
    pub username: Option<String>,
    pub email: Option<Option<String>>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub is_admin: Option<bool>,
    pub is_active: Option<bool>,
    pub prefs: Option<Obj>,
    pub owner_uuid: Option<String>,
}

impl UserPatch {
    pub fn parse(o: &Obj) -> Result<UserPatch, Error> {
        let f = Fields::new(
            o,
            "user",
            &[
                "username",
                "email",
                "first_name",
                "last_name",
                "is_admin",
                "is_active",
                "prefs",
                "owner_uuid",
                // computed from the names; accepted and ignored
                "full_name",
            ],
        )?;
        let username = match f.nullable_str("username")? {
            None => None,
            Some(None) => return Err(Error::Unprocessable("user.username may not be null".into())),
            Some(Some(u)) => {
                check_username(&u)?;
                Some(u)
            }
        };
        let prefs = match f.raw("prefs") {
            Some(Value::Null) => return Err(f.bad("prefs", "an object", &Value::Null)),
            _ => f.object("prefs")?,
        };
        Ok(UserPatch {
            username,
            email: f.nullable_str("email")?,
            first_name: f.nullable_str("first_name")?.map(Option::unwrap_or_default),
            last_name: f.nullable_str("last_name")?.map(Option::unwrap_or_default),
            is_admin: f.bool("is_admin")?,
            is_active: f.bool("is_active")?,
            prefs,
            owner_uuid: f.str("owner_uuid")?,
        })
    }
}

fn check_username(u: &str) -> Result<(), Error> {
    let ok = !u.is_empty()
        && u.len() <= 64
        && u.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && u.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Unprocessable(format!(
            "username {u:?} must be 1-64 characters [A-Za-z0-9._-], starting with a letter or digit"
        )))
    }
}

/// What a token create or update may say.
#[derive(Debug, Default)]
pub struct TokenPatch {
    pub owner_uuid: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub expires_at: Option<Option<Timestamp>>,
}

impl TokenPatch {
    /// A create body (`owner_uuid` allowed); `api_token` is refused by name.
    pub fn parse_create(o: &Obj) -> Result<TokenPatch, Error> {
        const WHAT: &str = "api_client_authorization";
        let f = Fields::new(
            o,
            WHAT,
            &["owner_uuid", "scopes", "expires_at", "api_token"],
        )?;
        if f.raw("api_token").is_some() {
            return Err(Error::Unprocessable(
                "api_client_authorization.api_token cannot be chosen; the server generates it"
                    .into(),
            ));
        }
        TokenPatch::read(&f)
    }

    /// An update body: scopes and expiry only.
    pub fn parse_update(o: &Obj) -> Result<TokenPatch, Error> {
        TokenPatch::read(&Fields::new(
            o,
            "api_client_authorization",
            &["scopes", "expires_at"],
        )?)
    }

    fn read(f: &Fields) -> Result<TokenPatch, Error> {
        let scopes = match f.raw("scopes") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => {
                let mut out = Vec::new();
                for x in a {
                    let sc = x.as_str().ok_or_else(|| {
                        Error::Unprocessable(format!("scopes: {} is not a string", short(x)))
                    })?;
                    crate::auth::check_scope(sc)?;
                    out.push(sc.to_string());
                }
                Some(out)
            }
            Some(other) => {
                return Err(Error::Unprocessable(format!(
                    "scopes must be a list like [\"all\"], got {}",
                    short(other)
                )))
            }
        };
        Ok(TokenPatch {
            owner_uuid: f.str("owner_uuid")?,
            scopes,
            expires_at: f.time("expires_at")?,
        })
    }
}

/// What a link create or update may say.
#[derive(Debug, Default)]
pub struct LinkPatch {
    pub link_class: Option<String>,
    pub name: Option<String>,
    pub tail_uuid: Option<String>,
    pub head_uuid: Option<String>,
    pub properties: Option<Obj>,
    pub owner_uuid: Option<String>,
}

impl LinkPatch {
    pub fn parse(o: &Obj) -> Result<LinkPatch, Error> {
        let f = Fields::new(
            o,
            "link",
            &[
                "link_class",
                "name",
                "tail_uuid",
                "head_uuid",
                "properties",
                "owner_uuid",
            ],
        )?;
        // null means "" for these
        let text = |k| -> Result<Option<String>, Error> {
            Ok(f.nullable_str(k)?.map(Option::unwrap_or_default))
        };
        Ok(LinkPatch {
            link_class: text("link_class")?,
            name: text("name")?,
            tail_uuid: text("tail_uuid")?,
            head_uuid: text("head_uuid")?,
            properties: f.object("properties")?,
            owner_uuid: f.str("owner_uuid")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Obj {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn params() {
        let p = Params::parse(
            "filters=%5B%5B%22name%22%2C%22%3D%22%2C%22x%22%5D%5D&limit=5&name=123",
            br#"{"collection": {"name": "n"}}"#,
            "application/json",
        )
        .unwrap();
        assert!(p.0.get("filters").unwrap().is_array());
        assert_eq!(p.0.get("limit"), Some(&json!(5)));
        assert_eq!(p.str("name"), Some("123"));
        assert_eq!(p.object("collection").unwrap()["name"], json!("n"));
        assert!(Params::parse("", b"[1]", "application/json").is_err());
        assert!(Params::parse("", b"{nope", "application/json").is_err());
        let f = Params::parse("", b"limit=3", "application/x-www-form-urlencoded").unwrap();
        assert_eq!(f.0.get("limit"), Some(&json!(3)));
        assert!(Params::parse(
            "",
            b"x=1&ensure_unique_name=true",
            "application/x-www-form-urlencoded"
        )
        .unwrap()
        .flag("ensure_unique_name"));
    }

    #[test]
    fn patches() {
        let p = CollectionPatch::parse(&obj(json!({
            "name": "a", "description": null, "trash_at": "2030-01-01",
            "uuid": "echoed", "file_count": 3, "preserve_version": "true"
        })))
        .unwrap();
        assert_eq!(p.name, Some(Some("a".into())));
        assert_eq!(p.description, Some(None));
        assert_eq!(
            p.trash_at.unwrap().unwrap().to_string(),
            "2030-01-01T00:00:00.000000000Z"
        );
        assert_eq!(p.preserve_version, Some(true));
        let e = CollectionPatch::parse(&obj(json!({"nope": 1}))).unwrap_err();
        assert!(
            e.to_string().contains("no writable attribute \"nope\""),
            "{e}"
        );
        let e = CollectionPatch::parse(&obj(json!({"trash_at": "2030-01-01T00:00:00+€00"})))
            .unwrap_err();
        assert!(
            e.to_string().contains("collection.trash_at") && e.to_string().contains("RFC 3339"),
            "{e}"
        );
        assert!(CollectionPatch::parse(&obj(json!({"name": "a/b"}))).is_err());
        assert!(CollectionPatch::parse(&obj(json!({"storage_classes_desired": [1]}))).is_err());
        assert!(GroupPatch::parse(&obj(json!({"name": ""}))).is_err());
        assert!(GroupPatch::parse(&obj(json!({"group_class": "x"}))).is_err());
        assert!(
            GroupPatch::parse(&obj(json!({"properties": {"filters": [["a", "~", 1]]}}))).is_err()
        );
        assert!(UserPatch::parse(&obj(json!({"username": "-x"}))).is_err());
        assert!(UserPatch::parse(&obj(json!({"prefs": null}))).is_err());
        assert!(TokenPatch::parse_create(&obj(json!({"api_token": "x"}))).is_err());
        assert!(TokenPatch::parse_update(&obj(json!({"owner_uuid": "x"}))).is_err());
        assert!(TokenPatch::parse_create(&obj(json!({"scopes": ["FETCH /x"]}))).is_err());
        let l = LinkPatch::parse(&obj(json!({"name": null}))).unwrap();
        assert_eq!(l.name.as_deref(), Some(""));
    }
}
