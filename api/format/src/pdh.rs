use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Hash};

/// Portable data hash: `<BLAKE3 hex of the stripped manifest>+<its byte length>`.
///
/// It names a collection's content forever. Computed by [`crate::Manifest::pdh`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pdh {
    pub hash: Hash,
    pub size: u64,
}

impl Pdh {
    /// The PDH of the empty manifest `""`.
    pub fn empty() -> Pdh {
        Pdh {
            hash: Hash::EMPTY,
            size: 0,
        }
    }

    /// The PDH of a stripped manifest text.
    pub fn of_text(stripped: &str) -> Pdh {
        Pdh {
            hash: Hash::of(stripped.as_bytes()),
            size: stripped.len() as u64,
        }
    }

    /// DNS-label form `<base32(hash)>-<size>` used in collection vhosts.
    pub fn to_dns_label(&self) -> String {
        format!("{}-{}", self.hash.to_base32(), self.size)
    }

    pub fn from_dns_label(s: &str) -> Result<Pdh, Error> {
        let err = |why: &str| Error::Pdh {
            got: s.to_string(),
            why: why.to_string(),
        };
        let (h, size) = s
            .rsplit_once('-')
            .ok_or_else(|| err("expected <52 base32 characters>-<size>"))?;
        let hash = Hash::from_base32(h).map_err(|e| err(&e.to_string()))?;
        Ok(Pdh {
            hash,
            size: parse_size(size).ok_or_else(|| err("size is not a decimal number"))?,
        })
    }

    /// Accepts `<hex>+<size>` and, as URLs may write it, `<hex> <size>` or `<hex>-<size>`.
    pub fn parse_loose(s: &str) -> Result<Pdh, Error> {
        if s.len() > 65 && matches!(s.as_bytes()[64], b' ' | b'-') {
            let mut fixed = s.to_string();
            fixed.replace_range(64..65, "+");
            return fixed.parse();
        }
        s.parse()
    }
}

fn parse_size(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

impl FromStr for Pdh {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let err = |why: String| Error::Pdh {
            got: s.to_string(),
            why,
        };
        let (h, size) = s
            .split_once('+')
            .ok_or_else(|| err("expected <64 hex digits>+<size>".into()))?;
        let hash: Hash = h.parse().map_err(|e: Error| err(e.to_string()))?;
        let size = parse_size(size).ok_or_else(|| {
            err(format!(
                "size {size:?} is not a decimal number (no hints in a PDH)"
            ))
        })?;
        Ok(Pdh { hash, size })
    }
}

impl fmt::Display for Pdh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{}", self.hash, self.size)
    }
}

impl fmt::Debug for Pdh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pdh({self})")
    }
}

impl Serialize for Pdh {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Pdh {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_pdh_pinned() {
        assert_eq!(
            Pdh::of_text("").to_string(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262+0"
        );
        assert_eq!(Pdh::of_text(""), Pdh::empty());
    }

    #[test]
    fn forms_round_trip() {
        let p = Pdh::of_text(". abc 0:0:x\n");
        assert_eq!(p.to_string().parse::<Pdh>().unwrap(), p);
        let label = p.to_dns_label();
        assert!(label.len() <= 63, "{label}");
        assert_eq!(Pdh::from_dns_label(&label).unwrap(), p);
        let spaced = p.to_string().replace('+', " ");
        assert_eq!(Pdh::parse_loose(&spaced).unwrap(), p);
        let dashed = p.to_string().replace('+', "-");
        assert_eq!(Pdh::parse_loose(&dashed).unwrap(), p);
    }

    #[test]
    fn rejects() {
        let h = Hash::EMPTY.to_string();
        for bad in [
            String::new(),
            h.clone(),
            format!("{h}+"),
            format!("{h}+1+A"),
            format!("{h}+01"),
        ] {
            assert!(bad.parse::<Pdh>().is_err(), "{bad}");
        }
    }
}
