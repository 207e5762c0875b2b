use std::fmt;
use std::str::FromStr;

use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// What a [`Uuid`] names, from its 5-character type infix.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum UuidKind {
    /// `tpzed`
    User,
    /// `j7d0g`: projects, filter groups, roles
    Group,
    /// `4zz18`
    Collection,
    /// `gj3su`: API tokens
    Token,
    /// `o0j2j`
    Link,
}

impl UuidKind {
    pub const ALL: [UuidKind; 5] = [
        UuidKind::User,
        UuidKind::Group,
        UuidKind::Collection,
        UuidKind::Token,
        UuidKind::Link,
    ];

    pub fn infix(self) -> &'static str {
        match self {
            UuidKind::User => "tpzed",
            UuidKind::Group => "j7d0g",
            UuidKind::Collection => "4zz18",
            UuidKind::Token => "gj3su",
            UuidKind::Link => "o0j2j",
        }
    }

    pub fn from_infix(s: &str) -> Option<Self> {
        UuidKind::ALL.into_iter().find(|k| k.infix() == s)
    }

    /// The kind of `s` if it is a well-formed UUID (`None` otherwise): for code that
    /// holds a UUID as a string, instead of comparing `s.get(6..11)` with an infix.
    ///
    /// ```
    /// use keep_format::UuidKind;
    /// assert_eq!(UuidKind::of("zzzzz-4zz18-0123456789abcde"), Some(UuidKind::Collection));
    /// assert_eq!(UuidKind::of("zzzzz-4zz18-short"), None);
    /// ```
    pub fn of(s: &str) -> Option<UuidKind> {
        s.parse::<Uuid>().ok().map(|u| u.kind())
    }

    /// What the API calls it: `user`, `group`, `collection`, `token`, `link`.
    pub fn name(self) -> &'static str {
        match self {
            UuidKind::User => "user",
            UuidKind::Group => "group",
            UuidKind::Collection => "collection",
            UuidKind::Token => "token",
            UuidKind::Link => "link",
        }
    }

    /// The Arvados `kind` of an object of this type (`arvados#collection`, …).
    pub fn arvados_kind(self) -> &'static str {
        match self {
            UuidKind::User => "arvados#user",
            UuidKind::Group => "arvados#group",
            UuidKind::Collection => "arvados#collection",
            UuidKind::Token => "arvados#apiClientAuthorization",
            UuidKind::Link => "arvados#link",
        }
    }
}

impl fmt::Display for UuidKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `<5-char cluster id>-<5-char type>-<15 [a-z0-9]>`, e.g. `zzzzz-4zz18-0123456789abcde`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uuid(String);

fn is_id_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// Checks a cluster id: 5 characters of `[a-z0-9]`.
pub(crate) fn check_cluster(cluster: &str) -> Result<(), Error> {
    if cluster.len() == 5 && cluster.bytes().all(is_id_char) {
        Ok(())
    } else {
        Err(Error::Uuid {
            got: cluster.to_string(),
            why: "a cluster id is 5 characters of [a-z0-9]".into(),
        })
    }
}

impl Uuid {
    /// A fresh random UUID of `kind` on `cluster`.
    pub fn generate(cluster: &str, kind: UuidKind) -> Result<Self, Error> {
        check_cluster(cluster)?;
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut rng = rand::rng();
        let tail: String = (0..15)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect();
        Ok(Uuid(format!("{cluster}-{}-{tail}", kind.infix())))
    }

    /// A UUID with a chosen 15-character tail (well-known objects, tests).
    pub fn with_tail(cluster: &str, kind: UuidKind, tail: &str) -> Result<Self, Error> {
        format!("{cluster}-{}-{tail}", kind.infix()).parse()
    }

    /// `<cluster>-tpzed-anonymouspublic`.
    pub fn anonymous(cluster: &str) -> Result<Self, Error> {
        Uuid::with_tail(cluster, UuidKind::User, "anonymouspublic")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn cluster(&self) -> &str {
        self.0.get(..5).unwrap_or_default()
    }

    pub fn kind(&self) -> UuidKind {
        // checked at construction
        UuidKind::from_infix(self.0.get(6..11).unwrap_or_default()).unwrap_or(UuidKind::Link)
    }

    /// Whether this UUID names an object of `kind`.
    pub fn is(&self, kind: UuidKind) -> bool {
        self.kind() == kind
    }

    /// Parses `s` as a UUID of `kind`: the error says which kind was expected and
    /// which was given (`expected a collection UUID (<cluster>-4zz18-…), got a user UUID`).
    pub fn parse_kind(s: &str, kind: UuidKind) -> Result<Uuid, Error> {
        let u: Uuid = s.parse().map_err(|e| match e {
            Error::Uuid { got, why } => Error::Uuid {
                got,
                why: format!(
                    "expected a {kind} UUID (<cluster>-{}-<15 chars>): {why}",
                    kind.infix()
                ),
            },
            other => other,
        })?;
        if u.kind() != kind {
            let why = format!(
                "expected a {kind} UUID (<cluster>-{}-<15 chars>), got a {} UUID",
                kind.infix(),
                u.kind()
            );
            return Err(Error::Uuid { got: u.0, why });
        }
        Ok(u)
    }
}

impl FromStr for Uuid {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let err = |why: &str| Error::Uuid {
            got: s.to_string(),
            why: why.to_string(),
        };
        let b = s.as_bytes();
        if b.len() != 27 || b[5] != b'-' || b[11] != b'-' {
            return Err(err("expected <5-char cluster>-<5-char type>-<15 chars>"));
        }
        // all ASCII from here on: every slice below is on a character boundary
        if !b[..5].iter().copied().all(is_id_char) || !b[12..].iter().copied().all(is_id_char) {
            return Err(err("only [a-z0-9] is allowed around the dashes"));
        }
        if UuidKind::from_infix(s.get(6..11).unwrap_or_default()).is_none() {
            return Err(err(
                "unknown type infix (tpzed, j7d0g, 4zz18, gj3su or o0j2j expected)",
            ));
        }
        Ok(Uuid(s.to_string()))
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uuid({})", self.0)
    }
}

impl Serialize for Uuid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Uuid {
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
    fn generate_parse_kind() {
        for kind in UuidKind::ALL {
            let u = Uuid::generate("zzzzz", kind).unwrap();
            assert_eq!(u.kind(), kind);
            assert_eq!(u.cluster(), "zzzzz");
            assert_eq!(u.to_string().parse::<Uuid>().unwrap(), u);
        }
        assert_eq!(
            Uuid::anonymous("zzzzz").unwrap().as_str(),
            "zzzzz-tpzed-anonymouspublic"
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "zzzzz-4zz18-0123456789abcd",
            "zzzzz-4zz18-0123456789abcdef",
            "zzzzz-xxxxx-0123456789abcde",
            "ZZZZZ-4zz18-0123456789abcde",
            "zzzzz_4zz18_0123456789abcde",
        ] {
            assert!(bad.parse::<Uuid>().is_err(), "{bad}");
        }
        assert!(Uuid::generate("zz", UuidKind::User).is_err());
        // multibyte characters where the dashes go are refused, not sliced through
        assert!("zzzz€4zz18-0123456789abcd".parse::<Uuid>().is_err());
        assert!("zzzzz-4zz1€0123456789abc".parse::<Uuid>().is_err());
    }

    #[test]
    fn kind_helpers() {
        let c = "zzzzz-4zz18-0123456789abcde";
        assert_eq!(UuidKind::of(c), Some(UuidKind::Collection));
        assert_eq!(UuidKind::of("zzzzz-4zz18-0123"), None);
        assert_eq!(UuidKind::of("€€€€€€€€€"), None);
        assert!(Uuid::parse_kind(c, UuidKind::Collection)
            .unwrap()
            .is(UuidKind::Collection));
        let e = Uuid::parse_kind("zzzzz-tpzed-0123456789abcde", UuidKind::Collection)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("expected a collection UUID") && e.contains("got a user UUID"),
            "{e}"
        );
        let e = Uuid::parse_kind("nope", UuidKind::Group)
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected a group UUID (<cluster>-j7d0g-"), "{e}");
        assert_eq!(
            UuidKind::Token.arvados_kind(),
            "arvados#apiClientAuthorization"
        );
        assert_eq!(UuidKind::Link.to_string(), "link");
    }
}
