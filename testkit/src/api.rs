//! A client of the real API (in process or in `keep serve`): the records tests need,
//! made through the same requests a user's client sends.

use keep_format::Hash;
use reqwest::Method;
use serde_json::{json, Value};

/// A client of one API server, holding its admin (system root) token.
#[derive(Clone)]
pub struct Api {
    /// `http://127.0.0.1:<port>`
    pub url: String,
    /// A token with every right, for making users and their tokens.
    pub admin: String,
    /// Follows no redirects: tests look at them.
    pub http: reqwest::Client,
}

/// A user and a token of theirs.
#[derive(Debug, Clone)]
pub struct User {
    pub uuid: String,
    /// `v2/<token uuid>/<secret>`
    pub token: String,
}

/// A collection as the API answered its creation.
#[derive(Debug, Clone)]
pub struct Collection {
    pub uuid: String,
    /// Portable data hash: `<hash>+<size>`.
    pub pdh: String,
    /// The whole record.
    pub record: Value,
}

impl Api {
    pub fn new(url: &str, admin: &str) -> Api {
        Api {
            url: url.trim_end_matches('/').to_string(),
            admin: admin.to_string(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("build an HTTP client"),
        }
    }

    /// Any request (`path` below the API's URL, or a whole URL) with `token` as Bearer
    /// credential and `body` as JSON; the status and the body (JSON, else the text as a
    /// JSON string, else null).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.url)
        };
        let mut r = self.http.request(method, url).bearer_auth(token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.expect("send a request to the API");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(if text.is_empty() {
            Value::Null
        } else {
            Value::String(text)
        });
        (status, value)
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// Creates a user (as admin) and a token for them.
    pub async fn user(&self, name: &str) -> User {
        let (st, u) = self
            .post(
                "/arvados/v1/users",
                &self.admin,
                json!({"user": {"username": name}}),
            )
            .await;
        assert_eq!(st, 200, "create user {name}: {u}");
        let uuid = field(&u, "uuid");
        let token = self.token_for(&uuid, json!({})).await;
        User { uuid, token }
    }

    /// A new token for the user `user_uuid` (made by the admin) with `extra` attributes
    /// merged into the record (`scopes`, `expires_at`): `v2/<uuid>/<secret>`.
    pub async fn token_for(&self, user_uuid: &str, extra: Value) -> String {
        let mut body = json!({"owner_uuid": user_uuid});
        if let Value::Object(m) = extra {
            for (k, v) in m {
                body[k] = v;
            }
        }
        let (st, t) = self
            .post(
                "/arvados/v1/api_client_authorizations",
                &self.admin,
                json!({"api_client_authorization": body}),
            )
            .await;
        assert_eq!(st, 200, "create token: {t}");
        format!("v2/{}/{}", field(&t, "uuid"), field(&t, "api_token"))
    }

    /// A project of `token`'s user (inside `parent` if given); its UUID.
    pub async fn project(&self, token: &str, name: &str, parent: Option<&str>) -> String {
        let mut g = json!({"name": name, "group_class": "project"});
        if let Some(p) = parent {
            g["owner_uuid"] = json!(p);
        }
        let (st, v) = self
            .post("/arvados/v1/groups", token, json!({"group": g}))
            .await;
        assert_eq!(st, 200, "create project {name}: {v}");
        field(&v, "uuid")
    }

    /// A collection of `token`'s user (inside project `owner` if given) holding
    /// `manifest` (its locators signed for `token`, or none).
    pub async fn collection(
        &self,
        token: &str,
        name: &str,
        owner: Option<&str>,
        manifest: &str,
    ) -> Collection {
        let mut c = json!({"name": name, "manifest_text": manifest});
        if let Some(o) = owner {
            c["owner_uuid"] = json!(o);
        }
        let (st, v) = self
            .post("/arvados/v1/collections", token, json!({"collection": c}))
            .await;
        assert_eq!(st, 200, "create collection {name}: {v}");
        Collection {
            uuid: field(&v, "uuid"),
            pdh: field(&v, "portable_data_hash"),
            record: v,
        }
    }
}

/// Stores `data` as one block on the keepstore at `keepstore` (its URL) with `token`;
/// the signed locator keepstore answers.
pub async fn put_block(keepstore: &str, token: &str, data: Vec<u8>) -> String {
    let url = format!("{}/{}", keepstore.trim_end_matches('/'), Hash::of(&data));
    let r = reqwest::Client::new()
        .put(url)
        .bearer_auth(token)
        .body(data)
        .send()
        .await
        .expect("send a block to keepstore");
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    assert_eq!(status, 200, "PUT block: {text}");
    text.trim().to_string()
}

/// A string field of a record the API answered; panics naming the record if missing.
pub(crate) fn field(v: &Value, name: &str) -> String {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {v}"))
        .to_string()
}
