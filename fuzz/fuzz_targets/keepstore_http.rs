#![no_main]
//! keepstore's router in process (two directory volumes in a temp directory), one
//! arbitrary request per input: method, path, query, headers and body, their parts
//! picked from valid tokens, signed locators and admin bodies or made of raw bytes
//! (see keep_fuzz::req). Checks: no panic, no 5xx but 502/503/504, every body streams
//! to its end, and `/_health/ping` still answers 200 after every input.

use std::cell::RefCell;

use keep_fuzz::harness::keepstore_world::World;
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
