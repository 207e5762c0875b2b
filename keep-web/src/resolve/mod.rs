//! Path resolution: the request's host (collection vhosts, the download host), its path
//! form (`/c=`, `t=`, `/by_id/`, `/users/`), and what that names for a token.

pub mod host;
pub mod node;
pub mod url;
