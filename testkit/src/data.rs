//! Test data and places to put it.

use std::path::Path;

/// `len` deterministic pseudo-random bytes: the same `seed` gives the same bytes, two
/// seeds give unrelated ones (xorshift64).
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A fresh directory of the test's own, removed when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("keep-test-")
        .tempdir()
        .expect("create a temp dir")
}

/// Every regular file below `dir`, as paths relative to it, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(d) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap_or(&p).display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn bytes_are_deterministic_and_seeded() {
        assert_eq!(super::bytes(100, 1), super::bytes(100, 1));
        assert_ne!(super::bytes(100, 1), super::bytes(100, 2));
        assert_eq!(super::bytes(0, 1), Vec::<u8>::new());
    }
}
