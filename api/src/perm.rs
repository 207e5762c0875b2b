//! Who may do what.
//!
//! Levels: none < `can_read` < `can_write` < `can_manage`. A caller's *principals* are
//! itself (manage), the public role (read, for everyone) and every role it reaches
//! through permission links (`tail` = member, `head` = role; the level through a role
//! is the lower of the membership and the role's own grant). The caller's level on an
//! object is the best of: being (or being a member of) the object; a permission link
//! from a principal to the object; and its level on the object's owner — so an owner
//! manages everything below it, and a grant on a project covers the whole subtree.
//! Tokens are visible only to their user; links to their tail and to whoever manages
//! their head. Admins may do everything.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::auth::Caller;
use crate::db::{b, s, Obj};
use crate::{Core, Error};

pub const NONE: u8 = 0;
pub const READ: u8 = 1;
pub const WRITE: u8 = 2;
pub const MANAGE: u8 = 3;

pub fn level_of_name(name: &str) -> Option<u8> {
    match name {
        "can_read" => Some(READ),
        "can_write" => Some(WRITE),
        "can_manage" => Some(MANAGE),
        _ => None,
    }
}

const MAX_DEPTH: usize = 64;

pub struct Perms<'a> {
    core: &'a Core,
    pub user: String,
    pub admin: bool,
    principals: HashMap<String, u8>,
    memo: RefCell<HashMap<String, u8>>,
    /// uuid → (owner, trashed itself) for owner-chain walks.
    nodes: RefCell<HashMap<String, Option<(String, bool)>>>,
    trash_memo: RefCell<HashMap<String, bool>>,
}

impl<'a> Perms<'a> {
    pub fn new(core: &'a Core, caller: &Caller) -> Result<Perms<'a>, Error> {
        let mut principals = HashMap::new();
        principals.insert(caller.user_uuid.clone(), MANAGE);
        principals.insert(core.public_group.clone(), READ);
        let mut p = Perms {
            core,
            user: caller.user_uuid.clone(),
            admin: caller.is_admin,
            principals: HashMap::new(),
            memo: RefCell::default(),
            nodes: RefCell::default(),
            trash_memo: RefCell::default(),
        };
        if !caller.is_admin {
            let mut queue = vec![caller.user_uuid.clone()];
            while let Some(x) = queue.pop() {
                let lvl = principals.get(&x).copied().unwrap_or(NONE);
                for lu in core.db.links_by_tail(&x)? {
                    let Some(link) = core.db.get(&lu)? else {
                        continue;
                    };
                    if s(&link, "link_class") != "permission" {
                        continue;
                    }
                    let head = s(&link, "head_uuid");
                    let Some(l) = level_of_name(s(&link, "name")) else {
                        continue;
                    };
                    if crate::db::table_of(head) != Some(crate::store::Table::Groups) {
                        continue;
                    }
                    let Some(g) = core.db.get(head)? else {
                        continue;
                    };
                    if s(&g, "group_class") != "role" || b(&g, "is_trashed") {
                        continue;
                    }
                    let l = l.min(lvl);
                    if principals.get(head).copied().unwrap_or(NONE) < l {
                        principals.insert(head.to_string(), l);
                        queue.push(head.to_string());
                    }
                }
            }
        }
        p.principals = principals;
        Ok(p)
    }

    fn node(&self, uuid: &str) -> Result<Option<(String, bool)>, Error> {
        if let Some(n) = self.nodes.borrow().get(uuid) {
            return Ok(n.clone());
        }
        let rec = match self.core.db.get(uuid)? {
            Some(r) => Some(r),
            None if uuid.get(6..11) == Some("4zz18") => {
                self.core.db.get_in(crate::store::Table::Versions, uuid)?
            }
            None => None,
        };
        let n = rec.map(|r| {
            // a past version is governed by its collection
            let up = match r.get("current_version_uuid").and_then(|v| v.as_str()) {
                Some(c) if c != uuid => c.to_string(),
                _ => s(&r, "owner_uuid").to_string(),
            };
            (up, b(&r, "is_trashed") || trash_due(&r))
        });
        self.nodes.borrow_mut().insert(uuid.to_string(), n.clone());
        Ok(n)
    }

    /// The caller's level on the object with this UUID (users, groups, collections and
    /// past versions; see [`Perms::level_obj`] for tokens and links).
    pub fn level(&self, uuid: &str) -> Result<u8, Error> {
        if self.admin {
            return Ok(MANAGE);
        }
        self.level_walk(uuid, 0)
    }

    fn level_walk(&self, uuid: &str, depth: usize) -> Result<u8, Error> {
        if let Some(l) = self.memo.borrow().get(uuid) {
            return Ok(*l);
        }
        let mut best = self.principals.get(uuid).copied().unwrap_or(NONE);
        if best < MANAGE {
            for lu in self.core.db.links_by_head(uuid)? {
                let Some(link) = self.core.db.get(&lu)? else {
                    continue;
                };
                if s(&link, "link_class") != "permission" {
                    continue;
                }
                if let (Some(pl), Some(l)) = (
                    self.principals.get(s(&link, "tail_uuid")),
                    level_of_name(s(&link, "name")),
                ) {
                    best = best.max(l.min(*pl));
                }
            }
        }
        if best < MANAGE && depth < MAX_DEPTH {
            if let Some((owner, _)) = self.node(uuid)? {
                if !owner.is_empty() && owner != uuid {
                    best = best.max(self.level_walk(&owner, depth + 1)?);
                }
            }
        }
        self.memo.borrow_mut().insert(uuid.to_string(), best);
        Ok(best)
    }

    /// The caller's level on a record of any kind.
    pub fn level_obj(&self, o: &Obj) -> Result<u8, Error> {
        if self.admin {
            return Ok(MANAGE);
        }
        let uuid = s(o, "uuid");
        match uuid.get(6..11) {
            Some("gj3su") => Ok(if s(o, "owner_uuid") == self.user {
                MANAGE
            } else {
                NONE
            }),
            Some("o0j2j") => {
                let head = self.level(s(o, "head_uuid"))?;
                if head >= MANAGE {
                    return Ok(MANAGE);
                }
                let tail = s(o, "tail_uuid");
                if (self.principals.contains_key(tail) && tail != self.core.public_group)
                    || s(o, "owner_uuid") == self.user
                {
                    return Ok(READ);
                }
                if s(o, "link_class") != "permission" && head >= READ {
                    return Ok(READ);
                }
                Ok(NONE)
            }
            _ => self.level(uuid),
        }
    }

    /// True when the object or a project above it is in the trash.
    pub fn trashed(&self, uuid: &str) -> Result<bool, Error> {
        self.trashed_walk(uuid, 0)
    }

    fn trashed_walk(&self, uuid: &str, depth: usize) -> Result<bool, Error> {
        if let Some(t) = self.trash_memo.borrow().get(uuid) {
            return Ok(*t);
        }
        let t = match self.node(uuid)? {
            Some((_, true)) => true,
            Some((owner, false)) if depth < MAX_DEPTH && !owner.is_empty() && owner != uuid => {
                self.trashed_walk(&owner, depth + 1)?
            }
            _ => false,
        };
        self.trash_memo.borrow_mut().insert(uuid.to_string(), t);
        Ok(t)
    }

    /// Does walking up from `start` reach `target`? (Ownership cycle check.)
    pub fn is_ancestor_or_self(&self, target: &str, start: &str) -> Result<bool, Error> {
        let mut cur = start.to_string();
        for _ in 0..MAX_DEPTH {
            if cur == target {
                return Ok(true);
            }
            match self.node(&cur)? {
                Some((owner, _)) if !owner.is_empty() && owner != cur => cur = owner,
                _ => return Ok(false),
            }
        }
        Ok(true)
    }
}

/// A record whose `trash_at` has passed counts as trashed.
pub fn trash_due(o: &Obj) -> bool {
    match o.get("trash_at").and_then(|v| v.as_str()) {
        Some(t) => t <= crate::time::now().as_str(),
        None => false,
    }
}
