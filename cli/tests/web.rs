//! keep-web inside `keep serve`: real clients, writes, and the rules that need the
//! whole server (its config, its log, `keep put` and `keep share`).

mod clients;
mod rules;
mod write;
