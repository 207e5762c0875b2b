#![no_main]
//! WebDAV request bodies (PROPFIND, PROPPATCH, LOCK): parsing never panics, and every
//! property value PROPPATCH accepts is written back as well-formed XML that parses to
//! the same value.

use keep_format::dav::{parse_lockinfo, parse_propfind, parse_proppatch, write_prop, Update};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_propfind(data);
    let _ = parse_lockinfo(data);
    let Ok(updates) = parse_proppatch(data) else {
        return;
    };
    for u in updates {
        let Update::Set(name, prop) = u else { continue };
        // the value as PROPFIND would list it, inside a PROPPATCH of its own
        let mut xml = b"<D:propertyupdate xmlns:D=\"DAV:\"><D:set><D:prop>".to_vec();
        write_prop(&mut xml, &name, &prop);
        xml.extend_from_slice(b"</D:prop></D:set></D:propertyupdate>");
        let again = parse_proppatch(&xml).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&xml));
        });
        match &again[..] {
            [Update::Set(n2, p2)] => {
                assert_eq!(n2, &name);
                assert_eq!(p2.value, prop.value);
            }
            other => panic!("{other:?}"),
        }
    }
});
