//! List parameters (`filters`, `limit`, `offset`, `order`, `select`, `count`) and their
//! evaluation over JSON records.

use std::cmp::Ordering;

use serde_json::{json, Value};

use crate::db::{kind_of, Obj};
use crate::Error;

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    pub attr: String,
    pub op: String,
    pub val: Value,
}

const OPS: &[&str] = &[
    "=", "!=", "<", "<=", ">", ">=", "like", "ilike", "in", "not in", "is_a", "exists",
];

pub fn parse_filters(v: &Value, what: &str) -> Result<Vec<Filter>, Error> {
    let bad = |why: String| Error::Unprocessable(format!("{what}: {why}"));
    let v = match v {
        Value::Null => return Ok(vec![]),
        Value::String(s) => serde_json::from_str::<Value>(s)
            .map_err(|e| bad(format!("not JSON ({e}); write [[\"attr\",\"op\",value],…]")))?,
        other => other.clone(),
    };
    let arr = v
        .as_array()
        .ok_or_else(|| bad("must be a list of [attr, op, value] triples".into()))?;
    // a single triple is accepted as a list of one
    let triples: Vec<&Value> = if arr.len() == 3 && arr[0].is_string() && arr[1].is_string() {
        vec![&v]
    } else {
        arr.iter().collect()
    };
    let mut out = Vec::new();
    for t in triples {
        let t = t
            .as_array()
            .filter(|t| t.len() == 3)
            .ok_or_else(|| bad(format!("{t} is not an [attr, op, value] triple")))?;
        let attr = t[0]
            .as_str()
            .ok_or_else(|| bad(format!("attribute {} is not a string", t[0])))?;
        let op = t[1]
            .as_str()
            .ok_or_else(|| bad(format!("operator {} is not a string", t[1])))?
            .to_lowercase();
        if !OPS.contains(&op.as_str()) {
            return Err(bad(format!(
                "operator {op:?} is not one of {}",
                OPS.join(", ")
            )));
        }
        let val = t[2].clone();
        match op.as_str() {
            "in" | "not in" if !val.is_array() => {
                return Err(bad(format!("{op:?} needs a list value, got {val}")))
            }
            "like" | "ilike" if !val.is_string() => {
                return Err(bad(format!("{op:?} needs a string pattern, got {val}")))
            }
            "is_a" if !(val.is_string() || val.is_array()) => {
                return Err(bad(format!(
                    "\"is_a\" needs a kind like \"arvados#collection\", got {val}"
                )))
            }
            _ => {}
        }
        out.push(Filter {
            attr: attr.to_string(),
            op,
            val,
        });
    }
    Ok(out)
}

/// The table prefix (`collections.`) a kind answers to.
fn table_prefix(kind: &str) -> &'static str {
    match kind {
        "arvados#collection" => "collections",
        "arvados#group" => "groups",
        "arvados#user" => "users",
        "arvados#link" => "links",
        "arvados#apiClientAuthorization" => "api_client_authorizations",
        _ => "",
    }
}

const PREFIXES: &[&str] = &[
    "collections",
    "groups",
    "users",
    "links",
    "api_client_authorizations",
];

/// Splits `collections.name` into (Some("collections"), "name").
fn split_attr(attr: &str) -> (Option<&str>, &str) {
    if let Some((p, rest)) = attr.split_once('.') {
        if PREFIXES.contains(&p) {
            return (Some(p), rest);
        }
    }
    (None, attr)
}

/// The value at `properties.a.b` (or `name`).
pub fn lookup<'a>(o: &'a Obj, attr: &str) -> Option<&'a Value> {
    let mut parts = attr.split('.');
    let first = parts.next()?;
    let mut v = o.get(first)?;
    for p in parts {
        v = v.as_object()?.get(p)?;
    }
    Some(v)
}

fn cmp_values(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ => None,
    }
}

fn eq_values(a: &Value, b: &Value) -> bool {
    cmp_values(a, b) == Some(Ordering::Equal) || a == b
}

/// SQL LIKE: `%` any run, `_` one character, `\` escapes.
pub fn like(text: &str, pat: &str, ci: bool) -> bool {
    let (t, p): (Vec<char>, Vec<char>) = if ci {
        (
            text.to_lowercase().chars().collect(),
            pat.to_lowercase().chars().collect(),
        )
    } else {
        (text.chars().collect(), pat.chars().collect())
    };
    // tokens: Some(c) literal, None('%') any run, Some with flag for '_'
    enum Tok {
        Lit(char),
        One,
        Any,
    }
    let mut toks = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' if i + 1 < p.len() => {
                toks.push(Tok::Lit(p[i + 1]));
                i += 1;
            }
            '%' => toks.push(Tok::Any),
            '_' => toks.push(Tok::One),
            c => toks.push(Tok::Lit(c)),
        }
        i += 1;
    }
    // dp[j] = pattern prefix of length j matches text prefix
    let mut dp = vec![false; toks.len() + 1];
    dp[0] = true;
    for (j, tok) in toks.iter().enumerate() {
        if matches!(tok, Tok::Any) {
            dp[j + 1] = dp[j];
        }
    }
    for c in &t {
        let mut next = vec![false; toks.len() + 1];
        for (j, tok) in toks.iter().enumerate() {
            next[j + 1] = match tok {
                Tok::Any => next[j] || dp[j + 1],
                Tok::One => dp[j],
                Tok::Lit(l) => dp[j] && l == c,
            };
        }
        dp = next;
    }
    dp[toks.len()]
}

/// Does `o` (whose kind is `o["kind"]`) pass every filter? A filter naming another
/// type's attributes (`groups.name` on a collection) excludes it.
pub fn matches(filters: &[Filter], o: &Obj) -> bool {
    let kind = o.get("kind").and_then(Value::as_str).unwrap_or("");
    let my_prefix = table_prefix(kind);
    filters.iter().all(|f| {
        let (prefix, attr) = split_attr(&f.attr);
        if prefix.is_some_and(|p| p != my_prefix) {
            return false;
        }
        let got = lookup(o, attr);
        let null = Value::Null;
        let g = got.unwrap_or(&null);
        match f.op.as_str() {
            "=" => eq_values(g, &f.val),
            "!=" => !eq_values(g, &f.val),
            "<" => cmp_values(g, &f.val) == Some(Ordering::Less),
            "<=" => matches!(
                cmp_values(g, &f.val),
                Some(Ordering::Less | Ordering::Equal)
            ),
            ">" => cmp_values(g, &f.val) == Some(Ordering::Greater),
            ">=" => matches!(
                cmp_values(g, &f.val),
                Some(Ordering::Greater | Ordering::Equal)
            ),
            "like" | "ilike" => match (g.as_str(), f.val.as_str()) {
                (Some(t), Some(p)) => like(t, p, f.op == "ilike"),
                _ => false,
            },
            "in" => f
                .val
                .as_array()
                .is_some_and(|a| a.iter().any(|v| eq_values(g, v))),
            "not in" => f
                .val
                .as_array()
                .is_some_and(|a| !a.iter().any(|v| eq_values(g, v))),
            "is_a" => {
                // the kind of the object the attribute (usually uuid) names
                let k = g.as_str().map(kind_of).unwrap_or("");
                match &f.val {
                    Value::String(s) => s == k,
                    Value::Array(a) => a.iter().any(|v| v.as_str() == Some(k)),
                    _ => false,
                }
            }
            "exists" => match &f.val {
                // ["properties", "exists", "key"]
                Value::String(key) => g.as_object().is_some_and(|m| m.contains_key(key)),
                Value::Bool(want) => got.is_some() == *want,
                _ => got.is_some(),
            },
            _ => false,
        }
    })
}

#[derive(Clone, Debug)]
pub struct ListParams {
    pub filters: Vec<Filter>,
    pub limit: usize,
    pub offset: usize,
    pub order: Vec<(String, bool)>,
    pub select: Option<Vec<String>>,
    pub count: bool,
    pub include_trash: bool,
    pub include_old_versions: bool,
}

fn as_usize(v: &Value, what: &str) -> Result<Option<usize>, Error> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n.as_u64().map(|n| Some(n as usize)).ok_or_else(|| {
            Error::BadRequest(format!("{what} must be a non-negative integer, got {n}"))
        }),
        Value::String(s) => s.parse::<usize>().map(Some).map_err(|_| {
            Error::BadRequest(format!("{what} must be a non-negative integer, got {s:?}"))
        }),
        other => Err(Error::BadRequest(format!(
            "{what} must be a non-negative integer, got {other}"
        ))),
    }
}

pub fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.as_str(), "true" | "1" | "yes" | "t"),
        Some(Value::Number(n)) => n.as_u64().is_some_and(|n| n != 0),
        _ => false,
    }
}

fn string_list(v: &Value, what: &str) -> Result<Vec<String>, Error> {
    let v = match v {
        Value::String(s) if s.trim_start().starts_with('[') => serde_json::from_str(s)
            .map_err(|e| Error::BadRequest(format!("{what}: not JSON: {e}")))?,
        Value::String(s) => json!(s.split(',').map(str::trim).collect::<Vec<_>>()),
        other => other.clone(),
    };
    v.as_array()
        .ok_or_else(|| Error::BadRequest(format!("{what} must be a list of strings")))?
        .iter()
        .map(|x| {
            x.as_str()
                .map(str::to_string)
                .ok_or_else(|| Error::BadRequest(format!("{what}: {x} is not a string")))
        })
        .collect()
}

impl ListParams {
    pub fn parse(p: &Obj) -> Result<ListParams, Error> {
        let null = Value::Null;
        let filters = parse_filters(p.get("filters").unwrap_or(&null), "filters")?;
        let limit = as_usize(p.get("limit").unwrap_or(&null), "limit")?
            .unwrap_or(DEFAULT_LIMIT)
            .min(MAX_LIMIT);
        let offset = as_usize(p.get("offset").unwrap_or(&null), "offset")?.unwrap_or(0);
        let mut order = Vec::new();
        if let Some(o) = p.get("order").filter(|v| !v.is_null()) {
            for item in string_list(o, "order")? {
                let mut words = item.split_whitespace();
                let Some(attr) = words.next() else { continue };
                let asc = match words.next().map(|w| w.to_lowercase()) {
                    None => true,
                    Some(w) if w == "asc" => true,
                    Some(w) if w == "desc" => false,
                    Some(w) => {
                        return Err(Error::BadRequest(format!(
                            "order {item:?}: direction {w:?} is not asc or desc"
                        )))
                    }
                };
                let (_, a) = split_attr(attr);
                order.push((a.to_string(), asc));
            }
        }
        if order.is_empty() {
            order.push(("modified_at".into(), false));
        }
        order.push(("uuid".into(), true));
        let select = match p.get("select").filter(|v| !v.is_null()) {
            Some(v) => Some(string_list(v, "select")?),
            None => None,
        };
        let count = match p.get("count").and_then(Value::as_str) {
            None | Some("exact") => true,
            Some("none") => false,
            Some(other) => {
                return Err(Error::BadRequest(format!(
                    "count {other:?} is not \"exact\" or \"none\""
                )))
            }
        };
        Ok(ListParams {
            filters,
            limit,
            offset,
            order,
            select,
            count,
            include_trash: truthy(p.get("include_trash")),
            include_old_versions: truthy(p.get("include_old_versions")),
        })
    }

    pub fn sort(&self, items: &mut [Obj]) {
        let null = Value::Null;
        items.sort_by(|a, b| {
            for (attr, asc) in &self.order {
                let x = lookup(a, attr).unwrap_or(&null);
                let y = lookup(b, attr).unwrap_or(&null);
                let o = match (x, y) {
                    (Value::Null, Value::Null) => Ordering::Equal,
                    (Value::Null, _) => Ordering::Greater,
                    (_, Value::Null) => Ordering::Less,
                    _ => cmp_values(x, y).unwrap_or(Ordering::Equal),
                };
                let o = if *asc { o } else { o.reverse() };
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        });
    }

    /// Whether `attr` is to be returned.
    pub fn selected(&self, attr: &str) -> bool {
        self.select
            .as_ref()
            .is_some_and(|s| s.iter().any(|a| a == attr || split_attr(a).1 == attr))
    }

    /// Keeps only selected attributes (and `kind`).
    pub fn project(&self, mut o: Obj) -> Obj {
        if let Some(sel) = &self.select {
            let keep: Vec<&str> = sel.iter().map(|a| split_attr(a).1).collect();
            o.retain(|k, _| k == "kind" || keep.contains(&k.as_str()));
        }
        o
    }

    /// Sorts, pages and wraps matching items: `{"items", "items_available", "limit", "offset"}`.
    pub fn page(
        &self,
        mut items: Vec<Obj>,
        kind: &str,
        mut render: impl FnMut(Obj) -> Result<Obj, Error>,
    ) -> Result<Value, Error> {
        self.sort(&mut items);
        let total = items.len();
        let page: Vec<Value> = items
            .into_iter()
            .skip(self.offset)
            .take(self.limit)
            .map(|o| render(o).map(|o| Value::Object(self.project(o))))
            .collect::<Result<_, _>>()?;
        let mut out = json!({
            "kind": kind,
            "offset": self.offset,
            "limit": self.limit,
            "items": page,
        });
        if self.count {
            out["items_available"] = json!(total);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Obj {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn like_patterns() {
        assert!(like("hello", "h%o", false));
        assert!(like("hello", "%", false));
        assert!(like("", "%", false));
        assert!(like("hello", "h_llo", false));
        assert!(!like("hello", "h_lo", false));
        assert!(like("HeLLo", "hello", true));
        assert!(!like("HeLLo", "hello", false));
        assert!(like("50%", "50\\%", false));
        assert!(!like("500", "50\\%", false));
        assert!(like("a.b.c", "%.c", false));
    }

    #[test]
    fn filters() {
        let c = obj(
            json!({"kind": "arvados#collection", "uuid": "zzzzz-4zz18-000000000000001",
            "name": "Foo bar", "file_count": 3, "properties": {"a": "x", "n": 5}}),
        );
        let f = |v: Value| parse_filters(&v, "filters").unwrap();
        assert!(matches(&f(json!([["name", "=", "Foo bar"]])), &c));
        assert!(matches(
            &f(json!([["collections.name", "like", "Foo%"]])),
            &c
        ));
        assert!(!matches(&f(json!([["groups.name", "like", "Foo%"]])), &c));
        assert!(matches(&f(json!([["name", "ilike", "foo%"]])), &c));
        assert!(matches(
            &f(json!([["file_count", ">=", 3], ["file_count", "<", 4]])),
            &c
        ));
        assert!(matches(&f(json!([["properties.a", "in", ["x", "y"]]])), &c));
        assert!(matches(&f(json!([["properties.a", "not in", ["y"]]])), &c));
        assert!(matches(&f(json!([["properties.n", ">", 4]])), &c));
        assert!(matches(&f(json!([["properties", "exists", "a"]])), &c));
        assert!(!matches(&f(json!([["properties", "exists", "zz"]])), &c));
        assert!(matches(&f(json!([["properties.a", "exists", true]])), &c));
        assert!(matches(&f(json!([["properties.zz", "exists", false]])), &c));
        assert!(matches(
            &f(json!([["uuid", "is_a", "arvados#collection"]])),
            &c
        ));
        assert!(!matches(
            &f(json!([["uuid", "is_a", ["arvados#group"]]])),
            &c
        ));
        assert!(matches(&f(json!(["name", "!=", "x"])), &c));
        assert!(parse_filters(&json!([["name", "~", "x"]]), "filters").is_err());
        assert!(parse_filters(&json!([["name", "in", "x"]]), "filters").is_err());
        assert!(parse_filters(&json!("[[\"name\",\"=\",\"x\"]]"), "filters").is_ok());
        assert!(parse_filters(&json!("nope"), "filters").is_err());
    }

    #[test]
    fn params_and_paging() {
        let p = ListParams::parse(&obj(
            json!({"limit": "5000", "offset": 2, "order": "name desc",
            "select": ["name"]}),
        ))
        .unwrap();
        assert_eq!(p.limit, MAX_LIMIT);
        assert_eq!(p.order[0], ("name".to_string(), false));
        let items: Vec<Obj> = (0..5)
            .map(|i| obj(json!({"uuid": format!("u{i}"), "name": format!("n{i}"), "kind": "k"})))
            .collect();
        let out = p.page(items, "list", Ok).unwrap();
        assert_eq!(out["items_available"], 5);
        assert_eq!(out["items"][0], json!({"kind": "k", "name": "n2"}));
        assert!(ListParams::parse(&obj(json!({"limit": -1}))).is_err());
        assert!(ListParams::parse(&obj(json!({"order": "name sideways"}))).is_err());
    }
}
