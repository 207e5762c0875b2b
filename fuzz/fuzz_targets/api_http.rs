#![no_main]
//! The API's router in process on a temp RocksDB (users, tokens, a project, collections,
//! a link and a filter group made first), one arbitrary request per input: method,
//! path, query, headers and a JSON, form or raw body, their parts picked from valid
//! tokens, UUIDs, manifests, attribute names and filters or made of raw bytes (see
//! keep_fuzz::req). Checks: no panic, no 5xx but 502/503/504, `/_health/ping` answers
//! 200 after every input, and every 128 inputs a write still succeeds.

use std::cell::RefCell;

use keep_fuzz::harness::api_world::World;
use keep_fuzz::req::Request;
use libfuzzer_sys::fuzz_target;

thread_local! {
    static WORLD: RefCell<Option<World>> = const { RefCell::new(None) };
}

fuzz_target!(|input: Request| {
    WORLD.with(|w| {
        w.borrow_mut().get_or_insert_with(World::new).run(&input);
    });
});
