//! Progress on stderr: an indicatif bar when stderr is a terminal, or with
//! `--batch-progress` one machine-readable line a second and a final one:
//! `keep <verb>: done=<bytes> total=<bytes> sent=<bytes> files=<n>/<n>`.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    verb: &'static str,
    pub total: AtomicU64,
    pub done: AtomicU64,
    /// Bytes sent to (put) or received from (get) keepstore.
    pub sent: AtomicU64,
    pub files_total: AtomicU64,
    pub files_done: AtomicU64,
    bar: Option<ProgressBar>,
    batch: bool,
}

impl Progress {
    pub fn new(verb: &'static str, batch: bool, quiet: bool) -> Arc<Progress> {
        let bar = (!batch && !quiet && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} {bytes}/{total_bytes} [{wide_bar}] {binary_bytes_per_sec} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        let p = Arc::new(Progress {
            verb,
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            files_total: AtomicU64::new(0),
            files_done: AtomicU64::new(0),
            bar,
            batch,
        });
        if batch {
            let weak = Arc::downgrade(&p);
            tokio::spawn(async move {
                let mut t = tokio::time::interval(Duration::from_secs(1));
                t.tick().await;
                loop {
                    t.tick().await;
                    match weak.upgrade() {
                        Some(p) => p.line(),
                        None => break,
                    }
                }
            });
        }
        p
    }

    pub fn set_total(&self, bytes: u64, files: u64) {
        self.total.store(bytes, Ordering::Relaxed);
        self.files_total.store(files, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.set_length(bytes);
        }
    }

    pub fn add_done(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    pub fn add_sent(&self, n: u64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
    }

    pub fn file_done(&self) {
        self.files_done.fetch_add(1, Ordering::Relaxed);
    }

    fn line(&self) {
        let l = format!(
            "keep {}: done={} total={} sent={} files={}/{}\n",
            self.verb,
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
            self.sent.load(Ordering::Relaxed),
            self.files_done.load(Ordering::Relaxed),
            self.files_total.load(Ordering::Relaxed),
        );
        let _ = std::io::stderr().write_all(l.as_bytes());
    }

    /// Clears the bar; with `--batch-progress` prints the final line.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        if self.batch {
            self.line();
        }
    }
}
