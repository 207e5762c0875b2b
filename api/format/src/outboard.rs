//! BLAKE3 outboard trees: verified random access into a block.
//!
//! A block's BLAKE3 hash is the root of a binary tree over 1 KiB chunks. We keep the
//! tree above 16 KiB *chunk groups* beside each block (the "outboard", 64 bytes per
//! group: ~0.4% of the data), so that any byte range can be checked against the
//! block's hash by reading only the groups it touches plus one 64-byte node per tree
//! level, instead of hashing the whole 64 MiB block.
//!
//! Layout: the parent nodes of the tree in pre-order, each as `left CV ‖ right CV`
//! (32 + 32 bytes). The tree is BLAKE3's own (left subtree = largest power of two
//! groups), so the root of the outboard *is* the block hash: building one and hashing
//! the block are the same computation. A block of at most one group has an empty
//! outboard and is checked by hashing it whole.
//!
//! Built on `blake3::hazmat` (the BLAKE3 team's subtree API). We chose it over the
//! `bao-tree` crate because keepstore needs exactly this synchronous pread-driven check
//! with a fixed on-disk layout, and this module is small enough to prove with tests
//! against `blake3::hash` for every size class.

use std::ops::Range;

use blake3::hazmat::{
    merge_subtrees_non_root, merge_subtrees_root, ChainingValue, HasherExt, Mode,
};

use crate::Hash;

/// log2 of the chunk group size.
pub const GROUP_LOG: u32 = 14;
/// 16 KiB: the unit of verification.
pub const GROUP_SIZE: u64 = 1 << GROUP_LOG;
/// Bytes per stored parent node.
pub const NODE_SIZE: u64 = 64;

/// A chaining value: the hash of a non-root subtree.
pub type Cv = ChainingValue;

/// Number of chunk groups in a block of `len` bytes (at least one).
pub fn group_count(len: u64) -> u64 {
    len.div_ceil(GROUP_SIZE).max(1)
}

/// Size of the outboard of a block of `len` bytes.
pub fn outboard_size(len: u64) -> u64 {
    (group_count(len) - 1) * NODE_SIZE
}

/// The byte range of group `g` in a block of `len` bytes.
pub fn group_bytes(len: u64, g: u64) -> Range<u64> {
    let start = g * GROUP_SIZE;
    start..(start + GROUP_SIZE).min(len)
}

/// The groups that hold bytes `range` (non-empty range, within `len`).
pub fn groups_for(len: u64, range: Range<u64>) -> Range<u64> {
    let end = range.end.min(len);
    if range.start >= end {
        return 0..0;
    }
    (range.start >> GROUP_LOG)..end.div_ceil(GROUP_SIZE)
}

fn left_groups(n: u64) -> u64 {
    // largest power of two strictly below n (n >= 2)
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Incremental builder: feed the block's bytes in any pieces, get its hash and outboard.
pub struct Builder {
    cvs: Vec<Cv>,
    cur: blake3::Hasher,
    cur_len: u64,
    /// The last full group, not yet finalized: if nothing follows it is the root.
    pending: Option<blake3::Hasher>,
    total: u64,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    pub fn new() -> Self {
        Builder {
            cvs: Vec::new(),
            cur: blake3::Hasher::new(),
            cur_len: 0,
            pending: None,
            total: 0,
        }
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.cur_len == GROUP_SIZE {
                if let Some(p) = self.pending.take() {
                    self.cvs.push(p.finalize_non_root());
                }
                let mut next = blake3::Hasher::new();
                next.set_input_offset(self.total);
                self.pending = Some(std::mem::replace(&mut self.cur, next));
                self.cur_len = 0;
            }
            let take = ((GROUP_SIZE - self.cur_len) as usize).min(data.len());
            self.cur.update(&data[..take]);
            self.cur_len += take as u64;
            self.total += take as u64;
            data = &data[take..];
        }
    }

    /// The block's BLAKE3 hash and its outboard bytes.
    pub fn finish(mut self) -> (Hash, Vec<u8>) {
        let Some(p) = self.pending.take() else {
            // a single group (possibly empty or full): its hash is the root
            return (Hash::from(self.cur.finalize()), Vec::new());
        };
        // a group is only moved to `pending` when more bytes follow, so `cur` is not empty
        self.cvs.push(p.finalize_non_root());
        self.cvs.push(self.cur.finalize_non_root());
        let mut out = Vec::with_capacity((self.cvs.len() - 1) * NODE_SIZE as usize);
        let root = build(&self.cvs, &mut out, true);
        (Hash::from_bytes(root), out)
    }
}

fn build(cvs: &[Cv], out: &mut Vec<u8>, is_root: bool) -> [u8; 32] {
    if cvs.len() == 1 {
        return cvs[0];
    }
    let at = out.len();
    out.extend_from_slice(&[0u8; NODE_SIZE as usize]);
    let m = left_groups(cvs.len() as u64) as usize;
    let l = build(&cvs[..m], out, false);
    let r = build(&cvs[m..], out, false);
    out[at..at + 32].copy_from_slice(&l);
    out[at + 32..at + 64].copy_from_slice(&r);
    if is_root {
        *merge_subtrees_root(&l, &r, Mode::Hash).as_bytes()
    } else {
        merge_subtrees_non_root(&l, &r, Mode::Hash)
    }
}

/// Hash and outboard of a whole block in memory.
pub fn outboard(data: &[u8]) -> (Hash, Vec<u8>) {
    let mut b = Builder::new();
    b.update(data);
    b.finish()
}

/// The outboard's nodes do not lead to the block hash: the outboard (or block) is corrupt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mismatch {
    /// Pre-order index of the node that failed.
    pub node: u64,
}

/// The descent from the root to the groups `want` of a tree over `n` groups (n ≥ 2):
/// `open(node index, value, is_root)` is called for each parent node on the way, in
/// pre-order, and gives the values of its two children (or stops the walk); `leaf` gets
/// the value of each wanted group, in order. The node indexes depend only on `n` and
/// `want`, which is what lets a reader fetch them all before it walks.
fn descend<T: Copy, E>(
    n: u64,
    want: Range<u64>,
    root: T,
    mut open: impl FnMut(u64, T, bool) -> Result<(T, T), E>,
    mut leaf: impl FnMut(T),
) -> Result<(), E> {
    // explicit stack: (first group, group count, node index, value, is_root)
    let mut stack = vec![(0u64, n, 0u64, root, true)];
    while let Some((a, count, idx, v, is_root)) = stack.pop() {
        if count == 1 {
            leaf(v);
            continue;
        }
        let (l, r) = open(idx, v, is_root)?;
        let m = left_groups(count);
        let right = (a + m, count - m, idx + m, r, false); // left subtree holds m-1 nodes
        let left = (a, m, idx + 1, l, false);
        // push right first so the left is handled first (output stays in order)
        if right.0 < want.end && want.start < right.0 + right.1 {
            stack.push(right);
        }
        if left.0 < want.end && want.start < left.0 + left.1 {
            stack.push(left);
        }
    }
    Ok(())
}

/// The pre-order indexes of the outboard nodes [`expected_cvs`] reads for groups `want`
/// of a block of `len` bytes, in the order it reads them.
pub fn path_nodes(len: u64, want: Range<u64>) -> Vec<u64> {
    let n = group_count(len);
    let want = want.start.min(n)..want.end.min(n);
    let mut out = Vec::new();
    if n == 1 || want.is_empty() {
        return out;
    }
    let _ = descend::<(), ()>(
        n,
        want,
        (),
        |idx, _, _| {
            out.push(idx);
            Ok(((), ()))
        },
        |_| {},
    );
    out
}

/// Walks the tree from the root down to the groups `want`, reading only the nodes on
/// the way (`node(i)` returns the 64 bytes of pre-order node `i`), and checks every node
/// against its parent. Returns the trusted chaining value of each wanted group, in order.
///
/// For a block of one group this returns an empty list: check it with [`check_group`],
/// which then hashes it whole against the root.
pub fn expected_cvs<E>(
    len: u64,
    root: &Hash,
    want: Range<u64>,
    mut node: impl FnMut(u64) -> Result<[u8; 64], E>,
) -> Result<Result<Vec<Cv>, Mismatch>, E> {
    enum Stop<E> {
        Read(E),
        Bad(Mismatch),
    }
    let n = group_count(len);
    let want = want.start.min(n)..want.end.min(n);
    let mut out = Vec::with_capacity((want.end - want.start) as usize);
    if n == 1 || want.is_empty() {
        return Ok(Ok(out));
    }
    let open = |idx: u64, expect: Cv, is_root: bool| {
        let bytes = node(idx).map_err(Stop::Read)?;
        let mut l = [0u8; 32];
        let mut r = [0u8; 32];
        l.copy_from_slice(&bytes[..32]);
        r.copy_from_slice(&bytes[32..]);
        let got = if is_root {
            *merge_subtrees_root(&l, &r, Mode::Hash).as_bytes()
        } else {
            merge_subtrees_non_root(&l, &r, Mode::Hash)
        };
        if got != expect {
            return Err(Stop::Bad(Mismatch { node: idx }));
        }
        Ok((l, r))
    };
    match descend(n, want, *root.as_bytes(), open, |cv| out.push(cv)) {
        Ok(()) => Ok(Ok(out)),
        Err(Stop::Read(e)) => Err(e),
        Err(Stop::Bad(m)) => Ok(Err(m)),
    }
}

/// Checks the bytes of group `g` of a block of `len` bytes with hash `root`. `cv` is the
/// group's trusted chaining value from [`expected_cvs`] (ignored for one-group blocks).
pub fn check_group(len: u64, root: &Hash, g: u64, cv: Option<&Cv>, data: &[u8]) -> bool {
    if group_count(len) == 1 {
        return data.len() as u64 == len && Hash::of(data) == *root;
    }
    let range = group_bytes(len, g);
    if data.len() as u64 != range.end - range.start {
        return false;
    }
    let Some(cv) = cv else { return false };
    let mut h = blake3::Hasher::new();
    h.set_input_offset(range.start);
    h.update(data);
    h.finalize_non_root() == *cv
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    const SIZES: &[usize] = &[
        0,
        1,
        1023,
        1024,
        16383,
        16384,
        16385,
        32768,
        3 * 16384 + 5,
        5 * 16384,
        1 << 20,
        (1 << 20) + 1,
    ];

    #[test]
    fn root_equals_blake3_for_every_size() {
        for &n in SIZES {
            let d = data(n);
            let (h, ob) = outboard(&d);
            assert_eq!(h, Hash::of(&d), "len {n}");
            assert_eq!(ob.len() as u64, outboard_size(n as u64), "len {n}");
            // feeding in odd pieces gives the same result
            let mut b = Builder::new();
            for piece in d.chunks(7777) {
                b.update(piece);
            }
            assert_eq!(b.finish(), (h, ob), "pieces, len {n}");
        }
    }

    fn node_reader(ob: &[u8]) -> impl FnMut(u64) -> Result<[u8; 64], ()> + '_ {
        move |i| {
            let at = (i * NODE_SIZE) as usize;
            ob.get(at..at + 64)
                .and_then(|s| s.try_into().ok())
                .ok_or(())
        }
    }

    #[test]
    fn every_group_verifies_and_flips_fail() {
        for &n in SIZES {
            let d = data(n);
            let (h, ob) = outboard(&d);
            let groups = group_count(n as u64);
            let cvs = expected_cvs(n as u64, &h, 0..groups, node_reader(&ob))
                .unwrap()
                .unwrap();
            for g in 0..groups {
                let r = group_bytes(n as u64, g);
                let slice = &d[r.start as usize..r.end as usize];
                assert!(
                    check_group(n as u64, &h, g, cvs.get(g as usize), slice),
                    "len {n} g {g}"
                );
                if !slice.is_empty() {
                    let mut bad = slice.to_vec();
                    bad[slice.len() / 2] ^= 1;
                    assert!(!check_group(n as u64, &h, g, cvs.get(g as usize), &bad));
                }
            }
        }
    }

    #[test]
    fn partial_walk_reads_few_nodes_and_matches_full_walk() {
        let n = 64 << 20;
        let d = data(n);
        let (h, ob) = outboard(&d);
        let all = expected_cvs(n as u64, &h, 0..4096, node_reader(&ob))
            .unwrap()
            .unwrap();
        let mut reads = 0;
        let mut rd = node_reader(&ob);
        let some = expected_cvs(n as u64, &h, 2000..2002, |i| {
            reads += 1;
            rd(i)
        })
        .unwrap()
        .unwrap();
        assert_eq!(some, all[2000..2002]);
        assert!(reads <= 2 * 12, "read {reads} nodes");
    }

    #[test]
    fn path_nodes_are_the_nodes_the_walk_reads() {
        for &n in SIZES.iter().chain(&[64 << 20, (64 << 20) - 1, 5 << 20]) {
            let (h, ob) = outboard(&data(n));
            let groups = group_count(n as u64);
            let wants = [
                0..1,
                0..groups,
                groups - 1..groups,
                groups / 2..groups / 2 + 3,
            ];
            for want in wants {
                let mut read = Vec::new();
                let mut rd = node_reader(&ob);
                expected_cvs(n as u64, &h, want.clone(), |i| {
                    read.push(i);
                    rd(i)
                })
                .unwrap()
                .unwrap();
                assert_eq!(path_nodes(n as u64, want.clone()), read, "len {n} {want:?}");
            }
        }
    }

    #[test]
    fn corrupt_outboard_is_caught() {
        let d = data(200_000);
        let (h, mut ob) = outboard(&d);
        let last = ob.len() - 1;
        ob[last] ^= 1;
        let r = expected_cvs(
            d.len() as u64,
            &h,
            0..group_count(d.len() as u64),
            node_reader(&ob),
        )
        .unwrap();
        assert!(r.is_err());
    }
}
