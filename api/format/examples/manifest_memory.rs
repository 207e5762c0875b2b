//! How much memory a manifest of N files costs once parsed and indexed (what keep-web
//! holds per collection version it serves). The figure in doc/formats.md comes from:
//!
//!     cargo run --release -p keep-format --example manifest_memory -- 1000000
//!
//! The collection: N files of 10,000 bytes in N/1,000 directories of 1,000 files
//! (`project/sample_0001/reads_000001.fastq.gz`), packed into 64 MiB blocks as the
//! uploader packs small files. Memory is counted by a wrapping allocator (live bytes
//! after each step, and the peak), not estimated.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use keep_format::{FileIndex, Hash, Locator, Manifest, BLOCK_SIZE_MAX};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Relaxed) + l.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Relaxed);
    }
}

#[global_allocator]
static A: Counting = Counting;

fn mib(n: usize) -> String {
    format!("{:.1} MiB", n as f64 / (1 << 20) as f64)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    const SIZE: u64 = 10_000;
    let per_block = BLOCK_SIZE_MAX / SIZE;
    let block = |i: u64| Locator::new(Hash::of(&i.to_le_bytes()), BLOCK_SIZE_MAX);
    // the text, one stream per directory, as Keep writes it
    let mut text = String::new();
    let dirs = n.div_ceil(1_000);
    for d in 0..dirs {
        let first = (d * 1_000) as u64;
        let last = ((d + 1) * 1_000).min(n) as u64;
        let (b0, b1) = (first / per_block, (last - 1) / per_block);
        text.push_str(&format!("./project/sample_{d:04}"));
        for b in b0..=b1 {
            text.push_str(&format!(" {}", block(b)));
        }
        for f in first..last {
            let pos = (f / per_block - b0) * BLOCK_SIZE_MAX + (f % per_block) * SIZE;
            text.push_str(&format!(" {pos}:{SIZE}:reads_{f:07}.fastq.gz"));
        }
        text.push('\n');
    }
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let t0 = Instant::now();
    let m = Manifest::parse(&text).expect("parses");
    let t_parse = t0.elapsed();
    let after_parse = LIVE.load(Relaxed);
    let peak_parse = PEAK.load(Relaxed);
    let t0 = Instant::now();
    let idx = FileIndex::new(&m);
    let t_index = t0.elapsed();
    let after_index = LIVE.load(Relaxed);
    let peak = PEAK.load(Relaxed);
    assert_eq!(idx.file_count(), n);
    println!(
        "files: {n}, directories: {dirs}, blocks: {}",
        m.blocks().len()
    );
    println!("manifest text: {} ({} bytes)", mib(text.len()), text.len());
    println!(
        "parsed Manifest: {} ({} bytes/file), peak while parsing {} above the text; {:.2?}",
        mib(after_parse - base),
        (after_parse - base) / n,
        mib(peak_parse - base),
        t_parse
    );
    println!(
        "FileIndex: {} ({} bytes/file); {:.2?}",
        mib(after_index - after_parse),
        (after_index - after_parse) / n,
        t_index
    );
    println!(
        "Manifest + FileIndex: {} ({} bytes/file); peak {} above the text",
        mib(after_index - base),
        (after_index - base) / n,
        mib(peak - base)
    );
    drop(idx);
    let t0 = Instant::now();
    let norm = m.to_checked_text().expect("round trip");
    println!(
        "normalize + re-parse check: {:.2?} ({} of text)",
        t0.elapsed(),
        mib(norm.len())
    );
}
