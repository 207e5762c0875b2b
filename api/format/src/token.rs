use std::fmt;
use std::str::FromStr;

use rand::Rng;
use sha2::{Digest, Sha256};

use crate::{Error, Uuid, UuidKind};

/// An API token: `v2/<token uuid>/<secret>` or a bare secret.
///
/// Neither `Debug` nor `Display` shows the secret; call [`Token::expose`] to put the
/// whole token on the wire. Only [`Token::secret_hash`] is ever stored.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Token {
    uuid: Option<Uuid>,
    secret: String,
}

const SECRET_LEN: usize = 50;

impl Token {
    /// A new `v2` token with a fresh 50-character secret.
    pub fn generate(uuid: Uuid) -> Self {
        Token {
            uuid: Some(uuid),
            secret: random_secret(),
        }
    }

    /// A bare secret (no UUID): random, 50 characters of `[a-z0-9]`.
    pub fn generate_bare() -> Self {
        Token {
            uuid: None,
            secret: random_secret(),
        }
    }

    pub fn uuid(&self) -> Option<&Uuid> {
        self.uuid.as_ref()
    }

    /// The secret part. Signatures and lookups use it, so the `v2/…` and bare forms of
    /// one token are the same token.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The full token text, for an `Authorization` header or a settings file.
    pub fn expose(&self) -> String {
        match &self.uuid {
            Some(u) => format!("v2/{u}/{}", self.secret),
            None => self.secret.clone(),
        }
    }

    /// Lowercase hex SHA-256 of the secret: what the server stores.
    pub fn secret_hash(&self) -> String {
        hex::encode(Sha256::digest(self.secret.as_bytes()))
    }
}

fn random_secret() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..SECRET_LEN)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn check_secret(s: &str) -> Result<(), Error> {
    if s.is_empty() {
        return Err(Error::Token {
            why: "the secret is empty",
        });
    }
    if s.len() > 512 {
        return Err(Error::Token {
            why: "the secret is longer than 512 characters",
        });
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Error::Token {
            why: "the secret may only hold [A-Za-z0-9_-]",
        });
    }
    Ok(())
}

impl FromStr for Token {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        if let Some(rest) = s.strip_prefix("v2/") {
            let (uuid, secret) = rest.split_once('/').ok_or(Error::Token {
                why: "a v2 token is v2/<token uuid>/<secret>",
            })?;
            let uuid: Uuid = uuid.parse().map_err(|_| Error::Token {
                why: "the UUID in a v2 token is malformed",
            })?;
            if uuid.kind() != UuidKind::Token {
                return Err(Error::Token {
                    why: "the UUID in a v2 token must be a token UUID (-gj3su-)",
                });
            }
            check_secret(secret)?;
            Ok(Token {
                uuid: Some(uuid),
                secret: secret.to_string(),
            })
        } else {
            check_secret(s)?;
            Ok(Token {
                uuid: None,
                secret: s.to_string(),
            })
        }
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.uuid {
            Some(u) => write!(f, "v2/{u}/<redacted>"),
            None => f.write_str("<redacted token>"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_and_bare() {
        let uuid = Uuid::generate("zzzzz", UuidKind::Token).unwrap();
        let t = Token::generate(uuid.clone());
        let text = t.expose();
        let back: Token = text.parse().unwrap();
        assert_eq!(back, t);
        assert_eq!(back.uuid(), Some(&uuid));
        let bare: Token = t.secret().parse().unwrap();
        assert_eq!(bare.secret(), t.secret());
        assert_eq!(bare.secret_hash(), t.secret_hash());
        assert_eq!(bare.uuid(), None);
    }

    #[test]
    fn never_prints_secret() {
        let t = Token::generate(Uuid::generate("zzzzz", UuidKind::Token).unwrap());
        assert!(!format!("{t}").contains(t.secret()));
        assert!(!format!("{t:?}").contains(t.secret()));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "v2/",
            "v2/zzzzz-gj3su-0123456789abcde",
            "v2/zzzzz-gj3su-0123456789abcde/",
            "v2/zzzzz-tpzed-0123456789abcde/abc",
            "has space",
            "slash/inside",
        ] {
            assert!(bad.parse::<Token>().is_err(), "{bad}");
        }
    }
}
