//! `keep serve --only`, and a closed stdout pipe ending a command quietly.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use crate::support::{serve, with_slash, Env, KEEP};

#[test]
fn serve_only_keepstore_runs_keepstore_alone() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("keep.toml");
    std::fs::write(
        &config,
        "[api]\nlisten = \"127.0.0.1:0\"\n[keepstore]\nlisten = \"127.0.0.1:0\"\n[web]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let mut child = Command::new(KEEP)
        .args(["serve", "--only", "keepstore", "--data"])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&config)
        .env("XDG_CONFIG_HOME", dir.path().join("xdg"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        let ready = line.starts_with("keep serve: ready");
        lines.push(line);
        if ready {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = lines.join("\n");
    assert!(text.contains("  keepstore  http://127.0.0.1:"), "{text}");
    assert!(!text.contains("  api  "), "{text}");
    assert!(!text.contains("  keep-web  "), "{text}");
    // no database, no admin token: the API never ran
    assert!(!dir.path().join("data/db").exists());
    assert!(!dir.path().join("data/admin-token").exists());
}

#[test]
fn closed_stdout_pipe_ends_quietly() {
    let k = serve();
    let env = Env::new(&k);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..3000 {
        std::fs::write(src.join(format!("file-with-a-long-name-{i:05}.txt")), b"x").unwrap();
    }
    std::fs::write(src.join("big.bin"), crate::support::bytes(8 << 20, 3)).unwrap();
    let uuid = env.ok(&["put", "--no-progress", &with_slash(&src)]);
    for args in [
        vec!["ls".to_string(), uuid.clone()],
        vec!["get".into(), format!("{uuid}/big.bin"), "-".into()],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = env
            .cmd(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let mut first = [0u8; 16];
        out.read_exact(&mut first).unwrap();
        drop(out); // like `| head -c 16`
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.trim().is_empty(), "keep {args:?} complained: {err}");
        // a reader that stopped reading is not a failure: exit 0, like `cat | head`
        assert!(o.status.success(), "keep {args:?}: {:?}", o.status);
    }
}
