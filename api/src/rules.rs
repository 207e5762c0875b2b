//! Rules shared by the resources that own things or are owned: who may put an object
//! where, who may move it, and names unique under an owner.

use crate::core::Core;
use crate::db::Any;
use crate::error::Error;
use crate::perm::{Perms, READ, WRITE};
use crate::records::GroupClass;

/// Checks that the caller may put something in `owner` (a user, or a project).
pub fn check_new_owner(core: &Core, p: &Perms, owner: &str) -> Result<(), Error> {
    let class = match core.db.get_any(owner)? {
        Some(Any::User(_)) => None,
        Some(Any::Group(g)) => Some(g.group_class),
        _ => return Err(Error::not_found("owner_uuid", owner)),
    };
    if p.level(owner)? < READ {
        return Err(Error::not_found("owner_uuid", owner));
    }
    if let Some(c) = class.filter(|c| *c != GroupClass::Project) {
        return Err(Error::Unprocessable(format!(
            "owner_uuid {owner} is a {} group; only users and projects can own things",
            c.as_str()
        )));
    }
    if p.level(owner)? < WRITE {
        return Err(Error::Forbidden(format!(
            "you may not add things to {owner} (you need can_write on it)"
        )));
    }
    Ok(())
}

/// Checks that the caller may move `uuid` from `old` to `new`: an owner change needs
/// can_write on the old owner as well as on the new one, for every kind of object
/// (Arvados's rule; DESIGN §7: a writer cannot take an object from its owner).
pub fn check_owner_change(
    core: &Core,
    p: &Perms,
    uuid: &str,
    old: &str,
    new: &str,
) -> Result<(), Error> {
    check_new_owner(core, p, new)?;
    if p.level(old)? < WRITE {
        return Err(Error::Forbidden(format!(
            "you may not move {uuid} out of {old}: changing an owner needs can_write on the current owner as well as on the new one"
        )));
    }
    Ok(())
}

/// Returns `name`, or with `ensure` a free variant `name (2)`, `name (3)`…; refuses a
/// name another project or collection holds under `owner`.
pub fn unique_name(
    core: &Core,
    owner: &str,
    name: &str,
    me: &str,
    ensure: bool,
) -> Result<String, Error> {
    if name.is_empty() {
        return Ok(String::new());
    }
    let free = |n: &str| -> Result<bool, Error> {
        Ok(core.db.name_taken(owner, n)?.is_none_or(|u| u == me))
    };
    if free(name)? {
        return Ok(name.to_string());
    }
    if ensure {
        for i in 2..10_000 {
            let cand = format!("{name} ({i})");
            if free(&cand)? {
                return Ok(cand);
            }
        }
    }
    Err(Error::Unprocessable(format!(
        "the name {name:?} is already used by a project or collection in {owner} (choose another name, or pass ensure_unique_name=true)"
    )))
}

/// Refuses a change by the anonymous user, or by a caller below `need` on `uuid`.
pub fn check_level(
    p: &Perms,
    anonymous: bool,
    uuid: &str,
    need: u8,
    why: impl FnOnce() -> String,
) -> Result<(), Error> {
    if anonymous || p.level(uuid)? < need {
        return Err(Error::Forbidden(why()));
    }
    Ok(())
}
