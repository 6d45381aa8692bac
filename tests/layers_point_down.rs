//! No module of the library names a module in a higher layer: the layer list in
//! `ARCHITECTURE.md` is read and every `crate::` and `super::` path in `src/` checked against it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The layers, lowest first, from the `## Layers` table of `ARCHITECTURE.md`: each row's second
/// cell lists its modules in backticks.
fn layers_from(architecture: &str) -> Result<Vec<Vec<String>>, String> {
    let mut lines = architecture.lines();
    lines
        .by_ref()
        .find(|l| l.trim() == "## Layers")
        .ok_or("ARCHITECTURE.md has no `## Layers` section")?;
    let mut layers = Vec::new();
    for line in lines {
        let line = line.trim();
        if line.starts_with("## ") {
            break;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // `| n | `a`, `b` | job |` splits into ["", n, modules, job, ""].
        let Some(first) = cells.get(1) else { continue };
        if first.parse::<u32>().is_err() {
            continue;
        }
        let modules: Vec<String> = cells
            .get(2)
            .unwrap_or(&"")
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        layers.push(modules);
    }
    if layers.is_empty() {
        return Err("the `## Layers` section has no numbered rows".into());
    }
    Ok(layers)
}

/// A file's module path: `log/open.rs` is `[log, open]`, `log/mod.rs` is `[log]`.
fn module_path(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel.split('/').map(str::to_string).collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs");
        if stem != "mod" && stem != "lib" {
            parts.push(stem.to_string());
        }
    }
    parts
}

/// The text with comments and string literals blanked (kept the same length, so byte offsets
/// still give line numbers): a path in a doc link or a message is not a dependency.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_str = false;
    while let Some(c) = chars.next() {
        if in_str {
            match c {
                '\\' => {
                    out.push(' ');
                    if let Some(n) = chars.next() {
                        out.push(if n == '\n' { '\n' } else { ' ' });
                    }
                }
                '"' => {
                    in_str = false;
                    out.push('"');
                }
                '\n' => out.push('\n'),
                _ => out.push(' '),
            }
        } else if c == '/' && chars.peek() == Some(&'/') {
            out.push(' ');
            for n in chars.by_ref() {
                if n == '\n' {
                    out.push('\n');
                    break;
                }
                out.push(' ');
            }
        } else if c == '"' {
            in_str = true;
            out.push('"');
        } else {
            out.push(c);
        }
    }
    out
}

/// The first segments of the paths a reference names: `a` for `crate::a::b`, `a` and `c` for
/// `crate::{a::b, c}`.
fn named_after(rest: &str) -> Vec<String> {
    let rest = rest.trim_start();
    if let Some(group) = rest.strip_prefix('{') {
        let mut depth = 1;
        let mut end = group.len();
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let inner = group.get(..end).unwrap_or("");
        let mut out = Vec::new();
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    out.push(first_ident(inner.get(start..i).unwrap_or("")));
                    start = i + 1;
                }
                _ => {}
            }
        }
        out.push(first_ident(inner.get(start..).unwrap_or("")));
        out.retain(|s| !s.is_empty());
        out
    } else {
        vec![first_ident(rest)]
    }
}

fn first_ident(s: &str) -> String {
    s.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// One upward reference found.
#[derive(Debug, PartialEq, Eq)]
struct Violation {
    file: String,
    line: usize,
    from: String,
    to: String,
}

/// Every reference in `files` (path relative to `src/`, text) from a module to one in a
/// higher layer. `root_items` maps names the crate root re-exports (`crate::Log`) to their
/// module.
fn upward_references(
    layers: &[Vec<String>],
    files: &[(String, String)],
    root_items: &BTreeMap<String, String>,
) -> Result<Vec<Violation>, String> {
    let layer_of: BTreeMap<&str, usize> = layers
        .iter()
        .enumerate()
        .flat_map(|(i, ms)| ms.iter().map(move |m| (m.as_str(), i)))
        .collect();
    let mut found = Vec::new();
    for (rel, text) in files {
        let here = module_path(rel);
        let Some(top) = here.first() else { continue };
        let Some(&own) = layer_of.get(top.as_str()) else {
            return Err(format!(
                "src/{rel}: module `{top}` is in no layer of ARCHITECTURE.md"
            ));
        };
        let code = code_only(text);
        let mut targets: Vec<(usize, String)> = Vec::new();
        for (at, _) in code.match_indices("crate::") {
            if code
                .get(..at)
                .and_then(|s| s.chars().last())
                .is_some_and(is_ident_char)
            {
                continue;
            }
            for name in named_after(code.get(at + "crate::".len()..).unwrap_or("")) {
                targets.push((at, name));
            }
        }
        let mut from = 0;
        while let Some(pos) = code.get(from..).and_then(|s| s.find("super::")) {
            let at = from + pos;
            if code
                .get(..at)
                .and_then(|s| s.chars().last())
                .is_some_and(is_ident_char)
                || code.get(..at).is_some_and(|s| s.ends_with("super::"))
            {
                from = at + 1;
                continue;
            }
            let mut ups = 0;
            let mut rest = code.get(at..).unwrap_or("");
            while let Some(r) = rest.strip_prefix("super::") {
                ups += 1;
                rest = r;
            }
            // `super` from `a/b.rs` (module a::b) is `a`; n `super`s reach the crate root when
            // n equals the depth, and the next segment is then a top-level module.
            if ups >= here.len() {
                for name in named_after(rest) {
                    targets.push((at, name));
                }
            }
            from = at + 1;
        }
        for (at, name) in targets {
            let module = if layer_of.contains_key(name.as_str()) {
                name
            } else if let Some(m) = root_items.get(&name) {
                m.clone()
            } else {
                continue;
            };
            if module == *top {
                continue;
            }
            let Some(&theirs) = layer_of.get(module.as_str()) else {
                continue;
            };
            if theirs >= own {
                let line = code.get(..at).map_or(0, |s| s.matches('\n').count()) + 1;
                found.push(Violation {
                    file: rel.clone(),
                    line,
                    from: top.clone(),
                    to: module,
                });
            }
        }
    }
    Ok(found)
}

/// `pub use module::...::{A, B};` lines of `lib.rs`, as item → module.
fn root_items(lib: &str) -> BTreeMap<String, String> {
    let code = code_only(lib);
    let mut out = BTreeMap::new();
    for stmt in code.split(';') {
        let Some(path) = stmt.trim().strip_prefix("pub use ") else {
            continue;
        };
        let module = first_ident(path);
        let names = match path.find('{') {
            Some(i) => named_after(path.get(i..).unwrap_or("")),
            None => vec![path.rsplit("::").next().unwrap_or("").trim().to_string()],
        };
        for n in names {
            out.insert(n, module.clone());
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

#[test]
fn no_module_names_a_module_above_it() -> TestResult {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let layers = layers_from(&std::fs::read_to_string(root.join("ARCHITECTURE.md"))?)?;
    let src = root.join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs"))?;
    let mut paths = Vec::new();
    rust_files(&src, &mut paths)?;
    let mut files = Vec::new();
    for p in paths {
        let rel = p.strip_prefix(&src)?.to_string_lossy().replace('\\', "/");
        // The binary is a client of the public API; the crate root only declares modules.
        if rel.starts_with("bin/") || rel == "lib.rs" {
            continue;
        }
        files.push((rel, std::fs::read_to_string(&p)?));
    }
    // Every module lib.rs declares has a layer.
    let placed: BTreeSet<&str> = layers.iter().flatten().map(String::as_str).collect();
    for line in code_only(&lib).lines() {
        let line = line.trim();
        let decl = line
            .strip_prefix("mod ")
            .or_else(|| line.strip_prefix("pub mod "))
            .or_else(|| line.strip_prefix("pub(crate) mod "));
        if let Some(name) = decl.map(|d| d.trim_end_matches(';').trim()) {
            assert!(
                placed.contains(name),
                "module `{name}` is declared in lib.rs but is in no layer of ARCHITECTURE.md"
            );
        }
    }
    let found = upward_references(&layers, &files, &root_items(&lib))?;
    assert!(
        found.is_empty(),
        "modules name modules above them (fix the code or, if the layering is wrong, \
         ARCHITECTURE.md):\n{}",
        found
            .iter()
            .map(|v| format!("  src/{}:{}: `{}` names `{}`", v.file, v.line, v.from, v.to))
            .collect::<Vec<_>>()
            .join("\n")
    );
    Ok(())
}

#[test]
fn a_planted_upward_path_is_caught_in_every_form() -> TestResult {
    let layers = layers_from(
        "# A\n\n## Layers\n\n| layer | modules | job |\n|---|---|---|\n\
         | 0 | `error` | errors |\n| 1 | `record`, `segment` | bytes |\n| 2 | `log` | logs |\n\
         | 3 | `group` | groups |\n\n## Next\n| 9 | `ignored` | |\n",
    )?;
    assert_eq!(layers.len(), 4);
    let roots: BTreeMap<String, String> = [("Log".to_string(), "log".to_string())].into();
    let file = |path: &str, text: &str| (path.to_string(), text.to_string());
    let planted = [
        file("record/mod.rs", "use crate::log::Log;\n"),
        file("record/a.rs", "use crate::{error::Error,\n    group::x};\n"),
        file("record/b.rs", "fn f() { let _ = crate::log::open(); }\n"),
        file("record/c.rs", "fn f(_: &crate::Log) {}\n"),
        file("record/d/e.rs", "use super::super::super::log::X;\n"),
        file("log/f.rs", "use super::super::group::G;\n"),
        file("record/g.rs", "use crate::segment::S;\n"),
    ];
    let found = upward_references(&layers, &planted, &roots)?;
    let hits: Vec<(&str, usize, &str)> = found
        .iter()
        .map(|v| (v.file.as_str(), v.line, v.to.as_str()))
        .collect();
    assert_eq!(
        hits,
        [
            ("record/mod.rs", 1, "log"),
            ("record/a.rs", 1, "group"),
            ("record/b.rs", 1, "log"),
            ("record/c.rs", 1, "log"),
            ("record/d/e.rs", 1, "log"),
            ("log/f.rs", 1, "group"),
            // Same layer is not lower: modules of one layer do not name each other.
            ("record/g.rs", 1, "segment"),
        ]
    );
    let clean = [
        file("log/a.rs", "use crate::record::Batch;\nuse super::b;\n"),
        file("group/b.rs", "use crate::{error::Error, log::Log};\n"),
        file(
            "record/c.rs",
            "/// See [`crate::log::Log`].\nfn f() { g(\"crate::log\"); }\n",
        ),
        file("record/d.rs", "mod tests { use super::*; }\n"),
    ];
    assert_eq!(upward_references(&layers, &clean, &roots)?, []);
    let unplaced = [file("newthing/mod.rs", "")];
    assert!(upward_references(&layers, &unplaced, &roots).is_err());
    Ok(())
}
