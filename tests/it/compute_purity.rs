//! The compute core stays pure (DESIGN.md, "Boundaries"): no file under `src/compute/`
//! uses axum, tokio, tower, utoipa or serde_json, or reads the environment, outside its
//! `#[cfg(test)]` part.
//!
//! Grep-like on purpose: each file is read up to its first `#[cfg(test)]` line (the
//! test module lives at the bottom), comments are dropped, and a module declared right
//! after a `#[cfg(test)]` line (`#[cfg(test)] mod testing;`) is test-only as a whole.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Crates the compute core must not use.
const FORBIDDEN_CRATES: [&str; 6] = [
    "axum",
    "tokio",
    "tower",
    "tower_http",
    "utoipa",
    "serde_json",
];

/// The code part of a line: everything before a `//` comment.
fn code_of(line: &str) -> &str {
    line.find("//").map_or(line, |i| &line[..i])
}

/// Whether `code` names `word` as a whole identifier (so `tokio_like` or `my_axum`
/// don't count).
fn names_identifier(code: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    code.match_indices(word).any(|(i, _)| {
        let before = code[..i].chars().next_back();
        let after = code[i + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// What is wrong with one line of non-test code, if anything.
fn violation(line: &str) -> Option<String> {
    let code = code_of(line);
    for krate in FORBIDDEN_CRATES {
        if names_identifier(code, krate) {
            return Some(format!("uses `{krate}`"));
        }
    }
    let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.contains("std::env")
        || (compact.contains("std::{") && names_identifier(code, "env"))
        || compact.contains("env::var")
        || compact.contains("env::args")
    {
        return Some("reads the environment (std::env)".into());
    }
    None
}

/// Violations in one file's text, and the modules it declares as test-only.
fn scan(text: &str) -> (Vec<(usize, String, String)>, Vec<String>) {
    let mut found = Vec::new();
    let mut test_modules = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            // the rest is test code; note `mod x;` declared right here (test-only files)
            for next in lines[i..].iter().take(3) {
                let code = code_of(next).trim();
                let decl = code
                    .trim_start_matches("#[cfg(test)]")
                    .trim()
                    .trim_start_matches("pub(crate) ")
                    .trim_start_matches("pub(super) ")
                    .trim_start_matches("pub ");
                if let Some(name) = decl.strip_prefix("mod ").and_then(|d| d.strip_suffix(';')) {
                    test_modules.push(name.trim().to_string());
                }
            }
            break;
        }
        if let Some(why) = violation(line) {
            found.push((i + 1, line.trim().to_string(), why));
        }
    }
    (found, test_modules)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("src/compute is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn compute_never_imports_http_json_or_env_outside_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/compute");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files.sort();
    assert!(
        files.len() >= 10,
        "expected the compute core's files under {}, found {}",
        root.display(),
        files.len()
    );

    // test-only module files: `#[cfg(test)] mod testing;` in dir/mod.rs → dir/testing.rs
    let mut test_only: BTreeSet<PathBuf> = BTreeSet::new();
    let mut report = Vec::new();
    let mut scanned = Vec::new();
    for path in &files {
        let text = fs::read_to_string(path).expect("readable source");
        let (found, test_mods) = scan(&text);
        let dir = path.parent().expect("a parent directory");
        let own = if path.file_name().is_some_and(|n| n == "mod.rs") {
            dir.to_path_buf()
        } else {
            dir.join(path.file_stem().expect("a file name"))
        };
        for m in test_mods {
            test_only.insert(own.join(format!("{m}.rs")));
            test_only.insert(own.join(&m).join("mod.rs"));
        }
        scanned.push((path.clone(), found));
    }
    for (path, found) in scanned {
        if test_only.contains(&path) {
            continue;
        }
        for (line, text, why) in found {
            report.push(format!("{}:{line}: {why}: {text}", path.display()));
        }
    }
    assert!(
        report.is_empty(),
        "src/compute must stay free of HTTP, JSON and environment access outside #[cfg(test)]:\n{}",
        report.join("\n")
    );
}

#[test]
fn the_purity_scan_catches_imports_and_ignores_tests_and_comments() {
    let text = "\
//! Doc that mentions axum and serde_json in words.
use std::sync::Arc; // not tokio
use serde_json::Value;
fn f() { let _ = std::env::var(\"X\"); }
use std::{env, fmt};
let x = tokio_like::thing();
#[cfg(test)]
mod testing;
use axum::Router;
";
    let (found, test_mods) = scan(text);
    let lines: Vec<usize> = found.iter().map(|(l, _, _)| *l).collect();
    assert_eq!(
        lines,
        vec![3, 4, 5],
        "found {found:?} (comments, `tokio_like` and test code are fine)"
    );
    assert_eq!(test_mods, vec!["testing".to_string()]);
}
