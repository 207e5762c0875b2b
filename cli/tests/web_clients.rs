//! Real WebDAV clients against keep-web in the real `keep serve`.

mod common;

use common::{bytes, s, with_slash, Env, Keep};

/// `rclone lsl` and `rclone check --download` over a sharing URL see exactly the
/// uploaded tree (names with spaces, non-ASCII, an empty file, a multi-block file).
#[test]
fn rclone_lsl_and_check_over_a_sharing_url() {
    let k = Keep::start("");
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

    let rclone = |args: &[&str]| {
        let o = std::process::Command::new("rclone")
            .args(args)
            .args(["--webdav-url", &url, "--config", "/dev/null"])
            .env("HOME", env.home.path())
            .output()
            .expect("rclone is installed by scripts/setup");
        assert!(
            o.status.success(),
            "rclone {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    };
    let ls = rclone(&["lsl", ":webdav:"]);
    let mut got: Vec<(u64, String)> = ls
        .lines()
        .map(|l| {
            // "<size> <date> <time> <path>", the size right-aligned, the path may hold spaces
            let (size, rest) = l.trim_start().split_once(' ').unwrap();
            let name = rest.trim_start().splitn(3, ' ').nth(2).unwrap().to_string();
            (size.parse().unwrap(), name)
        })
        .collect();
    got.sort();
    let mut want = vec![
        (0, "empty".to_string()),
        (6, "a.txt".to_string()),
        (100_000, "sub dir/b c.bin".to_string()),
        ((64 << 20) + 5, "sub dir/ünï/big.bin".to_string()),
    ];
    want.sort();
    assert_eq!(got, want, "{ls}");
    rclone(&["check", "--download", s(&src), ":webdav:"]);
}
