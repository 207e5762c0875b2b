use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Hash};

/// One `+X…` hint after a locator's size.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Hint {
    /// `+A<sig>@<expiry>`: a permission signature (see [`crate::BlobSigner`]).
    Signature { sig: [u8; 32], expiry: u32 },
    /// Any other hint, kept verbatim without its leading `+` (e.g. `K<cluster>`).
    Other(String),
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hint::Signature { sig, expiry } => write!(f, "A{}@{:08x}", hex::encode(sig), expiry),
            Hint::Other(s) => f.write_str(s),
        }
    }
}

/// A block reference: `<hash>+<size>` and optional hints.
///
/// Grammar: `^[0-9a-f]{64}\+[0-9]+(\+[A-Z][-A-Za-z0-9@_]*)*$`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Locator {
    pub hash: Hash,
    pub size: u64,
    pub hints: Vec<Hint>,
}

impl Locator {
    pub fn new(hash: Hash, size: u64) -> Self {
        Locator {
            hash,
            size,
            hints: Vec::new(),
        }
    }

    /// The locator of the empty block, `<BLAKE3("")>+0`.
    pub fn empty() -> Self {
        Locator::new(Hash::EMPTY, 0)
    }

    /// The same block with every hint removed (`<hash>+<size>`).
    pub fn bare(&self) -> Locator {
        Locator::new(self.hash, self.size)
    }

    /// The permission signature hint, if any: `(sig, expiry)`.
    pub fn signature(&self) -> Option<([u8; 32], u32)> {
        self.hints.iter().find_map(|h| match h {
            Hint::Signature { sig, expiry } => Some((*sig, *expiry)),
            Hint::Other(_) => None,
        })
    }

    /// This locator with its signature replaced (or added).
    pub fn with_signature(&self, sig: [u8; 32], expiry: u32) -> Locator {
        let mut hints: Vec<Hint> = self
            .hints
            .iter()
            .filter(|h| !matches!(h, Hint::Signature { .. }))
            .cloned()
            .collect();
        hints.insert(0, Hint::Signature { sig, expiry });
        Locator {
            hash: self.hash,
            size: self.size,
            hints,
        }
    }

    /// Cheap syntactic check used by the manifest parser to tell locators from file tokens.
    pub(crate) fn looks_like(token: &str) -> bool {
        token.len() >= 66 && token.as_bytes()[64] == b'+' && !token.contains(':')
    }
}

fn parse_hint(s: &str, whole: &str) -> Result<Hint, Error> {
    let err = |why: String| Error::Locator {
        got: whole.to_string(),
        why,
    };
    let first = s
        .bytes()
        .next()
        .ok_or_else(|| err("empty hint after '+'".into()))?;
    if !first.is_ascii_uppercase() {
        return Err(err(format!(
            "hint {s:?} must start with an uppercase letter"
        )));
    }
    if let Some(bad) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '@' | '_')))
    {
        return Err(err(format!("hint {s:?} has the character {bad:?}")));
    }
    if first == b'A' {
        let body = &s[1..];
        let (sig, expiry) = body
            .split_once('@')
            .ok_or_else(|| err("signature hint must be A<64 hex>@<8 hex expiry>".into()))?;
        let mut out = [0u8; 32];
        if sig.len() != 64
            || !sig
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            || hex::decode_to_slice(sig, &mut out).is_err()
        {
            return Err(err("signature must be 64 lowercase hex digits".into()));
        }
        if expiry.len() != 8
            || !expiry
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(err("signature expiry must be 8 lowercase hex digits".into()));
        }
        let expiry = u32::from_str_radix(expiry, 16)
            .map_err(|_| err("signature expiry must be 8 lowercase hex digits".into()))?;
        return Ok(Hint::Signature { sig: out, expiry });
    }
    Ok(Hint::Other(s.to_string()))
}

impl FromStr for Locator {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let err = |why: String| Error::Locator {
            got: s.to_string(),
            why,
        };
        let mut parts = s.split('+');
        let hash_part = parts.next().unwrap_or_default();
        let hash: Hash = hash_part
            .parse()
            .map_err(|_| err("must start with 64 lowercase hex digits (the BLAKE3 hash)".into()))?;
        let size_part = parts
            .next()
            .ok_or_else(|| err("missing '+<size>' after the hash".into()))?;
        if size_part.is_empty() || !size_part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(format!("size {size_part:?} is not a decimal number")));
        }
        let size: u64 = size_part
            .parse()
            .map_err(|_| err(format!("size {size_part:?} is too large")))?;
        let hints = parts.map(|h| parse_hint(h, s)).collect::<Result<_, _>>()?;
        Ok(Locator { hash, size, hints })
    }
}

impl fmt::Display for Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{}", self.hash, self.size)?;
        for h in &self.hints {
            write!(f, "+{h}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // signatures are capabilities: never in debug output
        write!(f, "Locator({}+{}", self.hash, self.size)?;
        if !self.hints.is_empty() {
            write!(f, " +{} hints", self.hints.len())?;
        }
        f.write_str(")")
    }
}

impl Serialize for Locator {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Locator {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h() -> Hash {
        Hash::of(b"block")
    }

    #[test]
    fn parses_bare_and_hinted() {
        let bare = format!("{}+3", h());
        let l: Locator = bare.parse().unwrap();
        assert_eq!(l, Locator::new(h(), 3));
        assert_eq!(l.to_string(), bare);

        let signed = format!("{}+3+A{}@0000abcd+Kzzzzz", h(), "ab".repeat(32));
        let l: Locator = signed.parse().unwrap();
        assert_eq!(l.signature(), Some(([0xab; 32], 0xabcd)));
        assert_eq!(l.hints[1], Hint::Other("Kzzzzz".into()));
        assert_eq!(l.to_string(), signed);
        assert_eq!(l.bare().to_string(), bare);
    }

    #[test]
    fn rejects_malformed() {
        let hx = h().to_string();
        for bad in [
            String::new(),
            hx.clone(),
            format!("{hx}+"),
            format!("{hx}+-1"),
            format!("{hx}+1+"),
            format!("{hx}+1+a"),
            format!("{hx}+1+K x"),
            format!("{hx}+1+Aabc@00000000"),
            format!("{hx}+1+A{}@0000000", "ab".repeat(32)),
            format!("{hx}+1+A{}", "ab".repeat(32)),
            format!("{}+1", hx.to_uppercase()),
            format!("{hx}+99999999999999999999999"),
        ] {
            let e = bad.parse::<Locator>().unwrap_err();
            assert!(e.to_string().contains("invalid locator"), "{bad}: {e}");
        }
    }

    #[test]
    fn debug_hides_signature() {
        let l = Locator::new(h(), 1).with_signature([7; 32], 9);
        assert!(!format!("{l:?}").contains("0707"));
    }

    #[test]
    fn with_signature_replaces() {
        let l = Locator::new(h(), 1)
            .with_signature([1; 32], 1)
            .with_signature([2; 32], 2);
        assert_eq!(l.hints.len(), 1);
        assert_eq!(l.signature(), Some(([2; 32], 2)));
    }
}
