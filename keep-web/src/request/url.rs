//! Percent-encoding of path elements and query strings, done the same way everywhere:
//! a query key is always compared decoded (`api%5Ftoken` is `api_token`).

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::error::Error;

/// Bytes left as they are in a path element (RFC 3986 `pchar` without `%`).
const PCHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');

/// Bytes left as they are in an RFC 8187 `ext-value` (`attr-char`).
const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// Percent-encodes one path element (for hrefs and Locations).
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, PCHAR).to_string()
}

/// Percent-encodes a value for `filename*=UTF-8''…` (RFC 8187).
pub fn encode_attr(s: &str) -> String {
    utf8_percent_encode(s, ATTR_CHAR).to_string()
}

/// Percent-decodes a path element (no `+` → space) into UTF-8; a `%` not followed by
/// two hex digits, or bytes that aren't UTF-8, are refused.
pub fn decode(s: &str) -> Result<String, Error> {
    let b = s.as_bytes();
    for (i, _) in s.match_indices('%') {
        let hex = |j: usize| b.get(j).is_some_and(u8::is_ascii_hexdigit);
        if !hex(i + 1) || !hex(i + 2) {
            return Err(Error::BadRequest("bad %-escape in the URL".into()));
        }
    }
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| Error::BadRequest("the URL is not UTF-8".into()))
}

/// The key of one `key=value` piece of a query string or urlencoded form, decoded.
fn key_of(piece: &str) -> String {
    let raw = piece.split_once('=').map_or(piece, |(k, _)| k);
    form_urlencoded::parse(raw.as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_default()
}

/// The decoded, non-empty values of `key` in a query string or urlencoded form.
pub fn query_values(q: &str, key: &str) -> Vec<String> {
    form_urlencoded::parse(q.as_bytes())
        .filter(|(k, v)| k == key && !v.is_empty())
        .map(|(_, v)| v.into_owned())
        .collect()
}

/// The query string without any piece whose decoded key is one of `keys` (the other
/// pieces kept exactly as sent).
pub fn query_without(q: &str, keys: &[&str]) -> String {
    q.split('&')
        .filter(|p| !p.is_empty() && !keys.contains(&key_of(p).as_str()))
        .collect::<Vec<_>>()
        .join("&")
}

/// The query string with the value of every piece whose decoded key is one of `keys`,
/// in any case, replaced by `<redacted>` (for logs: stricter than the credential rule).
pub fn query_redacted(q: &str, keys: &[&str]) -> String {
    q.split('&')
        .map(|p| {
            let key = key_of(p);
            if keys.iter().any(|k| k.eq_ignore_ascii_case(&key)) {
                let k = p.split_once('=').map_or(p, |(k, _)| k);
                format!("{k}=<redacted>")
            } else {
                p.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The values of the `multipart/form-data` fields named `key` in `body`, given the
/// request's Content-Type (which carries the boundary). Text fields only; a part with
/// a filename is not a form value.
pub fn multipart_values(content_type: &str, body: &[u8], key: &str) -> Vec<String> {
    let Some(boundary) = content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
    }) else {
        return Vec::new();
    };
    if boundary.is_empty() {
        return Vec::new();
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return Vec::new();
    };
    let delim = format!("--{boundary}");
    let want = format!("name=\"{key}\"");
    let mut out = Vec::new();
    for part in text.split(delim.as_str()).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let part = part.strip_prefix("\r\n").unwrap_or(part);
        let Some((head, value)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let named = head.lines().any(|l| {
            let l = l.trim();
            l.get(..20)
                .is_some_and(|h| h.eq_ignore_ascii_case("content-disposition:"))
                && l.split(';').any(|p| p.trim() == want)
                && !l.contains("filename=")
        });
        if named {
            let v = value.strip_suffix("\r\n").unwrap_or(value);
            if !v.is_empty() {
                out.push(v.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_keys_are_compared_decoded() {
        let q = "a=1&api%5Ftoken=s1&api_token=s2&b=%41&api+token=x";
        assert_eq!(query_values(q, "api_token"), vec!["s1", "s2"]);
        assert_eq!(query_without(q, &["api_token"]), "a=1&b=%41&api+token=x");
        assert_eq!(
            query_redacted(q, &["api_token"]),
            "a=1&api%5Ftoken=<redacted>&api_token=<redacted>&b=%41&api+token=x"
        );
        assert_eq!(query_without("%61pi_token=s", &["api_token"]), "");
    }

    #[test]
    fn encodes_and_decodes() {
        assert_eq!(encode("a b/c%\u{1}é"), "a%20b%2Fc%25%01%C3%A9");
        assert_eq!(encode_attr("a'b c\"é"), "a%27b%20c%22%C3%A9");
        assert_eq!(decode("a%20b%2f").unwrap(), "a b/");
        assert!(decode("a%2").is_err());
        assert!(decode("a%zz").is_err());
        assert!(decode("%ff").is_err());
    }

    #[test]
    fn multipart_form_token() {
        let body = "--b1\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n\
                    --b1\r\nContent-Disposition: form-data; name=\"api_token\"\r\n\r\nv2/a/b\r\n\
                    --b1\r\nContent-Disposition: form-data; name=\"api_token\"; filename=\"f\"\r\n\r\nno\r\n\
                    --b1--\r\n";
        let ct = "multipart/form-data; boundary=\"b1\"";
        assert_eq!(
            multipart_values(ct, body.as_bytes(), "api_token"),
            vec!["v2/a/b"]
        );
        assert!(multipart_values("multipart/form-data", body.as_bytes(), "api_token").is_empty());
    }
}
