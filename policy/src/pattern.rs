//! Host path handling: lexical normalisation and component-wise glob patterns.
//!
//! Paths are compared component by component, never as strings, so `/home/a` never matches `/home/ab`.

use std::fmt;
use std::path::{Component, Path, PathBuf};

/// Normalises an absolute path lexically: repeated and trailing slashes and `.` disappear. A `..` is not
/// resolved here (that needs the host's symlinks): `None` means the path is relative or contains `..`.
pub fn normalize_lexically(path: &Path) -> Option<PathBuf> {
    if !path.is_absolute() {
        return None;
    }
    if is_normal(path) {
        return Some(path.to_path_buf());
    }
    let mut out = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => out.push(part),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// True when an absolute path is already in the form [`normalize_lexically`] gives: `/`, or `/` followed by
/// components that are neither empty, `.` nor `..`, with no trailing slash.
fn is_normal(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    if bytes == b"/" {
        return true;
    }
    let Some(rest) = bytes.strip_prefix(b"/") else {
        return false;
    };
    rest.split(|b| *b == b'/')
        .all(|part| !part.is_empty() && part != b"." && part != b"..")
}

/// True when `inner` is `outer` or lies below it (component-wise).
pub fn is_within(inner: &Path, outer: &Path) -> bool {
    inner.starts_with(outer)
}

#[derive(Clone, Debug)]
enum Part {
    Literal(String),
    /// `*` alone: any component that does not start with a dot (what `glob` answers, without its cost).
    Star,
    Glob(glob::Pattern),
}

/// The normal components of a path, as bytes: paths here are absolute and normalised, and splitting on
/// '/' is much cheaper than `Path::components` on the create path.
fn components(path: &Path) -> impl Iterator<Item = &[u8]> {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str()
        .as_bytes()
        .split(|b| *b == b'/')
        .filter(|part| !part.is_empty() && *part != b".")
}

/// Up to this many components a path is split on the stack.
const INLINE_COMPONENTS: usize = 24;

/// A path split into its normal components once, to be matched against many patterns.
pub(crate) struct SplitPath<'a> {
    len: usize,
    inline: [&'a [u8]; INLINE_COMPONENTS],
    spill: Vec<&'a [u8]>,
}

impl<'a> SplitPath<'a> {
    pub(crate) fn new(path: &'a Path) -> Self {
        let mut split = SplitPath {
            len: 0,
            inline: [&[]; INLINE_COMPONENTS],
            spill: Vec::new(),
        };
        use std::os::unix::ffi::OsStrExt;
        // As `components`, in one pass over the bytes.
        let bytes = path.as_os_str().as_bytes();
        let mut start = 0;
        for end in memchr_slashes(bytes).chain(std::iter::once(bytes.len())) {
            let component = &bytes[start..end];
            start = end + 1;
            if !component.is_empty() && component != b"." {
                split.push(component);
            }
        }
        split
    }

    fn push(&mut self, component: &'a [u8]) {
        if self.len < INLINE_COMPONENTS {
            self.inline[self.len] = component;
        } else {
            if self.spill.is_empty() {
                self.spill.extend_from_slice(&self.inline);
            }
            self.spill.push(component);
        }
        self.len += 1;
    }

    pub(crate) fn as_slice(&self) -> &[&'a [u8]] {
        if self.len <= INLINE_COMPONENTS {
            &self.inline[..self.len]
        } else {
            &self.spill
        }
    }
}

/// The positions of the slashes in `bytes`.
fn memchr_slashes(bytes: &[u8]) -> impl Iterator<Item = usize> + '_ {
    bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'/')
        .map(|(i, _)| i)
}

impl Part {
    fn matches(&self, component: &[u8]) -> bool {
        match self {
            Part::Literal(literal) => literal.as_bytes() == component,
            Part::Star => {
                component.first() != Some(&b'.') && std::str::from_utf8(component).is_ok()
            }
            Part::Glob(pattern) => std::str::from_utf8(component).is_ok_and(|component| {
                pattern.matches_with(
                    component,
                    glob::MatchOptions {
                        case_sensitive: true,
                        require_literal_separator: true,
                        require_literal_leading_dot: true,
                    },
                )
            }),
        }
    }
}

/// An absolute path whose components may be globs (`*`, `?`, `[a-z]`, `[!.]*`). A leading dot is never
/// matched by a wildcard, as in a shell: `/home/*/*` does not cover `/home/alice/.ssh`.
#[derive(Clone)]
pub struct PathPattern {
    text: String,
    parts: Vec<Part>,
}

impl PathPattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        let path = Path::new(text);
        if !path.is_absolute() {
            return Err(format!("path pattern {text:?} is not absolute"));
        }
        let mut parts = Vec::new();
        for component in path.components() {
            match component {
                Component::RootDir | Component::CurDir => {}
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(format!("path pattern {text:?} contains '..'"));
                }
                Component::Normal(part) => {
                    let part = part
                        .to_str()
                        .ok_or_else(|| format!("path pattern {text:?} is not UTF-8"))?;
                    if part == "*" {
                        parts.push(Part::Star);
                    } else if part.contains(['*', '?', '[']) {
                        let glob = glob::Pattern::new(part)
                            .map_err(|e| format!("path pattern {text:?}: {e}"))?;
                        parts.push(Part::Glob(glob));
                    } else {
                        parts.push(Part::Literal(part.to_string()));
                    }
                }
            }
        }
        Ok(PathPattern {
            text: text.to_string(),
            parts,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// True when `path` (normalised, absolute) is matched by the pattern or lies below a match.
    pub fn covers(&self, path: &Path) -> bool {
        let mut components = components(path);
        for part in &self.parts {
            match components.next() {
                Some(component) if part.matches(component) => {}
                _ => return false,
            }
        }
        true
    }

    /// [`Self::covers`] on a path already split.
    pub(crate) fn covers_split(&self, path: &SplitPath) -> bool {
        let components = path.as_slice();
        components.len() >= self.parts.len()
            && self
                .parts
                .iter()
                .zip(components)
                .all(|(part, component)| part.matches(component))
    }

    /// True when `path` is matched exactly (not below a match): used for device nodes.
    pub fn matches_exactly(&self, path: &Path) -> bool {
        let count = components(path).count();
        count == self.parts.len() && self.covers(path)
    }

    /// True when the pattern could match something at or below `path`: used to tell whether a mount of
    /// `path` would expose a protected location below it.
    pub fn lies_below(&self, path: &Path) -> bool {
        components(path).count() < self.parts.len()
            && components(path)
                .zip(&self.parts)
                .all(|(component, part)| part.matches(component))
    }

    /// [`Self::lies_below`] on a path already split.
    pub(crate) fn lies_below_split(&self, path: &SplitPath) -> bool {
        let components = path.as_slice();
        components.len() < self.parts.len()
            && components
                .iter()
                .zip(&self.parts)
                .all(|(component, part)| part.matches(component))
    }
}

impl fmt::Debug for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for PathPattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        PathPattern::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathPattern {
        PathPattern::parse(s).unwrap()
    }

    #[test]
    fn normalisation() {
        assert_eq!(
            normalize_lexically(Path::new("//etc/")),
            Some(PathBuf::from("/etc"))
        );
        assert_eq!(
            normalize_lexically(Path::new("/a/./b//c/")),
            Some(PathBuf::from("/a/b/c"))
        );
        assert_eq!(
            normalize_lexically(Path::new("/home/alice/../../etc")),
            None
        );
        assert_eq!(normalize_lexically(Path::new("etc")), None);
        for path in [
            "/",
            "/.",
            "/a/.",
            "/a/",
            "//a",
            "/a//b",
            "/a/./b",
            "/a/..",
            "/a/b..c/.d",
            "/ab/c",
        ] {
            let slow = {
                let mut out = PathBuf::from("/");
                let mut ok = true;
                for c in Path::new(path).components() {
                    match c {
                        Component::RootDir | Component::CurDir => {}
                        Component::Normal(part) => out.push(part),
                        _ => ok = false,
                    }
                }
                ok.then_some(out)
            };
            assert_eq!(normalize_lexically(Path::new(path)), slow, "{path}");
            assert_eq!(
                normalize_lexically(Path::new(path)).map(|p| p.into_os_string()),
                slow.map(|p| p.into_os_string()),
                "{path}"
            );
        }
    }

    #[test]
    fn components_not_strings() {
        assert!(p("/home/a").covers(Path::new("/home/a")));
        assert!(p("/home/a").covers(Path::new("/home/a/b")));
        assert!(!p("/home/a").covers(Path::new("/home/ab")));
        assert!(!p("/home/a").covers(Path::new("/home")));
        assert!(p("/").covers(Path::new("/etc")));
    }

    #[test]
    fn globs_skip_hidden_entries() {
        let home = p("/home/*/[!.]*");
        assert!(home.covers(Path::new("/home/alice/Music")));
        assert!(home.covers(Path::new("/home/alice/Music/.hidden-inside-is-fine")));
        assert!(!home.covers(Path::new("/home/alice")));
        assert!(!home.covers(Path::new("/home/alice/.ssh")));
        assert!(!p("/home/*/*").covers(Path::new("/home/alice/.ssh")));
    }

    #[test]
    fn exact_and_below() {
        assert!(p("/dev/sd[a-z]").matches_exactly(Path::new("/dev/sda")));
        assert!(!p("/dev/sd[a-z]").matches_exactly(Path::new("/dev/sda1")));
        assert!(!p("/dev/sd[a-z]").matches_exactly(Path::new("/dev/sda/x")));
        assert!(p("/etc/kubernetes").lies_below(Path::new("/etc")));
        assert!(p("/proc/*/root").lies_below(Path::new("/proc")));
        assert!(!p("/etc/kubernetes").lies_below(Path::new("/etc/kubernetes")));
        assert!(!p("/etc/kubernetes").lies_below(Path::new("/var")));
    }

    #[test]
    fn a_lone_star_answers_as_glob_does() {
        let glob = glob::Pattern::new("*").unwrap();
        let options = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: true,
        };
        for component in ["a", ".a", "..", "a.b", "é", "-", "*", " "] {
            assert_eq!(
                Part::Star.matches(component.as_bytes()),
                glob.matches_with(component, options),
                "{component:?}"
            );
        }
        assert!(!Part::Star.matches(b"\xff"));
    }

    #[test]
    fn split_paths_answer_as_paths_do() {
        let long = format!("/{}", vec!["x"; 40].join("/"));
        let patterns = [
            "/",
            "/home/*/[!.]*",
            "/home/a",
            "/x/x/*",
            "/etc/kubernetes",
            "/proc/*/root",
        ];
        let paths = [
            "/",
            "/home/alice/Music",
            "/home/alice/.ssh",
            "/home/a",
            "/home//a/./b/",
            "/home",
            "/etc",
            "/x/x/x",
            "/proc",
            "/proc/1/root/etc",
            long.as_str(),
        ];
        for pattern in patterns {
            let pattern = p(pattern);
            for path in paths {
                let path = Path::new(path);
                let split = SplitPath::new(path);
                assert_eq!(
                    pattern.covers(path),
                    pattern.covers_split(&split),
                    "{pattern} {path:?}"
                );
                assert_eq!(
                    pattern.lies_below(path),
                    pattern.lies_below_split(&split),
                    "{pattern} {path:?}"
                );
            }
        }
    }

    #[test]
    fn rejects_bad_patterns() {
        assert!(PathPattern::parse("relative").is_err());
        assert!(PathPattern::parse("/a/../b").is_err());
        assert!(PathPattern::parse("/a/[").is_err());
    }
}
