//! keepstore on two directory volumes in a temp directory, no API (signatures alone
//! decide reads), a few blocks stored; its router driven in process.

use std::time::{Duration, SystemTime};

use actix_web::App;
use keep_format::{BlobSigner, Hash, Locator, SigningKey, Token};
use keepstore::{Config, Keepstore};

use super::{block_on, check, check_health, send, test_request, Answer, Table};
use crate::req::{Rendered, Request};
use crate::words::{KEEPSTORE, KEEPSTORE_BODIES};

pub const KEY: &str = "fuzz-signing-key";
const ADMIN: &str = "ksadminfuzz0123456789";
const MGMT: &str = "mgmtfuzz0123456789";
const TOK_A: &str = "v2/zzzzz-gj3su-000000000000001/secretaaaaaaaaaaaaaaaaaaaaaaa";
const TOK_B: &str = "v2/zzzzz-gj3su-000000000000002/secretbbbbbbbbbbbbbbbbbbbbbbb";

pub struct World {
    ks: Keepstore,
    pub words: Vec<String>,
    pub bodies: Vec<Vec<u8>>,
    blocks: Vec<Vec<u8>>,
    inputs: u64,
    _dir: tempfile::TempDir,
}

fn signer() -> BlobSigner {
    BlobSigner::new(SigningKey::new(KEY), Duration::from_secs(3600))
}

impl World {
    pub fn new() -> World {
        super::log_panics();
        let dir = tempfile::tempdir().expect("temp dir");
        let v1 = dir.path().join("v1");
        let v2 = dir.path().join("v2");
        let ks = Keepstore::open(Config::new(
            vec![v1.into(), v2.into()],
            signer(),
            ADMIN.into(),
            MGMT.into(),
        ))
        .expect("keepstore opens");
        let s = signer();
        let a: Token = TOK_A.parse().expect("token");
        let b: Token = TOK_B.parse().expect("token");
        let hello = b"hello world\n".to_vec();
        let x1000 = vec![b'x'; 1000];
        let hl = Locator::new(Hash::of(&hello), hello.len() as u64);
        let xl = Locator::new(Hash::of(&x1000), x1000.len() as u64);
        let absent = Locator::new(Hash::of(b"absent"), 6);
        let now = SystemTime::now();
        let mut t = Table::new(KEEPSTORE);
        t.set("empty", "");
        t.set("tok_a", TOK_A);
        t.set("tok_b", TOK_B);
        t.set("admin", ADMIN);
        t.set("mgmt", MGMT);
        t.set("hello_hash", hl.hash.to_string());
        t.set("hello_bare", hl.to_string());
        t.set("hello_signed_a", s.sign(&hl, &a, now).to_string());
        t.set("hello_signed_b", s.sign(&hl, &b, now).to_string());
        t.set("hello_expired_a", s.sign_until(&hl, &a, 1000).to_string());
        t.set("x1000_signed_a", s.sign(&xl, &a, now).to_string());
        t.set("x1000_hash", xl.hash.to_string());
        t.set(
            "empty_signed_a",
            s.sign(&Locator::empty(), &a, now).to_string(),
        );
        t.set("absent_hash", absent.hash.to_string());
        t.set("absent_signed_a", s.sign(&absent, &a, now).to_string());
        t.set("hello_prefix", hl.hash.to_string()[..3].to_string());
        let signed = s.sign(&hl, &a, now).to_string();
        t.set("hello_signed_a_hint", format!("{signed}+Kzzzzz"));
        // a signature one hex digit off
        let mut bad = signed.clone().into_bytes();
        let n = bad.len() - 12;
        bad[n] = if bad[n] == b'0' { b'1' } else { b'0' };
        t.set("hello_signed_a_bad", bad);
        let words = t.words();

        let mut bt = Table::new(KEEPSTORE_BODIES);
        bt.set("hello", hello.clone());
        bt.set("x1000", x1000.clone());
        bt.set(
            "trash_hello",
            format!(r#"[{{"locator":"{hl}","block_mtime":0}}]"#),
        );
        bt.set(
            "pull_hello",
            format!(r#"[{{"locator":"{hl}","servers":["http://127.0.0.1:9"]}}]"#),
        );
        bt.set("trash_bad", r#"[{"locator":"zz","block_mtime":-1},{}]"#);
        bt.set("pull_bad", r#"[{"locator":"","servers":[""]}]"#);
        let w = World {
            ks,
            words,
            bodies: bt.all(),
            blocks: vec![hello, x1000],
            inputs: 0,
            _dir: dir,
        };
        w.restore();
        w
    }

    fn app_call(&self, r: &Rendered) -> Option<Answer> {
        let t = test_request(r, "127.0.0.1:25107")?;
        let ks = self.ks.clone();
        Some(block_on(async move {
            let app =
                actix_web::test::init_service(App::new().configure(|c| ks.configure(c))).await;
            send(&app, t.to_request()).await
        }))
    }

    fn simple(method: &str, uri: &str, token: &str, body: Vec<u8>) -> Rendered {
        Rendered {
            method: method.as_bytes().to_vec(),
            uri: uri.into(),
            host: None,
            headers: vec![(
                b"authorization".to_vec(),
                format!("Bearer {token}").into_bytes(),
            )],
            body,
        }
    }

    /// Puts the seed blocks back (an input may have trashed them).
    fn restore(&self) {
        for b in &self.blocks {
            let r = Self::simple("PUT", &format!("/{}", Hash::of(b)), TOK_A, b.clone());
            let a = self.app_call(&r).expect("a valid request");
            assert_eq!(
                a.status,
                200,
                "storing a seed block: {}",
                String::from_utf8_lossy(&a.body)
            );
        }
    }

    pub fn run(&mut self, input: &Request) {
        self.inputs += 1;
        let r = input.render(&self.words, &self.bodies);
        if let Some(a) = self.app_call(&r) {
            check("keepstore", &r, &a);
        }
        let h = Self::simple("GET", "/_health/ping", MGMT, Vec::new());
        let a = self.app_call(&h).expect("a valid request");
        check_health("keepstore", &a, &r);
        if self.inputs.is_multiple_of(64) {
            self.restore();
        }
    }
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}
