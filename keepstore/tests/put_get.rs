//! PUT / GET / HEAD through an in-process keepstore: the size table, refusals, and
//! nothing left on disk after a failed PUT.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::{bytes, start};
use keep_format::{Hash, Locator, BLOCK_SIZE_MAX};

const MIB: usize = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_size_table() {
    let s = start(1).await;
    let max = BLOCK_SIZE_MAX as usize;
    for (i, &len) in [0, 1, 16383, 16384, 16385, 3 * 16384 + 5, max - 1, max]
        .iter()
        .enumerate()
    {
        let body = bytes(len, i as u64);
        let hash = Hash::of(&body);
        let r = s.put(body.clone()).await;
        assert_eq!(r.status(), 200, "PUT len {len}");
        let header_loc = r
            .headers()
            .get("x-keep-locator")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let text = r.text().await.unwrap();
        assert_eq!(text, header_loc);
        let loc: Locator = text.parse().unwrap();
        assert_eq!((loc.hash, loc.size), (hash, len as u64));
        assert!(loc.signature().is_some());
        s.signer.verify(&loc, &s.token, SystemTime::now()).unwrap();

        let r = s.get(&loc).await;
        assert_eq!(r.status(), 200, "GET len {len}");
        let h = r.headers().clone();
        assert_eq!(h["content-length"], len.to_string().as_str());
        assert_eq!(h["content-type"], "application/octet-stream");
        assert_eq!(h["accept-ranges"], "bytes");
        assert_eq!(h["etag"], format!("\"{hash}\"").as_str());
        let got = r.bytes().await.unwrap();
        assert!(got.as_ref() == body.as_slice(), "GET body len {len}");

        let r = s
            .client
            .head(format!("{}/{loc}", s.base))
            .header("Authorization", s.bearer())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "HEAD len {len}");
        assert_eq!(r.headers()["content-length"], len.to_string().as_str());
        assert!(r.bytes().await.unwrap().is_empty());
    }
    // nothing left in tmp
    for d in &s.dirs {
        assert_eq!(std::fs::read_dir(d.path().join("tmp")).unwrap().count(), 0);
    }
    assert_eq!(
        s.metric("keepstore_bytes_in_total").await,
        (2 * max + 16383 + 16384 + 16385 + 3 * 16384 + 5) as f64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_hash_is_400_and_stores_nothing() {
    let s = start(1).await;
    let body = bytes(100_000, 1);
    let wrong = Hash::of(b"something else");
    let r = s
        .client
        .put(format!("{}/{wrong}", s.base))
        .header("Authorization", s.bearer())
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let msg = r.text().await.unwrap();
    assert!(
        msg.contains(&wrong.to_string()) && msg.contains(&Hash::of(&body).to_string()),
        "{msg}"
    );
    s.assert_clean().await;

    // not a hash at all
    let r = s
        .client
        .put(format!("{}/nothex", s.base))
        .header("Authorization", s.bearer())
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    s.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_body_is_400_and_stores_nothing() {
    let s = start(1).await;
    let body = bytes(50_000, 2);
    let hash = Hash::of(&body);
    // Content-Length says more than we send, then we stop sending
    let mut req = format!(
        "PUT /{hash} HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Length: 60000\r\n\r\n",
        s.bearer()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    let answer = s.raw(&req, true);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("Content-Length said 60000"), "{answer}");
    s.assert_clean().await;

    // Content-Length says less than the block: what arrives has another hash
    let mut req = format!(
        "PUT /{hash} HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Length: 40000\r\nConnection: close\r\n\r\n",
        s.bearer()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    let answer = s.raw(&req, false);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    s.assert_clean().await;
}

/// Sends headers (and optionally a body) on a raw socket from another thread while
/// reading the answer: the server may answer before reading everything.
fn raw_put_big(s: &crate::common::Server, head: String, body_len: usize) -> String {
    use std::io::{Read, Write};
    let mut sock = std::net::TcpStream::connect(s.addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut w = sock.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        if w.write_all(head.as_bytes()).is_err() {
            return;
        }
        let chunk = vec![b'x'; MIB];
        let mut left = body_len;
        while left > 0 {
            let n = left.min(MIB);
            if w.write_all(&chunk[..n]).is_err() {
                return;
            }
            left -= n;
        }
    });
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match sock.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        }
    }
    // shutdown (not drop): the writer's clone shares the socket, and a server that has
    // answered and stopped reading would otherwise leave it blocked forever
    let _ = sock.shutdown(std::net::Shutdown::Both);
    let _ = writer.join();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_large_is_413_and_stores_nothing() {
    let s = start(1).await;
    let hash = Hash::of(b"whatever");
    let auth = s.bearer();
    let max = BLOCK_SIZE_MAX as usize;

    // declared too large: refused before reading
    let head = format!(
        "PUT /{hash} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: {}\r\n\r\n",
        max + 1
    );
    let answer = tokio::task::block_in_place(|| raw_put_big(&s, head, max + 1));
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    s.assert_clean().await;

    // chunked, grows past the limit while streaming
    let head = format!("PUT /{hash} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nTransfer-Encoding: chunked\r\n\r\n");
    let answer = tokio::task::block_in_place(|| {
        use std::io::{Read, Write};
        let mut sock = std::net::TcpStream::connect(s.addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut w = sock.try_clone().unwrap();
        let writer = std::thread::spawn(move || {
            if w.write_all(head.as_bytes()).is_err() {
                return;
            }
            let chunk = vec![b'y'; MIB];
            for _ in 0..70 {
                let mut piece = format!("{:x}\r\n", chunk.len()).into_bytes();
                piece.extend_from_slice(&chunk);
                piece.extend_from_slice(b"\r\n");
                if w.write_all(&piece).is_err() {
                    return;
                }
            }
            let _ = w.write_all(b"0\r\n\r\n");
        });
        let mut out = vec![0u8; 4096];
        let n = sock.read(&mut out).unwrap_or(0);
        let _ = sock.shutdown(std::net::Shutdown::Both);
        let _ = writer.join();
        String::from_utf8_lossy(&out[..n]).into_owned()
    });
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    s.assert_clean().await;

    // and reqwest sees the 413 too for a declared-too-large body of exactly max + 1
    let r = tokio::time::timeout(
        Duration::from_secs(60),
        s.client
            .put(format!("{}/{hash}", s.base))
            .header("Authorization", s.bearer())
            .body(vec![0u8; max + 1])
            .send(),
    )
    .await
    .expect("a refused upload must not hang the client");
    if let Ok(r) = r {
        assert_eq!(r.status(), 413);
    }
    s.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_mid_put_leaves_nothing() {
    let s = start(1).await;
    let hash = Hash::of(b"never completed");
    let head = format!(
        "PUT /{hash} HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Length: {}\r\n\r\n",
        s.bearer(),
        10 * MIB
    );
    tokio::task::block_in_place(|| {
        use std::io::Write;
        let mut sock = std::net::TcpStream::connect(s.addr).unwrap();
        sock.write_all(head.as_bytes()).unwrap();
        sock.write_all(&vec![7u8; MIB]).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        // a temp file exists while the body is coming
        let tmp_files: usize = s
            .dirs
            .iter()
            .map(|d| std::fs::read_dir(d.path().join("tmp")).unwrap().count())
            .sum();
        assert_eq!(tmp_files, 1);
        drop(sock);
    });
    s.assert_clean().await;
    // the server still serves
    s.put_ok(bytes(10, 3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_put_only_refreshes_mtime() {
    let s = start(1).await;
    let body = bytes(40_000, 4);
    let loc = s.put_ok(body.clone()).await;
    let path = s.block_path(&loc.hash);
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap());
    let old = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let loc2 = s.put_ok(body.clone()).await;
    assert_eq!(loc2.hash, loc.hash);
    let m = std::fs::metadata(&path).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&m),
        ino,
        "the data file was not rewritten"
    );
    assert!(m.modified().unwrap() > SystemTime::now() - Duration::from_secs(60));
    // a wrong body for an existing hash is still refused
    let r = s
        .client
        .put(format!("{}/{}", s.base, loc.hash))
        .header("Authorization", s.bearer())
        .body(bytes(40_000, 5))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_signatures() {
    let s = start(1).await;
    let body = bytes(1000, 6);
    let hash = Hash::of(&body);

    // PUT without a token
    let r = s
        .client
        .put(format!("{}/{hash}", s.base))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    s.assert_clean().await;

    let loc = s.put_ok(body.clone()).await;
    let url = |l: &str| format!("{}/{l}", s.base);

    // GET without a token
    let r = s.client.get(url(&loc.to_string())).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("token"));

    // missing signature
    let r = s.get(&loc.bare()).await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("no +A signature"));

    // forged signature
    let forged = loc.bare().with_signature([0x42; 32], u32::MAX);
    let r = s.get(&forged).await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("not valid"));

    // signed for another token
    let other = keep_format::Token::generate_bare();
    let r = s
        .client
        .get(url(&loc.to_string()))
        .header("Authorization", format!("Bearer {}", other.expose()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // expired
    let past = (SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 10) as u32;
    let expired = s.signer.sign_until(&loc.bare(), &s.token, past);
    let r = s.get(&expired).await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("expired"));

    // OAuth2 scheme works too
    let r = s
        .client
        .get(url(&loc.to_string()))
        .header("Authorization", format!("OAuth2 {}", s.token.expose()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // malformed locators
    for bad in [
        "abc",
        &format!("{hash}"),
        &format!("{hash}+x"),
        &format!("{hash}+1+a"),
    ] {
        let r = s
            .client
            .get(url(bad))
            .header("Authorization", s.bearer())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        assert!(r.text().await.unwrap().contains("malformed locator"));
    }

    // unknown block, properly signed
    let unknown = s.sign(Hash::of(b"not stored"), 10);
    let r = s.get(&unknown).await;
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_volumes_spread_blocks() {
    let s = start(2).await;
    let mut locs = Vec::new();
    for i in 0..24u8 {
        locs.push((s.put_ok(bytes(1000 + i as usize, i.into())).await, i));
    }
    let count = |d: &tempfile::TempDir| {
        let mut n = 0;
        for e in std::fs::read_dir(d.path()).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.len() == 3 {
                n += std::fs::read_dir(e.path())
                    .unwrap()
                    .flatten()
                    .filter(|f| !f.file_name().to_string_lossy().ends_with(".ob"))
                    .count();
            }
        }
        n
    };
    let (a, b) = (count(&s.dirs[0]), count(&s.dirs[1]));
    assert_eq!(a + b, 24);
    assert!(a >= 3 && b >= 3, "{a} / {b}");
    for (loc, i) in locs {
        let r = s.get(&loc).await;
        assert_eq!(r.status(), 200);
        assert!(r.bytes().await.unwrap().as_ref() == bytes(1000 + i as usize, i.into()).as_slice());
    }
}
