//! Careless and hostile manifests (issue 27): a seeded generator of structural and YAML mutations
//! over examples/ and the tests' manifests (tests/fixtures/). For each case: validation never
//! panics, never runs past a bound, and names every problem with its file and object (`Kind/
//! namespace/name`, or the document when it has no identity); a sample goes through the binary,
//! whose exit code must be 0, 1 or 2.
//!
//! `TRAILKEEPER_FUZZ_CASES` (default 300) and `TRAILKEEPER_FUZZ_SEED` (default: a fixed seed, so
//! a failure reproduces) run more or other cases; a failing case is written to the message.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long one case may take in process (a debug build validates a manifest in milliseconds).
const CASE_BOUND: Duration = Duration::from_secs(20);
/// One case in this many also runs through the binary.
const BINARY_EVERY: usize = 10;

/// xorshift64*: small, seeded, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The seed manifests: every YAML file of examples/ and tests/fixtures/, and a set.
fn seeds() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    let mut dirs = vec![root.join("examples"), root.join("tests/fixtures")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                found.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    found.sort();
    found.push((
        "set".into(),
        "apiVersion: trailkeeper.io/v1alpha1\nkind: LoggingBaselineSet\nmetadata: {name: fleet, namespace: accounts}\nspec:\n  template:\n    labels: {fleet: a}\n    spec:\n      primaryRegion: us-east-1\n      mode: Observe\n      credentials: {assumeRoleArn: \"arn:aws:iam::{{accountId}}:role/trailkeeper\"}\n      tags: {account: \"{{accountName}}\"}\n  generator:\n    accounts: [{id: \"111122223333\", name: a}, {id: \"444455556666\"}]\n".into(),
    ));
    assert!(found.len() > 4, "the seeds are found");
    found
}

const HOSTILE_STRINGS: &[&str] = &[
    "",
    " ",
    "CHG-1 ",
    "a\nb",
    "a\u{0}b",
    "|</details><!--<img src=x>",
    "{{accountId}}",
    "{{nope}}",
    "{{",
    "aws:reserved",
    "Bad_NS!! with spaces",
    "a..b",
    "\u{202e}evil",
];

fn hostile_value(rng: &mut Rng) -> serde_json::Value {
    use serde_json::json;
    match rng.below(10) {
        0 => json!(null),
        1 => json!(rng.pick(HOSTILE_STRINGS)),
        2 => json!(-1),
        3 => json!(u64::MAX),
        4 => json!(1.5),
        5 => json!(true),
        6 => json!([]),
        7 => json!({}),
        8 => json!("x".repeat(300)),
        _ => json!([rng.pick(HOSTILE_STRINGS)]),
    }
}

/// Every path (object keys and array indices) in a JSON value.
fn paths(value: &serde_json::Value, prefix: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    out.push(prefix.clone());
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                prefix.push(PathStep::Key(k.clone()));
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                prefix.push(PathStep::Index(i));
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

#[derive(Clone, Debug)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn at<'a>(value: &'a mut serde_json::Value, path: &[PathStep]) -> Option<&'a mut serde_json::Value> {
    path.iter().try_fold(value, |v, step| match step {
        PathStep::Key(k) => v.get_mut(k.as_str()),
        PathStep::Index(i) => v.get_mut(*i),
    })
}

fn typo(name: &str, rng: &mut Rng) -> String {
    let mut chars: Vec<char> = name.chars().collect();
    if chars.len() < 2 {
        return format!("{name}x");
    }
    let i = rng.below(chars.len() - 1);
    match rng.below(3) {
        0 => chars.swap(i, i + 1),
        1 => {
            chars.remove(i);
        }
        _ => chars.insert(i, chars[i]),
    }
    chars.into_iter().collect()
}

/// A structural mutation of one document: a field removed, misspelt or given a hostile value.
fn mutate_structure(doc: &mut serde_json::Value, rng: &mut Rng) {
    let mut all = Vec::new();
    paths(doc, &mut Vec::new(), &mut all);
    let path = rng.pick(&all).clone();
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let Some(parent) = at(doc, parent_path) else { return };
    match (rng.below(3), last, parent) {
        (0, PathStep::Key(k), serde_json::Value::Object(map)) => {
            map.remove(k);
        }
        (1, PathStep::Key(k), serde_json::Value::Object(map)) => {
            if let Some(v) = map.remove(k) {
                let renamed = typo(k, rng);
                map.insert(renamed, v);
            }
        }
        (_, step, parent) => {
            let value = hostile_value(rng);
            if let Some(target) = at(parent, std::slice::from_ref(step)) {
                *target = value;
            }
        }
    }
}

const YAML_SNIPPETS: &[&str] = &[
    "\t",
    ":",
    " &a",
    " *a",
    "{",
    "[",
    "\n---\n",
    "~",
    ".nan",
    "18446744073709551617",
    "!!binary x",
    "? ",
    "- ",
    "\"",
    "'",
    "\u{0}",
    "\u{feff}",
];

/// A textual mutation: bytes cut, a line repeated or removed, a YAML token dropped in.
fn mutate_text(text: &str, rng: &mut Rng) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if lines.is_empty() {
        return text.to_string();
    }
    let i = rng.below(lines.len());
    match rng.below(5) {
        0 => {
            let cut = rng.below(text.len());
            let cut = (0..=cut).rev().find(|c| text.is_char_boundary(*c)).unwrap_or(0);
            return text[..cut].to_string();
        }
        1 => {
            let line = lines[i].clone();
            lines.insert(i, line);
        }
        2 => {
            lines.remove(i);
        }
        3 => {
            let line = &mut lines[i];
            let at = rng.below(line.len() + 1);
            let at = (0..=at).rev().find(|c| line.is_char_boundary(*c)).unwrap_or(0);
            let snippet = *rng.pick(YAML_SNIPPETS);
            line.insert_str(at, snippet);
        }
        _ => {
            let line = &mut lines[i];
            let indent = line.len() - line.trim_start().len();
            *line = format!("{}{}", " ".repeat((indent + 1 + rng.below(3)) % 8), line.trim_start());
        }
    }
    lines.join("\n") + "\n"
}

fn case(seed_text: &str, rng: &mut Rng) -> String {
    let rounds = 1 + rng.below(3);
    let mut text = seed_text.to_string();
    for _ in 0..rounds {
        text = if rng.below(2) == 0 {
            // map_while, not filter_map: after a syntax error serde_yaml's document iterator can
            // yield the same error forever (the generator itself hung on such a case).
            let mut docs: Vec<serde_json::Value> = serde_yaml::Deserializer::from_str(&text)
                .map_while(|d| serde::Deserialize::deserialize(d).ok())
                .filter(|v: &serde_json::Value| !v.is_null())
                .collect();
            if docs.is_empty() {
                mutate_text(&text, rng)
            } else {
                let d = rng.below(docs.len());
                mutate_structure(&mut docs[d], rng);
                docs.iter()
                    .map(|d| serde_yaml::to_string(d).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("---\n")
            }
        } else {
            mutate_text(&text, rng)
        };
    }
    text
}

/// What one in-process validation found: Err(the problem with the problems).
fn judge_in_process(file: PathBuf) -> Result<(), String> {
    let files = match trailkeeper::manifests::collect_files(std::slice::from_ref(&file)) {
        Ok(f) => f,
        Err(e) => {
            return if e.file.is_empty() {
                Err(format!("unnamed: {e}"))
            } else {
                Ok(())
            };
        }
    };
    let (documents, mut problems) = match trailkeeper::manifests::load(&files) {
        Ok(loaded) => loaded,
        Err(e) => {
            return if e.file.is_empty() {
                Err(format!("unnamed: {e}"))
            } else {
                Ok(())
            };
        }
    };
    let (_, more) = trailkeeper::manifests::validate(&documents);
    problems.extend(more);
    let name = file.display().to_string();
    for p in &problems {
        let identified =
            p.object.starts_with("document ") || p.object.contains(" (document ") || p.object.split('/').count() >= 3;
        if p.file != name || !identified || p.message.is_empty() {
            return Err(format!("a problem without its file or object: {p:?}"));
        }
        let line = p.to_string();
        if line.contains('\n') && !p.message.contains("not valid YAML") {
            return Err(format!("a problem printed on more than one line: {line:?}"));
        }
    }
    Ok(())
}

// 300 cases by default (about 6 s in a debug build), part of the test command; more on demand:
// TRAILKEEPER_FUZZ_CASES=N and TRAILKEEPER_FUZZ_SEED=S (a failure prints its seed and case).
#[test]
fn mutated_manifests_never_crash_hang_or_go_unnamed() {
    let cases: usize = std::env::var("TRAILKEEPER_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let seed: u64 = std::env::var("TRAILKEEPER_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x7a11_6ee9_e527);
    let mut rng = Rng(seed | 1);
    let seeds = seeds();
    let dir = tempfile::tempdir().unwrap();
    // One worker validates every case in turn (schemas compiled once); the test thread bounds
    // each case's time.
    let (to_worker, cases_in) = mpsc::channel::<PathBuf>();
    let (results_out, results) = mpsc::channel::<Result<(), String>>();
    let worker = std::thread::spawn(move || {
        for file in cases_in {
            let judged = std::panic::catch_unwind(|| judge_in_process(file))
                .unwrap_or_else(|panic| Err(format!("panicked: {:?}", panic.downcast_ref::<String>())));
            if results_out.send(judged).is_err() {
                return;
            }
        }
    });
    for n in 0..cases {
        let (seed_name, seed_text) = rng.pick(&seeds).clone();
        let text = case(&seed_text, &mut rng);
        let file = dir.path().join(format!("case-{n}.yaml"));
        std::fs::write(&file, &text).unwrap();
        let started = Instant::now();
        to_worker.send(file.clone()).unwrap();
        let verdict = results
            .recv_timeout(CASE_BOUND)
            .unwrap_or_else(|_| Err(format!("still validating after {CASE_BOUND:?}")));
        if let Err(e) = verdict {
            panic!(
                "case {n} (seed {seed}, from {seed_name}), {:?}: {e}\n---\n{text}",
                started.elapsed()
            );
        }
        if n % BINARY_EVERY == 0 {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_trailkeeper"))
                .args(["validate", "-f"])
                .arg(&file)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            let code = out.status.code();
            assert!(
                matches!(code, Some(0..=2)) && !stderr.contains("panicked"),
                "case {n} (seed {seed}, from {seed_name}): exit {code:?}: {stderr}\n---\n{text}"
            );
            if code != Some(0) {
                assert!(
                    stderr.lines().all(|l| l.starts_with(&file.display().to_string())),
                    "case {n}: a line does not name the file: {stderr}"
                );
            }
        }
    }
    drop(to_worker);
    worker.join().unwrap();
}
