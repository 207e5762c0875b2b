//! Client settings (DESIGN §4): `KEEP_API_HOST` and `KEEP_API_TOKEN` from the
//! environment, else from `$XDG_CONFIG_HOME/keep/settings.conf`
//! (default `~/.config/keep/settings.conf`), which the first `keep serve` writes.
//!
//! Optional, same places: `KEEP_TIMEOUT` (one block or API request, default 5m),
//! `KEEP_CONNECT_TIMEOUT` (default 10s), both durations like `30s`; `KEEP_RETRIES` (more
//! passes over the keepstores after a failure waiting may cure, default 3).

use std::path::PathBuf;

use keep_format::Token;

use crate::error::CliError;

/// Where the API is and who we are.
#[derive(Debug, Clone)]
pub struct Settings {
    /// A URL without a trailing slash, e.g. `http://127.0.0.1:8003`.
    pub api_host: String,
    pub token: Token,
    /// Timeouts and retries for keep-client.
    pub options: keep_client::Options,
}

/// `$XDG_CONFIG_HOME/keep/settings.conf`, else `$HOME/.config/keep/settings.conf`.
pub fn path() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".config"),
    };
    Some(base.join("keep").join("settings.conf"))
}

/// The `KEY=value` lines of a settings file (blank lines and `#` comments skipped).
fn parse(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Environment first, then the settings file; names what is missing and how to fix it.
pub fn load() -> Result<Settings, CliError> {
    let file = path();
    let from_file = file
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|t| parse(&t))
        .unwrap_or_default();
    let get = |k: &str| {
        std::env::var(k).ok().filter(|v| !v.is_empty()).or_else(|| {
            from_file
                .iter()
                .find(|(fk, _)| fk == k)
                .map(|(_, v)| v.clone())
        })
    };
    let where_ = file
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "~/.config/keep/settings.conf".into());
    let hint = format!(
        "set KEEP_API_HOST and KEEP_API_TOKEN, or run `keep serve` once on this machine to write {where_}"
    );
    let Some(host) = get("KEEP_API_HOST") else {
        return Err(CliError::new(
            "finding the API server",
            "KEEP_API_HOST is not set",
            hint,
        ));
    };
    let Some(token) = get("KEEP_API_TOKEN") else {
        return Err(CliError::new(
            "finding your token",
            "KEEP_API_TOKEN is not set",
            hint,
        ));
    };
    let host = host.trim_end_matches('/');
    let api_host = if host.contains("://") {
        host.to_string()
    } else {
        // Arvados clients take a bare host:port; so do we.
        format!("https://{host}")
    };
    let token = token.parse::<Token>().map_err(|e| {
        CliError::new(
            "reading KEEP_API_TOKEN",
            e.to_string(),
            "use the v2/<uuid>/<secret> form printed by `keep token create`",
        )
    })?;
    let options = options(&get)?;
    Ok(Settings {
        api_host,
        token,
        options,
    })
}

/// `KEEP_TIMEOUT`, `KEEP_CONNECT_TIMEOUT`, `KEEP_RETRIES` over keep-client's defaults.
fn options(get: &dyn Fn(&str) -> Option<String>) -> Result<keep_client::Options, CliError> {
    let mut o = keep_client::Options::default();
    let dur = |k: &str| -> Result<Option<std::time::Duration>, CliError> {
        get(k)
            .map(|v| {
                keep_format::parse_duration(&v).map_err(|e| {
                    CliError::new(
                        format!("reading {k}={v}"),
                        e.to_string(),
                        "write it like 30s, 5m",
                    )
                })
            })
            .transpose()
    };
    if let Some(d) = dur("KEEP_TIMEOUT")? {
        o.block_timeout = d;
        o.api_timeout = d;
        o.read_timeout = o.read_timeout.min(d);
    }
    if let Some(d) = dur("KEEP_CONNECT_TIMEOUT")? {
        o.connect_timeout = d;
    }
    if let Some(v) = get("KEEP_RETRIES") {
        o.retries = v.parse().map_err(|_| {
            CliError::new(
                format!("reading KEEP_RETRIES={v}"),
                "not a number",
                "write a count like 3 (0: no retries)",
            )
        })?;
    }
    Ok(o)
}

/// Writes the settings file (0600), replacing it atomically. Returns its path.
pub fn write(api_host: &str, token: &Token) -> Result<PathBuf, CliError> {
    let p = path().ok_or_else(|| {
        CliError::new(
            "writing the client settings",
            "neither XDG_CONFIG_HOME nor HOME is set",
            "set HOME",
        )
    })?;
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            CliError::new(
                format!("creating {}", dir.display()),
                e.to_string(),
                "check permissions",
            )
        })?;
    }
    let text = format!(
        "# written by keep serve; read by keep put/get/ls/share and the admin commands\nKEEP_API_HOST={api_host}\nKEEP_API_TOKEN={}\n",
        token.expose()
    );
    crate::config::write_private(&p, text.as_bytes())?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_key_values() {
        let v = parse("# c\n\nKEEP_API_HOST = http://x:1\nKEEP_API_TOKEN=v2/a/b\njunk\n");
        assert_eq!(
            v,
            vec![
                ("KEEP_API_HOST".to_string(), "http://x:1".to_string()),
                ("KEEP_API_TOKEN".to_string(), "v2/a/b".to_string()),
            ]
        );
    }
}
