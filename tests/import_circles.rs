//! The files of src/ import each other without a circle: each layer (api, desired, judge, aws,
//! engine, controller, drift_events, runtime, cli) reads only from those below it, so any file
//! can be read, tested and moved with what it imports and nothing that imports it.
//!
//! A file depends on another when it names it by a `crate::` or `super::` path (in a `use`, a
//! group `use crate::{a, b::c}`, or a path written out in code), mapped to the longest module
//! path that is a file; its tests (from `#[cfg(test)]` on) are left out. `mod` declarations and
//! a directory module's re-exports of its children (`pub use calls::CallRecorder;`) are the
//! tree itself, not imports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module, by its path from the crate root (`["engine", "account"]`).
type Module = Vec<String>;
/// Each module with the modules it depends on.
type Graph = BTreeMap<Module, BTreeSet<Module>>;

/// The module path of each .rs file under `src` (`aws/mod.rs` -> `aws`, `lib.rs` -> the root).
/// main.rs is another crate (the binary) and is left out.
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("src/ is readable").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(src, &mut files);
    files
        .into_iter()
        .filter(|f| f.strip_prefix(src).ok() != Some(Path::new("main.rs")))
        .map(|f| {
            let relative = f.strip_prefix(src).expect("under src").with_extension("");
            let mut parts: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().to_string())
                .collect();
            if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
                parts.pop();
            }
            (parts, f)
        })
        .collect()
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The paths a use tree starting at `text` names (`a::b`, `{a, b::{c, d}}`), each as segments.
/// Returns them and how many bytes were read.
fn use_tree(text: &str) -> (Vec<Vec<String>>, usize) {
    let bytes: Vec<char> = text.chars().collect();
    fn parse(chars: &[char], mut i: usize) -> (Vec<Vec<String>>, usize) {
        let mut prefix = Vec::new();
        loop {
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            if i < chars.len() && chars[i] == '{' {
                i += 1;
                let mut paths = Vec::new();
                loop {
                    while i < chars.len() && (chars[i].is_whitespace() || chars[i] == ',') {
                        i += 1;
                    }
                    if i >= chars.len() || chars[i] == '}' {
                        i += 1;
                        break;
                    }
                    let (inner, next) = parse(chars, i);
                    if next == i {
                        // Not a path (`*`, `self as x`): skip one character.
                        i += 1;
                        continue;
                    }
                    i = next;
                    for p in inner {
                        let mut full = prefix.clone();
                        full.extend(p);
                        paths.push(full);
                    }
                }
                return (paths, i);
            }
            let start = i;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            if i == start {
                return (vec![prefix], i);
            }
            prefix.push(chars[start..i].iter().collect());
            if i + 1 < chars.len() && chars[i] == ':' && chars[i + 1] == ':' {
                i += 2;
            } else {
                return (vec![prefix], i);
            }
        }
    }
    let (paths, read) = parse(&bytes, 0);
    let read_bytes = bytes[..read.min(bytes.len())].iter().map(|c| c.len_utf8()).sum();
    (paths, read_bytes)
}

/// The files `module`'s text depends on.
fn dependencies(module: &[String], text: &str, files: &BTreeMap<Vec<String>, PathBuf>) -> BTreeSet<Vec<String>> {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut found = BTreeSet::new();
    let mut at = 0;
    while let Some(offset) = text[at..].find("::") {
        let colons = at + offset;
        at = colons + 2;
        // The keyword before `::`, and a path that starts with it (not `foo_crate::`).
        let before = &text[..colons];
        let keyword_start = before.trim_end_matches(is_ident).len();
        let keyword = &before[keyword_start..];
        if before[..keyword_start].ends_with(|c: char| is_ident(c) || c == ':') {
            continue;
        }
        let mut base: Vec<String> = match keyword {
            "crate" => Vec::new(),
            "super" => module[..module.len().saturating_sub(1)].to_vec(),
            _ => continue,
        };
        let mut rest = &text[at..];
        while let Some(after) = rest.strip_prefix("super::") {
            base.pop();
            rest = after;
            at += "super::".len();
        }
        let (paths, read) = use_tree(rest);
        at += read;
        for path in paths {
            let mut full = base.clone();
            full.extend(path);
            let target = (0..=full.len())
                .rev()
                .map(|k| full[..k].to_vec())
                .find(|prefix| files.contains_key(prefix));
            if let Some(target) = target
                && target != module
            {
                found.insert(target);
            }
        }
    }
    found
}

/// Each circle once, as the files in it.
fn circles(graph: &Graph) -> Vec<Vec<Module>> {
    // Tarjan's strongly connected components.
    struct State<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        on_stack: BTreeSet<&'a Vec<String>>,
        out: Vec<Vec<Vec<String>>>,
    }
    fn strong<'a>(s: &mut State<'a>, v: &'a Vec<String>) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        let graph = s.graph;
        for w in graph.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                strong(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !state.index.contains_key(v) {
            strong(&mut state, v);
        }
    }
    state.out
}

fn graph_of(src: &Path) -> (Graph, BTreeMap<Module, PathBuf>) {
    let files = modules(src);
    let graph = files
        .iter()
        .map(|(module, path)| {
            let text = std::fs::read_to_string(path).expect("a source file is readable");
            (module.clone(), dependencies(module, &text, &files))
        })
        .collect();
    (graph, files)
}

#[test]
fn no_file_of_src_imports_a_file_that_imports_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let (graph, files) = graph_of(&src);
    assert!(files.len() > 50, "src/ was read: {} files", files.len());
    let found = circles(&graph);
    let described: Vec<String> = found
        .iter()
        .map(|c| {
            c.iter()
                .map(|m| files[m].strip_prefix(&src).unwrap_or(&files[m]).display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    assert!(
        described.is_empty(),
        "import circles among src's files:\n{}",
        described.join("\n")
    );
}

/// The check itself finds circles, through group imports and `super::` paths alike.
#[test]
fn a_circle_through_a_group_import_or_super_is_found() {
    let dir = std::env::temp_dir().join(format!("trailkeeper-circles-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("engine")).unwrap();
    std::fs::write(dir.join("lib.rs"), "pub mod engine;\npub mod report;\n").unwrap();
    std::fs::write(dir.join("engine/mod.rs"), "pub mod account;\npub mod regional;\n").unwrap();
    std::fs::write(
        dir.join("engine/account.rs"),
        "use crate::{report::Report, engine::{regional::{self, Part}}};\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("engine/regional.rs"),
        "fn f() -> super::account::Run { todo!() }\n",
    )
    .unwrap();
    std::fs::write(dir.join("report.rs"), "pub struct Report;\n").unwrap();
    let (graph, _) = graph_of(&dir);
    let account = vec!["engine".to_string(), "account".to_string()];
    let regional = vec!["engine".to_string(), "regional".to_string()];
    assert_eq!(
        graph[&account],
        BTreeSet::from([vec!["report".to_string()], regional.clone()])
    );
    assert_eq!(circles(&graph), vec![vec![account, regional]]);
    // Written in tests only (after #[cfg(test)]), the import back is no circle.
    std::fs::write(
        dir.join("engine/regional.rs"),
        "#[cfg(test)]\nfn f() -> super::account::Run { todo!() }\n",
    )
    .unwrap();
    let (graph, _) = graph_of(&dir);
    assert!(circles(&graph).is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
