//! The set of referenced blocks: a sorted `Vec` of fixed-size entries (36 bytes: the
//! 32-byte BLAKE3 hash, then the size and the desired replication packed in 4 bytes).
//! Entries are appended while collections are read; whenever the vector is full it is
//! sorted and deduplicated in place (keeping the largest desired replication), so its
//! size follows the number of distinct blocks, not the number of references (past
//! versions name mostly the same blocks). Memory: 36 B per distinct block, at most
//! ~1.5× that while it grows (plus the moment a reallocation copies it): 10 million
//! blocks fit in about 360–540 MB, 1 million in 36–54 MB.

use keep_format::{Hash, BLOCK_SIZE_MAX};

/// Desired replication is kept in 5 bits.
pub const REPLICATION_MAX: u8 = 31;
const SIZE_BITS: u32 = 27;
const _: () = assert!(BLOCK_SIZE_MAX < (1 << SIZE_BITS));

#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Ref {
    pub hash: [u8; 32],
    packed: [u8; 4],
}

impl Ref {
    pub fn new(hash: &Hash, size: u64, replication: u8) -> Ref {
        let size = size.min(BLOCK_SIZE_MAX) as u32;
        let r = u32::from(replication.clamp(1, REPLICATION_MAX));
        Ref {
            hash: *hash.as_bytes(),
            packed: (size | (r << SIZE_BITS)).to_le_bytes(),
        }
    }
    pub fn size(&self) -> u64 {
        u64::from(u32::from_le_bytes(self.packed) & ((1 << SIZE_BITS) - 1))
    }
    pub fn replication(&self) -> u8 {
        (u32::from_le_bytes(self.packed) >> SIZE_BITS) as u8
    }
    pub fn hash(&self) -> Hash {
        Hash::from_bytes(self.hash)
    }
}

const _: () = assert!(std::mem::size_of::<Ref>() == 36);

/// The growing, then finished, set of referenced blocks.
pub struct RefSet {
    v: Vec<Ref>,
    /// Entries `..sorted` are sorted and distinct.
    sorted: usize,
    /// Locators read (with repeats).
    pub references: u64,
}

impl Default for RefSet {
    fn default() -> Self {
        RefSet {
            v: Vec::with_capacity(1 << 16),
            sorted: 0,
            references: 0,
        }
    }
}

impl RefSet {
    pub fn push(&mut self, hash: &Hash, size: u64, replication: u8) {
        if self.v.len() == self.v.capacity() {
            self.compact();
            // still mostly full: grow by half (not double) to keep the peak low
            if self.v.len() * 4 >= self.v.capacity() * 3 {
                let more = (self.v.capacity() / 2).max(1 << 16);
                self.v.reserve_exact(more);
            }
        }
        self.references += 1;
        self.v.push(Ref::new(hash, size, replication));
    }

    /// Sorts and deduplicates (the largest replication wins).
    pub fn compact(&mut self) {
        if self.sorted == self.v.len() {
            return;
        }
        self.v.sort_unstable_by(|a, b| {
            a.hash
                .cmp(&b.hash)
                .then(b.replication().cmp(&a.replication()))
        });
        // sorted by hash, then largest replication first: keep the first of each run
        self.v.dedup_by(|later, first| later.hash == first.hash);
        self.sorted = self.v.len();
    }

    /// Done adding: sorted, distinct, spare capacity released.
    pub fn finish(&mut self) {
        self.compact();
        self.v.shrink_to_fit();
    }

    pub fn len(&self) -> usize {
        self.v.len()
    }

    pub fn is_empty(&self) -> bool {
        self.v.is_empty()
    }

    /// Bytes the entries take now (for the report).
    pub fn heap_bytes(&self) -> usize {
        self.v.capacity() * std::mem::size_of::<Ref>()
    }

    /// The index of `hash` (after [`RefSet::finish`]).
    pub fn find(&self, hash: &[u8; 32]) -> Option<usize> {
        self.v.binary_search_by(|r| r.hash.cmp(hash)).ok()
    }

    pub fn get(&self, i: usize) -> &Ref {
        &self.v[i]
    }

    pub fn iter(&self) -> impl Iterator<Item = &Ref> {
        self.v.iter()
    }
}

/// Calls `f(hash, size)` for every block locator in a manifest's text. Only the tokens
/// between a stream's name and its first file segment are locators; anything else that
/// looks unusual is skipped (the API checked every manifest when it was saved).
/// Returns how many locators were malformed (a manifest the API should never have kept).
pub fn scan_manifest(text: &str, mut f: impl FnMut(&Hash, u64)) -> u64 {
    let mut bad = 0;
    for line in text.split('\n') {
        let mut tokens = line.split(' ');
        if tokens.next().is_none_or(str::is_empty) {
            continue;
        }
        for tok in tokens {
            let b = tok.as_bytes();
            let looks_like_locator = b.len() >= 66
                && b[64] == b'+'
                && b[..64]
                    .iter()
                    .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
            if !looks_like_locator {
                // the first file segment (`pos:len:name`) ends the locators
                break;
            }
            let size_end = tok[65..].find('+').map_or(tok.len(), |i| 65 + i);
            match (tok[..64].parse::<Hash>(), tok[65..size_end].parse::<u64>()) {
                (Ok(h), Ok(s)) => f(&h, s),
                _ => bad += 1,
            }
        }
    }
    bad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_keeps_max_replication_and_finds() {
        let mut s = RefSet::default();
        let hs: Vec<Hash> = (0..200_000u32)
            .map(|i| Hash::of(&i.to_le_bytes()))
            .collect();
        for (i, h) in hs.iter().enumerate() {
            s.push(h, i as u64, 1);
        }
        // every block again, some wanting more copies
        for (i, h) in hs.iter().enumerate() {
            s.push(h, i as u64, if i % 7 == 0 { 3 } else { 1 });
        }
        s.finish();
        assert_eq!(s.len(), hs.len());
        assert_eq!(s.references, 400_000);
        for (i, h) in hs.iter().enumerate() {
            let r = s.get(s.find(h.as_bytes()).unwrap());
            assert_eq!(r.size(), i as u64);
            assert_eq!(r.replication(), if i % 7 == 0 { 3 } else { 1 });
            assert_eq!(r.hash(), *h);
        }
        assert!(s.find(Hash::of(b"nope").as_bytes()).is_none());
        // the vector stayed near the distinct count, not the reference count
        assert!(s.heap_bytes() <= 36 * 200_000 * 2, "{}", s.heap_bytes());
    }

    #[test]
    fn packing_limits() {
        let h = Hash::of(b"x");
        let r = Ref::new(&h, BLOCK_SIZE_MAX, 200);
        assert_eq!(r.size(), BLOCK_SIZE_MAX);
        assert_eq!(r.replication(), REPLICATION_MAX);
        assert_eq!(Ref::new(&h, 0, 0).replication(), 1);
    }

    #[test]
    fn manifest_scan() {
        let a = Hash::of(b"a");
        let b = Hash::of(b"b");
        let text =
            format!(". {a}+1+Aabc@12345678 {b}+2 0:3:x\\040y 0:1:{a}+1\n./d {a}+1 0:1:z\n\n");
        let mut got = Vec::new();
        assert_eq!(scan_manifest(&text, |h, s| got.push((*h, s))), 0);
        assert_eq!(got, vec![(a, 1), (b, 2), (a, 1)]);
        assert_eq!(scan_manifest("", |_, _| panic!()), 0);
        let bad = format!(". {}+zz 0:1:x\n", "0".repeat(64));
        assert_eq!(scan_manifest(&bad, |_, _| panic!()), 1);
        // a file name with a '+' where a locator has one is not a locator
        let name = format!(". {a}+1 0:1:{}+x\n", "y:".repeat(30));
        let mut n = 0;
        assert_eq!(scan_manifest(&name, |_, _| n += 1), 0);
        assert_eq!(n, 1);
    }
}
