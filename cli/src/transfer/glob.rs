//! `--exclude` patterns with arv-put's rules: a pattern without `/` (`*.tmp`) matches a
//! file or directory name anywhere; a pattern with `/` (`sub/*.txt`, `./top.gif`) matches
//! the path relative to the input directory. `*` and `?` never match `/`; `[abc]`,
//! `[a-z]` and `[!x]` are character classes.

#[derive(Debug, Clone)]
pub struct Exclude {
    pattern: Vec<char>,
    is_path: bool,
}

impl Exclude {
    pub fn new(p: &str) -> Exclude {
        let p = p.trim_end_matches('/');
        let is_path = p.contains('/');
        let p = p.strip_prefix("./").unwrap_or(p);
        Exclude {
            pattern: p.chars().collect(),
            is_path,
        }
    }

    /// `rel` is the path relative to the input directory (no leading `./`).
    pub fn matches(&self, rel: &str) -> bool {
        if self.is_path {
            let s: Vec<char> = rel.chars().collect();
            glob(&self.pattern, &s)
        } else {
            let name = rel.rsplit('/').next().unwrap_or(rel);
            let s: Vec<char> = name.chars().collect();
            glob(&self.pattern, &s)
        }
    }
}

/// Does any pattern exclude `rel`?
pub fn excluded(pats: &[Exclude], rel: &str) -> bool {
    pats.iter().any(|p| p.matches(rel))
}

fn glob(p: &[char], s: &[char]) -> bool {
    // iterative matcher with single-star backtracking, '*' not crossing '/'
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, si));
                    pi += 1;
                    continue;
                }
                '?' if s[si] != '/' => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                '[' => {
                    if let Some((ok, next)) = class(&p[pi..], s[si]) {
                        if ok {
                            pi += next;
                            si += 1;
                            continue;
                        }
                    } else if s[si] == '[' {
                        pi += 1;
                        si += 1;
                        continue;
                    }
                }
                '\\' if pi + 1 < p.len() && p[pi + 1] == s[si] => {
                    pi += 2;
                    si += 1;
                    continue;
                }
                c if c == s[si] && c != '?' => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, ss)) if s[ss] != '/' => {
                star = Some((sp, ss + 1));
                pi = sp + 1;
                si = ss + 1;
            }
            _ => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Matches `c` against the class starting at `p[0] == '['`: (matched, pattern length).
fn class(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut ok = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            return Some((ok != negate && c != '/', i + 1));
        }
        first = false;
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            if p[i] <= c && c <= p[i + 2] {
                ok = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                ok = true;
            }
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        let t = Exclude::new("*.txt");
        assert!(t.matches("a.txt"));
        assert!(t.matches("d/e/a.txt"));
        assert!(!t.matches("a.txt.gz"));
        let p = Exclude::new("sub/*.txt");
        assert!(p.matches("sub/a.txt"));
        assert!(!p.matches("x/sub/a.txt"));
        assert!(!p.matches("sub/d/a.txt"));
        let top = Exclude::new("./top.gif");
        assert!(top.matches("top.gif"));
        assert!(!top.matches("d/top.gif"));
        let c = Exclude::new("f[0-9]?");
        assert!(c.matches("f1x"));
        assert!(!c.matches("fax"));
        assert!(Exclude::new("[!a]*").matches("b"));
        assert!(!Exclude::new("[!a]*").matches("ab"));
        assert!(Exclude::new("*").matches("anything"));
        assert!(Exclude::new("a*b*c").matches("axxbyyc"));
        assert!(!Exclude::new("a*b*c").matches("axxbyy"));
    }
}
