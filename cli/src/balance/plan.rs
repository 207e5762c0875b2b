//! What to do, decided from the referenced set and the keepstores' indexes. Pure: no I/O,
//! so every rule is unit-tested here.
//!
//! Rules (doc/admin.md, "Garbage collection"):
//! - a copy of an unreferenced block is garbage when its mtime (the keepstore's clock)
//!   is older than the cutoff: `blob_signature_ttl` before the run started reading
//!   collections, by that keepstore's clock;
//! - a referenced block's desired copies are on the first `min(replication, keepstores)`
//!   keepstores in rendezvous order (the order every client writes and reads in); each of
//!   those slots without a copy gets a pull from the keepstores that have one;
//! - a copy outside those slots is surplus, and is trashed only when every desired slot
//!   was seen holding the block in this run's indexes (a pull sent now is confirmed by a
//!   later run), and only if it too is older than the cutoff;
//! - at most [`LIST_MAX`] pulls and trashes per keepstore per run; the rest wait.

use keep_format::{rendezvous_order, Hash};
use serde::Serialize;

use super::refs::RefSet;

/// keepstore's limit for one trash or pull list.
pub const LIST_MAX: usize = 100_000;
/// Most keepstores balance handles (a presence bit each).
pub const KEEPSTORES_MAX: usize = 64;
/// Lost blocks named in the report (all are counted).
pub const LOST_NAMED_MAX: usize = 1000;
/// Most servers keepstore accepts in one pull entry.
const PULL_SERVERS_MAX: usize = 16;

#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct TrashEntry {
    pub locator: String,
    pub block_mtime: u64,
}

#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct PullEntry {
    pub locator: String,
    pub servers: Vec<String>,
}

/// Counters of one run (the report and the metrics).
#[derive(Default, Debug, Clone, Serialize)]
pub struct Counts {
    pub collections: u64,
    pub references: u64,
    pub referenced_blocks: u64,
    pub referenced_bytes: u64,
    pub copies: u64,
    pub garbage_copies: u64,
    pub garbage_bytes: u64,
    /// Unreferenced but younger than the cutoff (a client may still commit them).
    pub unreferenced_new_copies: u64,
    pub balanced_blocks: u64,
    pub underreplicated_blocks: u64,
    pub overreplicated_blocks: u64,
    /// Referenced blocks wanting more copies than there are keepstores.
    pub unplaceable_blocks: u64,
    pub lost_blocks: u64,
    pub lost_bytes: u64,
    pub pulls: u64,
    pub pulls_deferred: u64,
    pub trash_garbage: u64,
    pub trash_surplus: u64,
    pub trash_deferred: u64,
}

pub struct Planner<'a> {
    refs: &'a RefSet,
    ids: Vec<String>,
    /// Per referenced block: which keepstores hold it.
    mask: Vec<u64>,
    cutoff_ns: Vec<u64>,
    trash: Vec<Vec<TrashEntry>>,
    /// Per keepstore: referenced copies outside the desired slots (block index, mtime).
    surplus: Vec<Vec<(u32, u64)>>,
    surplus_trash: bool,
    pub counts: Counts,
}

pub struct Plan {
    pub pulls: Vec<Vec<PullEntry>>,
    pub trash: Vec<Vec<TrashEntry>>,
    pub lost: Vec<Hash>,
    pub counts: Counts,
}

fn desired_slots(hash: &Hash, ids: &[String], replication: u8) -> (Vec<usize>, usize) {
    let order = rendezvous_order(hash, ids);
    let want = usize::from(replication).min(ids.len());
    (order, want)
}

impl<'a> Planner<'a> {
    /// `ids`: the keepstores (their URLs, as clients order them); `cutoff_ns`: per
    /// keepstore, copies with an older mtime may be trashed; `surplus_trash`: false when
    /// two keepstores share a volume (a surplus copy there is also a desired one).
    pub fn new(
        refs: &'a RefSet,
        ids: Vec<String>,
        cutoff_ns: Vec<u64>,
        surplus_trash: bool,
    ) -> Planner<'a> {
        assert!(ids.len() <= KEEPSTORES_MAX && cutoff_ns.len() == ids.len());
        let n = ids.len();
        Planner {
            mask: vec![0; refs.len()],
            refs,
            ids,
            cutoff_ns,
            trash: vec![Vec::new(); n],
            surplus: vec![Vec::new(); n],
            surplus_trash,
            counts: Counts::default(),
        }
    }

    /// One index line of keepstore `k`.
    pub fn observe(&mut self, k: usize, hash: &Hash, size: u64, mtime_ns: u64) {
        self.counts.copies += 1;
        match self.refs.find(hash.as_bytes()) {
            None => {
                if mtime_ns < self.cutoff_ns[k] {
                    self.counts.garbage_copies += 1;
                    self.counts.garbage_bytes += size;
                    if self.trash[k].len() < LIST_MAX {
                        self.trash[k].push(TrashEntry {
                            locator: format!("{hash}+{size}"),
                            block_mtime: mtime_ns,
                        });
                        self.counts.trash_garbage += 1;
                    } else {
                        self.counts.trash_deferred += 1;
                    }
                } else {
                    self.counts.unreferenced_new_copies += 1;
                }
            }
            Some(i) => {
                self.mask[i] |= 1 << k;
                let (order, want) = desired_slots(hash, &self.ids, self.refs.get(i).replication());
                if !order[..want].contains(&k) && self.surplus[k].len() < LIST_MAX {
                    self.surplus[k].push((i as u32, mtime_ns));
                }
            }
        }
    }

    /// Decides the pulls and the surplus trash once every index was read.
    pub fn finish(mut self) -> Plan {
        let n = self.ids.len();
        let mut pulls: Vec<Vec<PullEntry>> = vec![Vec::new(); n];
        let mut lost = Vec::new();
        let c = &mut self.counts;
        c.referenced_blocks = self.refs.len() as u64;
        for (i, r) in self.refs.iter().enumerate() {
            let hash = r.hash();
            c.referenced_bytes += r.size();
            let have = self.mask[i];
            let copies = have.count_ones() as u64;
            let repl = u64::from(r.replication());
            if repl > n as u64 {
                c.unplaceable_blocks += 1;
            }
            if copies == 0 {
                c.lost_blocks += 1;
                c.lost_bytes += r.size();
                if lost.len() < LOST_NAMED_MAX {
                    lost.push(hash);
                }
                continue;
            }
            match copies.cmp(&repl) {
                std::cmp::Ordering::Less => c.underreplicated_blocks += 1,
                std::cmp::Ordering::Greater => c.overreplicated_blocks += 1,
                std::cmp::Ordering::Equal => c.balanced_blocks += 1,
            }
            let (order, want) = desired_slots(&hash, &self.ids, r.replication());
            let missing: Vec<usize> = order[..want]
                .iter()
                .copied()
                .filter(|&k| have & (1 << k) == 0)
                .collect();
            if missing.is_empty() {
                continue;
            }
            let servers: Vec<String> = order
                .iter()
                .filter(|&&k| have & (1 << k) != 0)
                .take(PULL_SERVERS_MAX)
                .map(|&k| self.ids[k].clone())
                .collect();
            for k in missing {
                if pulls[k].len() < LIST_MAX {
                    pulls[k].push(PullEntry {
                        locator: format!("{hash}+{}", r.size()),
                        servers: servers.clone(),
                    });
                    c.pulls += 1;
                } else {
                    c.pulls_deferred += 1;
                }
            }
        }
        if self.surplus_trash {
            for k in 0..n {
                for &(i, mtime) in &self.surplus[k] {
                    let r = self.refs.get(i as usize);
                    let hash = r.hash();
                    let (order, want) = desired_slots(&hash, &self.ids, r.replication());
                    // every desired copy confirmed by this run's indexes
                    let confirmed = want > 0
                        && order[..want]
                            .iter()
                            .all(|&d| self.mask[i as usize] & (1 << d) != 0);
                    if !confirmed || mtime >= self.cutoff_ns[k] {
                        continue;
                    }
                    if self.trash[k].len() < LIST_MAX {
                        self.trash[k].push(TrashEntry {
                            locator: format!("{hash}+{}", r.size()),
                            block_mtime: mtime,
                        });
                        c.trash_surplus += 1;
                    } else {
                        c.trash_deferred += 1;
                    }
                }
            }
        }
        Plan {
            pulls,
            trash: self.trash,
            lost,
            counts: self.counts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("http://ks{i}:25107")).collect()
    }

    fn h(i: u32) -> Hash {
        Hash::of(&i.to_le_bytes())
    }

    const OLD: u64 = 100;
    const CUT: u64 = 1000;
    const NEW: u64 = 2000;

    #[test]
    fn garbage_only_when_old_and_unreferenced() {
        let mut refs = RefSet::default();
        refs.push(&h(1), 10, 1);
        refs.finish();
        let mut p = Planner::new(&refs, ids(1), vec![CUT], true);
        p.observe(0, &h(1), 10, OLD); // referenced: kept however old
        p.observe(0, &h(2), 20, OLD); // garbage
        p.observe(0, &h(3), 30, NEW); // too new: a client may hold a signature
        let plan = p.finish();
        assert_eq!(plan.trash[0].len(), 1);
        assert_eq!(plan.trash[0][0].locator, format!("{}+20", h(2)));
        assert_eq!(plan.trash[0][0].block_mtime, OLD);
        assert_eq!(plan.counts.garbage_copies, 1);
        assert_eq!(plan.counts.unreferenced_new_copies, 1);
        assert_eq!(plan.counts.balanced_blocks, 1);
        assert!(plan.pulls[0].is_empty());
    }

    #[test]
    fn pulls_to_desired_slots_then_surplus_after_confirmation() {
        let ids = ids(3);
        let b = h(7);
        let order = rendezvous_order(&b, &ids);
        let mut refs = RefSet::default();
        refs.push(&b, 5, 2);
        refs.finish();
        // only on the last keepstore in its order: pull to the first two, trash nothing
        let mut p = Planner::new(&refs, ids.clone(), vec![CUT; 3], true);
        p.observe(order[2], &b, 5, OLD);
        let plan = p.finish();
        assert_eq!(plan.counts.underreplicated_blocks, 1);
        for &k in &order[..2] {
            assert_eq!(plan.pulls[k].len(), 1);
            assert_eq!(plan.pulls[k][0].servers, vec![ids[order[2]].clone()]);
        }
        assert!(plan.trash.iter().all(Vec::is_empty));
        // one desired copy arrived: still no surplus trash
        let mut p = Planner::new(&refs, ids.clone(), vec![CUT; 3], true);
        p.observe(order[2], &b, 5, OLD);
        p.observe(order[0], &b, 5, NEW);
        let plan = p.finish();
        assert_eq!(plan.pulls[order[1]].len(), 1);
        assert_eq!(plan.counts.balanced_blocks, 1);
        assert!(plan.trash.iter().all(Vec::is_empty));
        // both confirmed: the surplus copy goes
        let mut p = Planner::new(&refs, ids.clone(), vec![CUT; 3], true);
        for &k in &order {
            p.observe(k, &b, 5, OLD);
        }
        let plan = p.finish();
        assert_eq!(plan.counts.overreplicated_blocks, 1);
        assert!(plan.pulls.iter().all(Vec::is_empty));
        assert_eq!(plan.trash[order[2]].len(), 1);
        assert_eq!(plan.counts.trash_surplus, 1);
        // ... unless volumes are shared, or the surplus copy is young
        let mut p = Planner::new(&refs, ids.clone(), vec![CUT; 3], false);
        for &k in &order {
            p.observe(k, &b, 5, OLD);
        }
        assert!(p.finish().trash.iter().all(Vec::is_empty));
        let mut p = Planner::new(&refs, ids.clone(), vec![CUT; 3], true);
        p.observe(order[0], &b, 5, OLD);
        p.observe(order[1], &b, 5, OLD);
        p.observe(order[2], &b, 5, NEW);
        assert!(p.finish().trash.iter().all(Vec::is_empty));
    }

    #[test]
    fn lost_and_unplaceable() {
        let mut refs = RefSet::default();
        refs.push(&h(1), 10, 1);
        refs.push(&h(2), 10, 5);
        refs.finish();
        let mut p = Planner::new(&refs, ids(2), vec![CUT; 2], true);
        p.observe(0, &h(2), 10, OLD);
        p.observe(1, &h(2), 10, OLD);
        let plan = p.finish();
        assert_eq!(plan.lost, vec![h(1)]);
        assert_eq!(plan.counts.lost_blocks, 1);
        assert_eq!(plan.counts.unplaceable_blocks, 1);
        assert_eq!(plan.counts.underreplicated_blocks, 1);
        // both keepstores hold it: nothing to pull, nothing surplus
        assert!(plan.pulls.iter().all(Vec::is_empty));
        assert!(plan.trash.iter().all(Vec::is_empty));
    }
}
