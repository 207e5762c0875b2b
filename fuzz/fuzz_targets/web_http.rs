#![no_main]
//! keep-web's router in process, against a real API and keepstore served once per
//! process on loopback sockets (alice's, bob's and a project's collections, a deep one,
//! a permission link), one arbitrary request per input: method, Host, path, query,
//! headers and body, their parts picked from valid tokens, collection ids and vhosts,
//! file names, WebDAV bodies and headers or made of raw bytes (see keep_fuzz::req).
//! Checks: no panic (in keep-web, the API or keepstore), no 5xx but 503/504 (a 502 means
//! a local, healthy upstream answered 5xx or nonsense; COPY/MOVE to another host may
//! answer 502, RFC 4918's status), every body streams to its end,
//! no redirect to another host or with a token in its Location, and `/_health/ping`
//! answers 200 after every input.

use std::cell::RefCell;

use keep_fuzz::harness::web_world::World;
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
