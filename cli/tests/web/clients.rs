//! Real WebDAV clients against keep-web in the real `keep serve`.

use crate::support::{bytes, lsl, rclone, s, serve, with_slash, Env};

/// `rclone lsl` and `rclone check --download` over a sharing URL see exactly the
/// uploaded tree (names with spaces, non-ASCII, an empty file, a multi-block file).
#[test]
fn rclone_lsl_and_check_over_a_sharing_url() {
    let k = serve();
    let env = Env::new(&k);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir_all(src.join("sub dir/ünï")).unwrap();
    std::fs::write(src.join("empty"), b"").unwrap();
    std::fs::write(src.join("a.txt"), b"hello\n").unwrap();
    std::fs::write(src.join("sub dir/b c.bin"), bytes(100_000, 1)).unwrap();
    std::fs::write(src.join("sub dir/ünï/big.bin"), bytes((64 << 20) + 5, 2)).unwrap();
    let uuid = env.ok(&["put", "--no-progress", &with_slash(&src)]);
    let url = env.ok(&["share", &uuid]);
    assert!(url.contains("/t="), "{url}");

    let ls = rclone(&url, None, &["lsl", ":webdav:"]);
    let got = lsl(&ls);
    let mut want = vec![
        (0, "empty".to_string()),
        (6, "a.txt".to_string()),
        (100_000, "sub dir/b c.bin".to_string()),
        ((64 << 20) + 5, "sub dir/ünï/big.bin".to_string()),
    ];
    want.sort();
    assert_eq!(got, want, "{ls}");
    rclone(&url, None, &["check", "--download", s(&src), ":webdav:"]);
}

fn run(cmd: &mut std::process::Command, what: &str) -> String {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e} (scripts/setup installs it)"));
    assert!(
        o.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// cadaver lists a shared collection and downloads a file from it.
#[test]
fn cadaver_lists_and_gets() {
    use std::io::Write;
    let k = serve();
    let env = Env::new(&k);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("notes.txt"), b"cadaver was here\n").unwrap();
    std::fs::write(src.join("data.bin"), bytes(300_000, 7)).unwrap();
    let uuid = env.ok(&["put", "--no-progress", &with_slash(&src)]);
    let url = env.ok(&["share", &uuid]);
    let mut child = std::process::Command::new("cadaver")
        .arg(&url)
        .current_dir(work.path())
        .env("HOME", env.home.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cadaver is installed by scripts/setup");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"ls\nget data.bin got.bin\nquit\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("notes.txt") && out.contains("data.bin"),
        "{out}"
    );
    assert!(out.contains("succeeded"), "{out}");
    assert!(std::fs::read(work.path().join("got.bin")).unwrap() == bytes(300_000, 7));
}

/// `samtools view -c URL region` on an indexed BAM in a collection (htslib fetches
/// `URL.bai` and reads the BAM by Range) counts what it counts on the local file.
#[test]
fn samtools_region_count_matches_the_local_file() {
    let k = serve();
    let env = Env::new(&k);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("bam");
    std::fs::create_dir_all(&src).unwrap();
    let mut sam = String::from("@HD\tVN:1.6\tSO:unsorted\n@SQ\tSN:chr1\tLN:1000000\n");
    let mut x: u64 = 12345;
    for i in 0..20_000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let pos = 1 + (x >> 33) % 999_000;
        sam.push_str(&format!(
            "r{i}\t0\tchr1\t{pos}\t60\t20M\t*\t0\t0\tACGTACGTACGTACGTACGT\tIIIIIIIIIIIIIIIIIIII\n"
        ));
    }
    let sam_path = work.path().join("x.sam");
    std::fs::write(&sam_path, sam).unwrap();
    let bam = src.join("x.bam");
    run(
        std::process::Command::new("samtools")
            .args(["sort", "-o"])
            .arg(&bam)
            .arg(&sam_path),
        "samtools sort",
    );
    run(
        std::process::Command::new("samtools")
            .arg("index")
            .arg(&bam),
        "samtools index",
    );
    let uuid = env.ok(&["put", "--no-progress", &with_slash(&src)]);
    let url = env.ok(&["share", &uuid]);
    let count = |target: &str| {
        run(
            std::process::Command::new("samtools")
                .args(["view", "-c", target, "chr1:100000-200000"])
                .current_dir(work.path())
                .env("HOME", env.home.path()),
            "samtools view",
        )
        .trim()
        .to_string()
    };
    let local = count(s(&bam));
    assert!(local.parse::<u64>().unwrap() > 1000, "{local}");
    assert_eq!(count(&format!("{url}x.bam")), local);
}

/// With the user's own token (Basic auth on the download host, the password from
/// `--webdav-pass` for rclone and from `~/.netrc` for cadaver), both clients walk the
/// `/users/<name>/` tree: projects, a filter group that matches its own parent project
/// (the cycle must show as an empty directory, or `rclone lsl` never ends), and the
/// collections' files.
#[test]
fn rclone_and_cadaver_walk_a_users_tree_with_a_cycle_using_basic_auth() {
    use std::io::Write;
    let k = serve();
    let env = Env::new(&k);
    let web = k.web.clone().expect("keep-web URL");
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("a.txt"), b"from a project\n").unwrap();
    std::fs::write(src.join("d/b.bin"), bytes(70_000, 3)).unwrap();
    let proj = env.ok(&["project", "create", "P"]);
    env.ok(&[
        "put",
        "--no-progress",
        "--project",
        &proj,
        "--name",
        "data",
        &with_slash(&src),
    ]);
    let filter = format!("[[\"groups.uuid\",\"=\",\"{proj}\"]]");
    env.ok(&[
        "filter-group",
        "create",
        "F",
        "--parent",
        &proj,
        "--filter",
        &filter,
    ]);
    // the admin's user name, from the API
    let me: serde_json::Value = {
        let api = env.api.clone();
        let token = env.token.clone();
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async move {
                reqwest::Client::new()
                    .get(format!("{api}/arvados/v1/users/current"))
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap()
            })
    };
    let name = me["username"].as_str().expect("username").to_string();
    let url = format!("{web}/users/{name}/");

    let ls = rclone(&url, Some(("x", &env.token)), &["lsl", ":webdav:"]);
    let got = lsl(&ls);
    // P/data's files, once; P/F/P is empty, so nothing repeats under F
    assert_eq!(
        got,
        vec![
            (15, "P/data/a.txt".to_string()),
            (70_000, "P/data/d/b.bin".to_string()),
        ],
        "{ls}"
    );

    // cadaver reads the same credentials from ~/.netrc
    let host = web
        .trim_start_matches("http://")
        .split(':')
        .next()
        .unwrap()
        .to_string();
    let netrc = env.home.path().join(".netrc");
    std::fs::write(
        &netrc,
        format!("machine {host} login x password {}\n", env.token),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&netrc, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut child = std::process::Command::new("cadaver")
        .arg(&url)
        .current_dir(work.path())
        .env("HOME", env.home.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cadaver is installed by scripts/setup");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"ls P/\nls P/F/P/\ncd P/data\nls\nget a.txt got.txt\nquit\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("data") && out.contains("F") && out.contains("a.txt"),
        "{out}"
    );
    assert!(out.contains("succeeded"), "{out}");
    assert_eq!(
        std::fs::read(work.path().join("got.txt")).unwrap(),
        b"from a project\n"
    );
    assert!(!k.log().contains(env.token.rsplit('/').next().unwrap()));
}
