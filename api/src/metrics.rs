//! Prometheus metrics, rendered by hand in the text exposition format.
//!
//! Every label value comes from a fixed set, whatever clients send: the method is one
//! of the methods HTTP defines or `OTHER`, the route is the router's template
//! (`/arvados/v1/collections/{id}`, never the raw path) or `unmatched`, and the code
//! is the status this server answered.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use actix_web::http::Method;
use parking_lot::Mutex;

/// The label for a request method: a fixed set, so that invented methods cannot add
/// series (issue 11 item 10).
pub fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

type Key = (&'static str, String, u16);

#[derive(Default)]
pub struct Metrics {
    /// (method, route template, status) → (count, total seconds)
    requests: Mutex<BTreeMap<Key, (u64, f64)>>,
}

impl Metrics {
    /// Counts one request. `route` is the router's match pattern (None: no route).
    pub fn observe(&self, method: &Method, route: Option<&str>, status: u16, secs: f64) {
        let key = (
            method_label(method),
            route.unwrap_or("unmatched").to_string(),
            status,
        );
        let mut m = self.requests.lock();
        let e = m.entry(key).or_insert((0, 0.0));
        e.0 += 1;
        e.1 += secs;
    }

    pub fn render(&self) -> String {
        let snapshot: Vec<(Key, (u64, f64))> = self
            .requests
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let mut out = String::new();
        out.push_str(
            "# HELP keep_api_requests_total API requests answered, by method, route and status.\n",
        );
        out.push_str("# TYPE keep_api_requests_total counter\n");
        for ((m, r, s), (n, _)) in &snapshot {
            let _ = writeln!(
                out,
                "keep_api_requests_total{{method=\"{m}\",route=\"{r}\",code=\"{s}\"}} {n}"
            );
        }
        out.push_str("# HELP keep_api_request_seconds_total Time spent answering API requests.\n");
        out.push_str("# TYPE keep_api_request_seconds_total counter\n");
        for ((m, r, s), (_, t)) in &snapshot {
            let _ = writeln!(
                out,
                "keep_api_request_seconds_total{{method=\"{m}\",route=\"{r}\",code=\"{s}\"}} {t}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render() {
        let m = Metrics::default();
        m.observe(&Method::GET, Some("/arvados/v1/collections/{id}"), 200, 0.5);
        m.observe(
            &Method::GET,
            Some("/arvados/v1/collections/{id}"),
            200,
            0.25,
        );
        let t = m.render();
        assert!(t.contains(
            "keep_api_requests_total{method=\"GET\",route=\"/arvados/v1/collections/{id}\",code=\"200\"} 2"
        ));
        assert!(t.contains("0.75"));
    }

    #[test]
    fn invented_methods_share_one_series() {
        let m = Metrics::default();
        for name in ["FOO", "BAR", "PROPFIND", "X-1"] {
            let method = Method::from_bytes(name.as_bytes()).unwrap();
            m.observe(&method, None, 404, 0.0);
        }
        let t = m.render();
        assert!(
            t.contains("method=\"OTHER\",route=\"unmatched\",code=\"404\"} 4"),
            "{t}"
        );
        assert!(!t.contains("FOO") && !t.contains("PROPFIND"), "{t}");
    }
}
