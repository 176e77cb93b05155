//! The layer rules, checked: the crate graph (from `cargo metadata`) for what the manifests
//! enforce, and the bridge crate's source for the rules between its modules (which one
//! crate cannot enforce). Each rule here is the "Must not import" line of the module's
//! `//!` docs and of `docs/architecture.md`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The declared dependencies of every workspace package: (package, dependency, kind).
fn declared_dependencies() -> Vec<(String, String, String)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(ROOT)
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let mut all = Vec::new();
    for package in metadata["packages"].as_array().expect("packages") {
        let name = package["name"].as_str().expect("name");
        for dep in package["dependencies"].as_array().expect("dependencies") {
            let kind = dep["kind"].as_str().unwrap_or("normal");
            all.push((
                name.to_owned(),
                dep["name"].as_str().expect("dep name").to_owned(),
                kind.to_owned(),
            ));
        }
    }
    all
}

fn dependencies_of(
    all: &[(String, String, String)],
    package: &str,
    kind: &str,
) -> BTreeSet<String> {
    all.iter()
        .filter(|(p, _, k)| p == package && k == kind)
        .map(|(_, d, _)| d.clone())
        .collect()
}

#[test]
fn the_protocol_crate_is_sans_io() {
    let all = declared_dependencies();
    let msnp = dependencies_of(&all, "msnp", "normal");
    assert!(!msnp.is_empty(), "the msnp package was not found: {all:?}");
    let io = [
        "tokio",
        "tokio-util",
        "reqwest",
        "hyper",
        "axum",
        "sqlx",
        "getrandom",
        "rand",
        "tracing",
        "ruma",
        "matrix-msn",
        "msn-testkit",
    ];
    let found: Vec<&&str> = io.iter().filter(|d| msnp.contains(**d)).collect();
    assert!(found.is_empty(), "crates/msnp depends on {found:?}");
}

#[test]
fn the_test_kit_is_never_in_the_product() {
    let all = declared_dependencies();
    assert!(
        !dependencies_of(&all, "matrix-msn", "normal").contains("msn-testkit"),
        "msn-testkit is a normal dependency of the bridge"
    );
    assert!(
        dependencies_of(&all, "matrix-msn", "dev").contains("msn-testkit"),
        "the bridge's tests use msn-testkit as a dev-dependency"
    );
    let testkit = dependencies_of(&all, "msn-testkit", "normal");
    assert!(
        !testkit.contains("matrix-msn"),
        "the test servers must stay independent of the bridge they test"
    );
    // The product image builds the bridge binary only.
    let dockerfile = std::fs::read_to_string(Path::new(ROOT).join("docker/Dockerfile"))
        .expect("docker/Dockerfile");
    assert!(
        dockerfile.contains("cargo build --release --locked -p matrix-msn --bin matrix-msn"),
        "the Dockerfile must build only the matrix-msn binary"
    );
    assert!(
        !Path::new(ROOT).join("src/bin").exists(),
        "programs other than the bridge live in tools/"
    );
}

/// The Rust files of a module of the bridge crate (`src/<module>.rs` or `src/<module>/`).
fn module_files(module: &str) -> Vec<PathBuf> {
    let file = Path::new(ROOT).join("src").join(format!("{module}.rs"));
    if file.exists() {
        return vec![file];
    }
    let mut files = Vec::new();
    let mut dirs = vec![Path::new(ROOT).join("src").join(module)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("module directory") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    assert!(!files.is_empty(), "no source for module {module}");
    files
}

/// The lines of `text` whose code (comments and the `#[cfg(test)]` module at the end left
/// out) names a path starting with one of `forbidden`, as `(line number, line)`.
fn forbidden_in(text: &str, forbidden: &[&str]) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let product = text.lines().take_while(|line| *line != "#[cfg(test)]");
    for (n, line) in product.enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let names = |root: &&str| {
            code.contains(&format!("crate::{root}::"))
                || code.contains(&format!("crate::{root};"))
                || code
                    .match_indices(&format!("{root}::"))
                    .any(|(at, _)| at == 0 || !is_path_char(code.as_bytes()[at - 1]))
        };
        if forbidden.iter().any(names) {
            found.push((n + 1, line.trim().to_owned()));
        }
    }
    found
}

fn is_path_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

fn forbidden_uses(module: &str, forbidden: &[&str]) -> Vec<String> {
    module_files(module)
        .into_iter()
        .flat_map(|file| {
            let text = std::fs::read_to_string(&file).expect("source");
            forbidden_in(&text, forbidden)
                .into_iter()
                .map(move |(n, line)| format!("{}:{n}: {line}", file.display()))
        })
        .collect()
}

#[test]
fn the_bridge_crates_modules_import_only_downwards() {
    // module -> what it must not name. `msnp` and the HTTP crates are external crates;
    // the others are this crate's modules.
    let rules: &[(&str, &[&str])] = &[
        // The core: no HTTP, no Matrix wire layer, no MSNP.
        (
            "bridge",
            &["matrix", "net", "link", "msnp", "axum", "reqwest", "sqlx"],
        ),
        // The MSN session adapter: no Matrix, no database.
        ("link", &["matrix", "store", "sqlx", "axum", "ruma"]),
        // The MSN network shell: no core, no Matrix, no database.
        (
            "net",
            &["bridge", "matrix", "link", "store", "sqlx", "ruma"],
        ),
        // The homeserver side: no MSN.
        ("matrix", &["net", "link", "msnp"]),
        // The database: no Matrix HTTP, no MSN, no core.
        (
            "store",
            &["matrix", "net", "link", "msnp", "bridge", "axum", "reqwest"],
        ),
        // The typed config: nothing above it.
        (
            "config",
            &["bridge", "matrix", "store", "net", "link", "msnp"],
        ),
    ];
    let mut broken = Vec::new();
    for (module, forbidden) in rules {
        broken.extend(forbidden_uses(module, forbidden));
    }
    assert!(
        broken.is_empty(),
        "layer rules broken:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_check_sees_a_forbidden_import() {
    let source = "use crate::store::Store;\n\
                  // crate::store::now_ms() in a comment\n\
                  let a = store_like::x();\n\
                  let b = msnp::parse(x); // and crate::matrix::y\n\
                  let c = other_msnp::y();\n\
                  use crate::matrix;\n\
                  #[cfg(test)]\n\
                  use crate::store::Store;\n";
    let found: Vec<usize> = forbidden_in(source, &["store", "msnp", "matrix"])
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(found, [1, 4, 6]);
}
