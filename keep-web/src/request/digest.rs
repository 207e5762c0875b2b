//! The digests a PUT's headers claim for its body (`Content-MD5`; RFC 9530
//! `Content-Digest: sha-256=:…:`; RFC 3230 `Digest: SHA-256=…`), checked once the whole
//! body has arrived.

use actix_web::HttpRequest;
use base64::Engine;
use md5::Digest as _;

use crate::error::Error;
use crate::request::headers;

/// The `sha-256=<value>` item of a digest header (`Content-Digest` or `Digest`).
fn sha256_item<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    headers::get(req, name)?
        .split(',')
        .filter_map(|item| item.trim().split_once('='))
        .find(|(alg, _)| alg.trim().eq_ignore_ascii_case("sha-256"))
        .map(|(_, v)| v.trim())
}

fn b64(s: &str, what: &str) -> Result<Vec<u8>, Error> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|_| Error::BadRequest(format!("{what} is not base64: {s:?}")))
}

/// Digests the client asked us to check the body against.
pub struct Digests {
    md5: Option<(md5::Md5, Vec<u8>)>,
    sha256: Option<(sha2::Sha256, Vec<u8>)>,
}

impl Digests {
    pub fn from(req: &HttpRequest) -> Result<Digests, Error> {
        let md5 = match headers::get(req, "content-md5") {
            Some(v) => {
                let want = b64(v, "Content-MD5")?;
                if want.len() != 16 {
                    return Err(Error::BadRequest(
                        "Content-MD5 must be the base64 of 16 bytes".into(),
                    ));
                }
                Some((md5::Md5::new(), want))
            }
            None => None,
        };
        let sha = match sha256_item(req, "content-digest") {
            Some(v) => Some(b64(v.trim_matches(':'), "Content-Digest sha-256")?),
            None => match sha256_item(req, "digest") {
                Some(v) => Some(b64(v, "Digest SHA-256")?),
                None => None,
            },
        };
        if sha.as_ref().is_some_and(|s| s.len() != 32) {
            return Err(Error::BadRequest(
                "the sha-256 digest must be the base64 of 32 bytes".into(),
            ));
        }
        Ok(Digests {
            md5,
            sha256: sha.map(|w| (sha2::Sha256::new(), w)),
        })
    }

    pub fn update(&mut self, b: &[u8]) {
        if let Some((h, _)) = &mut self.md5 {
            h.update(b);
        }
        if let Some((h, _)) = &mut self.sha256 {
            h.update(b);
        }
    }

    pub fn check(self) -> Result<(), Error> {
        let same = |alg: &str, header: &str, got: &[u8], want: &[u8]| {
            if got == want {
                return Ok(());
            }
            let enc = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
            Err(Error::BadRequest(format!(
                "the body's {alg} is {} but {header} says {}: nothing was stored",
                enc(got),
                enc(want)
            )))
        };
        if let Some((h, want)) = self.md5 {
            same("MD5", "Content-MD5", &h.finalize(), &want)?;
        }
        if let Some((h, want)) = self.sha256 {
            same("sha-256", "the request's digest", &h.finalize(), &want)?;
        }
        Ok(())
    }
}
