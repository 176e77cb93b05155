//! Both SQL dialects have the same migration versions, so a schema change is never made
//! for one database only.

use std::collections::BTreeSet;

fn versions(dialect: &str) -> BTreeSet<String> {
    let dir = format!("{}/migrations/{dialect}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_dir(&dir)
        .expect("migrations dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sql"))
        .map(|name| name.split('_').next().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn dialects_have_the_same_versions() {
    let sqlite = versions("sqlite");
    let postgres = versions("postgres");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, postgres);
}

#[test]
fn dialects_create_the_same_tables() {
    let tables = |dialect: &str| -> BTreeSet<String> {
        let dir = format!("{}/migrations/{dialect}", env!("CARGO_MANIFEST_DIR"));
        let mut out = BTreeSet::new();
        for entry in std::fs::read_dir(dir).expect("dir") {
            let text = std::fs::read_to_string(entry.expect("entry").path()).expect("read");
            for line in text.lines() {
                if let Some(rest) = line.trim().strip_prefix("CREATE TABLE ") {
                    out.insert(
                        rest.split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_owned(),
                    );
                }
            }
        }
        out
    };
    assert_eq!(tables("sqlite"), tables("postgres"));
}
