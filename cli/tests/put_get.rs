//! `keep put` / `get` / `ls` / `share` against a real `keep serve`.

use std::path::Path;

use crate::support::{bytes, files_under, s, serve, with_slash, Env};

const MIB: usize = 1 << 20;

/// The last `sent=` value in --batch-progress output.
fn sent(stderr: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .rfind(|l| l.starts_with("keep put: "))
        .unwrap_or_else(|| panic!("no progress line in {text}"));
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("sent="))
        .unwrap()
        .parse()
        .unwrap()
}

fn assert_same_tree(a: &Path, b: &Path) {
    let fa = files_under(a);
    assert_eq!(fa, files_under(b));
    for f in &fa {
        let x = std::fs::read(a.join(f)).unwrap();
        let y = std::fs::read(b.join(f)).unwrap();
        assert!(x == y, "{f} differs ({} vs {} bytes)", x.len(), y.len());
    }
    // empty directories too
    let dirs = |root: &Path| {
        let mut out = Vec::new();
        let mut st = vec![root.to_path_buf()];
        while let Some(d) = st.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                if e.path().is_dir() {
                    out.push(e.path().strip_prefix(root).unwrap().to_path_buf());
                    st.push(e.path());
                }
            }
        }
        out.sort();
        out
    };
    assert_eq!(dirs(a), dirs(b));
}

fn make_tree(root: &Path, big: bool) {
    std::fs::create_dir_all(root.join("sizes")).unwrap();
    let mut sizes = vec![0, 1, 4096];
    if big {
        sizes.extend([64 * MIB - 1, 64 * MIB, 64 * MIB + 1, 130 * MIB]);
    }
    for (i, n) in sizes.into_iter().enumerate() {
        std::fs::write(root.join(format!("sizes/f{n}")), bytes(n, i as u64)).unwrap();
    }
    std::fs::create_dir_all(root.join("many")).unwrap();
    for i in 0..1000 {
        std::fs::write(root.join(format!("many/{i:04}.txt")), format!("file {i}\n")).unwrap();
    }
    let odd = root.join("odd names");
    std::fs::create_dir_all(&odd).unwrap();
    for n in [
        "a space",
        "co:lon",
        "back\\slash",
        "naïve-日本",
        "tab\there",
        "#hash%25",
    ] {
        std::fs::write(odd.join(n), n.as_bytes()).unwrap();
    }
    std::fs::create_dir_all(root.join("empty dir")).unwrap();
    std::fs::create_dir_all(root.join("nested/empty")).unwrap();
}

#[test]
fn put_get_round_trip_and_second_put_sends_nothing() {
    let k = serve();
    let env = Env::new(&k);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    make_tree(&src, true);

    let o = env.run(&[
        "put",
        "--batch-progress",
        "--portable-data-hash",
        &with_slash(&src),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pdh1 = String::from_utf8(o.stdout).unwrap().trim().to_string();
    assert!(pdh1.contains('+'), "{pdh1}");
    assert!(sent(&o.stderr) > 300_000_000);
    // by PDH here, by UUID below
    let uuid = pdh1.clone();

    let out = work.path().join("out");
    env.ok(&["get", "-r", &uuid, s(&out)]);
    assert_same_tree(&src, &out);

    // ls shows every file and the empty directories
    let ls = env.ok(&["ls", "-s", &uuid]);
    assert!(ls.contains("sizes/f67108864"), "{ls}");
    assert!(ls.contains("empty dir/"), "{ls}");
    assert_eq!(ls.lines().count(), 7 + 1000 + 6 + 2);

    // a second upload of the same data sends no block bytes and gets the same PDH
    let o = env.run(&[
        "put",
        "--batch-progress",
        "--portable-data-hash",
        &with_slash(&src),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(sent(&o.stderr), 0);
    assert_eq!(String::from_utf8(o.stdout).unwrap().trim(), pdh1);
    let uuid = env.ok(&["put", &with_slash(&src)]);
    assert!(uuid.contains("-4zz18-"), "{uuid}");

    // one file to stdout, one into a directory
    let one = env.ok(&["get", &format!("{uuid}/odd names/co:lon"), "-"]);
    assert_eq!(one, "co:lon");
    let d = work.path().join("one");
    std::fs::create_dir_all(&d).unwrap();
    env.ok(&["get", &format!("{uuid}/sizes/f67108865"), &with_slash(&d)]);
    assert_eq!(
        std::fs::read(d.join("f67108865")).unwrap(),
        bytes(64 * MIB + 1, 5)
    );
    // a subdirectory without a trailing slash lands under its own name
    let d2 = work.path().join("sub");
    env.ok(&["get", "-r", &format!("{uuid}/odd names"), s(&d2)]);
    assert_same_tree(&src.join("odd names"), &d2.join("odd names"));
}

#[test]
fn directory_name_and_stdin() {
    let k = serve();
    let env = Env::new(&k);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("tree");
    make_tree(&src, false);
    let uuid = env.ok(&["put", "--no-cache", "--exclude", "many", s(&src)]);
    let ls = env.ok(&["ls", &uuid]);
    assert!(ls.lines().all(|l| l.starts_with("tree/")), "{ls}");
    assert!(!ls.contains("many"), "{ls}");

    let mut c = env.cmd(&["put", "-", "--filename", "from stdin.bin"]);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let data = bytes(3 * MIB + 7, 9);
    {
        use std::io::Write;
        let mut si = child.stdin.take().unwrap();
        si.write_all(&data).unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    let uuid = String::from_utf8(o.stdout).unwrap().trim().to_string();
    let out = work.path().join("x.bin");
    env.ok(&["get", &format!("{uuid}/from stdin.bin"), s(&out)]);
    assert_eq!(std::fs::read(&out).unwrap(), data);
}

#[test]
fn get_refuses_to_overwrite() {
    let k = serve();
    let env = Env::new(&k);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), b"new a").unwrap();
    std::fs::write(src.join("b"), b"new b").unwrap();
    let uuid = env.ok(&["put", &with_slash(&src)]);

    let out = work.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("b"), b"old").unwrap();
    let o = env.run(&["get", "-r", &uuid, s(&out)]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("keep: ") && err.contains("-f"), "{err}");
    // nothing was written
    assert!(!out.join("a").exists());
    assert_eq!(std::fs::read(out.join("b")).unwrap(), b"old");

    env.ok(&["get", "-r", "--skip-existing", &uuid, s(&out)]);
    assert_eq!(std::fs::read(out.join("a")).unwrap(), b"new a");
    assert_eq!(std::fs::read(out.join("b")).unwrap(), b"old");

    env.ok(&["get", "-r", "-f", &uuid, s(&out)]);
    assert_eq!(std::fs::read(out.join("b")).unwrap(), b"new b");
    // no temp files left behind
    assert_eq!(files_under(&out), ["a", "b"]);
}

#[test]
fn usage_errors_exit_2_and_unreachable_api_exits_1() {
    let k = serve();
    let env = Env::new(&k);
    for args in [
        vec!["put"],
        vec!["get"],
        vec!["get", "not-a-collection"],
        vec!["ls", "zzzzz-tpzed-0123456789abcde"],
        vec!["put", "--threads", "0", "x"],
        vec!["nonsense"],
    ] {
        let o = env.run(&args);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // a directory without -r is a usage error
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("f"), b"x").unwrap();
    let uuid = env.ok(&["put", &with_slash(work.path())]);
    let o = env.run(&["get", &uuid, s(&work.path().join("o"))]);
    assert_eq!(o.status.code(), Some(2));

    let o = env
        .cmd(&["ls", "zzzzz-4zz18-0123456789abcde"])
        .env("KEEP_API_HOST", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("127.0.0.1:9"), "{err}");
    assert!(err.starts_with("keep: "), "{err}");

    // completions print a script
    let c = env.ok(&["completions", "bash"]);
    assert!(c.contains("keep"));
}

#[test]
fn share_link_reads_one_collection_only() {
    let k = serve();
    let env = Env::new(&k);
    let work = tempfile::tempdir().unwrap();
    let a = work.path().join("a");
    let b = work.path().join("b");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(a.join("hello.txt"), b"hello a").unwrap();
    std::fs::write(b.join("other.txt"), b"hello b").unwrap();
    let ua = env.ok(&["put", &with_slash(&a)]);
    let ub = env.ok(&["put", &with_slash(&b)]);
    let url = env.ok(&["share", &ua, "--expires", "1h"]);
    assert!(
        url.contains(&format!("/c={ua}/t=")) && url.ends_with("/_/"),
        "{url}"
    );
    let list = env.ok(&["share", "--list", &ua]);
    assert_eq!(list.lines().count(), 1, "{list}");
    let tok_uuid = list.split_whitespace().next().unwrap().to_string();
    assert!(tok_uuid.contains("-gj3su-"), "{list}");

    assert!(k.web.is_some(), "keep serve runs keep-web");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let c = reqwest::Client::new();
    let got = rt.block_on(async {
        let r = c.get(format!("{url}hello.txt")).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    });
    assert_eq!(got, (200, "hello a".to_string()));
    // the same token on another collection is refused
    let other = url.replace(&ua, &ub);
    let st = rt.block_on(async {
        c.get(format!("{other}other.txt"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert!(st == 404 || st == 401 || st == 403, "{st}");

    env.ok(&["share", "--revoke", &tok_uuid]);
    assert_eq!(env.ok(&["share", "--list", &ua]), "");
}

#[test]
fn killed_put_resumes_with_fewer_bytes() {
    use std::io::{BufRead, BufReader};
    let k = serve();
    let env = Env::new(&k);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("big");
    std::fs::create_dir_all(&src).unwrap();
    let total = 5 * 64 * MIB + 3;
    std::fs::write(src.join("big.bin"), bytes(total, 77)).unwrap();
    let mut child = env
        .cmd(&[
            "put",
            "--threads",
            "1",
            "--batch-progress",
            &with_slash(&src),
        ])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    for line in BufReader::new(err).lines().map_while(Result::ok) {
        if line.starts_with("keep put: ") && !line.contains(" sent=0 ") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let o = env.run(&["put", "--batch-progress", &with_slash(&src)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        sent(&o.stderr) < total as u64,
        "the rerun sent everything again"
    );
    let uuid = String::from_utf8(o.stdout).unwrap().trim().to_string();
    let out = work.path().join("out.bin");
    env.ok(&["get", &format!("{uuid}/big.bin"), s(&out)]);
    assert!(std::fs::read(&out).unwrap() == bytes(total, 77));
}

#[test]
fn killed_get_leaves_nothing_under_the_target_name() {
    let k = serve();
    let env = Env::new(&k);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let total = 130 * MIB;
    std::fs::write(src.join("big.bin"), bytes(total, 31)).unwrap();
    let uuid = env.ok(&["put", "--no-progress", &with_slash(&src)]);
    let out = work.path().join("out.bin");
    let mut child = env
        .cmd(&[
            "get",
            "--threads",
            "1",
            "--no-progress",
            &format!("{uuid}/big.bin"),
            s(&out),
        ])
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // kill it as soon as it has started writing (its temp file exists)
    let started = std::time::Instant::now();
    let partial = loop {
        let p = std::fs::read_dir(work.path())
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().contains("keep-partial"));
        if let Some(p) = p {
            break p.path();
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "keep get never started writing"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    };
    let _ = child.kill();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "keep get finished before it could be killed"
    );
    assert!(!out.exists(), "a killed get left {} behind", out.display());
    // the temp name may remain (a rerun with -f replaces it); never the real one
    drop(partial);
    // and a full get afterwards gives the right bytes under the real name
    env.ok(&["get", "-f", &format!("{uuid}/big.bin"), s(&out)]);
    assert!(std::fs::read(&out).unwrap() == bytes(total, 31));
}
