//! What the user commands share: a [`keep_client::Client`] made from the settings, its
//! errors as `keep: …` messages with a hint, and `ID[/path]` arguments.

use keep_client::{Client, Collection, Error};
use keep_format::{Manifest, Pdh, Token, Uuid, UuidKind};

use crate::error::CliError;
use crate::settings::{self, Settings};

/// A collection as the user names it on the command line: `ID[/path]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// A collection UUID or PDH.
    pub id: String,
    /// The path inside it, without leading `/` (empty for the root).
    pub path: String,
    /// Whether the user wrote a trailing `/` (copy the directory's contents, not the directory).
    pub trailing_slash: bool,
}

/// Parses `ID[/path]`, ID being a collection UUID or a PDH. Usage error (exit 2) otherwise.
pub fn parse_target(s: &str) -> Result<Target, CliError> {
    let s = s.strip_prefix("keep:").unwrap_or(s);
    let (id, rest) = match s.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let ok_uuid = id
        .parse::<Uuid>()
        .is_ok_and(|u| u.kind() == UuidKind::Collection);
    let ok_pdh = id.parse::<Pdh>().is_ok();
    if !ok_uuid && !ok_pdh {
        return Err(CliError::usage(
            format!("reading {s:?}"),
            format!("{id:?} is neither a collection UUID nor a portable data hash"),
            "write it like zzzzz-4zz18-0123456789abcde/dir/file or <hash>+<size>/file",
        ));
    }
    let rest = rest.unwrap_or("");
    let trailing_slash = rest.ends_with('/') || rest.is_empty();
    let path: Vec<&str> = rest
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if path.contains(&"..") {
        return Err(CliError::usage(
            format!("reading {s:?}"),
            "'..' is not allowed in a collection path",
            "name the file from the collection's root",
        ));
    }
    Ok(Target {
        id: id.to_string(),
        path: path.join("/"),
        trailing_slash,
    })
}

/// A client for the cluster the settings name (`KEEP_API_HOST`, `KEEP_API_TOKEN`, and the
/// optional timeouts and retries, see [`settings`]).
pub fn connect() -> Result<Client, CliError> {
    let s = settings::load()?;
    connect_with(&s)
}

pub fn connect_with(s: &Settings) -> Result<Client, CliError> {
    Client::new(&s.api_host, s.token.clone(), s.options.clone())
        .map_err(|e| fail("starting the HTTP client", e))
}

/// A keep-client error as `keep: <what>: <why, with its causes> (<what to do>)`.
pub fn fail(what: impl Into<String>, e: Error) -> CliError {
    let hint = match &e {
        Error::Build(_) | Error::Task { .. } | Error::Range { .. } => "",
        Error::BadUrl { .. } => "set KEEP_API_HOST to a URL like http://127.0.0.1:8003",
        Error::ApiUnreachable { .. } => "is keep serve running? check KEEP_API_HOST",
        Error::Api { status, .. } => match status {
            401 => "check KEEP_API_TOKEN, or get a new token with keep token create",
            403 => "ask the object's owner or an admin for the permission",
            404 => "check the ID; you may also lack permission to see it",
            422 => "fix the value and try again",
            _ => "see the API server's log",
        },
        Error::ApiBody { .. } => "check that KEEP_API_HOST is a Keep API server",
        Error::NoKeepstores { .. } => {
            "list the keepstores in [cluster] keepstores of the API server's configuration"
        }
        Error::Read(r) if r.not_found() => {
            "no keepstore has this block: ask the cluster's admin (keep balance lists lost blocks)"
        }
        Error::Read(_) | Error::Stream { .. } => {
            "check that the keepstores are running; a 401 means the collection must be read again"
        }
        Error::Write(w) if w.wanted as usize > w.keepstores => {
            "ask for fewer copies (--replication), or add keepstores to [cluster] keepstores"
        }
        Error::Write(_) => {
            "check that the keepstores named are running and have space; rerun the same command to resume"
        }
    };
    CliError::new(what, e.chain(), hint)
}

/// Reads a collection's record and parses its manifest.
pub async fn read_collection(
    client: &Client,
    id: &str,
) -> Result<(Collection, Manifest), CliError> {
    let rec = client
        .collection(id)
        .await
        .map_err(|e| fail(format!("reading collection {id}"), e))?;
    let m = Manifest::parse(rec.manifest()).map_err(|e| {
        CliError::new(
            format!("reading collection {id}"),
            format!("its manifest does not parse: {e}"),
            "report this to the cluster's admin",
        )
    })?;
    Ok((rec, m))
}

/// Parses the API's token for sharing URLs etc.
pub fn token_secret(t: &str) -> String {
    t.parse::<Token>()
        .map(|t| t.secret().to_string())
        .unwrap_or_else(|_| t.to_string())
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Unix seconds as RFC 3339 UTC (`2026-11-22T10:00:00Z`).
pub fn rfc3339(secs: u64) -> String {
    let secs = secs as i64;
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
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

/// Writes to stdout, turning a broken pipe into a quiet success.
pub fn broken_pipe_ok(e: std::io::Error, what: &str) -> CliError {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    CliError::new(what, e.to_string(), "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = parse_target("zzzzz-4zz18-0123456789abcde/a/b").unwrap();
        assert_eq!(t.id, "zzzzz-4zz18-0123456789abcde");
        assert_eq!(t.path, "a/b");
        assert!(!t.trailing_slash);
        let t = parse_target("zzzzz-4zz18-0123456789abcde").unwrap();
        assert_eq!(t.path, "");
        assert!(t.trailing_slash);
        let t = parse_target("zzzzz-4zz18-0123456789abcde/d/").unwrap();
        assert_eq!(t.path, "d");
        assert!(t.trailing_slash);
        let pdh = format!("{}+0", keep_format::Hash::of(b""));
        assert_eq!(parse_target(&pdh).unwrap().id, pdh);
        assert_eq!(parse_target("nope").unwrap_err().code, 2);
        assert_eq!(
            parse_target("zzzzz-tpzed-0123456789abcde")
                .unwrap_err()
                .code,
            2
        );
        assert!(parse_target("zzzzz-4zz18-0123456789abcde/../x").is_err());
    }

    #[test]
    fn times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
