//! `keep share ID [--expires D]`: a read-only sharing URL for one collection
//! (`<web>/c=<uuid>/t=<secret>/_/`), made from a token scoped to that collection;
//! `keep share --list ID` lists those tokens; `keep share --revoke TOKEN_UUID` revokes one.

use std::io::Write;
use std::time::Duration;

use clap::Args;
use keep_client::{ApiToken, Client, ListParams, NewToken};

use crate::client::{broken_pipe_ok, connect, fail, parse_target, rfc3339, unix_now};
use crate::error::CliError;

#[derive(Debug, Args)]
pub struct ShareArgs {
    /// The collection to share (UUID; a PDH is resolved to its collection).
    #[arg(value_name = "ID", required_unless_present = "revoke")]
    pub id: Option<String>,
    /// How long the link works, like 90m, 12h, 7d (default: until revoked).
    #[arg(long, value_name = "DURATION", value_parser = crate::admin::parse_duration)]
    pub expires: Option<Duration>,
    /// List the sharing tokens of ID: `<token uuid> <expires_at|never>`.
    #[arg(long, conflicts_with_all = ["revoke", "expires"])]
    pub list: bool,
    /// Revoke a sharing token (its UUID, from --list).
    #[arg(long, value_name = "TOKEN_UUID", conflicts_with = "expires")]
    pub revoke: Option<String>,
}

pub const EXAMPLES: &str = "Examples:
  keep share zzzzz-4zz18-0123456789abcde --expires 7d
  curl -O \"$(keep share zzzzz-4zz18-0123456789abcde)reads.fq\"
  keep share --list zzzzz-4zz18-0123456789abcde
  keep share --revoke zzzzz-gj3su-0123456789abcde";

fn scopes(uuid: &str) -> [String; 2] {
    [
        format!("GET /arvados/v1/collections/{uuid}"),
        format!("GET /arvados/v1/collections/{uuid}/"),
    ]
}

async fn resolve_uuid(client: &Client, id: &str) -> Result<String, CliError> {
    let t = parse_target(id)?;
    let rec = client
        .collection(&t.id)
        .await
        .map_err(|e| fail(format!("reading collection {}", t.id), e))?;
    rec.uuid().map(str::to_string).ok_or_else(|| {
        CliError::usage(
            format!("sharing {id}"),
            "a portable data hash names content, not a collection that can be shared",
            "share the collection's UUID",
        )
    })
}

fn print(line: &str) -> Result<(), CliError> {
    let mut o = std::io::stdout().lock();
    writeln!(o, "{line}").map_err(|e| broken_pipe_ok(e, "writing to stdout"))
}

pub async fn run(args: ShareArgs) -> Result<(), CliError> {
    let client = connect()?;
    if let Some(tok) = &args.revoke {
        client
            .revoke_token(tok)
            .await
            .map_err(|e| fail(format!("revoking token {tok}"), e))?;
        return print(tok);
    }
    let Some(id) = args.id.as_deref() else {
        return Err(CliError::usage(
            "keep share",
            "no collection given",
            "give a collection UUID",
        ));
    };
    let uuid = resolve_uuid(&client, id).await?;
    let want = scopes(&uuid);
    if args.list {
        let tokens = client
            .list::<ApiToken>(&ListParams::default().limit(1000))
            .await
            .map_err(|e| fail("listing tokens", e))?;
        for t in tokens.items {
            if t.scopes.len() == 2 && want.iter().all(|w| t.scopes.contains(w)) {
                let exp = t.expires_at.as_deref().unwrap_or("never");
                print(&format!("{} {exp}", t.uuid))?;
            }
        }
        return Ok(());
    }
    let what = format!("sharing {uuid}");
    let web = client
        .cluster()
        .await
        .map_err(|e| fail(&what, e))?
        .web_url
        .clone()
        .ok_or_else(|| {
            CliError::new(
                &what,
                "the API server does not know keep-web's URL",
                "set [web] external_url in the cluster's configuration",
            )
        })?;
    let new = NewToken {
        scopes: want.to_vec(),
        expires_at: args
            .expires
            .map(|d| rfc3339(unix_now().saturating_add(d.as_secs()))),
        ..NewToken::default()
    };
    let what = format!("creating a sharing token for {uuid}");
    let t = client
        .create_token(&new)
        .await
        .map_err(|e| fail(&what, e))?;
    let secret = t.api_token.ok_or_else(|| {
        CliError::new(
            &what,
            "the API's answer has no api_token",
            "check that KEEP_API_HOST is a Keep API server",
        )
    })?;
    print(&format!("{web}/c={uuid}/t={secret}/_/"))
}
