//! Writing XML text: the multistatus bodies are built directly, escaped here.

/// Appends `text` as XML character data: `&`, `<` and `>` escaped; quotes are left
/// as they are (legal in text, and clients compare `getetag` byte for byte). A CR is
/// written `&#13;` so that parsers don't turn it into LF; control characters XML 1.0
/// cannot carry at all (a manifest name may hold them, written `\001`) become U+FFFD,
/// so that one odd name can't make a whole listing unparsable (its href, %-encoded,
/// still names it exactly).
pub fn push_text(buf: &mut Vec<u8>, text: &str) {
    let special = |c: char| matches!(c, '&' | '<' | '>' | '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{d}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}');
    // fast path on bytes; 0xEF leads U+FFFE/U+FFFF in UTF-8 (and other, fine, chars)
    let maybe = |b: &u8| {
        matches!(b, b'&' | b'<' | b'>' | 0xEF) || (*b < 0x20 && *b != b'\t' && *b != b'\n')
    };
    if !text.as_bytes().iter().any(maybe) || !text.chars().any(special) {
        buf.extend_from_slice(text.as_bytes());
        return;
    }
    let mut tmp = [0u8; 4];
    for c in text.chars() {
        match c {
            '&' => buf.extend_from_slice(b"&amp;"),
            '<' => buf.extend_from_slice(b"&lt;"),
            '>' => buf.extend_from_slice(b"&gt;"),
            '\r' => buf.extend_from_slice(b"&#13;"),
            c if special(c) => buf.extend_from_slice("\u{fffd}".as_bytes()),
            c => buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes()),
        }
    }
}

/// `<tag>text</tag>`, the text escaped.
pub fn push_elem(buf: &mut Vec<u8>, tag: &str, text: &str) {
    buf.push(b'<');
    buf.extend_from_slice(tag.as_bytes());
    buf.push(b'>');
    push_text(buf, text);
    buf.extend_from_slice(b"</");
    buf.extend_from_slice(tag.as_bytes());
    buf.push(b'>');
}

/// The XML declaration and the opening of a `DAV:multistatus`.
pub const MULTISTATUS_HEAD: &[u8] =
    b"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:multistatus xmlns:D=\"DAV:\">\n";
