//! The one TOML config file (DESIGN §4). Every key has a default; an unknown key is an
//! error naming the key and the file. Secrets not set in the file are generated on
//! first start into `DIR/secrets.toml` (mode 0600) and reused afterwards.

use std::fs;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use keep_format::{parse_duration, SigningKey};
use serde::{Deserialize, Serialize};

use crate::error::CliError;

/// A duration written as `90m`, `12h`, `7d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .map(Dur)
            .map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ConfigFile {
    pub cluster_id: Option<String>,
    pub blob_signing_key: Option<String>,
    pub blob_signature_ttl: Option<Dur>,
    pub management_token: Option<String>,
    pub system_root_token: Option<String>,
    pub cluster: ClusterSection,
    pub api: ApiSection,
    pub keepstore: KeepstoreSection,
    pub web: WebSection,
}

/// `[cluster]`: what every service and client shares (DESIGN §4a).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSection {
    /// Every keepstore's URL (default: the one this `keep serve` runs).
    pub keepstores: Option<Vec<String>>,
    /// Copies of each block when a collection does not say (default 1).
    pub default_replication: Option<u32>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    pub listen: Option<String>,
    pub external_url: Option<String>,
    /// `[api.server]`: timeouts and connection limits (serve.rs).
    pub server: crate::serve::ServerSection,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct KeepstoreSection {
    pub listen: Option<String>,
    pub external_url: Option<String>,
    /// `[keepstore.server]`: timeouts and connection limits (serve.rs).
    pub server: crate::serve::ServerSection,
    /// Block directories (relative paths are under the data directory) and S3 buckets
    /// (`{ s3 = { … } }`).
    pub volumes: Option<Vec<VolumeEntry>>,
    pub trash_lifetime: Option<Dur>,
    pub trash_check_interval: Option<Dur>,
    /// How long keepstore trusts the API's "this token is valid" (default 30s).
    pub token_check_valid_for: Option<Dur>,
    /// How long keepstore remembers "this token is not valid" (default 5s).
    pub token_check_invalid_for: Option<Dur>,
    /// How many tokens keepstore remembers (default 10000).
    pub token_check_max_entries: Option<usize>,
    /// How long one token check with the API may take (default 5s).
    pub token_check_timeout: Option<Dur>,
}

/// One `[keepstore] volumes` entry: a directory, or `{ s3 = { … } }`.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
pub enum VolumeEntry {
    Directory(PathBuf),
    /// Checked by [`S3Entry`] after parsing, so that an error names the key.
    Table(toml::Table),
}

/// `{ s3 = { endpoint, bucket, region, prefix, access_key_id, secret_access_key,
/// path_style, connect_timeout, read_timeout, request_timeout } }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct S3Entry {
    endpoint: String,
    bucket: String,
    region: Option<String>,
    prefix: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    path_style: Option<bool>,
    connect_timeout: Option<Dur>,
    read_timeout: Option<Dur>,
    request_timeout: Option<Dur>,
}

impl std::fmt::Debug for VolumeEntry {
    // never prints the table: it may hold a secret key
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VolumeEntry::Directory(p) => write!(f, "{p:?}"),
            VolumeEntry::Table(_) => f.write_str("{ s3 = { … } }"),
        }
    }
}

impl VolumeEntry {
    fn resolve(
        self,
        data_dir: &Path,
        n: usize,
        file: &str,
    ) -> Result<keepstore::VolumeConfig, CliError> {
        let bad = |why: String| {
            CliError::config(
                format!("[keepstore] volumes entry {n} in {file}"),
                why,
                "write a directory (\"keep\") or { s3 = { endpoint = \"http://…\", bucket = \"…\", region = \"…\" } }; doc/admin.md lists the S3 keys",
            )
        };
        match self {
            VolumeEntry::Directory(p) => {
                Ok(keepstore::VolumeConfig::Directory(if p.is_absolute() {
                    p
                } else {
                    data_dir.join(p)
                }))
            }
            VolumeEntry::Table(mut t) => {
                let s3 = t
                    .remove("s3")
                    .ok_or_else(|| bad("a table entry must be { s3 = { … } }".into()))?;
                if let Some(k) = t.keys().next() {
                    return Err(bad(format!("unknown key {k:?} beside s3")));
                }
                let e: S3Entry = s3
                    .try_into()
                    .map_err(|e: toml::de::Error| bad(e.message().to_string()))?;
                let d = keepstore::s3::S3Config::new(e.endpoint, e.bucket);
                Ok(keepstore::VolumeConfig::S3(keepstore::s3::S3Config {
                    region: e.region.unwrap_or(d.region.clone()),
                    prefix: e.prefix.unwrap_or_default(),
                    access_key_id: e.access_key_id,
                    secret_access_key: e.secret_access_key,
                    path_style: e.path_style.unwrap_or(d.path_style),
                    connect_timeout: e.connect_timeout.map_or(d.connect_timeout, |v| v.0),
                    read_timeout: e.read_timeout.map_or(d.read_timeout, |v| v.0),
                    request_timeout: e.request_timeout.map_or(d.request_timeout, |v| v.0),
                    ..d
                }))
            }
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct WebSection {
    pub listen: Option<String>,
    pub external_url: Option<String>,
    pub domain: Option<String>,
    pub download_host: Option<String>,
    pub trust_all_content: Option<bool>,
    pub anonymous_token: Option<String>,
    /// `[web.server]`: timeouts and connection limits (serve.rs).
    pub server: crate::serve::ServerSection,
}

/// Generated on first start when the config file does not set them.
#[derive(Debug, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Secrets {
    blob_signing_key: String,
    management_token: String,
    system_root_token: String,
}

/// The resolved settings every service starts from.
#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub cluster_id: String,
    pub blob_signing_key: String,
    pub blob_signature_ttl: Duration,
    pub management_token: String,
    pub system_root_token: String,
    /// `[cluster] keepstores`, without trailing `/`; empty: this process's keepstore.
    pub keepstores: Vec<String>,
    /// `[cluster] default_replication`, at least 1 and at most the keepstores listed.
    pub default_replication: u32,
    pub api_listen: SocketAddr,
    pub api_external_url: Option<String>,
    pub keepstore_listen: SocketAddr,
    pub keepstore_external_url: Option<String>,
    pub volumes: Vec<keepstore::VolumeConfig>,
    pub trash_lifetime: Duration,
    pub trash_check_interval: Duration,
    /// `[keepstore] token_check_*` with the defaults applied (the API URL is set by
    /// `keepstore_config`).
    pub token_check: keepstore::TokenCheckConfig,
    pub web_listen: SocketAddr,
    pub web_external_url: Option<String>,
    pub web_domain: String,
    pub web_download_host: Option<String>,
    pub web_trust_all_content: bool,
    pub web_anonymous_token: Option<String>,
    /// Each service's HTTP server settings (`[api.server]` and so on).
    pub api_server: crate::serve::ServerSettings,
    pub keepstore_server: crate::serve::ServerSettings,
    pub web_server: crate::serve::ServerSettings,
}

fn listen(
    v: &Option<String>,
    default: &str,
    key: &str,
    file: &str,
) -> Result<SocketAddr, CliError> {
    let s = v.as_deref().unwrap_or(default);
    s.parse().map_err(|_| {
        CliError::config(
            format!("{key} = {s:?} in {file}"),
            "not an address:port",
            "write it like \"127.0.0.1:8003\" (port 0 picks a free port)",
        )
    })
}

impl Config {
    /// Reads `config` (if given) and resolves every default against `data_dir`.
    pub fn load(data_dir: &Path, config: Option<&Path>) -> Result<Config, CliError> {
        let (file, name) = match config {
            Some(p) => {
                let text = fs::read_to_string(p).map_err(|e| {
                    CliError::config(
                        format!("reading config {}", p.display()),
                        e.to_string(),
                        "check the --config path",
                    )
                })?;
                let parsed: ConfigFile = toml::from_str(&text).map_err(|e| {
                    CliError::config(
                        format!("config file {}", p.display()),
                        e.message().to_string()
                            + &e.span()
                                .map(|s| {
                                    format!(
                                        " (at line {})",
                                        text[..s.start].matches('\n').count() + 1
                                    )
                                })
                                .unwrap_or_default(),
                        "fix or remove that key; doc/admin.md lists every key",
                    )
                })?;
                (parsed, p.display().to_string())
            }
            None => (ConfigFile::default(), "the defaults".to_string()),
        };
        fs::create_dir_all(data_dir).map_err(|e| {
            CliError::config(
                format!("creating data directory {}", data_dir.display()),
                e.to_string(),
                "choose a writable --data directory",
            )
        })?;
        let data_dir = data_dir
            .canonicalize()
            .unwrap_or_else(|_| data_dir.to_path_buf());
        let cluster_id = file.cluster_id.clone().unwrap_or_else(|| "zzzzz".into());
        if cluster_id.len() != 5
            || !cluster_id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(CliError::config(
                format!("cluster_id = {cluster_id:?} in {name}"),
                "a cluster id is 5 characters of [a-z0-9]",
                "pick one like \"zzzzz\"",
            ));
        }
        let (keepstores, default_replication) = cluster(&file.cluster, &name)?;
        let secrets = load_secrets(&data_dir, &file)?;
        let volumes = file
            .keepstore
            .volumes
            .clone()
            .unwrap_or_else(|| vec![VolumeEntry::Directory(PathBuf::from("keep"))])
            .into_iter()
            .enumerate()
            .map(|(i, v)| v.resolve(&data_dir, i + 1, &name))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Config {
            cluster_id,
            blob_signing_key: secrets.blob_signing_key,
            blob_signature_ttl: file
                .blob_signature_ttl
                .map(|d| d.0)
                .unwrap_or(Duration::from_secs(14 * 86400)),
            management_token: secrets.management_token,
            system_root_token: secrets.system_root_token,
            keepstores,
            default_replication,
            api_listen: listen(&file.api.listen, "127.0.0.1:8003", "[api] listen", &name)?,
            api_external_url: file.api.external_url.clone(),
            keepstore_listen: listen(
                &file.keepstore.listen,
                "127.0.0.1:25107",
                "[keepstore] listen",
                &name,
            )?,
            keepstore_external_url: file.keepstore.external_url.clone(),
            volumes,
            trash_lifetime: file
                .keepstore
                .trash_lifetime
                .map(|d| d.0)
                .unwrap_or(Duration::from_secs(14 * 86400)),
            trash_check_interval: file
                .keepstore
                .trash_check_interval
                .map(|d| d.0)
                .unwrap_or(Duration::from_secs(3600)),
            token_check: {
                let d = keepstore::TokenCheckConfig::new("");
                let ks = &file.keepstore;
                keepstore::TokenCheckConfig {
                    valid_for: ks.token_check_valid_for.map_or(d.valid_for, |v| v.0),
                    invalid_for: ks.token_check_invalid_for.map_or(d.invalid_for, |v| v.0),
                    max_entries: ks.token_check_max_entries.unwrap_or(d.max_entries),
                    timeout: ks.token_check_timeout.map_or(d.timeout, |v| v.0),
                    ..d
                }
            },
            web_listen: listen(&file.web.listen, "127.0.0.1:9002", "[web] listen", &name)?,
            web_external_url: file.web.external_url.clone(),
            web_domain: file
                .web
                .domain
                .clone()
                .unwrap_or_else(|| "localhost".into()),
            web_download_host: file.web.download_host.clone(),
            web_trust_all_content: file.web.trust_all_content.unwrap_or(false),
            web_anonymous_token: file.web.anonymous_token.clone(),
            api_server: file.api.server.resolve("api.server", &name)?,
            keepstore_server: file.keepstore.server.resolve("keepstore.server", &name)?,
            web_server: file.web.server.resolve("web.server", &name)?,
            data_dir,
        })
    }

    /// The keepstores the API publishes: `[cluster] keepstores`, else `own` (the
    /// keepstore this `keep serve` runs).
    pub fn keepstores_or(&self, own: &str) -> Vec<String> {
        match self.keepstores.is_empty() {
            true => vec![own.to_string()],
            false => self.keepstores.clone(),
        }
    }

    pub fn signing_key(&self) -> SigningKey {
        SigningKey::new(self.blob_signing_key.as_bytes().to_vec())
    }

    /// keepstore's settings; `api_url` is where it checks that tokens are still valid.
    pub fn keepstore_config(
        &self,
        signer: keep_format::BlobSigner,
        api_url: &str,
    ) -> keepstore::Config {
        keepstore::Config {
            trash_lifetime: self.trash_lifetime,
            trash_check_interval: self.trash_check_interval,
            token_check: Some(keepstore::TokenCheckConfig {
                api_url: api_url.to_string(),
                ..self.token_check.clone()
            }),
            ..keepstore::Config::new(
                self.volumes.clone(),
                signer,
                self.system_root_token.clone(),
                self.management_token.clone(),
            )
        }
    }
}

/// `[cluster] keepstores` (each an http(s) URL, no duplicates) and
/// `default_replication` (1 ≤ n ≤ the keepstores listed, or 1 when none are).
fn cluster(c: &ClusterSection, file: &str) -> Result<(Vec<String>, u32), CliError> {
    let mut urls: Vec<String> = Vec::new();
    for u in c.keepstores.iter().flatten() {
        let u = u.trim_end_matches('/').to_string();
        if !(u.starts_with("http://") || u.starts_with("https://")) || u.len() < 9 {
            return Err(CliError::config(
                format!("[cluster] keepstores in {file}"),
                format!("{u:?} is not an http:// or https:// URL"),
                "write each keepstore like \"http://10.0.0.5:25107\"",
            ));
        }
        if urls.contains(&u) {
            return Err(CliError::config(
                format!("[cluster] keepstores in {file}"),
                format!("{u} is listed twice"),
                "list each keepstore once",
            ));
        }
        urls.push(u);
    }
    let n = c.default_replication.unwrap_or(1);
    let have = urls.len().max(1);
    if n == 0 || n as usize > have {
        return Err(CliError::config(
            format!("[cluster] default_replication = {n} in {file}"),
            format!(
                "it must be between 1 and the number of keepstores ({have}{})",
                if urls.is_empty() {
                    ": [cluster] keepstores is not set, so only this keepstore"
                } else {
                    " in [cluster] keepstores"
                }
            ),
            "lower it, or list more keepstores in [cluster] keepstores",
        ));
    }
    Ok((urls, n))
}

/// Secrets from the config file, else from `DIR/secrets.toml`, else freshly generated.
fn load_secrets(data_dir: &Path, file: &ConfigFile) -> Result<Secrets, CliError> {
    let path = data_dir.join("secrets.toml");
    let mut stored: Option<Secrets> = None;
    if path.exists() {
        let text = fs::read_to_string(&path).map_err(|e| {
            CliError::config(
                format!("reading {}", path.display()),
                e.to_string(),
                "check its permissions",
            )
        })?;
        stored = Some(toml::from_str(&text).map_err(|e| {
            CliError::config(
                format!("{}", path.display()),
                e.message().to_string(),
                "it is generated by keep serve: restore it from a backup, or delete it to generate new secrets (existing signatures and tokens stop working)",
            )
        })?);
    }
    let secrets = match stored {
        Some(s) => s,
        None => {
            let s = Secrets {
                blob_signing_key: SigningKey::generate(),
                management_token: keep_format::Token::generate_bare().secret().to_string(),
                system_root_token: keep_format::Token::generate_bare().secret().to_string(),
            };
            write_private(&path, toml::to_string(&s).unwrap_or_default().as_bytes())?;
            s
        }
    };
    Ok(Secrets {
        blob_signing_key: file
            .blob_signing_key
            .clone()
            .unwrap_or(secrets.blob_signing_key),
        management_token: file
            .management_token
            .clone()
            .unwrap_or(secrets.management_token),
        system_root_token: file
            .system_root_token
            .clone()
            .unwrap_or(secrets.system_root_token),
    })
}

/// Writes a file readable only by its owner, atomically (temp file + rename).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    use std::os::unix::fs::OpenOptionsExt;
    let what = || format!("writing {}", path.display());
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| {
            CliError::config(what(), e.to_string(), "check the directory's permissions")
        })?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .and_then(|_| fs::rename(&tmp, path))
        .map_err(|e| CliError::config(what(), e.to_string(), "check free space and permissions"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_generated_secrets_persist() {
        let dir = tempfile::tempdir().unwrap();
        let a = Config::load(dir.path(), None).unwrap();
        assert_eq!(a.cluster_id, "zzzzz");
        assert_eq!(a.api_listen.port(), 8003);
        assert_eq!(a.keepstore_listen.port(), 25107);
        assert_eq!(a.web_listen.port(), 9002);
        let b = Config::load(dir.path(), None).unwrap();
        assert_eq!(a.blob_signing_key, b.blob_signing_key);
        assert_eq!(a.system_root_token, b.system_root_token);
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir.path().join("secrets.toml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn s3_volumes_parse_and_bad_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("keep.toml");
        fs::write(
            &cfg,
            "[keepstore]\nvolumes = [\"keep\", { s3 = { endpoint = \"http://127.0.0.1:3900\", bucket = \"b\", region = \"garage\", prefix = \"p\", access_key_id = \"GK1\", secret_access_key = \"s3cr3t\", path_style = false, read_timeout = \"2s\" } }]\n",
        )
        .unwrap();
        let c = Config::load(dir.path(), Some(&cfg)).unwrap();
        assert_eq!(c.volumes.len(), 2);
        let keepstore::VolumeConfig::S3(s3) = &c.volumes[1] else {
            panic!("{:?}", c.volumes)
        };
        assert_eq!(s3.bucket, "b");
        assert_eq!(s3.region, "garage");
        assert!(!s3.path_style);
        assert_eq!(s3.read_timeout, Duration::from_secs(2));
        assert_eq!(s3.secret_access_key.as_deref(), Some("s3cr3t"));
        assert!(!format!("{:?}", c.volumes).contains("s3cr3t"));
        fs::write(
            &cfg,
            "[keepstore]\nvolumes = [{ s3 = { endpoint = \"http://x\", bucket = \"b\", buckett = \"c\" } }]\n",
        )
        .unwrap();
        let err = Config::load(dir.path(), Some(&cfg))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("buckett") && err.contains("volumes entry 1"),
            "{err}"
        );
    }

    #[test]
    fn cluster_keepstores_and_replication() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("keep.toml");
        let load = |text: &str| {
            fs::write(&cfg, text).unwrap();
            Config::load(dir.path(), Some(&cfg)).map_err(|e| e.to_string())
        };
        let c = load("").unwrap();
        assert!(c.keepstores.is_empty());
        assert_eq!(c.default_replication, 1);
        assert_eq!(c.keepstores_or("http://own:1"), ["http://own:1"]);
        let c = load(
            "[cluster]\nkeepstores = [\"http://a:1/\", \"http://b:2\"]\ndefault_replication = 2\n",
        )
        .unwrap();
        assert_eq!(c.keepstores, ["http://a:1", "http://b:2"]);
        assert_eq!(c.default_replication, 2);
        let e = load("[cluster]\nkeepstores = [\"http://a:1\"]\ndefault_replication = 2\n")
            .unwrap_err();
        assert!(
            e.contains("default_replication = 2") && e.contains("(1 in"),
            "{e}"
        );
        let e = load("[cluster]\ndefault_replication = 3\n").unwrap_err();
        assert!(e.contains("only this keepstore"), "{e}");
        let e = load("[cluster]\ndefault_replication = 0\n").unwrap_err();
        assert!(e.contains("between 1"), "{e}");
        let e = load("[cluster]\nkeepstores = [\"a:1\"]\n").unwrap_err();
        assert!(e.contains("not an http://"), "{e}");
        let e = load("[cluster]\nkeepstores = [\"http://a:1\", \"http://a:1/\"]\n").unwrap_err();
        assert!(e.contains("twice"), "{e}");
    }

    #[test]
    fn unknown_key_names_key_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("keep.toml");
        fs::write(
            &cfg,
            "[keepstore]\nlisten = \"127.0.0.1:0\"\nvolumez = []\n",
        )
        .unwrap();
        let err = Config::load(dir.path(), Some(&cfg))
            .unwrap_err()
            .to_string();
        assert!(err.contains("volumez"), "{err}");
        assert!(err.contains("keep.toml"), "{err}");
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("keep.toml");
        fs::write(&cfg, "blob_signature_ttl = \"7 fortnights\"\n").unwrap();
        let err = Config::load(dir.path(), Some(&cfg))
            .unwrap_err()
            .to_string();
        assert!(err.contains("7 fortnights"), "{err}");
        fs::write(&cfg, "[api]\nlisten = \"nope\"\n").unwrap();
        let err = Config::load(dir.path(), Some(&cfg))
            .unwrap_err()
            .to_string();
        assert!(err.contains("[api] listen"), "{err}");
    }
}
