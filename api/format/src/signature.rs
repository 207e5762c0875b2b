use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use thiserror::Error;

use crate::{Hash, Locator, Token};

/// The cluster's blob signing key. `Debug` never shows it.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl SigningKey {
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        SigningKey(key.into())
    }

    /// A random 50-character key for a new cluster (about 258 bits).
    pub fn generate() -> String {
        Token::generate_bare().secret().to_string()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

/// Why a locator's permission signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SignatureError {
    #[error("the locator carries no +A signature")]
    Missing,
    #[error("the locator's signature has expired (sign it again by fetching the collection)")]
    Expired,
    #[error("the locator's signature is not valid for this token")]
    Invalid,
}

/// Signs and checks `+A<sig>@<expiry>` hints.
///
/// `sig = hex(HMAC-SHA256(key, "<hash>@<token secret>@<expiry>"))`, `expiry` being 8
/// lowercase hex digits of Unix seconds. The token's secret (not its `v2/` wrapping) is
/// what is signed, so both forms of one token verify alike.
#[derive(Clone, Debug)]
pub struct BlobSigner {
    key: SigningKey,
    ttl: Duration,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl BlobSigner {
    pub fn new(key: SigningKey, ttl: Duration) -> Self {
        BlobSigner { key, ttl }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn mac(&self, hash: &Hash, token: &Token, expiry: u32) -> [u8; 32] {
        // HMAC accepts keys of any length
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(format!("{hash}@{}@{expiry:08x}", token.secret()).as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// `locator` signed for `token`, valid until `now + ttl`.
    pub fn sign(&self, locator: &Locator, token: &Token, now: SystemTime) -> Locator {
        let expiry = (unix(now) + self.ttl.as_secs()).min(u32::MAX as u64) as u32;
        self.sign_until(locator, token, expiry)
    }

    /// `locator` signed for `token` with an explicit expiry (Unix seconds).
    pub fn sign_until(&self, locator: &Locator, token: &Token, expiry: u32) -> Locator {
        locator.with_signature(self.mac(&locator.hash, token, expiry), expiry)
    }

    /// Checks that `locator` carries a signature made for `token` that has not expired.
    pub fn verify(
        &self,
        locator: &Locator,
        token: &Token,
        now: SystemTime,
    ) -> Result<(), SignatureError> {
        let (sig, expiry) = locator.signature().ok_or(SignatureError::Missing)?;
        let want = self.mac(&locator.hash, token, expiry);
        if !bool::from(want.ct_eq(&sig)) {
            return Err(SignatureError::Invalid);
        }
        if (expiry as u64) < unix(now) {
            return Err(SignatureError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Uuid, UuidKind};

    fn setup() -> (BlobSigner, Token, Locator) {
        let signer = BlobSigner::new(SigningKey::new("k3y"), Duration::from_secs(3600));
        let token = Token::generate(Uuid::generate("zzzzz", UuidKind::Token).unwrap());
        (signer, token, Locator::new(Hash::of(b"abc"), 3))
    }

    #[test]
    fn sign_verify() {
        let (s, t, l) = setup();
        let now = SystemTime::now();
        let signed = s.sign(&l, &t, now);
        assert_eq!(s.verify(&signed, &t, now), Ok(()));
        // bare form of the same token verifies too
        let bare: Token = t.secret().parse().unwrap();
        assert_eq!(s.verify(&signed, &bare, now), Ok(()));
        // re-parsed text verifies
        let text: Locator = signed.to_string().parse().unwrap();
        assert_eq!(s.verify(&text, &t, now), Ok(()));
    }

    #[test]
    fn refusals() {
        let (s, t, l) = setup();
        let now = SystemTime::now();
        assert_eq!(s.verify(&l, &t, now), Err(SignatureError::Missing));
        let signed = s.sign(&l, &t, now);
        let other = Token::generate_bare();
        assert_eq!(s.verify(&signed, &other, now), Err(SignatureError::Invalid));
        let later = now + Duration::from_secs(3601 + 1);
        assert_eq!(s.verify(&signed, &t, later), Err(SignatureError::Expired));
        let other_key = BlobSigner::new(SigningKey::new("other"), Duration::from_secs(60));
        assert_eq!(
            other_key.verify(&signed, &t, now),
            Err(SignatureError::Invalid)
        );
        // a signature moved onto another block is refused
        let moved = Locator::new(Hash::of(b"xyz"), 3)
            .with_signature(signed.signature().unwrap().0, signed.signature().unwrap().1);
        assert_eq!(s.verify(&moved, &t, now), Err(SignatureError::Invalid));
    }

    #[test]
    fn known_vector() {
        // pinned so that other implementations (and doc/formats.md) can check theirs
        let s = BlobSigner::new(SigningKey::new("secret-key"), Duration::from_secs(0));
        let t: Token = "abc123".parse().unwrap();
        let l = s.sign_until(&Locator::new(Hash::EMPTY, 0), &t, 0x6a000000);
        // checked independently: python3 hmac.new(b"secret-key", b"<empty hash>@abc123@6a000000", sha256)
        assert_eq!(
            l.to_string(),
            format!(
                "{}+0+A3923f706113c53db754df7c16598881bb202318f20f54e8477e7339fc99313db@6a000000",
                Hash::EMPTY
            )
        );
    }
}
