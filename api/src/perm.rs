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
use crate::core::Core;
use crate::db::Any;
use crate::error::Error;
use crate::records::{Group, GroupClass, Link, Record};

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
                for link in core.db.links_by_tail(&x)? {
                    if !link.is_permission() {
                        continue;
                    }
                    let Some(l) = level_of_name(link.name_str()) else {
                        continue;
                    };
                    let head = &link.head_uuid;
                    let Some(g) = core.db.get::<Group>(head)? else {
                        continue;
                    };
                    if g.group_class != GroupClass::Role || g.trash.is_trashed {
                        continue;
                    }
                    let l = l.min(lvl);
                    if principals.get(head).copied().unwrap_or(NONE) < l {
                        principals.insert(head.clone(), l);
                        queue.push(head.clone());
                    }
                }
            }
        }
        p.principals = principals;
        Ok(p)
    }

    /// The object's parent in the ownership tree (its owner; for a past collection
    /// version, its collection) and whether it is trashed itself.
    fn node(&self, uuid: &str) -> Result<Option<(String, bool)>, Error> {
        if let Some(n) = self.nodes.borrow().get(uuid) {
            return Ok(n.clone());
        }
        let n = self.core.db.get_any(uuid)?.map(|r| match r {
            // a past version is governed by its collection
            Any::Collection(c) if !c.is_current() => (c.current_version_uuid, c.trash.now()),
            Any::Collection(c) => (c.common.owner_uuid, c.trash.now()),
            Any::Group(g) => (g.common.owner_uuid, g.trash.now()),
            other => (other.owner().to_string(), false),
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
            for link in self.core.db.links_by_head(uuid)? {
                if !link.is_permission() {
                    continue;
                }
                if let (Some(pl), Some(l)) = (
                    self.principals.get(link.tail_str()),
                    level_of_name(link.name_str()),
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

    /// The caller's level on a link: managers of its head manage it; its tail (a
    /// principal of the caller's) and its owner read it; so does a reader of the head
    /// for links other than permissions.
    pub fn level_link(&self, l: &Link) -> Result<u8, Error> {
        if self.admin {
            return Ok(MANAGE);
        }
        let head = self.level(&l.head_uuid)?;
        if head >= MANAGE {
            return Ok(MANAGE);
        }
        let tail = l.tail_str();
        if (self.principals.contains_key(tail) && tail != self.core.public_group)
            || l.owner() == self.user
        {
            return Ok(READ);
        }
        if !l.is_permission() && head >= READ {
            return Ok(READ);
        }
        Ok(NONE)
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
