//! The files of src/ import each other without a circle, and each folder reads only from the
//! floors below its own (`FLOORS`): the house reads in run order, from `cli` and `operator` at the
//! top down to `api` and `fence` on the ground, so any file can be read, tested and moved with what
//! it imports and nothing that imports it. No SDK type (`aws_sdk_*`) is named outside src/aws/.
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

/// The floors of src/, from the ground up: a top-level module imports only from floors below its
/// own (modules on one floor do not import each other). A new top-level module must be given one.
const FLOORS: &[&[&str]] = &[
    &["api", "fence", "progress"],
    &["runtime"],
    &["desired"],
    &["manifests", "aws"],
    &["judge"],
    &["engine"],
    &["drift_events"],
    &["controller"],
    &["operator"],
    &["cli"],
];

fn floor_of(top: &str) -> Option<usize> {
    FLOORS.iter().position(|floor| floor.contains(&top))
}

/// Each import of `graph` that does not run down the floors (`from -> to`), and each top-level
/// module that stands on no floor. Test files (`tests.rs`, `*_tests.rs`: modules compiled under
/// `#[cfg(test)]` only) may read from any floor.
fn imports_running_up(graph: &Graph, files: &BTreeMap<Module, PathBuf>, src: &Path) -> Vec<String> {
    let name = |m: &Module| files[m].strip_prefix(src).unwrap_or(&files[m]).display().to_string();
    let mut found = Vec::new();
    for (module, dependencies) in graph {
        let Some(top) = module.first() else { continue };
        if module.last().is_some_and(|m| m == "tests" || m.ends_with("_tests")) {
            continue;
        }
        let Some(floor) = floor_of(top) else {
            found.push(format!("{} stands on no floor of FLOORS", name(module)));
            continue;
        };
        for dependency in dependencies {
            let Some(to) = dependency.first() else { continue };
            if to == top {
                continue;
            }
            if floor_of(to).is_none_or(|to_floor| to_floor >= floor) {
                found.push(format!("{} -> {}", name(module), name(dependency)));
            }
        }
    }
    found
}

#[test]
fn no_import_of_src_runs_back_up_the_floors() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let (graph, files) = graph_of(&src);
    let found = imports_running_up(&graph, &files, &src);
    assert!(
        found.is_empty(),
        "imports that run back up the floors of src/ (see FLOORS):\n{}",
        found.join("\n")
    );
}

/// The check itself finds an import from a lower floor to a higher one, and a module on no floor.
#[test]
fn an_import_running_up_or_a_module_on_no_floor_is_found() {
    let dir = std::env::temp_dir().join(format!("trailkeeper-floors-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("runtime")).unwrap();
    std::fs::write(
        dir.join("lib.rs"),
        "pub mod api;\npub mod runtime;\npub mod controller;\n",
    )
    .unwrap();
    std::fs::write(dir.join("api.rs"), "pub struct Kind;\n").unwrap();
    std::fs::write(dir.join("runtime/mod.rs"), "pub mod metrics;\n").unwrap();
    std::fs::write(
        dir.join("runtime/metrics.rs"),
        "use crate::api::Kind;\nuse crate::{controller::Context};\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("controller.rs"),
        "use crate::runtime::metrics;\npub struct Context;\n",
    )
    .unwrap();
    let (graph, files) = graph_of(&dir);
    assert_eq!(
        imports_running_up(&graph, &files, &dir),
        vec!["runtime/metrics.rs -> controller.rs".to_string()]
    );
    std::fs::write(dir.join("lib.rs"), "pub mod api;\npub mod attic;\n").unwrap();
    std::fs::write(dir.join("attic.rs"), "use crate::api::Kind;\n").unwrap();
    let (graph, files) = graph_of(&dir);
    assert!(imports_running_up(&graph, &files, &dir).contains(&"attic.rs stands on no floor of FLOORS".to_string()));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `aws_sdk_*` paths named in a file's text before its tests.
fn sdk_paths(text: &str) -> BTreeSet<String> {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut found = BTreeSet::new();
    let mut at = 0;
    while let Some(offset) = text[at..].find("aws_sdk_") {
        let start = at + offset;
        at = start + "aws_sdk_".len();
        if text[..start].ends_with(is_ident) {
            continue;
        }
        let end = text[start..]
            .find(|c: char| !is_ident(c))
            .map_or(text.len(), |e| start + e);
        found.insert(text[start..end].to_string());
    }
    found
}

#[test]
fn no_sdk_type_is_named_outside_src_aws() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for (module, path) in modules(&src) {
        if module.first().map(String::as_str) == Some("aws") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a source file is readable");
        for sdk in sdk_paths(&text) {
            found.push(format!("{}: {sdk}", path.strip_prefix(&src).unwrap_or(&path).display()));
        }
    }
    assert!(
        found.is_empty(),
        "SDK crates named outside src/aws/:\n{}",
        found.join("\n")
    );
    assert_eq!(
        sdk_paths("use aws_sdk_sqs::Client;\nfn f(c: &my_aws_sdk_s3::X) {}\n#[cfg(test)]\nuse aws_sdk_kms;"),
        BTreeSet::from(["aws_sdk_sqs".to_string()]),
        "the check reads paths, before the tests"
    );
}
