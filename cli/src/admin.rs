//! Admin and owner commands (DESIGN §6): `keep user create`, `keep token create`,
//! `keep project create`, `keep filter-group create`, `keep grant`. Each prints the new
//! object's UUID (or the token) alone on stdout.

use std::time::Duration;

use clap::{Subcommand, ValueEnum};
use keep_client::{NewGroup, NewToken, NewUser};
use serde_json::{json, Value};

use crate::client::fail;
use crate::error::CliError;

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Manage users (admin only).
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage projects.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Manage filter groups (saved searches shown as folders).
    #[command(subcommand, name = "filter-group")]
    FilterGroup(FilterGroupCommand),
    /// Give a user (or role) a permission on a project, collection or user.
    #[command(
        after_help = "Example:\n  keep grant zzzzz-tpzed-0123456789abcde can_read zzzzz-j7d0g-0123456789abcde"
    )]
    Grant {
        /// Who gets the permission: a user UUID (or a role group UUID).
        user_uuid: String,
        /// can_read, can_write or can_manage.
        level: Level,
        /// What it is on: a project, collection or user UUID.
        object_uuid: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; prints its UUID.
    #[command(
        after_help = "Example:\n  keep user create alice\n  keep token create --user $(keep user create bob)"
    )]
    Create {
        username: String,
        #[arg(long)]
        email: Option<String>,
        /// Make the new user an admin.
        #[arg(long)]
        admin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token; prints it (v2/<uuid>/<secret>).
    #[command(
        after_help = "Examples:\n  keep token create\n  keep token create --user zzzzz-tpzed-0123456789abcde --expires 7d\n  keep token create --scope 'GET /arvados/v1/collections/' --expires 12h"
    )]
    Create {
        /// The token's user (default: yourself; another user needs an admin).
        #[arg(long)]
        user: Option<String>,
        /// Restrict the token: "METHOD /path", a trailing / making a prefix. Repeatable.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Lifetime, like 90m, 12h, 7d.
        #[arg(long, value_parser = parse_duration)]
        expires: Option<Duration>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Create a project; prints its UUID.
    #[command(
        after_help = "Example:\n  keep project create Sequencing --parent zzzzz-j7d0g-0123456789abcde"
    )]
    Create {
        name: String,
        /// The parent project (default: your home project).
        #[arg(long)]
        parent: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum FilterGroupCommand {
    /// Create a filter group; prints its UUID.
    #[command(
        after_help = "Example:\n  keep filter-group create BAMs --filter '[[\"collections.name\",\"like\",\"%.bam\"]]'"
    )]
    Create {
        name: String,
        /// The parent project (default: your home project).
        #[arg(long)]
        parent: Option<String>,
        /// Arvados filters as JSON: [[attr, op, value], …].
        #[arg(long)]
        filter: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Level {
    #[value(name = "can_read")]
    CanRead,
    #[value(name = "can_write")]
    CanWrite,
    #[value(name = "can_manage")]
    CanManage,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::CanRead => "can_read",
            Level::CanWrite => "can_write",
            Level::CanManage => "can_manage",
        }
    }
}

/// A duration flag's value: keep-format's one grammar (`90m`, `12h`, `7d`, `1h30m`; a
/// bare number is refused), as every flag and config key reads it.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    keep_format::parse_duration(s).map_err(|e| e.to_string())
}

fn missing(k: &str, what: &str) -> CliError {
    CliError::new(
        what,
        format!("the server's answer has no {k}"),
        "is KEEP_API_HOST a Keep API server?",
    )
}

fn field(v: String, k: &str, what: &str) -> Result<String, CliError> {
    match v.is_empty() {
        true => Err(missing(k, what)),
        false => Ok(v),
    }
}

/// `now + d` as RFC 3339 UTC (`2026-11-22T10:00:00Z`).
fn now_plus(d: Duration) -> String {
    let secs = std::time::SystemTime::now()
        .checked_add(d)
        .unwrap_or(std::time::SystemTime::UNIX_EPOCH)
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // civil-from-days (H. Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Runs one admin command with the client the settings make.
pub async fn run(cmd: AdminCommand, client: &keep_client::Client) -> Result<(), CliError> {
    let out = match cmd {
        AdminCommand::User(UserCommand::Create {
            username,
            email,
            admin,
        }) => {
            let what = format!("creating user {username}");
            let u = NewUser {
                username,
                email,
                is_admin: admin,
            };
            let v = client.create_user(&u).await.map_err(|e| fail(&what, e))?;
            field(v.uuid, "uuid", &what)?
        }
        AdminCommand::Token(TokenCommand::Create {
            user,
            scopes,
            expires,
        }) => {
            let what = "creating a token";
            let t = NewToken {
                owner_uuid: user,
                scopes,
                expires_at: expires.map(now_plus),
            };
            let v = client.create_token(&t).await.map_err(|e| fail(what, e))?;
            v.v2()
                .filter(|_| !v.uuid.is_empty())
                .ok_or_else(|| missing("api_token", what))?
        }
        AdminCommand::Project(ProjectCommand::Create { name, parent }) => {
            let what = format!("creating project {name:?}");
            let g = NewGroup {
                name,
                group_class: "project".into(),
                owner_uuid: parent,
                properties: None,
            };
            let v = client.create_group(&g).await.map_err(|e| fail(&what, e))?;
            field(v.uuid, "uuid", &what)?
        }
        AdminCommand::FilterGroup(FilterGroupCommand::Create {
            name,
            parent,
            filter,
        }) => {
            let what = format!("creating filter group {name:?}");
            let mut f: Value = serde_json::from_str(&filter).map_err(|e| {
                CliError::new(
                    &what,
                    format!("--filter is not JSON: {e}"),
                    "write it like '[[\"collections.name\",\"like\",\"%.bam\"]]'",
                )
            })?;
            // a single [attr, op, value] is a list of one
            if f.as_array()
                .is_some_and(|a| a.first().is_some_and(Value::is_string))
            {
                f = json!([f]);
            }
            let g = NewGroup {
                name,
                group_class: "filter".into(),
                owner_uuid: parent,
                properties: Some(json!({ "filters": f })),
            };
            let v = client.create_group(&g).await.map_err(|e| fail(&what, e))?;
            field(v.uuid, "uuid", &what)?
        }
        AdminCommand::Grant {
            user_uuid,
            level,
            object_uuid,
        } => {
            let what = format!("granting {} on {object_uuid} to {user_uuid}", level.name());
            let v = client
                .grant(&user_uuid, level.name(), &object_uuid)
                .await
                .map_err(|e| fail(&what, e))?;
            field(v.uuid, "uuid", &what)?
        }
    };
    println!("{out}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("30").is_err(), "a bare number is refused");
        assert!(parse_duration("7x").is_err());
        assert!(parse_duration("d").is_err());
        let t = now_plus(Duration::from_secs(0));
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'));
    }
}
