//! The API server's records and calls (JSON under `/arvados/v1/`, DESIGN §4): the ones
//! the CLI, keep-web and `keep balance` use, typed; anything else through
//! [`Client::get_json`] and friends.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::client::Client;
use crate::error::Error;

/// `{"items": [...], "items_available": N}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ItemList<T> {
    pub items: Vec<T>,
    #[serde(default)]
    pub items_available: Option<u64>,
}

/// A user (`/users/current`, `/users`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct User {
    pub uuid: String,
    pub owner_uuid: String,
    pub username: String,
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub is_admin: bool,
    pub is_active: bool,
}

/// A collection. Read by PDH, it has no `uuid`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Collection {
    pub uuid: Option<String>,
    pub owner_uuid: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub portable_data_hash: String,
    /// Signed for the caller's token (absent when a `select` left it out).
    pub manifest_text: Option<String>,
    pub replication_desired: Option<u32>,
    pub properties: Value,
    pub is_trashed: bool,
    pub trash_at: Option<String>,
    pub delete_at: Option<String>,
    pub modified_at: Option<String>,
    pub current_version_uuid: Option<String>,
    pub version: Option<u64>,
    pub can_write: Option<bool>,
    pub can_manage: Option<bool>,
}

impl Collection {
    /// The UUID, if this record names a collection (not just content by PDH).
    pub fn uuid(&self) -> Option<&str> {
        self.uuid.as_deref().filter(|u| !u.is_empty())
    }

    pub fn manifest(&self) -> &str {
        self.manifest_text.as_deref().unwrap_or("")
    }
}

/// What a new collection holds; unset fields take the API's defaults.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NewCollection {
    pub manifest_text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication_desired: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub properties: Option<Value>,
}

/// A project, filter group or role.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Group {
    pub uuid: String,
    pub owner_uuid: String,
    pub name: String,
    pub group_class: String,
    pub properties: Value,
    pub is_trashed: bool,
}

/// A new project (`group_class` `project`) or filter group (`filter`, with
/// `properties.filters`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct NewGroup {
    pub name: String,
    pub group_class: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub properties: Option<Value>,
}

/// A new user (admin only).
#[derive(Debug, Clone, Default, Serialize)]
pub struct NewUser {
    pub username: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub is_admin: bool,
}

/// An API token record (`api_client_authorizations`). `api_token` (the secret) is only
/// in the answer to its creation; its `Debug` never shows it.
#[derive(Clone, Default, Deserialize)]
#[serde(default)]
pub struct ApiToken {
    pub uuid: String,
    pub owner_uuid: String,
    pub api_token: Option<String>,
    pub scopes: Vec<String>,
    pub expires_at: Option<String>,
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiToken")
            .field("uuid", &self.uuid)
            .field("owner_uuid", &self.owner_uuid)
            .field("api_token", &self.api_token.as_ref().map(|_| "…"))
            .field("scopes", &self.scopes)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl ApiToken {
    /// `v2/<uuid>/<secret>`, when this is the answer to a creation.
    pub fn v2(&self) -> Option<String> {
        self.api_token
            .as_ref()
            .map(|s| format!("v2/{}/{s}", self.uuid))
    }
}

/// A new token: for yourself unless `owner_uuid` (admin), scoped, expiring.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NewToken {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_uuid: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// A link (permission links: `link_class` `permission`, `name` `can_read`…).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Link {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uuid: String,
    pub link_class: String,
    pub name: String,
    pub tail_uuid: String,
    pub head_uuid: String,
}

/// `filters`, `limit`, `offset`, `order`, `select`, and flags such as `include_trash`.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    /// `[attr, op, value]` triples.
    pub filters: Vec<(String, String, Value)>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
    pub order: Option<String>,
    pub select: Option<Vec<String>>,
    /// Other parameters, e.g. `("include_trash", "true")`.
    pub extra: Vec<(String, String)>,
}

impl ListParams {
    pub fn filter(mut self, attr: &str, op: &str, value: impl Into<Value>) -> Self {
        self.filters
            .push((attr.to_string(), op.to_string(), value.into()));
        self
    }

    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    pub fn flag(mut self, name: &str, value: &str) -> Self {
        self.extra.push((name.to_string(), value.to_string()));
        self
    }

    fn query(&self) -> Vec<(String, String)> {
        let mut q = Vec::new();
        if !self.filters.is_empty() {
            let f: Vec<Value> = self
                .filters
                .iter()
                .map(|(a, o, v)| json!([a, o, v]))
                .collect();
            q.push(("filters".into(), Value::Array(f).to_string()));
        }
        if let Some(n) = self.limit {
            q.push(("limit".into(), n.to_string()));
        }
        if let Some(n) = self.offset {
            q.push(("offset".into(), n.to_string()));
        }
        if let Some(o) = &self.order {
            q.push(("order".into(), o.clone()));
        }
        if let Some(s) = &self.select {
            q.push(("select".into(), json!(s).to_string()));
        }
        q.extend(self.extra.iter().cloned());
        q
    }
}

/// The resource a record type lives under.
pub trait Resource: DeserializeOwned {
    /// `collections`, `groups`, …
    const PATH: &'static str;
    /// The singular name create/update bodies wrap the record in.
    const SINGULAR: &'static str;
}

impl Resource for Collection {
    const PATH: &'static str = "collections";
    const SINGULAR: &'static str = "collection";
}
impl Resource for Group {
    const PATH: &'static str = "groups";
    const SINGULAR: &'static str = "group";
}
impl Resource for User {
    const PATH: &'static str = "users";
    const SINGULAR: &'static str = "user";
}
impl Resource for ApiToken {
    const PATH: &'static str = "api_client_authorizations";
    const SINGULAR: &'static str = "api_client_authorization";
}
impl Resource for Link {
    const PATH: &'static str = "links";
    const SINGULAR: &'static str = "link";
}

fn decode<T: DeserializeOwned>(method: &'static str, path: &str, v: Value) -> Result<T, Error> {
    serde_json::from_value(v).map_err(|source| Error::ApiBody {
        method,
        path: path.to_string(),
        source,
    })
}

impl Client {
    /// The caller.
    pub async fn current_user(&self) -> Result<User, Error> {
        let p = "users/current";
        decode("GET", p, self.get_json(p, &[]).await?)
    }

    /// One record by UUID (a collection also by PDH).
    pub async fn get<T: Resource>(&self, id: &str) -> Result<T, Error> {
        let p = format!("{}/{id}", T::PATH);
        decode("GET", &p, self.get_json(&p, &[]).await?)
    }

    /// A collection by UUID or PDH, its manifest signed for this client's token.
    pub async fn collection(&self, id: &str) -> Result<Collection, Error> {
        self.get::<Collection>(id).await
    }

    /// One page of a list call.
    pub async fn list<T: Resource>(&self, params: &ListParams) -> Result<ItemList<T>, Error> {
        let q = params.query();
        let q: Vec<(&str, String)> = q.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        decode("GET", T::PATH, self.get_json(T::PATH, &q).await?)
    }

    /// Every item of a list call, page after page (by offset, in the API's order), up
    /// to `max` items.
    pub async fn list_all<T: Resource>(
        &self,
        params: &ListParams,
        max: usize,
    ) -> Result<Vec<T>, Error> {
        let mut out: Vec<T> = Vec::new();
        loop {
            let mut p = params.clone();
            p.offset = Some(params.offset.unwrap_or(0) + out.len());
            let page = self.list::<T>(&p).await?;
            let n = page.items.len();
            out.extend(page.items);
            let done = n == 0
                || out.len() >= max
                || page.items_available.is_some_and(|a| out.len() as u64 >= a);
            if done {
                out.truncate(max);
                return Ok(out);
            }
        }
    }

    /// Creates a record (`{"<singular>": body}`), with extra query parameters.
    pub async fn create<T: Resource>(
        &self,
        body: &impl Serialize,
        query: &[(&str, String)],
    ) -> Result<T, Error> {
        let body = json!({ T::SINGULAR: body });
        let v = self.post_json(T::PATH, query, &body).await?;
        decode("POST", T::PATH, v)
    }

    /// Updates a record with the fields of `patch` (`{"<singular>": patch}`).
    pub async fn update<T: Resource>(
        &self,
        uuid: &str,
        patch: &Value,
        query: &[(&str, String)],
    ) -> Result<T, Error> {
        let p = format!("{}/{uuid}", T::PATH);
        let body = json!({ T::SINGULAR: patch });
        decode("PATCH", &p, self.patch_json(&p, query, &body).await?)
    }

    /// Deletes (or, for groups and collections, trashes) a record.
    pub async fn delete<T: Resource>(&self, uuid: &str) -> Result<T, Error> {
        let p = format!("{}/{uuid}", T::PATH);
        decode("DELETE", &p, self.delete_json(&p).await?)
    }

    /// A new collection; `ensure_unique_name` adds a suffix when the name is taken.
    pub async fn create_collection(
        &self,
        c: &NewCollection,
        ensure_unique_name: bool,
    ) -> Result<Collection, Error> {
        let q = match ensure_unique_name {
            true => vec![("ensure_unique_name", "true".to_string())],
            false => Vec::new(),
        };
        self.create::<Collection>(c, &q).await
    }

    pub async fn update_collection(&self, uuid: &str, patch: &Value) -> Result<Collection, Error> {
        self.update::<Collection>(uuid, patch, &[]).await
    }

    pub async fn create_group(&self, g: &NewGroup) -> Result<Group, Error> {
        self.create::<Group>(g, &[]).await
    }

    pub async fn create_user(&self, u: &NewUser) -> Result<User, Error> {
        self.create::<User>(u, &[]).await
    }

    pub async fn create_token(&self, t: &NewToken) -> Result<ApiToken, Error> {
        self.create::<ApiToken>(t, &[]).await
    }

    pub async fn revoke_token(&self, uuid: &str) -> Result<ApiToken, Error> {
        self.delete::<ApiToken>(uuid).await
    }

    pub async fn create_link(&self, l: &Link) -> Result<Link, Error> {
        self.create::<Link>(l, &[]).await
    }

    /// A permission link: `who` gets `level` (`can_read`, `can_write`, `can_manage`) on `on`.
    pub async fn grant(&self, who: &str, level: &str, on: &str) -> Result<Link, Error> {
        self.create_link(&Link {
            uuid: String::new(),
            link_class: "permission".into(),
            name: level.into(),
            tail_uuid: who.into(),
            head_uuid: on.into(),
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_params_make_the_query() {
        let p = ListParams::default()
            .filter("name", "like", "%.bam")
            .limit(10)
            .flag("include_trash", "true");
        let q = p.query();
        assert_eq!(q[0].0, "filters");
        assert_eq!(q[0].1, r#"[["name","like","%.bam"]]"#);
        assert_eq!(q[1], ("limit".to_string(), "10".to_string()));
        assert_eq!(q[2], ("include_trash".to_string(), "true".to_string()));
    }

    #[test]
    fn token_debug_hides_the_secret() {
        let t = ApiToken {
            uuid: "zzzzz-gj3su-0123456789abcde".into(),
            api_token: Some("s3cr3t".into()),
            ..ApiToken::default()
        };
        assert!(!format!("{t:?}").contains("s3cr3t"));
        assert_eq!(
            t.v2().as_deref(),
            Some("v2/zzzzz-gj3su-0123456789abcde/s3cr3t")
        );
    }
}
