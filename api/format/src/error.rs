use thiserror::Error;

/// Everything that can be wrong with a piece of Keep text.
///
/// Messages say which thing, where, and why, so they can be shown to a user as-is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    #[error("invalid block hash {got:?}: {why}")]
    Hash { got: String, why: &'static str },
    #[error("invalid locator {got:?}: {why}")]
    Locator { got: String, why: String },
    #[error("invalid portable data hash {got:?}: {why}")]
    Pdh { got: String, why: String },
    #[error("invalid UUID {got:?}: {why}")]
    Uuid { got: String, why: String },
    #[error("invalid token: {why}")]
    Token { why: &'static str },
    #[error("manifest line {line}, token {token} ({text:?}): {why}")]
    Manifest {
        /// 1-based line number.
        line: usize,
        /// 1-based token number within the line (0 when the whole line is at fault).
        token: usize,
        /// The offending token, shortened to 80 bytes.
        text: String,
        why: String,
    },
    #[error("invalid duration {got:?}: {why}")]
    Duration { got: String, why: String },
    #[error("invalid timestamp {got:?}: {why}")]
    Time { got: String, why: String },
    #[error("invalid path {path:?}: {why}")]
    Path { path: String, why: &'static str },
    /// A WebDAV request body (PROPFIND, PROPPATCH, LOCK) that can't be used.
    #[error("{what} body: {why}")]
    Xml { what: &'static str, why: String },
    /// Input over one of the documented limits (see [`Limit`]); `at` says where.
    #[error("{at}: {limit}")]
    Limit { limit: Limit, at: String },
    /// The normalized text of a manifest does not parse back to the same collection.
    /// Never expected (a bug in keep-format): the caller must store nothing.
    #[error("the normalized manifest does not parse back to the same collection ({why}); nothing was stored")]
    RoundTrip { why: String },
}

pub use crate::limits::Limit;

impl Error {
    pub(crate) fn limit(limit: Limit, at: impl Into<String>) -> Self {
        Error::Limit {
            limit,
            at: at.into(),
        }
    }

    /// The limit this error is about, if it is one.
    pub fn limit_exceeded(&self) -> Option<Limit> {
        match self {
            Error::Limit { limit, .. } => Some(*limit),
            _ => None,
        }
    }

    pub(crate) fn manifest(line: usize, token: usize, text: &str, why: impl Into<String>) -> Self {
        let mut text = text.to_string();
        if text.len() > 80 {
            let mut cut = 77;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str("...");
        }
        Error::Manifest {
            line,
            token,
            text,
            why: why.into(),
        }
    }
}
