//! The documentation kept in step with the code: `docs/configuration.md` has a heading for
//! every key of `config.example.yaml` and none for a key that does not exist, and the
//! example has every key of the typed config.

use std::collections::BTreeSet;

use matrix_msn::config::Config;
use serde_yaml::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Map keys under these paths are examples, not config keys: the path is one key.
const OPAQUE: &[&str] = &["bridge.permissions"];

fn read(rel: &str) -> String {
    std::fs::read_to_string(format!("{ROOT}/{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every key path of a YAML mapping, sections included (`appservice`, `appservice.bot`,
/// `appservice.bot.username`, ...).
fn key_paths(value: &Value) -> BTreeSet<String> {
    fn walk(prefix: &str, value: &Value, out: &mut BTreeSet<String>) {
        let Value::Mapping(map) = value else { return };
        for (key, child) in map {
            let key = key
                .as_str()
                .unwrap_or_else(|| panic!("non-string key under {prefix:?}: {key:?}"));
            let path = if prefix.is_empty() {
                key.to_owned()
            } else {
                format!("{prefix}.{key}")
            };
            out.insert(path.clone());
            if !OPAQUE.contains(&path.as_str()) {
                walk(&path, child, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk("", value, &mut out);
    out
}

/// The keys `docs/configuration.md` documents: headings of the form ``## `key` ``.
fn documented_keys(markdown: &str) -> BTreeSet<String> {
    markdown
        .lines()
        .filter(|line| line.starts_with("## ") || line.starts_with("### "))
        .filter_map(|line| {
            let rest = line.trim_start_matches('#').trim();
            let key = rest.strip_prefix('`')?.strip_suffix('`')?;
            Some(key.to_owned())
        })
        .collect()
}

fn example_keys() -> BTreeSet<String> {
    let value: Value = serde_yaml::from_str(&read("config.example.yaml")).expect("example YAML");
    key_paths(&value)
}

fn missing(from: &BTreeSet<String>, other: &BTreeSet<String>) -> Vec<String> {
    from.difference(other).cloned().collect()
}

#[test]
fn key_walk_covers_nested_keys_and_treats_permissions_as_one() {
    let keys = example_keys();
    for key in [
        "homeserver",
        "appservice.bot",
        "appservice.bot.username",
        "bridge.permissions",
        "msn.protocol_versions",
    ] {
        assert!(keys.contains(key), "{key} missing from {keys:?}");
    }
    assert!(
        !keys.iter().any(|k| k.starts_with("bridge.permissions.")),
        "permission subjects are examples, not keys: {keys:?}"
    );
}

#[test]
fn every_example_key_is_documented_and_every_documented_key_exists() {
    let keys = example_keys();
    let docs = documented_keys(&read("docs/configuration.md"));
    let undocumented = missing(&keys, &docs);
    assert!(
        undocumented.is_empty(),
        "keys of config.example.yaml without a heading in docs/configuration.md: {undocumented:?}"
    );
    let stale = missing(&docs, &keys);
    assert!(
        stale.is_empty(),
        "docs/configuration.md documents keys config.example.yaml does not have: {stale:?}"
    );
}

#[test]
fn documented_keys_are_found_as_code_spans_in_headings() {
    let docs = documented_keys(
        "# Title\n## `homeserver`\n### `homeserver.address`\ntext `not.a.heading`\n### Plain\n",
    );
    assert_eq!(
        docs,
        BTreeSet::from(["homeserver".to_owned(), "homeserver.address".to_owned()])
    );
}

/// The typed config serialised back has exactly the example's keys: the example (and so
/// the reference) leaves no key of `src/config.rs` out, defaults included.
#[test]
fn example_has_every_key_of_the_typed_config() {
    let config = Config::parse(&read("config.example.yaml")).expect("example parses");
    let typed = key_paths(&serde_yaml::to_value(&config).expect("serialise"));
    let keys = example_keys();
    let absent = missing(&typed, &keys);
    assert!(
        absent.is_empty(),
        "keys of the typed config (src/config.rs) missing from config.example.yaml: {absent:?}"
    );
    let extra = missing(&keys, &typed);
    assert!(
        extra.is_empty(),
        "example keys the config does not read: {extra:?}"
    );
}

/// Every key a validation error names (`key: "..."` in `src/config.rs`) is documented.
#[test]
fn keys_named_by_validation_errors_are_documented() {
    let source = read("src/config.rs");
    let docs = documented_keys(&read("docs/configuration.md"));
    let named: BTreeSet<String> = source
        .match_indices("key: \"")
        .map(|(at, m)| {
            let rest = &source[at + m.len()..];
            rest[..rest.find('"').expect("closing quote")].to_owned()
        })
        .collect();
    assert!(named.len() > 10, "found too few error keys: {named:?}");
    let undocumented = missing(&named, &docs);
    assert!(
        undocumented.is_empty(),
        "keys named in src/config.rs errors but not documented: {undocumented:?}"
    );
}

/// Each documented key says its type and, unless required, its default.
#[test]
fn every_documented_leaf_key_states_type_and_default() {
    let markdown = read("docs/configuration.md");
    let sections: Vec<&str> = markdown.split("\n### ").skip(1).collect();
    assert!(sections.len() > 20, "too few key sections");
    for section in sections {
        let heading = section.lines().next().unwrap_or_default();
        if heading == "`appservice.bot`" {
            continue; // a section, described in prose
        }
        assert!(section.contains("- Type:"), "{heading}: no `- Type:` line");
        assert!(
            section.contains("Default:") || section.contains("Required."),
            "{heading}: neither a default nor `Required.`"
        );
    }
}
