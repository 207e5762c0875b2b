//! List parameters (`filters`, `limit`, `offset`, `order`, `select`, `count`) and their
//! evaluation over JSON records.

use std::cmp::Ordering;

use serde_json::{json, Value};

use crate::error::{short, Error};
use crate::limits::{
    ATTR_MAX, FILTERS_MAX, FILTER_STRING_MAX, FILTER_VALUES_MAX, FILTER_VALUE_DEPTH_MAX,
    JSON_DEPTH_MAX, ORDER_MAX, PATTERN_MAX, SELECT_MAX,
};
use crate::records::{kind_of, Obj};

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

/// Parses JSON text given as a parameter's value; a text nested too deep is refused
/// naming the limit.
fn parse_json_text(text: &str) -> Result<Value, String> {
    serde_json::from_str::<Value>(text).map_err(|e| {
        if e.to_string().contains("recursion limit") {
            format!("nested deeper than {JSON_DEPTH_MAX} levels (the limit on JSON nesting)")
        } else {
            format!("not JSON ({e})")
        }
    })
}

/// An attribute name as `filters`, `order` and `select` take it: at most [`ATTR_MAX`]
/// bytes, no control characters.
fn check_attr(attr: &str) -> Result<(), String> {
    if attr.len() > ATTR_MAX {
        return Err(format!(
            "attribute names are at most {ATTR_MAX} bytes (the limit on attribute names); this one is {}",
            attr.len()
        ));
    }
    if attr.chars().any(char::is_control) {
        return Err(format!(
            "attribute {attr:?} has a control character (attribute names may not)"
        ));
    }
    Ok(())
}

/// The nesting of a value (a scalar is 0), counted up to `max + 1`.
fn depth(v: &Value, max: usize) -> usize {
    if max == 0 {
        return usize::from(v.is_array() || v.is_object());
    }
    match v {
        Value::Array(a) => 1 + a.iter().map(|x| depth(x, max - 1)).max().unwrap_or(0),
        Value::Object(m) => 1 + m.values().map(|x| depth(x, max - 1)).max().unwrap_or(0),
        _ => 0,
    }
}

/// A filter's value within the limits on lists, strings and nesting.
fn check_value(op: &str, val: &Value) -> Result<(), String> {
    if depth(val, FILTER_VALUE_DEPTH_MAX) > FILTER_VALUE_DEPTH_MAX {
        return Err(format!(
            "the value of a filter may nest at most {FILTER_VALUE_DEPTH_MAX} levels (the limit on filter values)"
        ));
    }
    if let Value::Array(a) = val {
        if a.len() > FILTER_VALUES_MAX {
            return Err(format!(
                "a filter's list holds at most {FILTER_VALUES_MAX} values (the limit on filter lists); this one has {}",
                a.len()
            ));
        }
    }
    let mut long = None;
    let mut walk = vec![val];
    while let Some(v) = walk.pop() {
        match v {
            Value::String(s) if s.len() > FILTER_STRING_MAX => long = Some(s.len()),
            Value::Array(a) => walk.extend(a),
            Value::Object(m) => walk.extend(m.values()),
            _ => {}
        }
    }
    if let Some(n) = long {
        return Err(format!(
            "strings in a filter are at most {FILTER_STRING_MAX} bytes (the limit on filter strings); one is {n}"
        ));
    }
    if matches!(op, "like" | "ilike")
        && val
            .as_str()
            .is_some_and(|p| p.chars().count() > PATTERN_MAX)
    {
        return Err(format!(
            "a {op:?} pattern is at most {PATTERN_MAX} characters (the limit on patterns)"
        ));
    }
    Ok(())
}

pub fn parse_filters(v: &Value, what: &str) -> Result<Vec<Filter>, Error> {
    let bad = |why: String| Error::Unprocessable(format!("{what}: {why}"));
    let v = match v {
        Value::Null => return Ok(vec![]),
        Value::String(s) => parse_json_text(s)
            .map_err(|e| bad(format!("{e}; write [[\"attr\",\"op\",value],…]")))?,
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
    if triples.len() > FILTERS_MAX {
        return Err(bad(format!(
            "at most {FILTERS_MAX} filters (the limit on filters); got {}",
            triples.len()
        )));
    }
    triples
        .into_iter()
        .map(|t| parse_triple(t).map_err(bad))
        .collect()
}

/// One `[attr, op, value]` filter.
fn parse_triple(t: &Value) -> Result<Filter, String> {
    let t = t
        .as_array()
        .filter(|t| t.len() == 3)
        .ok_or_else(|| format!("{} is not an [attr, op, value] triple", short(t)))?;
    let attr = t[0]
        .as_str()
        .ok_or_else(|| format!("attribute {} is not a string", short(&t[0])))?;
    check_attr(attr)?;
    let op = t[1]
        .as_str()
        .map(str::to_lowercase)
        .filter(|op| OPS.contains(&op.as_str()))
        .ok_or_else(|| format!("operator {} is not one of {}", short(&t[1]), OPS.join(", ")))?;
    let val = t[2].clone();
    let want = match op.as_str() {
        "in" | "not in" if !val.is_array() => Some("a list value"),
        "like" | "ilike" if !val.is_string() => Some("a string pattern"),
        "is_a" if !(val.is_string() || val.is_array()) => {
            Some("a kind like \"arvados#collection\"")
        }
        _ => None,
    };
    if let Some(want) = want {
        return Err(format!("{op:?} needs {want}, got {}", short(&val)));
    }
    check_value(&op, &val)?;
    Ok(Filter {
        attr: attr.to_string(),
        op,
        val,
    })
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
    let n = match v {
        Value::Null => return Ok(None),
        Value::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        Value::String(s) => s.parse::<usize>().ok(),
        _ => None,
    };
    n.map(Some).ok_or_else(|| {
        Error::BadRequest(format!(
            "{what} must be a non-negative integer, got {}",
            short(v)
        ))
    })
}

pub fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.as_str(), "true" | "1" | "yes" | "t"),
        Some(Value::Number(n)) => n.as_u64().is_some_and(|n| n != 0),
        _ => false,
    }
}

/// `order` and `select`: a JSON list of strings, or a comma-separated text; at most
/// `max` items, each within the limits on attribute names.
fn string_list(v: &Value, what: &str, max: usize) -> Result<Vec<String>, Error> {
    let bad = |why: String| Error::BadRequest(format!("{what}: {why}"));
    let v = match v {
        Value::String(s) if s.trim_start().starts_with('[') => parse_json_text(s).map_err(bad)?,
        Value::String(s) => json!(s.split(',').map(str::trim).collect::<Vec<_>>()),
        other => other.clone(),
    };
    let items = v
        .as_array()
        .ok_or_else(|| Error::BadRequest(format!("{what} must be a list of strings")))?;
    if items.len() > max {
        return Err(bad(format!(
            "at most {max} items (the limit on {what}); got {}",
            items.len()
        )));
    }
    items
        .iter()
        .map(|x| {
            let s = x
                .as_str()
                .ok_or_else(|| bad(format!("{} is not a string", short(x))))?;
            // an order term is an attribute and a direction
            check_attr(s.split_whitespace().next().unwrap_or("")).map_err(bad)?;
            if s.len() > ATTR_MAX + 8 {
                return Err(bad(format!(
                    "{:?}... is longer than an attribute name and a direction",
                    s.chars().take(40).collect::<String>()
                )));
            }
            Ok(s.to_string())
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
            for item in string_list(o, "order", ORDER_MAX)? {
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
            Some(v) => Some(string_list(v, "select", SELECT_MAX)?),
            None => None,
        };
        let count = match p.get("count").and_then(Value::as_str) {
            None | Some("exact") => true,
            Some("none") => false,
            Some(other) => {
                return Err(Error::BadRequest(format!(
                    "count {} is not \"exact\" or \"none\"",
                    short(&Value::from(other))
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

    /// The value of the first `[attr, "=", "<string>"]` filter (a type prefix allowed):
    /// what a list can use an index for.
    pub fn eq(&self, attr: &str) -> Option<String> {
        self.filters
            .iter()
            .find(|f| f.op == "=" && split_attr(&f.attr).1 == attr)
            .and_then(|f| f.val.as_str().map(str::to_string))
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

    /// Issue 11 item 2: oversized, deeply nested and control-character inputs are
    /// refused with a message naming the limit, before any matching is done.
    #[test]
    fn bounds_name_their_limit() {
        let err = |v: Value| parse_filters(&v, "filters").unwrap_err().to_string();
        let many: Vec<Value> = (0..FILTERS_MAX + 1)
            .map(|i| json!(["name", "=", i.to_string()]))
            .collect();
        assert!(err(json!(many)).contains("limit on filters"));
        let big = "x".repeat(1 << 20);
        assert!(err(json!([["name", "=", big]])).contains("limit on filter strings"));
        assert!(err(json!([[big, "=", "x"]])).contains("limit on attribute names"));
        assert!(err(json!([["na\u{1}me", "=", "x"]])).contains("control character"));
        assert!(err(json!([["name", "like", "%".repeat(PATTERN_MAX + 1)]]))
            .contains("limit on patterns"));
        let list: Vec<usize> = (0..FILTER_VALUES_MAX + 1).collect();
        assert!(err(json!([["file_count", "in", list]])).contains("limit on filter lists"));
        assert!(err(json!([["name", "=", [[[[["x"]]]]]]])).contains("limit on filter values"));
        // nested past serde_json's bound, as the query string gives it
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(err(json!(deep)).contains("limit on JSON nesting"));
        let order = |v: Value| {
            ListParams::parse(&obj(json!({ "order": v })))
                .unwrap_err()
                .to_string()
        };
        let terms: Vec<String> = (0..ORDER_MAX + 1).map(|i| format!("a{i}")).collect();
        assert!(order(json!(terms)).contains("limit on order"));
        assert!(order(json!("na\u{7}me asc")).contains("control character"));
        assert!(order(json!(format!("[{}]", "[".repeat(1000)))).contains("JSON nesting"));
        let sel: Vec<String> = (0..SELECT_MAX + 1).map(|i| format!("a{i}")).collect();
        let e = ListParams::parse(&obj(json!({ "select": sel })))
            .unwrap_err()
            .to_string();
        assert!(e.contains("limit on select"), "{e}");
        let e = ListParams::parse(&obj(json!({ "offset": "9".repeat(1 << 20) })))
            .unwrap_err()
            .to_string();
        assert!(e.contains("non-negative integer") && e.len() < 200, "{e}");
        // within the limits all is well
        assert!(parse_filters(&json!([["name", "in", ["a", "b"]]]), "filters").is_ok());
        assert!(ListParams::parse(&obj(
            json!({"order": ["name asc", "uuid"], "select": ["name"]})
        ))
        .is_ok());
    }
}
