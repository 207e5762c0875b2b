//! `PUT /pull`: copies of blocks fetched from other keepstores (`keep balance` asks for
//! them). Each PUT replaces the queue (as Arvados's keepstore does); one worker task
//! takes the entries in order: a block already here is only touched; otherwise it is
//! fetched from the listed servers in turn with the system root token (and a locator
//! signed for it), checked against its hash and stored like a PUT.

use std::collections::VecDeque;

use keep_format::{Hash, BLOCK_SIZE_MAX};
use serde::Deserialize;

use crate::Error;

/// Most servers one pull entry may name.
pub(crate) const SERVERS_MAX: usize = 16;
/// Longest server URL in a pull entry.
pub(crate) const URL_MAX: usize = 1024;

#[derive(Deserialize, Clone, Debug)]
pub(crate) struct PullItem {
    pub locator: String,
    pub servers: Vec<String>,
}

/// A checked entry.
#[derive(Clone, Debug)]
pub(crate) struct Pull {
    pub hash: Hash,
    pub size: u64,
    pub servers: Vec<String>,
}

impl Pull {
    pub fn check(it: PullItem) -> Result<Pull, Error> {
        let loc = crate::locator::parse_locator(&it.locator)?;
        if it.servers.len() > SERVERS_MAX {
            return Err(Error::BadRequest(format!(
                "a pull entry names {} servers, more than {SERVERS_MAX} (keepstore's limit per entry)",
                it.servers.len()
            )));
        }
        for s in &it.servers {
            if s.len() > URL_MAX || !(s.starts_with("http://") || s.starts_with("https://")) {
                return Err(Error::BadRequest(format!(
                    "a pull entry's server must be an http(s):// URL of at most {URL_MAX} bytes (keepstore's limit)"
                )));
            }
        }
        if loc.size > BLOCK_SIZE_MAX {
            return Err(Error::BadRequest(format!(
                "pull of {}: blocks are at most {BLOCK_SIZE_MAX} bytes",
                loc.hash
            )));
        }
        Ok(Pull {
            hash: loc.hash,
            size: loc.size,
            servers: it.servers,
        })
    }
}

#[derive(Default)]
pub(crate) struct Queue {
    pub items: parking_lot::Mutex<VecDeque<Pull>>,
    pub wake: tokio::sync::Notify,
    pub started: std::sync::atomic::AtomicBool,
}
