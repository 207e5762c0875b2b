//! Comparing secrets (tokens, keys, signatures) without leaking where they differ.

use subtle::ConstantTimeEq;

/// Whether `a` and `b` are equal, in time that depends only on their lengths (`subtle`).
///
/// Use it for every comparison of a secret with a value a client sent: tokens, the
/// management token, signatures. Unequal lengths answer `false` at once (a length is
/// not the secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

/// [`ct_eq`] on strings.
pub fn ct_eq_str(a: &str, b: &str) -> bool {
    ct_eq(a.as_bytes(), b.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_only_when_equal() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(ct_eq(b"", b""));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(!ct_eq(b"", b"a"));
        assert!(ct_eq_str("tok", "tok") && !ct_eq_str("tok", "Tok"));
    }
}
