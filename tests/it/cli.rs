//! The `matrix-msn` command line, run as a process: generating the registration, and
//! refusing bad configs with one clear error and a non-zero exit.

use std::path::Path;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_matrix-msn"))
}

fn example() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml"))
        .expect("example")
}

/// The example made runnable except for its tokens.
fn local_config(dir: &Path) -> std::path::PathBuf {
    let text = example()
        .replace("domain: example.com", "domain: localhost")
        .replace("msn.example.com", "127.0.0.1")
        .replace("\"example.com\": user", "\"localhost\": user")
        .replace(
            "\"@admin:example.com\": admin",
            "\"@admin:localhost\": admin",
        )
        .replace(
            "uri: sqlite:matrix-msn.db",
            &format!("uri: sqlite:{}", dir.join("msn.db").display()),
        );
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn run(args: &[&str]) -> (bool, String, String) {
    let out = bin().args(args).output().expect("run matrix-msn");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_lists_the_flags() {
    let (ok, stdout, _) = run(&["--help"]);
    assert!(ok);
    for flag in ["--config", "--generate-registration", "--registration"] {
        assert!(stdout.contains(flag), "{stdout}");
    }
}

#[test]
fn generate_registration_then_config_is_complete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = local_config(dir.path());
    let reg = dir.path().join("registration.yaml");
    let (ok, stdout, stderr) = run(&[
        "-g",
        "-c",
        cfg.to_str().expect("utf8"),
        "-r",
        reg.to_str().expect("utf8"),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("registration.yaml"), "{stdout}");
    let registration =
        matrix_msn::matrix::registration::Registration::load(&reg).expect("registration");
    let config = matrix_msn::config::Config::load(&cfg).expect("config");
    config.validate().expect("the config is now runnable");
    registration.check_against(&config).expect("consistent");
    assert!(
        registration
            .namespaces
            .users
            .iter()
            .any(|ns| ns.regex.contains("msn_"))
    );
    assert!(registration.receive_ephemeral);
}

#[test]
fn running_with_placeholders_fails_with_one_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = local_config(dir.path());
    let (ok, _, stderr) = run(&["-c", cfg.to_str().expect("utf8")]);
    assert!(!ok);
    assert!(
        stderr.contains("appservice.as_token") && stderr.contains("--generate-registration"),
        "{stderr}"
    );
}

#[test]
fn bad_configs_fail_with_the_key_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "domain: localhost",
            "domain: localhost\n  colour: blue",
            "unknown field `colour`",
        ),
        (
            "address: http://127.0.0.1:8008",
            "address: 127.0.0.1:8008",
            "homeserver.address",
        ),
        ("\"msn_{userid}\"", "\"msn_\"", "bridge.username_template"),
    ];
    for (from, to, expect) in cases {
        let cfg = local_config(dir.path());
        let text = std::fs::read_to_string(&cfg)
            .expect("read")
            .replacen(from, to, 1);
        std::fs::write(&cfg, text).expect("write");
        let (ok, _, stderr) = run(&[
            "-g",
            "-c",
            cfg.to_str().expect("utf8"),
            "-r",
            dir.path().join("r.yaml").to_str().expect("utf8"),
        ]);
        assert!(!ok, "{to}");
        assert!(stderr.contains(expect), "{to}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one error line: {stderr}");
    }
    let (ok, _, stderr) = run(&[
        "-c",
        dir.path().join("missing.yaml").to_str().expect("utf8"),
    ]);
    assert!(!ok);
    assert!(stderr.contains("cannot read config file"), "{stderr}");
}

#[test]
fn a_registration_that_does_not_match_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = local_config(dir.path());
    let reg = dir.path().join("registration.yaml");
    let (ok, _, stderr) = run(&[
        "-g",
        "-c",
        cfg.to_str().expect("utf8"),
        "-r",
        reg.to_str().expect("utf8"),
    ]);
    assert!(ok, "{stderr}");
    let text = std::fs::read_to_string(&reg).expect("read");
    std::fs::write(&reg, text.replace("hs_token: hs_", "hs_token: hs_changed_")).expect("write");
    let (ok, _, stderr) = run(&[
        "-c",
        cfg.to_str().expect("utf8"),
        "-r",
        reg.to_str().expect("utf8"),
    ]);
    assert!(!ok);
    assert!(stderr.contains("hs_token differs"), "{stderr}");
}

/// `registration.example.yaml` is what `-g` writes from `config.example.yaml`, apart
/// from the random tokens (whose shape it shows).
#[test]
fn the_example_registration_is_what_the_generator_writes() {
    use matrix_msn::matrix::registration::Registration;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let example =
        Registration::load(&root.join("registration.example.yaml")).expect("example registration");
    let mut config = matrix_msn::config::Config::parse(
        &std::fs::read_to_string(root.join("config.example.yaml")).expect("example config"),
    )
    .expect("example config parses");
    for (token, prefix) in [(&example.as_token, "as_"), (&example.hs_token, "hs_")] {
        let digits = token.strip_prefix(prefix).expect("token prefix");
        assert!(
            digits.len() == 64 && digits.bytes().all(|b| b.is_ascii_hexdigit()),
            "{token} is not shaped like a generated token"
        );
        let fresh = matrix_msn::matrix::registration::random_token(prefix).expect("random");
        assert_eq!(
            fresh.len(),
            token.len(),
            "generated tokens are {fresh:?}-shaped"
        );
    }
    config.appservice.as_token = example.as_token.clone();
    config.appservice.hs_token = example.hs_token.clone();
    let generated = Registration::from_config(&config);
    assert_eq!(
        example,
        generated,
        "registration.example.yaml is out of step with the generator, which writes:\n{}",
        generated.to_yaml().expect("yaml")
    );
}
