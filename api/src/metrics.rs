//! Prometheus metrics, rendered by hand in the text exposition format.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write as _;

#[derive(Default)]
pub struct Metrics {
    /// (method, status) → (count, total seconds)
    requests: Mutex<BTreeMap<(String, u16), (u64, f64)>>,
}

impl Metrics {
    pub fn observe(&self, method: &str, status: u16, secs: f64) {
        let mut m = self.requests.lock();
        let e = m.entry((method.to_string(), status)).or_insert((0, 0.0));
        e.0 += 1;
        e.1 += secs;
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP keep_api_requests_total API requests answered, by method and status.\n",
        );
        out.push_str("# TYPE keep_api_requests_total counter\n");
        let snapshot: Vec<((String, u16), (u64, f64))> = self
            .requests
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        for ((m, s), (n, _)) in &snapshot {
            let _ = writeln!(
                out,
                "keep_api_requests_total{{method=\"{m}\",code=\"{s}\"}} {n}"
            );
        }
        out.push_str("# HELP keep_api_request_seconds_total Time spent answering API requests.\n");
        out.push_str("# TYPE keep_api_request_seconds_total counter\n");
        for ((m, s), (_, t)) in &snapshot {
            let _ = writeln!(
                out,
                "keep_api_request_seconds_total{{method=\"{m}\",code=\"{s}\"}} {t}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn render() {
        let m = super::Metrics::default();
        m.observe("GET", 200, 0.5);
        m.observe("GET", 200, 0.25);
        let t = m.render();
        assert!(t.contains("keep_api_requests_total{method=\"GET\",code=\"200\"} 2"));
        assert!(t.contains("0.75"));
    }
}
