//! Locators as keepstore reads them from a URL or a JSON list: bounded, and refused with
//! a message that shows no signature.

use keep_format::Locator;

use crate::error::strip_signatures;
use crate::Error;

/// Longest locator accepted in a URL or a JSON list (a signed locator is ~160 bytes).
pub(crate) const MAX_LOCATOR_LEN: usize = 1024;

pub(crate) fn parse_locator(s: &str) -> Result<Locator, Error> {
    if s.len() > MAX_LOCATOR_LEN {
        return Err(Error::BadLocator(format!(
            "the locator is {} bytes long, more than {MAX_LOCATOR_LEN} (keepstore's limit for a locator)",
            s.len()
        )));
    }
    s.parse::<Locator>().map_err(|_| {
        Error::BadLocator(format!(
            "malformed locator {:?}: expected <64 lowercase hex BLAKE3 digits>+<size>[+A<signature>@<expiry>…]",
            strip_signatures(s)
        ))
    })
}
