//! Errors that keep their cause: every variant holds what it was doing (the API path,
//! the block hash, the keepstores it asked) and, as its `source`, the error underneath
//! (reqwest's, serde's, or one keepstore's answer), so a caller can print the whole chain
//! or match on the kind.
//!
//! No message holds a token or a signed locator (its `+A` signature is a credential):
//! requests carry the token in the Authorization header only, a block is named by its
//! hash and size, and reqwest errors from block requests are stripped of their URL.

use std::fmt;
use std::time::Duration;

use keep_format::Hash;

/// What went wrong talking to the API server or the keepstores.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The HTTP client could not be built (TLS backend, resolver).
    #[error("starting the HTTP client")]
    Build(#[source] reqwest::Error),

    /// The API server's URL does not parse or is not http(s).
    #[error("the API server URL {url:?} is not an http:// or https:// URL")]
    BadUrl { url: String },

    /// No answer from the API server: connection refused, DNS, timeout, broken transfer.
    #[error("{method} {path}: no answer from the API server at {api}")]
    ApiUnreachable {
        method: &'static str,
        api: String,
        path: String,
        #[source]
        source: reqwest::Error,
    },

    /// The API server answered with an error status; `message` is its `errors` list.
    #[error("{method} {path}: the API server answered {status}: {message}")]
    Api {
        method: &'static str,
        path: String,
        status: u16,
        message: String,
    },

    /// A 2xx answer that is not the JSON this call expects.
    #[error("{method} {path}: the API server's answer is not what a Keep API server sends")]
    ApiBody {
        method: &'static str,
        path: String,
        #[source]
        source: serde_json::Error,
    },

    /// The cluster configuration lists no keepstore.
    #[error("the API server at {api} lists no keepstore")]
    NoKeepstores { api: String },

    /// A block could not be read from any keepstore.
    #[error(transparent)]
    Read(#[from] ReadError),

    /// A block could not be stored with the copies asked for.
    #[error(transparent)]
    Write(#[from] WriteError),

    /// A ranged read asked for bytes outside the block (or none).
    #[error("bytes {off}..{end} are not inside block {hash}+{size}")]
    Range {
        hash: Hash,
        size: u64,
        off: u64,
        end: u64,
    },

    /// A ranged read's stream broke off after its first bytes (too late to fail over).
    #[error("reading block {hash}+{size} from {keepstore}: the transfer broke off")]
    Stream {
        hash: Hash,
        size: u64,
        keepstore: String,
        #[source]
        source: reqwest::Error,
    },

    /// A blocking task (hashing) panicked or was cancelled.
    #[error("{what}")]
    Task {
        what: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
}

impl Error {
    /// The HTTP status the API server answered, if it answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            Error::Read(r) if r.not_found() => Some(404),
            _ => None,
        }
    }

    /// The whole chain, `outer: cause: cause…`, for a one-line message.
    pub fn chain(&self) -> String {
        chain(self)
    }
}

/// `e: its source: that one's source…`; a level whose message the line already holds
/// (a read error lists every keepstore's answer, its source is the last) is not repeated.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let m = s.to_string();
        if !out.contains(&m) {
            out.push_str(": ");
            out.push_str(&m);
        }
        src = s.source();
    }
    out
}

/// Why one request to one keepstore failed.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    #[error("cannot connect")]
    Connect(#[source] reqwest::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration, #[source] reqwest::Error),
    #[error("the transfer broke off")]
    Transfer(#[source] reqwest::Error),
    #[error("answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("sent {got} bytes for a block of {want}")]
    Size { got: u64, want: u64 },
    #[error("sent bytes that do not match the block's BLAKE3 hash")]
    Hash,
    #[error("answered something that is not this block's locator")]
    Locator,
}

impl AttemptError {
    /// From a reqwest error on a block request: the URL (which holds a signed locator)
    /// is dropped.
    pub(crate) fn from_reqwest(e: reqwest::Error, timeout: Duration) -> AttemptError {
        let e = e.without_url();
        if e.is_timeout() {
            AttemptError::Timeout(timeout, e)
        } else if e.is_connect() {
            AttemptError::Connect(e)
        } else {
            AttemptError::Transfer(e)
        }
    }

    /// The keepstore answered 404: it does not have the block.
    pub fn is_not_found(&self) -> bool {
        matches!(self, AttemptError::Status { status: 404, .. })
    }

    /// Asking again (this keepstore, later) may help: no answer, 408, 429, 5xx, a bad
    /// transfer. 507 (full) and other 4xx do not change by waiting.
    pub fn is_transient(&self) -> bool {
        match self {
            AttemptError::Status { status, .. } => {
                matches!(status, 408 | 429) || (*status >= 500 && *status != 507)
            }
            AttemptError::Connect(_)
            | AttemptError::Timeout(..)
            | AttemptError::Transfer(_)
            | AttemptError::Size { .. }
            | AttemptError::Hash => true,
            AttemptError::Locator => false,
        }
    }
}

/// One keepstore asked, and what it answered.
#[derive(Debug)]
pub struct Attempt {
    pub keepstore: String,
    pub error: AttemptError,
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // "http://ks1: cannot connect (tcp connect error: Connection refused)"
        write!(f, "{}: {}", self.keepstore, self.error)?;
        if let Some(s) = std::error::Error::source(&self.error) {
            write!(f, " ({})", chain(s))?;
        }
        Ok(())
    }
}

fn list(attempts: &[Attempt]) -> String {
    attempts
        .iter()
        .map(Attempt::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Every keepstore was asked for a block (in rendezvous order, `passes` times for those
/// that failed transiently) and none returned it whole and verified.
#[derive(Debug)]
pub struct ReadError {
    pub hash: Hash,
    pub size: u64,
    /// Every failed request, in the order made.
    pub attempts: Vec<Attempt>,
}

impl ReadError {
    /// Every keepstore answered 404 (and none failed otherwise).
    pub fn not_found(&self) -> bool {
        !self.attempts.is_empty() && self.attempts.iter().all(|a| a.error.is_not_found())
    }

    /// The distinct keepstores asked, in order.
    pub fn keepstores(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for a in &self.attempts {
            if !out.contains(&a.keepstore.as_str()) {
                out.push(&a.keepstore);
            }
        }
        out
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.keepstores().len();
        if self.not_found() {
            write!(
                f,
                "block {}+{}: none of the {n} keepstores has it ({})",
                self.hash,
                self.size,
                self.keepstores().join(", ")
            )
        } else {
            write!(
                f,
                "reading block {}+{}: every keepstore failed ({n} asked): {}",
                self.hash,
                self.size,
                list(&self.attempts)
            )
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // the last failure is the most recent word; the message lists them all
        self.attempts
            .last()
            .map(|a| &a.error as &(dyn std::error::Error + 'static))
    }
}

/// A block was stored on fewer keepstores than asked.
#[derive(Debug)]
pub struct WriteError {
    pub hash: Hash,
    pub size: u64,
    /// The copies asked for.
    pub wanted: u32,
    /// The keepstores that stored it (and how many copies each reported).
    pub stored: Vec<(String, u32)>,
    /// How many keepstores the cluster has.
    pub keepstores: usize,
    /// Every failed request, in the order made.
    pub attempts: Vec<Attempt>,
}

impl WriteError {
    /// Every keepstore asked answered 507 (full): the cluster is out of space.
    pub fn all_full(&self) -> bool {
        !self.attempts.is_empty()
            && self
                .attempts
                .iter()
                .all(|a| matches!(a.error, AttemptError::Status { status: 507, .. }))
    }

    pub fn copies(&self) -> u32 {
        self.stored.iter().map(|s| s.1).sum()
    }

    /// The distinct keepstores that failed, in order.
    pub fn failed(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for a in &self.attempts {
            if !out.contains(&a.keepstore.as_str()) {
                out.push(&a.keepstore);
            }
        }
        out
    }
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "storing block {}+{}: {} of {} copies stored",
            self.hash,
            self.size,
            self.copies(),
            self.wanted
        )?;
        if !self.stored.is_empty() {
            let on: Vec<&str> = self.stored.iter().map(|s| s.0.as_str()).collect();
            write!(f, " (on {})", on.join(", "))?;
        }
        if self.wanted as usize > self.keepstores {
            write!(
                f,
                "; the cluster has only {} keepstore{}",
                self.keepstores,
                if self.keepstores == 1 { "" } else { "s" }
            )?;
        }
        if !self.attempts.is_empty() {
            write!(f, "; failed: {}", list(&self.attempts))?;
        }
        Ok(())
    }
}

impl std::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.attempts
            .last()
            .map(|a| &a.error as &(dyn std::error::Error + 'static))
    }
}
