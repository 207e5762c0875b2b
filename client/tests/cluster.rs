//! keep-client against a real cluster: one `keep serve --only api` and three
//! `keep serve --only keepstore` processes, each in its own temp dir on port 0, sharing
//! the signing key and root token, the API listing the three in `[cluster] keepstores`.
//!
//! Built as a test of keep-cli (`cargo test -p keep-cli --test client_cluster`), where
//! the `keep` binary is.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use keep_client::{Client, Error, Options};
use keep_format::{rendezvous_order, BlobSigner, Hash, Locator, SigningKey, Token};

const KEEP: &str = env!("CARGO_BIN_EXE_keep");

/// One running `keep serve --only …`.
struct Proc {
    child: Option<Child>,
    dir: tempfile::TempDir,
    url: String,
}

impl Proc {
    /// Starts `keep serve --only <only>` with `config`; returns once it is ready.
    fn start(only: &str, config: &str) -> Proc {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("keep.toml");
        std::fs::write(&cfg, config).expect("write config");
        let log = std::fs::File::create(dir.path().join("serve.log")).expect("serve.log");
        let mut child = Command::new(KEEP)
            .args(["serve", "--only", only, "--data"])
            .arg(dir.path().join("data"))
            .arg("--config")
            .arg(&cfg)
            .env("KEEP_LOG", "info")
            .env("XDG_CONFIG_HOME", dir.path().join("xdg"))
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn keep serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let name = match only {
            "keepstore" => "keepstore",
            "api" => "api",
            _ => "keep-web",
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut url = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                panic!(
                    "keep serve --only {only} did not report ready within 60 s: {}",
                    std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default()
                )
            };
            let mut words = line.split_whitespace();
            if words.next() == Some(name) {
                url = words.next().unwrap_or_default().to_string();
            }
            if line.starts_with("keep serve: ready") {
                break;
            }
        }
        assert!(url.starts_with("http://"), "no URL for {only}");
        Proc {
            child: Some(child),
            dir,
            url,
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// SIGKILL: the keepstore is gone (connections refused).
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn signal(&self, sig: i32) {
        let pid = self.child.as_ref().expect("running").id();
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(pid as i32, sig);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.signal(libc::SIGCONT);
        }
        self.stop();
    }
}

/// An API and three keepstores.
struct Cluster {
    keepstores: Vec<Proc>,
    api: Proc,
    token: Token,
    signing_key: String,
}

fn random_hex(n: usize) -> String {
    (0..n)
        .map(|_| format!("{:x}", rand::random::<u8>() & 15))
        .collect()
}

impl Cluster {
    fn start() -> Cluster {
        Cluster::start_with("")
    }

    /// As [`Cluster::start`], with `cluster` lines added to the API's `[cluster]` table.
    fn start_with(cluster: &str) -> Cluster {
        // the keepstores need the API's URL (token checks) before it runs
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let api_url = format!("http://127.0.0.1:{port}");
        let signing_key = random_hex(64);
        let shared = format!(
            "blob_signing_key = \"{signing_key}\"\nsystem_root_token = \"{}\"\nmanagement_token = \"{}\"\n",
            random_hex(40),
            random_hex(40)
        );
        let keepstores: Vec<Proc> = (0..3)
            .map(|_| {
                Proc::start(
                    "keepstore",
                    &format!(
                        "{shared}[api]\nexternal_url = \"{api_url}\"\n[keepstore]\nlisten = \"127.0.0.1:0\"\n"
                    ),
                )
            })
            .collect();
        let list: Vec<String> = keepstores
            .iter()
            .map(|k| format!("\"{}\"", k.url))
            .collect();
        let api = Proc::start(
            "api",
            &format!(
                "{shared}[cluster]\nkeepstores = [{}]\n{cluster}[api]\nlisten = \"127.0.0.1:{port}\"\n",
                list.join(", ")
            ),
        );
        assert_eq!(api.url, api_url);
        let token = std::fs::read_to_string(api.data().join("admin-token"))
            .expect("admin-token")
            .trim()
            .parse()
            .expect("a token");
        Cluster {
            keepstores,
            api,
            token,
            signing_key,
        }
    }

    fn client(&self, opts: Options) -> Client {
        Client::new(&self.api.url, self.token.clone(), opts).expect("client")
    }

    /// Fast retries, for tests.
    fn quick() -> Options {
        Options {
            retries: 1,
            backoff: Duration::from_millis(50),
            block_timeout: Duration::from_secs(20),
            ..Options::default()
        }
    }

    /// The keepstores' indexes in `hash`'s rendezvous order (as every client orders them).
    fn order(&self, hash: &Hash) -> Vec<usize> {
        let urls: Vec<&str> = self.keepstores.iter().map(|k| k.url.as_str()).collect();
        rendezvous_order(hash, &urls)
    }

    /// Where keepstore `i` keeps block `hash` (its one directory volume).
    fn block_file(&self, i: usize, hash: &Hash) -> PathBuf {
        let hex = hash.to_hex();
        self.keepstores[i]
            .data()
            .join("keep")
            .join(&hex[..3])
            .join(&hex)
    }

    fn has(&self, i: usize, hash: &Hash) -> bool {
        self.block_file(i, hash).exists()
    }

    /// The environment `keep put`/`keep get` run in.
    /// `keep put --no-cache FILE` (with `--replication N` when given), run to its end.
    fn put(&self, file: &std::path::Path, replication: Option<u32>) -> std::process::Output {
        let n = replication.map(|n| n.to_string());
        let mut args = vec!["put", "--no-cache"];
        if let Some(n) = &n {
            args.extend(["--replication", n.as_str()]);
        }
        args.push(file.to_str().expect("utf-8"));
        self.keep(&args).output().expect("keep put")
    }

    fn keep(&self, args: &[&str]) -> Command {
        let mut c = Command::new(KEEP);
        c.args(args)
            .env("HOME", self.api.dir.path())
            .env("XDG_CONFIG_HOME", self.api.dir.path().join("client-config"))
            .env("XDG_CACHE_HOME", self.api.dir.path().join("client-cache"))
            .env("KEEP_API_HOST", &self.api.url)
            .env("KEEP_API_TOKEN", self.token.expose())
            .env("KEEP_RETRIES", "1");
        c
    }
}

fn data(len: usize, seed: u8) -> Bytes {
    let mut x = u64::from(seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    Bytes::from(
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect::<Vec<u8>>(),
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn read_fails_over_when_the_first_keepstore_is_stopped() {
    let mut cl = Cluster::start();
    let c = cl.client(Cluster::quick());
    let rt = rt();
    let d = data(300_000, 1);
    let st = rt
        .block_on(c.write_block(d.clone(), Some(2)))
        .expect("write");
    assert_eq!(st.copies, 2);
    let hash = Hash::of(&d);
    let order = cl.order(&hash);
    assert_eq!(
        st.keepstores,
        [
            cl.keepstores[order[0]].url.clone(),
            cl.keepstores[order[1]].url.clone()
        ],
        "written first where a reader looks first"
    );
    cl.keepstores[order[0]].stop();
    let got = rt.block_on(c.read_block(&st.locator)).expect("read");
    assert_eq!(got, d);
    // a ranged read (keep-web's kind) fails over the same way
    let slice = rt.block_on(async {
        use futures_util::TryStreamExt;
        let st = c.read_range(&st.locator, 1000, 5000).await?;
        st.try_fold(Vec::new(), |mut v, b| async move {
            v.extend_from_slice(&b);
            Ok(v)
        })
        .await
    });
    assert_eq!(slice.expect("ranged read"), d[1000..6000]);
    let e = rt
        .block_on(c.read_range(&st.locator, 299_999, 2))
        .err()
        .expect("past the end");
    assert!(e.to_string().contains("not inside block"), "{e}");
}

#[test]
fn read_fails_over_when_the_first_keepstore_does_not_answer() {
    let cl = Cluster::start();
    let c = cl.client(Options {
        block_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(2),
        ..Cluster::quick()
    });
    let rt = rt();
    let d = data(100_000, 2);
    let st = rt
        .block_on(c.write_block(d.clone(), Some(2)))
        .expect("write");
    let first = cl.order(&Hash::of(&d))[0];
    // stopped, not gone: the kernel still accepts connections, nothing answers
    cl.keepstores[first].signal(libc::SIGSTOP);
    let t = Instant::now();
    let got = rt.block_on(c.read_block(&st.locator));
    cl.keepstores[first].signal(libc::SIGCONT);
    assert_eq!(got.expect("read"), d);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "{took:?}"
    );
}

#[test]
fn read_fails_over_when_the_first_keepstore_has_a_corrupt_copy() {
    let cl = Cluster::start();
    let c = cl.client(Cluster::quick());
    let rt = rt();
    // corrupt at the start (a clean 502) and deep inside (the stream breaks off)
    for (seed, at) in [(3u8, 10usize), (4, 900_000)] {
        let d = data(1 << 20, seed);
        let st = rt
            .block_on(c.write_block(d.clone(), Some(2)))
            .expect("write");
        let hash = Hash::of(&d);
        let first = cl.order(&hash)[0];
        let f = cl.block_file(first, &hash);
        let mut bytes = std::fs::read(&f).expect("block file");
        bytes[at] ^= 0xff;
        std::fs::write(&f, bytes).expect("corrupt it");
        let got = rt.block_on(c.read_block(&st.locator)).expect("read");
        assert_eq!(got, d, "corrupt at {at}");
    }
}

#[test]
fn read_of_a_block_no_keepstore_has_is_not_found_on_all_three() {
    let cl = Cluster::start();
    let c = cl.client(Cluster::quick());
    let rt = rt();
    let d = data(1000, 5);
    let signer = BlobSigner::new(
        SigningKey::new(cl.signing_key.as_bytes().to_vec()),
        Duration::from_secs(3600),
    );
    let loc = signer.sign(
        &Locator::new(Hash::of(&d), d.len() as u64),
        &cl.token,
        std::time::SystemTime::now(),
    );
    let e = rt.block_on(c.read_block(&loc)).expect_err("nobody has it");
    let Error::Read(r) = &e else { panic!("{e:?}") };
    assert!(r.not_found(), "{e}");
    assert_eq!(r.keepstores().len(), 3, "{e}");
    assert_eq!(e.status(), Some(404));
    let msg = e.chain();
    assert!(!msg.contains(cl.token.secret()), "{msg}");
    assert!(!msg.contains("+A"), "no signed locator in {msg}");
}

#[test]
fn write_of_two_copies_with_one_keepstore_stopped_stores_two() {
    let mut cl = Cluster::start();
    let c = cl.client(Cluster::quick());
    let rt = rt();
    let d = data(200_000, 6);
    let hash = Hash::of(&d);
    let order = cl.order(&hash);
    cl.keepstores[order[0]].stop();
    let st = rt
        .block_on(c.write_block(d.clone(), Some(2)))
        .expect("write");
    assert_eq!(st.copies, 2);
    assert_eq!(
        st.keepstores,
        [
            cl.keepstores[order[1]].url.clone(),
            cl.keepstores[order[2]].url.clone()
        ]
    );
    assert!(cl.has(order[1], &hash) && cl.has(order[2], &hash));
    assert_eq!(rt.block_on(c.read_block(&st.locator)).expect("read"), d);
}

#[test]
fn write_of_two_copies_with_two_keepstores_stopped_fails_naming_them() {
    let mut cl = Cluster::start();
    let c = cl.client(Cluster::quick());
    let rt = rt();
    let d = data(50_000, 7);
    let hash = Hash::of(&d);
    let order = cl.order(&hash);
    cl.keepstores[order[0]].stop();
    cl.keepstores[order[2]].stop();
    let e = rt
        .block_on(c.write_block(d.clone(), Some(2)))
        .expect_err("only one keepstore is up");
    let Error::Write(w) = &e else { panic!("{e:?}") };
    assert_eq!(w.copies(), 1);
    assert_eq!(w.wanted, 2);
    let msg = e.chain();
    for i in [order[0], order[2]] {
        assert!(msg.contains(&cl.keepstores[i].url), "{msg}");
    }
    assert!(msg.contains("1 of 2 copies"), "{msg}");
    assert!(!msg.contains(cl.token.secret()), "{msg}");
    // and the one copy it made is where a reader finds it
    assert!(cl.has(order[1], &hash));
}

#[test]
fn keep_get_reads_a_block_written_only_to_the_second_keepstore() {
    let cl = Cluster::start();
    let c = cl.client(Cluster::quick());
    let rt = rt();
    let d = data(70_000, 8);
    let hash = Hash::of(&d);
    let second = cl.order(&hash)[1];
    // as keep-web did when the first keepstore was full: straight to the second
    let http = reqwest::blocking::Client::new();
    let r = http
        .put(format!("{}/{hash}", cl.keepstores[second].url))
        .bearer_auth(cl.token.expose())
        .body(d.to_vec())
        .send()
        .expect("put");
    assert_eq!(r.status(), 200);
    let loc = r.text().expect("locator");
    assert!(!cl.has(cl.order(&hash)[0], &hash));
    let coll = rt
        .block_on(c.create_collection(
            &keep_client::NewCollection {
                manifest_text: format!(". {} 0:{}:f.bin\n", loc.trim(), d.len()),
                name: Some("second only".into()),
                ..Default::default()
            },
            false,
        ))
        .expect("create collection");
    let uuid = coll.uuid().expect("uuid").to_string();
    let out = tempfile::tempdir().expect("tempdir");
    let dest = out.path().join("f.bin");
    let o = cl
        .keep(&[
            "get",
            &format!("{uuid}/f.bin"),
            dest.to_str().expect("utf-8"),
        ])
        .output()
        .expect("keep get");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(&dest).expect("read back"), d);
}

#[test]
fn keep_put_stores_the_copies_asked_for_and_fails_naming_the_keepstores() {
    let mut cl = Cluster::start();
    let work = tempfile::tempdir().expect("tempdir");
    let f = work.path().join("a.bin");
    let d = data(123_456, 9);
    std::fs::write(&f, &d).expect("write");
    let hash = Hash::of(&d);
    let order = cl.order(&hash);
    cl.keepstores[order[0]].stop();
    // one keepstore down: two copies all the same
    let o = cl.put(&f, Some(2));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(cl.has(order[1], &hash) && cl.has(order[2], &hash));
    let uuid = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let got = cl
        .keep(&["get", &format!("{uuid}/a.bin"), "-"])
        .output()
        .expect("keep get");
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert_eq!(got.stdout, d);
    // two down: three copies cannot be made, and the error says where it tried
    cl.keepstores[order[1]].stop();
    let o = cl.put(&f, Some(2));
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    for i in [order[0], order[1]] {
        assert!(err.contains(&cl.keepstores[i].url), "{err}");
    }
    assert!(err.contains("1 of 2 copies"), "{err}");
    assert!(!err.contains(cl.token.secret()), "{err}");
}

/// Without `--replication`, `keep put` makes the cluster's default number of copies,
/// which the API publishes from `[cluster] default_replication`.
#[test]
fn keep_put_makes_the_cluster_default_copies() {
    let cl = Cluster::start_with("default_replication = 2\n");
    let work = tempfile::tempdir().expect("tempdir");
    let f = work.path().join("b.bin");
    let d = data(54_321, 11);
    std::fs::write(&f, &d).expect("write");
    let hash = Hash::of(&d);
    let order = cl.order(&hash);
    let o = cl.put(&f, None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(cl.has(order[0], &hash), "first copy missing");
    assert!(cl.has(order[1], &hash), "second copy missing");
    assert!(!cl.has(order[2], &hash), "a third copy nobody asked for");
}
