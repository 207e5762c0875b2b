//! A directory as an HTML page for a person: one level, names escaped, links relative.

use std::time::SystemTime;

use actix_web::http::header;
use actix_web::HttpResponse;

use crate::dav::entries::entries;
use crate::resolve::node::Node;
use crate::resolve::url::Parsed;

fn html_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// One level of a directory as HTML. Links are relative, so they work under every URL
/// form (vhost, `/c=`, `/t=` sharing URLs, `/users/…`).
pub fn listing(parsed: &Parsed, node: &Node) -> HttpResponse {
    let title = format!("/{}", parsed.segs.join("/"));
    let (_, children) = entries(parsed, node.share(), false);
    let mut page = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of {t}</title>\
         <style>body{{font-family:sans-serif}}td{{padding:0 1em}}</style></head>\n\
         <body><h1>Index of {t}</h1>\n<table>\n\
         <tr><th>Name</th><th>Size</th><th>Modified</th></tr>\n",
        t = html_escape(&title)
    );
    if !parsed.segs.is_empty() {
        page.push_str("<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    }
    for (href, e) in children {
        let shown = if e.dir {
            format!("{}/", e.name)
        } else {
            e.name.clone()
        };
        let modified = if e.modified > SystemTime::UNIX_EPOCH {
            httpdate::fmt_http_date(e.modified)
        } else {
            String::new()
        };
        page.push_str(&format!(
            "<tr><td><a href=\"./{}\">{}</a></td><td>{}</td><td>{}</td></tr>\n",
            html_escape(&href),
            html_escape(&shown),
            e.size.map(|s| s.to_string()).unwrap_or_default(),
            modified
        ));
    }
    page.push_str("</table>\n</body></html>\n");
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'",
        ))
        .body(page)
}
