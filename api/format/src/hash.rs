use std::fmt;
use std::str::FromStr;

use data_encoding::BASE32_NOPAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// A BLAKE3-256 digest: the address of a block, the body of a PDH.
///
/// Text forms: 64 lowercase hex digits (`Display`, `FromStr`, serde), and 52
/// lowercase RFC 4648 base32 characters without padding for DNS labels.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash([u8; 32]);

impl Hash {
    /// The hash of zero bytes: the address of the empty block.
    pub const EMPTY: Hash = Hash([
        0xaf, 0x13, 0x49, 0xb9, 0xf5, 0xf9, 0xa1, 0xa6, 0xa0, 0x40, 0x4d, 0xea, 0x36, 0xdc, 0xc9,
        0x49, 0x9b, 0xcb, 0x25, 0xc9, 0xad, 0xc1, 0x12, 0xb7, 0xcc, 0x9a, 0x93, 0xca, 0xe4, 0x1f,
        0x32, 0x62,
    ]);

    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Hash(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// BLAKE3 of `data`.
    pub fn of(data: &[u8]) -> Self {
        Hash(*blake3::hash(data).as_bytes())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Lowercase base32 (RFC 4648, no padding): 52 characters.
    pub fn to_base32(&self) -> String {
        BASE32_NOPAD.encode(&self.0).to_ascii_lowercase()
    }

    pub fn from_base32(s: &str) -> Result<Self, Error> {
        let err = |why| Error::Hash {
            got: s.to_string(),
            why,
        };
        if s.len() != 52 {
            return Err(err("base32 form must be 52 characters"));
        }
        let bytes = BASE32_NOPAD
            .decode(s.to_ascii_uppercase().as_bytes())
            .map_err(|_| err("not RFC 4648 base32"))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| err("base32 form must decode to 32 bytes"))?;
        Ok(Hash(arr))
    }

    /// The first `n` hex digits, for fan-out directories and log lines.
    pub fn hex_prefix(&self, n: usize) -> String {
        let mut s = self.to_hex();
        s.truncate(n);
        s
    }
}

impl From<blake3::Hash> for Hash {
    fn from(h: blake3::Hash) -> Self {
        Hash(*h.as_bytes())
    }
}

impl FromStr for Hash {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let err = |why| Error::Hash {
            got: s.to_string(),
            why,
        };
        if s.len() != 64 {
            return Err(err("must be 64 hex digits"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(err("must be lowercase hex"));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| err("must be lowercase hex"))?;
        Ok(Hash(out))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 64];
        // cannot fail: the buffer is exactly twice the input
        hex::encode_to_slice(self.0, &mut buf).map_err(|_| fmt::Error)?;
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({self})")
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The order in which to try places (keepstore volumes, keepstores) for block `hash`:
/// rendezvous hashing, i.e. sorted by BLAKE3(hash bytes ‖ id) descending. Returns
/// indexes into `ids`. Adding or removing one place moves only the blocks it wins.
pub fn rendezvous_order<S: AsRef<str>>(hash: &Hash, ids: &[S]) -> Vec<usize> {
    let mut keyed: Vec<([u8; 32], usize)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let mut h = blake3::Hasher::new();
            h.update(hash.as_bytes());
            h.update(id.as_ref().as_bytes());
            (*h.finalize().as_bytes(), i)
        })
        .collect();
    keyed.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    keyed.into_iter().map(|(_, i)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_constant_is_blake3_of_nothing() {
        assert_eq!(Hash::EMPTY, Hash::of(b""));
        assert_eq!(
            Hash::EMPTY.to_string(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn hex_and_base32_round_trip() {
        let h = Hash::of(b"keep");
        assert_eq!(h.to_string().parse::<Hash>().unwrap(), h);
        let b = h.to_base32();
        assert_eq!(b.len(), 52);
        assert!(b
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        assert_eq!(Hash::from_base32(&b).unwrap(), h);
        assert_eq!(Hash::from_base32(&b.to_ascii_uppercase()).unwrap(), h);
    }

    #[test]
    fn rejects_bad_hex() {
        for bad in ["", "abc", &"A".repeat(64), &"g".repeat(64), &"a".repeat(65)] {
            assert!(bad.parse::<Hash>().is_err(), "{bad}");
        }
    }

    #[test]
    fn serde_is_hex_string() {
        let h = Hash::of(b"x");
        let j = serde_json::to_string(&h).unwrap();
        assert_eq!(j, format!("\"{h}\""));
        assert_eq!(serde_json::from_str::<Hash>(&j).unwrap(), h);
    }
}
