//! The workspace's layout, checked like code: no import loop between the files of any crate (file A uses
//! an item defined in file B while B uses one defined in A). A module that only declares submodules and
//! re-exports them (a facade) is looked through: an item is attributed to the file that defines it.
//!
//! What the shim links is checked by `scripts/check-layout.sh` (it asks `cargo tree`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use regex::Regex;

/// The crates whose files are checked, by their source directory.
const CRATES: [&str; 5] = [
    "policy/src",
    "shim/protocol/src",
    "shim/src",
    "strictctl/src",
    "integration/src",
];

type ModPath = Vec<String>;

/// One file of a crate: its module path and its code, comments and literals taken out.
struct SourceFile {
    path: PathBuf,
    module: ModPath,
    code: String,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Comments, string and char literals replaced by blanks, so that only code is scanned.
fn strip(text: &str) -> String {
    let bytes = text.as_bytes();
    let raw_string = Regex::new(r##"^b?r(#*)""##).unwrap();
    let char_literal = Regex::new(r"^'(?:\\[^']{1,10}|[^\\'])'").unwrap();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').unwrap_or(rest.len());
            i += end;
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map(|e| e + 2).unwrap_or(rest.len());
            i += end;
        } else if let Some(raw) = raw_string.captures(rest) {
            let hashes = raw[1].len();
            let closing = format!("\"{}", "#".repeat(hashes));
            let start = raw[0].len();
            let end = rest[start..]
                .find(&closing)
                .map(|e| start + e + closing.len())
                .unwrap_or(rest.len());
            out.push_str("\"\"");
            i += end;
        } else if rest.starts_with('"') || rest.starts_with("b\"") {
            let mut j = if rest.starts_with('"') { 1 } else { 2 };
            let rb = rest.as_bytes();
            while j < rb.len() && rb[j] != b'"' {
                j += if rb[j] == b'\\' { 2 } else { 1 };
            }
            out.push_str("\"\"");
            i += (j + 1).min(rest.len());
        } else if let Some(m) = char_literal.find(rest) {
            out.push_str("' '");
            i += m.end();
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn module_of(root: &Path, file: &Path) -> ModPath {
    let relative = file.strip_prefix(root).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let last = parts.last().cloned().unwrap_or_default();
    if last == "mod" || (parts.len() == 1 && (last == "lib" || last == "main")) {
        parts.pop();
    }
    parts
}

/// `use` trees expanded into whole paths: `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str) -> Vec<String> {
    let tree = Regex::new(r"\s*([{},]|::)\s*")
        .unwrap()
        .replace_all(tree.trim(), "$1")
        .into_owned();
    let Some(open) = tree.find('{') else {
        // `path as alias` names what `path` names.
        return vec![tree.split(' ').next().unwrap_or(&tree).to_string()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.len().saturating_sub(1)];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(expand)
        .map(|p| {
            if p == "self" {
                prefix.trim_end_matches("::").to_string()
            } else {
                format!("{prefix}{p}")
            }
        })
        .collect()
}

/// The module a file's code is in at each byte: inline `mod NAME { ... }` blocks (tests) nest.
fn inline_module_at(code: &str) -> Vec<(usize, usize, String)> {
    let opener = Regex::new(r"\bmod\s+([A-Za-z_]\w*)\s*\{").unwrap();
    let mut blocks = Vec::new();
    for m in opener.captures_iter(code) {
        let start = m.get(0).unwrap().end();
        let mut depth = 1;
        let mut end = code.len();
        for (i, c) in code[start..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = start + i;
                        break;
                    }
                }
                _ => {}
            }
        }
        blocks.push((start, end, m[1].to_string()));
    }
    blocks
}

struct Crate {
    files: Vec<SourceFile>,
    by_module: BTreeMap<ModPath, usize>,
    /// Per file: its `pub use` re-exports, name → absolute path.
    reexports: Vec<BTreeMap<String, ModPath>>,
}

impl Crate {
    fn load(root: &Path) -> Crate {
        let mut paths = Vec::new();
        rust_files(root, &mut paths);
        paths.sort();
        let files: Vec<SourceFile> = paths
            .into_iter()
            .map(|path| SourceFile {
                module: module_of(root, &path),
                code: strip(&std::fs::read_to_string(&path).unwrap()),
                path,
            })
            .collect();
        let by_module = files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.module.clone(), i))
            .collect();
        let mut krate = Crate {
            files,
            by_module,
            reexports: Vec::new(),
        };
        let reexport = Regex::new(r"\bpub(?:\([^)]*\))?\s+use\s+([^;]+);").unwrap();
        krate.reexports = (0..krate.files.len())
            .map(|i| {
                let file = &krate.files[i];
                reexport
                    .captures_iter(&file.code)
                    .flat_map(|c| expand(&c[1]))
                    .filter_map(|p| {
                        let absolute = krate.absolute(i, &[], &p)?;
                        Some((absolute.last()?.clone(), absolute))
                    })
                    .collect()
            })
            .collect();
        krate
    }

    /// A path as written in file `i` (inside inline modules `inline`), made absolute; None for other
    /// crates' paths.
    fn absolute(&self, i: usize, inline: &[String], path: &str) -> Option<ModPath> {
        let file = &self.files[i];
        let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
        let mut base: ModPath = file.module.clone();
        base.extend(inline.iter().cloned());
        let first = *segments.first()?;
        match first {
            "crate" => {
                base.clear();
                segments.remove(0);
            }
            "self" => {
                segments.remove(0);
            }
            "super" => {
                while segments.first() == Some(&"super") {
                    segments.remove(0);
                    base.pop();
                }
            }
            name => {
                // A child module of this file, else another crate (or a local item): not followed.
                let mut child = file.module.clone();
                child.push(name.to_string());
                if !inline.is_empty() || !self.by_module.contains_key(&child) {
                    return None;
                }
            }
        }
        base.extend(segments.into_iter().map(str::to_string));
        Some(base)
    }

    /// The file that defines what an absolute path names, through facades' re-exports.
    fn defining_file(&self, path: &ModPath, depth: usize) -> Option<usize> {
        let (module_len, &file) = (0..=path.len())
            .rev()
            .find_map(|n| self.by_module.get(&path[..n]).map(|f| (n, f)))?;
        if depth < 8 && module_len < path.len() {
            if let Some(target) = self.reexports[file].get(&path[module_len]) {
                if target != path {
                    let mut through = target.clone();
                    through.extend(path[module_len + 1..].iter().cloned());
                    return self.defining_file(&through, depth + 1).or(Some(file));
                }
            }
        }
        Some(file)
    }

    /// file → the files whose items it uses.
    fn edges(&self) -> BTreeMap<usize, BTreeSet<usize>> {
        let use_decl = Regex::new(r"\buse\s+([^;]+);").unwrap();
        let qualified = Regex::new(r"\b(?:crate|super|self)(?:::(?:super|[A-Za-z_]\w*))+").unwrap();
        let mut edges: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
        for (i, file) in self.files.iter().enumerate() {
            let blocks = inline_module_at(&file.code);
            let inline_at = |at: usize| -> Vec<String> {
                blocks
                    .iter()
                    .filter(|(start, end, _)| *start <= at && at < *end)
                    .map(|(_, _, name)| name.clone())
                    .collect()
            };
            let mut used: Vec<(usize, String)> = use_decl
                .captures_iter(&file.code)
                .flat_map(|c| {
                    let at = c.get(0).unwrap().start();
                    expand(&c[1]).into_iter().map(move |p| (at, p))
                })
                .collect();
            // Paths in the code, `use` declarations blanked out (their trees were expanded above).
            let code =
                use_decl.replace_all(&file.code, |c: &regex::Captures| " ".repeat(c[0].len()));
            used.extend(
                qualified
                    .find_iter(&code)
                    .map(|m| (m.start(), m.as_str().to_string())),
            );
            // Child modules named directly (`seccomp::narrow(...)` in rules/mod.rs).
            let children: Vec<String> = self
                .by_module
                .keys()
                .filter(|m| m.len() == file.module.len() + 1 && m.starts_with(&file.module))
                .map(|m| m.last().unwrap().clone())
                .collect();
            for child in &children {
                let direct = Regex::new(&format!(r"(?:^|[^:\w]){child}::[A-Za-z_]\w*")).unwrap();
                used.extend(direct.find_iter(&file.code).map(|m| {
                    let text = m
                        .as_str()
                        .trim_start_matches(|c: char| !c.is_alphanumeric());
                    (m.start(), text.to_string())
                }));
            }
            for (at, path) in used {
                let inline = inline_at(at);
                let Some(absolute) = self.absolute(i, &inline, &path) else {
                    continue;
                };
                if let Some(target) = self.defining_file(&absolute, 0) {
                    if target != i {
                        edges.entry(i).or_default().insert(target);
                    }
                }
            }
        }
        edges
    }
}

/// The strongly connected components with more than one file (Tarjan).
fn loops(nodes: usize, edges: &BTreeMap<usize, BTreeSet<usize>>) -> Vec<Vec<usize>> {
    struct State<'a> {
        edges: &'a BTreeMap<usize, BTreeSet<usize>>,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        found: Vec<Vec<usize>>,
    }
    fn visit(s: &mut State, v: usize) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        let targets: Vec<usize> = s.edges.get(&v).into_iter().flatten().copied().collect();
        for w in targets {
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(index) if s.on_stack[w] => s.low[v] = s.low[v].min(index),
                Some(_) => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                s.found.push(component);
            }
        }
    }
    let mut state = State {
        edges,
        index: vec![None; nodes],
        low: vec![0; nodes],
        on_stack: vec![false; nodes],
        stack: Vec::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in 0..nodes {
        if state.index[v].is_none() {
            visit(&mut state, v);
        }
    }
    state.found
}

#[test]
fn no_import_loop_between_files() {
    let repo = repo();
    let mut found = Vec::new();
    for dir in CRATES {
        let krate = Crate::load(&repo.join(dir));
        let edges = krate.edges();
        for component in loops(krate.files.len(), &edges) {
            let names: Vec<String> = component
                .iter()
                .map(|&i| {
                    let file = &krate.files[i];
                    let uses: Vec<String> = edges[&i]
                        .iter()
                        .filter(|t| component.contains(t))
                        .map(|&t| {
                            krate.files[t]
                                .path
                                .strip_prefix(&repo)
                                .unwrap()
                                .display()
                                .to_string()
                        })
                        .collect();
                    format!(
                        "{} uses {}",
                        file.path.strip_prefix(&repo).unwrap().display(),
                        uses.join(", ")
                    )
                })
                .collect();
            found.push(names.join("; "));
        }
    }
    assert!(found.is_empty(), "import loops:\n{}", found.join("\n"));
}

#[test]
fn the_checker_finds_a_loop_and_looks_through_facades() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("audit")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod audit;\npub mod gate;\n").unwrap();
    // A facade: declares and re-exports only.
    std::fs::write(
        src.join("audit/mod.rs"),
        "pub mod record;\npub mod writer;\npub use record::Record;\npub use writer::AuditLog;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("audit/record.rs"),
        "pub struct Record; // uses crate::gate::Gate only in this comment\n",
    )
    .unwrap();
    std::fs::write(
        src.join("audit/writer.rs"),
        "use super::Record;\npub struct AuditLog;\nfn f() -> &'static str { \"crate::gate::x\" }\n",
    )
    .unwrap();
    std::fs::write(
        src.join("gate.rs"),
        "use crate::audit::{AuditLog, Record};\npub struct Gate;\n",
    )
    .unwrap();
    let krate = Crate::load(src);
    assert!(loops(krate.files.len(), &krate.edges()).is_empty());
    // record.rs now uses the gate, which uses the record and the writer (which uses the record): a loop
    // of three files, found through the facade.
    std::fs::write(
        src.join("audit/record.rs"),
        "pub struct Record(crate::gate::Gate);\n",
    )
    .unwrap();
    let krate = Crate::load(src);
    let found = loops(krate.files.len(), &krate.edges());
    assert_eq!(found.len(), 1);
    let mut names: Vec<String> = found[0]
        .iter()
        .map(|&i| krate.files[i].module.join("::"))
        .collect();
    names.sort();
    assert_eq!(names, ["audit::record", "audit::writer", "gate"]);
}
