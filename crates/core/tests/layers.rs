//! The source's layers (CONTRIBUTING.md, "Source layout"): dependencies run one way. A module may
//! use the layers declared before its own and modules of its own layer, never a later layer, and
//! no files depend on each other in a circle. Read from the source itself: every `crate::`,
//! `super::` and `self::` path in the core's `src/**/*.rs` (the worker crate, the glue, is another
//! crate: the compiler keeps the core from using it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level modules in layer order, lowest first; modules on one line share a layer. Test code
/// may also use `testing`, the test doubles, which may use everything.
const LAYERS: &[&[&str]] = &[
    &["secret", "trace"],
    &["contract", "port"],
    &["seal"],
    &["runtime"],
    &["connect"],
    &["config"],
    &["upstream"],
    &["envelope"],
    &["claims", "vault"],
    &["idp_intent"],
    &["error"],
    &["target", "health", "web"],
    &["flow", "exchange"],
    &["router"],
    &["testing"],
];

fn layer(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|layer| layer.contains(&module))
        .unwrap_or_else(|| panic!("src/{module} is in no layer: add it to LAYERS (and to CONTRIBUTING.md)"))
}

/// Every `.rs` file under `dir`, with its module path (`src/claims/mod.rs` is `["claims"]`).
fn modules(root: &Path, dir: &Path, out: &mut BTreeMap<Vec<String>, PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            modules(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root).expect("under src").with_extension("");
            let mut module: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if module.last().is_some_and(|m| m == "mod" || m == "lib") {
                module.pop();
            }
            out.insert(module, path);
        }
    }
}

/// The module paths a file refers to: `crate::a::b::Item` as `[a, b, Item]`, `super::` and
/// `self::` resolved against the file's own module, braces of `use` lists expanded one level.
fn references(source: &str, own: &[String]) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let code: String = source.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let bytes = code.as_bytes();
    for (start, _) in
        code.match_indices("crate::").chain(code.match_indices("super::")).chain(code.match_indices("self::"))
    {
        if start > 0
            && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_' || bytes[start - 1] == b':')
        {
            continue; // part of a longer path (`super::super::`) or identifier
        }
        let (head, rest) = code[start..].split_once("::").expect("matched with ::");
        let mut path: Vec<String> = match head {
            "crate" => Vec::new(),
            "super" => own[..own.len().saturating_sub(1)].to_vec(),
            _ => own.to_vec(),
        };
        let mut rest = rest;
        while let Some(tail) = rest.strip_prefix("super::") {
            path.pop();
            rest = tail;
        }
        let segment: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
        let segments: Vec<&str> = segment.split("::").filter(|s| !s.is_empty()).collect();
        let after = &rest[segment.len()..];
        if let Some(list) = after.strip_prefix('{') {
            for item in list.split('}').next().unwrap_or("").split(',') {
                let first = item.trim().split("::").next().unwrap_or("").trim().to_string();
                let mut p = path.clone();
                p.extend(segments.iter().map(|s| s.to_string()));
                if !first.is_empty() && first != "self" {
                    p.push(first);
                }
                found.push(p);
            }
        } else {
            let mut p = path;
            p.extend(segments.iter().map(|s| s.to_string()));
            found.push(p);
        }
    }
    found
}

/// The file a referenced path lives in: its longest prefix that is a module.
fn file_of<'a>(path: &[String], files: &'a BTreeMap<Vec<String>, PathBuf>) -> Option<&'a Vec<String>> {
    (1..=path.len()).rev().find_map(|n| files.get_key_value(&path[..n]).map(|(k, _)| k))
}

type Graph = BTreeMap<Vec<String>, BTreeSet<Vec<String>>>;

/// Which files each file uses: in its production code, and in its test code.
fn graph() -> (Graph, Graph) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    modules(&root, &root, &mut files);
    let (mut production, mut tests) = (BTreeMap::new(), BTreeMap::new());
    for (module, path) in &files {
        let source = std::fs::read_to_string(path).expect("a source file");
        // Test code: a tests.rs, or what follows a module's `#[cfg(test)] mod tests {`.
        let (code, test_code) = if module.last().is_some_and(|m| m == "tests") {
            ("", source.as_str())
        } else {
            source.split_once("#[cfg(test)]\nmod tests {").unwrap_or((&source, ""))
        };
        let uses = |text: &str| -> BTreeSet<Vec<String>> {
            references(text, module)
                .iter()
                .filter_map(|reference| file_of(reference, &files).cloned())
                // A file's use of its own module, and a parent declaring its children, are no edges.
                .filter(|target| target != module)
                .collect()
        };
        production.insert(module.clone(), uses(code));
        tests.insert(module.clone(), uses(test_code));
    }
    (production, tests)
}

#[test]
fn no_module_uses_a_later_layer() {
    let (production, tests) = graph();
    let mut upward = Vec::new();
    for (edges, test_code) in [(production, false), (tests, true)] {
        for (module, targets) in edges {
            let Some(own) = module.first() else { continue }; // lib.rs declares everything
            for target in targets {
                let doubles = test_code && target[0] == "testing";
                if layer(&target[0]) > layer(own) && !doubles {
                    upward.push(format!("src/{} uses {}", module.join("/"), target.join("::")));
                }
            }
        }
    }
    assert!(upward.is_empty(), "uses that point up the layers:\n{}", upward.join("\n"));
}

#[test]
fn no_files_depend_on_each_other_in_a_circle() {
    let (edges, _) = graph();
    // Depth-first search for a back edge, reporting the circle it closes.
    fn visit(
        node: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        stack: &mut Vec<Vec<String>>,
        done: &mut BTreeSet<Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            return Some(stack[at..].to_vec());
        }
        if !done.insert(node.clone()) {
            return None;
        }
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, edges, stack, done) {
                return Some(circle);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(circle) = visit(node, &edges, &mut Vec::new(), &mut done) {
            let names: Vec<String> = circle.iter().map(|m| m.join("::")).collect();
            panic!("a circle: {} -> {}", names.join(" -> "), names[0]);
        }
    }
}

#[test]
fn the_reader_sees_the_uses_it_must_judge() {
    let own: Vec<String> = vec!["claims".into(), "lookup".into()];
    let found = references(
        "use super::permissions::PermissionMap;\nuse crate::upstream::{self, zitadel::ZitadelClient};\n// crate::glue in a comment\nfn f() { crate::runtime::deadline::timeout }",
        &own,
    );
    let joined: Vec<String> = found.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        joined,
        ["upstream", "upstream::zitadel", "runtime::deadline::timeout", "claims::permissions::PermissionMap"]
    );
}
