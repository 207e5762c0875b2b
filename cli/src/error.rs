//! The CLI's one error type: `keep: <what failed>: <why> (<what to do>)`, with an exit code.

use std::fmt;

/// Exit code 1: the command failed; 2: it was used wrongly.
#[derive(Debug)]
pub struct CliError {
    pub what: String,
    pub why: String,
    pub hint: String,
    pub code: u8,
}

impl CliError {
    pub fn new(what: impl Into<String>, why: impl Into<String>, hint: impl Into<String>) -> Self {
        CliError {
            what: what.into(),
            why: why.into(),
            hint: hint.into(),
            code: 1,
        }
    }

    /// A problem with the configuration: also exit 1 (it is not a command-line usage error).
    pub fn config(
        what: impl Into<String>,
        why: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self::new(what, why, hint)
    }

    pub fn usage(what: impl Into<String>, why: impl Into<String>, hint: impl Into<String>) -> Self {
        CliError {
            code: 2,
            ..Self::new(what, why, hint)
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "keep: {}: {}", self.what, self.why)?;
        if !self.hint.is_empty() {
            write!(f, " ({})", self.hint)?;
        }
        Ok(())
    }
}

impl std::error::Error for CliError {}
