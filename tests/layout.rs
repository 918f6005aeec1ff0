//! The runtime's layout, as README's "How the pieces fit" promises it: the modules of the
//! runtime (`runtime/src`, and the instruments beside it in `runtime/observe`) use each other
//! one way only (no circle, however long), no file is over 500 lines, the core in
//! `runtime/src` stays shorter than the first edition's 3,685 lines, and the event loop's file
//! has no tracing in its code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("runtime/src")
}

fn observe() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("runtime/observe")
}

/// Every file of the crate: the core and the instruments.
fn crate_files() -> Vec<PathBuf> {
    let mut files = rust_files(&src());
    files.extend(rust_files(&observe()));
    files
}

/// The top-level module a file belongs to ("observe" for `observe/records.rs`).
fn module_of(file: &Path) -> String {
    if file.starts_with(observe()) {
        return "observe".to_string();
    }
    let relative = file.strip_prefix(src()).unwrap();
    let first = relative.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_string()
}

/// The code of a file, without its comments.
fn code_of(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let lines = text.lines().map(|line| match line.find("//") {
        Some(at) => &line[..at],
        None => line,
    });
    lines.collect::<Vec<_>>().join("\n")
}

/// Which modules each module uses (`crate::name`), the crate root's re-exports resolved.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let reexports = [
        ("block_on", "runtime"),
        ("spawn", "task"),
        ("yield_now", "task"),
        ("JoinHandle", "task"),
        ("JoinError", "join_error"),
    ];
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in crate_files() {
        let module = module_of(&file);
        // lib.rs declares every module; `tests` (runtime/tests/internals/) is a test module nothing uses.
        if module == "lib" || module == "tests" {
            continue;
        }
        let code = code_of(&file);
        let uses = graph.entry(module.clone()).or_default();
        for (at, _) in code.match_indices("crate::") {
            let name: String = code[at + 7..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let name = reexports
                .iter()
                .find(|(item, _)| *item == name)
                .map_or(name.clone(), |(_, module)| module.to_string());
            if name != module {
                uses.insert(name);
            }
        }
    }
    graph
}

/// A circle through `module`, if there is one.
fn circle_from(
    graph: &BTreeMap<String, BTreeSet<String>>,
    path: &mut Vec<String>,
) -> Option<Vec<String>> {
    let last = path.last().unwrap().clone();
    for next in graph.get(&last).into_iter().flatten() {
        if path.contains(next) {
            let mut circle = path.clone();
            circle.push(next.clone());
            return Some(circle);
        }
        path.push(next.clone());
        if let Some(circle) = circle_from(graph, path) {
            return Some(circle);
        }
        path.pop();
    }
    None
}

#[test]
fn the_runtime_modules_use_each_other_one_way() {
    let graph = graph();
    assert!(graph.contains_key("runtime") && graph.contains_key("ids"));
    assert!(
        graph["ids"].is_empty(),
        "ids is the leaf: {:?}",
        graph["ids"]
    );
    for module in graph.keys() {
        let circle = circle_from(&graph, &mut vec![module.clone()]);
        assert!(circle.is_none(), "a circle of modules: {circle:?}");
    }
}

#[test]
fn the_graph_in_the_readme_is_the_real_one() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    for (module, uses) in graph() {
        let file = match module.as_str() {
            "net" => "| `net/` |".to_string(),
            "observe" => "| `../observe/` |".to_string(),
            "time" => "| `timers.rs`, `time.rs` |".to_string(),
            _ => format!("| `{module}.rs`"),
        };
        let row = readme
            .lines()
            .find(|line| line.starts_with(&file))
            .unwrap_or_else(|| panic!("README's table has no row for {module}"));
        let listed = row.trim_end_matches('|').rsplit('|').next().unwrap();
        let listed: BTreeSet<String> = listed
            .split([',', ';'])
            .map(|name| name.trim().to_string())
            .filter(|name| !name.is_empty() && name != "(none)")
            .collect();
        // timers.rs and time.rs share a row: "(none); observe, runtime, timers".
        if module == "timers" || module == "time" {
            assert!(
                uses.is_subset(&listed),
                "{module} uses {uses:?}; README: {listed:?}"
            );
            continue;
        }
        assert_eq!(
            uses, listed,
            "{module}: the code uses {uses:?}, README says {listed:?}"
        );
    }
}

#[test]
fn no_runtime_file_is_over_500_lines() {
    for file in crate_files() {
        let lines = std::fs::read_to_string(&file).unwrap().lines().count();
        assert!(lines <= 500, "{} has {lines} lines", file.display());
    }
}

#[test]
fn the_core_is_shorter_than_the_first_editions() {
    let lines: usize = rust_files(&src())
        .iter()
        .map(|file| std::fs::read_to_string(file).unwrap().lines().count())
        .sum();
    assert!(lines < 3685, "runtime/src has {lines} lines");
}

#[test]
fn the_event_loop_has_no_tracing_in_its_code() {
    let code = code_of(&src().join("runtime.rs"));
    // `Builder::trace`, the switch users call, only hands a path on to the observer.
    let builder = code
        .find("impl Builder {")
        .expect("runtime.rs has the Builder");
    let builder_end = builder + code[builder..].find("\n}\n").unwrap();
    let outside = format!("{}{}", &code[..builder], &code[builder_end..]);
    let mentions: Vec<&str> = outside
        .lines()
        .filter(|line| line.to_lowercase().contains("trace") || line.contains("Tracer"))
        .collect();
    assert!(mentions.is_empty(), "runtime.rs traces: {mentions:#?}");
}
