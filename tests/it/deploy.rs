//! The container files agree with the code and the example config. No Docker engine runs
//! here, so `docker/docker-compose.yml` and `docker/Dockerfile` are parsed and compared
//! with `config.example.yaml`, `Cargo.toml`, the router and `docker/entrypoint.sh`; the
//! entrypoint itself is run with `sh` through its three stages against the real binary.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use matrix_msn::config::{Config, PermissionLevel, TOKEN_PLACEHOLDER};
use matrix_msn::matrix::registration::Registration;
use serde_yaml::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(rel: &str) -> String {
    std::fs::read_to_string(format!("{ROOT}/{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn compose() -> Value {
    serde_yaml::from_str(&read("docker/docker-compose.yml")).expect("compose YAML")
}

fn example() -> Value {
    serde_yaml::from_str(&read("config.example.yaml")).expect("example YAML")
}

fn example_port() -> u16 {
    let port = example()["appservice"]["port"]
        .as_u64()
        .expect("appservice.port");
    u16::try_from(port).expect("port fits u16")
}

fn services(compose: &Value) -> &serde_yaml::Mapping {
    compose["services"].as_mapping().expect("services mapping")
}

/// The service built from `docker/Dockerfile`: the bridge.
fn bridge_service(compose: &Value) -> (String, &Value) {
    let built: Vec<(String, &Value)> = services(compose)
        .iter()
        .filter(|(_, s)| s["build"]["dockerfile"].as_str() == Some("docker/Dockerfile"))
        .map(|(name, s)| (name.as_str().expect("service name").to_owned(), s))
        .collect();
    assert_eq!(
        built.len(),
        1,
        "exactly one service must build docker/Dockerfile"
    );
    built.into_iter().next().expect("one")
}

fn str_list(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|seq| {
            seq.iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    other => panic!("not a string: {other:?}"),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `SOURCE:TARGET[:MODE]` volume entries of a service, as (source, target).
fn volumes(service: &Value) -> Vec<(String, String)> {
    str_list(&service["volumes"])
        .into_iter()
        .map(|v| {
            let mut parts = v.split(':');
            let source = parts.next().expect("source").to_owned();
            let target = parts
                .next()
                .unwrap_or_else(|| panic!("volume {v:?} has no target"))
                .to_owned();
            (source, target)
        })
        .collect()
}

fn env_of<'a>(service: &'a Value, key: &str) -> &'a str {
    service["environment"][key]
        .as_str()
        .unwrap_or_else(|| panic!("environment {key} missing"))
}

/// The Dockerfile as instructions (continuation lines joined, comments dropped).
fn dockerfile() -> Vec<(String, String)> {
    parse_dockerfile(&read("docker/Dockerfile"))
}

fn parse_dockerfile(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(body) = trimmed.strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let (op, args) = current.split_once(' ').unwrap_or((current.as_str(), ""));
        out.push((op.to_uppercase(), args.trim().to_owned()));
        current.clear();
    }
    out
}

/// The instructions of the last stage (the runtime image).
fn runtime_stage(instructions: &[(String, String)]) -> &[(String, String)] {
    let last_from = instructions
        .iter()
        .rposition(|(op, _)| op == "FROM")
        .expect("a FROM");
    &instructions[last_from..]
}

fn args_of<'a>(instructions: &'a [(String, String)], op: &str) -> Vec<&'a str> {
    instructions
        .iter()
        .filter(|(o, _)| o == op)
        .map(|(_, a)| a.as_str())
        .collect()
}

/// `NAME=${NAME:-default}` in the entrypoint: the default.
fn entrypoint_default(var: &str, name: &str) -> String {
    let script = read("docker/entrypoint.sh");
    let prefix = format!("{var}=${{{name}:-");
    let line = script
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("entrypoint has no line {prefix}...}}"));
    line[prefix.len()..]
        .strip_suffix('}')
        .unwrap_or_else(|| panic!("{line}: no closing brace"))
        .to_owned()
}

/// The path requested by a healthcheck command (`GET /path HTTP/1.1`).
fn health_path(command: &str) -> String {
    let at = command.find("GET /").expect("a GET request") + 4;
    command[at..]
        .split_whitespace()
        .next()
        .expect("path")
        .to_owned()
}

/// The port of a healthcheck's `/dev/tcp/127.0.0.1/PORT` (or `${VAR:-PORT}`).
fn health_port(command: &str) -> u16 {
    let at = command.find("/dev/tcp/127.0.0.1/").expect("/dev/tcp") + 19;
    let rest = &command[at..];
    let rest = rest
        .strip_prefix("${")
        .map(|r| &r[r.find(":-").expect(":-") + 2..])
        .unwrap_or(rest);
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().expect("a port")
}

#[test]
fn compose_has_synapse_postgres_and_the_bridge() {
    let compose = compose();
    let names: BTreeSet<&str> = services(&compose)
        .keys()
        .map(|k| k.as_str().expect("name"))
        .collect();
    for name in ["synapse", "postgres", "msn-bridge"] {
        assert!(names.contains(name), "service {name} missing: {names:?}");
    }
    let (bridge, service) = bridge_service(&compose);
    assert_eq!(bridge, "msn-bridge");
    assert_eq!(
        service["build"]["context"].as_str(),
        Some(".."),
        "the build context is the repository root (the Dockerfile copies src/, Cargo.*)"
    );
    for dep in ["postgres", "synapse"] {
        assert!(
            !service["depends_on"][dep].is_null(),
            "the bridge should depend on {dep}"
        );
    }
    assert!(
        services(&compose)["synapse"]["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("matrixdotorg/synapse:")),
        "synapse runs the official image"
    );
}

#[test]
fn bridge_port_matches_the_example_config_everywhere() {
    let port = example_port();
    let compose = compose();
    let (bridge, service) = bridge_service(&compose);
    assert!(
        str_list(&service["expose"]).contains(&port.to_string()),
        "compose {bridge} must expose appservice.port {port}"
    );
    assert_eq!(
        env_of(service, "MSN_APPSERVICE_ADDRESS"),
        format!("http://{bridge}:{port}"),
        "Synapse reaches the bridge by its service name and appservice.port"
    );
    let compose_health = str_list(&service["healthcheck"]["test"]).join(" ");
    assert_eq!(
        health_port(&compose_health),
        port,
        "compose healthcheck port"
    );

    let instructions = dockerfile();
    let runtime = runtime_stage(&instructions);
    let exposed: Vec<&str> = args_of(runtime, "EXPOSE")
        .into_iter()
        .flat_map(str::split_whitespace)
        .collect();
    assert!(
        exposed.contains(&port.to_string().as_str()),
        "Dockerfile EXPOSE {exposed:?} lacks appservice.port {port}"
    );
    let docker_health = args_of(runtime, "HEALTHCHECK").join(" ");
    assert_eq!(
        health_port(&docker_health),
        port,
        "Dockerfile HEALTHCHECK port"
    );
}

#[test]
fn healthchecks_ask_a_path_the_router_serves() {
    let compose = compose();
    let (_, service) = bridge_service(&compose);
    let compose_path = health_path(&str_list(&service["healthcheck"]["test"]).join(" "));
    let docker_path = health_path(&args_of(runtime_stage(&dockerfile()), "HEALTHCHECK").join(" "));
    assert_eq!(compose_path, docker_path);
    assert_eq!(compose_path, "/health/live", "liveness, not readiness");
    // the route is registered (the entrypoint test below also requests it from the binary)
    let router = read("src/matrix/appservice.rs");
    assert!(
        router.contains(&format!(".route(\"{compose_path}\"")),
        "src/matrix/appservice.rs has no route {compose_path}"
    );
}

#[test]
fn the_data_volume_is_where_the_image_and_entrypoint_keep_state() {
    let data = entrypoint_default("DATA", "MSN_DATA_DIR");
    assert_eq!(data, "/data");
    let compose = compose();
    let (bridge, service) = bridge_service(&compose);
    let mounts = volumes(service);
    let (volume, _) = mounts
        .iter()
        .find(|(_, target)| *target == data)
        .unwrap_or_else(|| panic!("{bridge} mounts nothing at {data}: {mounts:?}"));
    assert!(
        compose["volumes"]
            .as_mapping()
            .is_some_and(|v| v.contains_key(volume.as_str())),
        "named volume {volume} is not declared"
    );
    let instructions = dockerfile();
    let runtime = runtime_stage(&instructions);
    assert_eq!(args_of(runtime, "VOLUME"), [data.as_str()], "VOLUME");
    assert_eq!(args_of(runtime, "WORKDIR"), [data.as_str()], "WORKDIR");
    let run = args_of(runtime, "RUN").join(" ");
    assert!(
        run.contains(&format!("mkdir -p {data}")) && run.contains(&format!("chown msn:msn {data}")),
        "the runtime image must create {data} owned by the non-root user"
    );
    let user = args_of(runtime, "USER");
    assert!(
        user.len() == 1 && user[0] != "root" && user[0] != "0",
        "the image runs as a non-root user: {user:?}"
    );
}

#[test]
fn synapse_mounts_the_registration_where_the_entrypoint_writes_it() {
    let script = read("docker/entrypoint.sh");
    assert!(
        script.contains("REG=$DATA/registration.yaml"),
        "entrypoint writes the registration at $DATA/registration.yaml"
    );
    let compose = compose();
    let (_, bridge) = bridge_service(&compose);
    let data = entrypoint_default("DATA", "MSN_DATA_DIR");
    let volume = volumes(bridge)
        .into_iter()
        .find(|(_, t)| *t == data)
        .map(|(s, _)| s)
        .expect("the bridge's data volume");
    let synapse_mount = volumes(&services(&compose)["synapse"])
        .into_iter()
        .find(|(s, _)| *s == volume)
        .map(|(_, t)| t)
        .unwrap_or_else(|| panic!("synapse does not mount the bridge's volume {volume}"));
    let seen_by_synapse = format!("{synapse_mount}/registration.yaml");
    assert!(
        script.contains(&format!("- {seen_by_synapse}")),
        "the entrypoint should tell the operator to register {seen_by_synapse}"
    );
    assert!(
        read("docker/docker-compose.yml")
            .contains(&format!("app_service_config_files: [{seen_by_synapse}]")),
        "the compose instructions should name {seen_by_synapse}"
    );
    assert!(
        read("README.md").contains(&seen_by_synapse),
        "the README quick start should name {seen_by_synapse}"
    );
}

#[test]
fn the_image_builds_and_runs_the_cargo_binary() {
    let cargo = read("Cargo.toml");
    let bin_section = &cargo[cargo.find("[[bin]]").expect("[[bin]]")..];
    let name_line = bin_section
        .lines()
        .find(|l| l.trim_start().starts_with("name"))
        .expect("bin name");
    let bin = name_line.split('"').nth(1).expect("quoted name");
    assert_eq!(bin, "matrix-msn");
    assert!(env!("CARGO_BIN_EXE_matrix-msn").ends_with(bin));

    let instructions = dockerfile();
    let build = args_of(&instructions, "RUN").join(" ");
    assert!(
        build.contains("cargo build --release --locked"),
        "the image builds from the lock file"
    );
    assert!(
        build.contains(&format!("target/release/{bin} ")),
        "the builder stage takes target/release/{bin}"
    );
    let installed = format!("/usr/local/bin/{bin}");
    assert!(
        args_of(runtime_stage(&instructions), "COPY")
            .iter()
            .any(|c| c.starts_with("--from=builder") && c.ends_with(&installed)),
        "the runtime stage copies the binary to {installed}"
    );
    assert_eq!(entrypoint_default("BIN", "MSN_BIN"), installed);
}

#[test]
fn the_image_has_the_example_and_entrypoint_where_they_are_used() {
    let instructions = dockerfile();
    let runtime = runtime_stage(&instructions);
    let copies: Vec<(String, String)> = args_of(runtime, "COPY")
        .into_iter()
        .filter(|c| !c.starts_with("--from"))
        .map(|c| {
            let parts: Vec<&str> = c.split_whitespace().collect();
            assert_eq!(parts.len(), 2, "COPY {c}");
            (parts[0].to_owned(), parts[1].to_owned())
        })
        .collect();
    let dest = |src: &str| {
        copies
            .iter()
            .find(|(s, _)| s == src)
            .map(|(_, d)| d.clone())
            .unwrap_or_else(|| panic!("the runtime stage does not COPY {src}"))
    };
    assert_eq!(
        dest("config.example.yaml"),
        entrypoint_default("EXAMPLE", "MSN_CONFIG_EXAMPLE"),
        "the entrypoint reads the example where the image puts it"
    );
    let entrypoint = dest("docker/entrypoint.sh");
    assert_eq!(
        args_of(runtime, "ENTRYPOINT"),
        [format!("[\"{entrypoint}\"]").as_str()]
    );

    // Every file COPY'd from the context exists and passes Dockerfile.dockerignore.
    let ignore = read("docker/Dockerfile.dockerignore");
    let allowed: Vec<&str> = ignore
        .lines()
        .filter_map(|l| l.trim().strip_prefix('!'))
        .collect();
    assert!(
        ignore.lines().any(|l| l.trim() == "*"),
        "the ignore file starts from nothing"
    );
    let context_sources: Vec<String> = args_of(&instructions, "COPY")
        .into_iter()
        .filter(|c| !c.starts_with("--from"))
        .flat_map(|c| {
            let parts: Vec<&str> = c.split_whitespace().collect();
            parts[..parts.len() - 1]
                .iter()
                .map(|s| (*s).to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(context_sources.len() >= 5, "{context_sources:?}");
    for source in context_sources {
        assert!(
            Path::new(ROOT).join(&source).exists(),
            "COPY {source}: not in the repository"
        );
        let trimmed = source.trim_end_matches('/');
        assert!(
            allowed.iter().any(|a| a.trim_end_matches('/') == trimmed),
            "COPY {source} is excluded by docker/Dockerfile.dockerignore"
        );
    }
}

#[test]
fn compose_variables_are_read_and_documented() {
    let compose_text = read("docker/docker-compose.yml");
    let compose = compose();
    let (_, service) = bridge_service(&compose);
    let script = read("docker/entrypoint.sh");
    let env = service["environment"].as_mapping().expect("environment");
    for key in env.keys().map(|k| k.as_str().expect("key")) {
        assert!(
            script.contains(&format!("${{{key}")),
            "compose sets {key} but the entrypoint never reads it"
        );
    }
    for key in ["MSN_SERVER", "MSN_NEXUS_URL"] {
        assert!(env.contains_key(key), "compose should pass {key} through");
    }
    // every ${VAR} of the compose file is described in .env.example
    let env_example = read("docker/.env.example");
    let mut vars = BTreeSet::new();
    for (at, _) in compose_text.match_indices("${") {
        let name: String = compose_text[at + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        vars.insert(name);
    }
    assert!(vars.contains("SERVER_NAME"), "{vars:?}");
    for var in vars {
        assert!(
            env_example.contains(&format!("{var}=")),
            "${{{var}}} in docker-compose.yml is not described in docker/.env.example"
        );
    }
}

#[test]
fn compose_addresses_point_at_real_services() {
    let compose = compose();
    let (_, bridge) = bridge_service(&compose);
    let all = services(&compose);
    // the homeserver address: the synapse service on the port it listens on
    let hs = env_of(bridge, "MSN_HOMESERVER_ADDRESS");
    let synapse_port = str_list(&all["synapse"]["ports"])
        .first()
        .and_then(|p| p.rsplit(':').next().map(str::to_owned))
        .expect("synapse port mapping");
    assert_eq!(hs, format!("http://synapse:{synapse_port}"));
    // the database: the postgres service and the database postgres-init.sql creates
    let db = env_of(bridge, "MSN_DATABASE_URI");
    let at = db
        .rfind("@postgres/")
        .expect("the postgres service in MSN_DATABASE_URI")
        + 10;
    let name: String = db[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    assert!(
        read("docker/postgres-init.sql").contains(&format!("CREATE DATABASE {name};")),
        "postgres-init.sql does not create {name}"
    );
    let init_mounted = volumes(&all["postgres"])
        .iter()
        .any(|(s, t)| s == "./postgres-init.sql" && t.starts_with("/docker-entrypoint-initdb.d/"));
    assert!(
        init_mounted,
        "postgres-init.sql is not mounted into initdb.d"
    );
}

// --- the entrypoint, run -----------------------------------------------------------------

struct Stage {
    ok: bool,
    stderr: String,
}

fn entrypoint(data: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg(format!("{ROOT}/docker/entrypoint.sh"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("MSN_DATA_DIR", data)
        .env("MSN_CONFIG_EXAMPLE", format!("{ROOT}/config.example.yaml"))
        .env("MSN_BIN", env!("CARGO_BIN_EXE_matrix-msn"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn stage(data: &Path, env: &[(&str, &str)]) -> Stage {
    let out = entrypoint(data, env).output().expect("run sh");
    Stage {
        ok: out.status.success(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// One raw HTTP GET, the way the healthcheck does it: the status code, if any.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn entrypoint_stages_write_config_and_registration_then_run_the_bridge() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let compose = compose();
    let (_, bridge) = bridge_service(&compose);
    let as_address = env_of(bridge, "MSN_APPSERVICE_ADDRESS").to_owned();
    let env = [
        ("MSN_HOMESERVER_ADDRESS", "http://127.0.0.1:9"),
        ("MSN_APPSERVICE_ADDRESS", as_address.as_str()),
        ("MSN_DOMAIN", "matrix.example.org"),
        ("MSN_ADMIN", "@you:matrix.example.org"),
        ("MSN_SERVER", "msn.revival.test:1863"),
        ("MSN_NEXUS_URL", "https://msn.revival.test/rdr/pprdr.asp"),
    ];

    // stage 1: the config, from the example with the environment filled in
    let first = stage(data, &env);
    assert!(first.ok, "stage 1 failed: {}", first.stderr);
    assert!(first.stderr.contains("wrote"), "{}", first.stderr);
    assert!(!data.join("registration.yaml").exists());
    let config_path = data.join("config.yaml");
    let written = std::fs::read_to_string(&config_path).expect("config written");
    let config = Config::parse(&written).expect("written config parses");
    assert_eq!(config.appservice.hostname, "0.0.0.0");
    assert_eq!(config.appservice.port, example_port());
    assert_eq!(config.appservice.address, as_address);
    assert_eq!(config.homeserver.address, "http://127.0.0.1:9");
    assert_eq!(config.homeserver.domain, "matrix.example.org");
    assert_eq!(
        config.bridge.permissions,
        [
            ("matrix.example.org".to_owned(), PermissionLevel::User),
            ("@you:matrix.example.org".to_owned(), PermissionLevel::Admin),
        ]
        .into()
    );
    assert_eq!(config.msn.server, "msn.revival.test:1863");
    assert_eq!(
        config.msn.nexus_url,
        "https://msn.revival.test/rdr/pprdr.asp"
    );
    assert_eq!(
        config.database.uri,
        format!("sqlite:{}/matrix-msn.db", data.display())
    );
    assert_eq!(config.bridge.credentials_key, TOKEN_PLACEHOLDER);
    config
        .validate_structure()
        .expect("no placeholder left but the generated ones");
    // nothing but the filled-in lines changed: comments and other keys are kept
    let example = read("config.example.yaml");
    assert_eq!(written.lines().count(), example.lines().count());
    let changed = example
        .lines()
        .zip(written.lines())
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(
        changed, 9,
        "hostname, 2 addresses, domain, uri, 2 permissions, 2 msn"
    );

    // stage 2: the tokens and the registration
    let second = stage(data, &env);
    assert!(second.ok, "stage 2 failed: {}", second.stderr);
    let config = Config::load(&config_path).expect("config");
    config.validate().expect("a runnable config after stage 2");
    let registration =
        Registration::load(&data.join("registration.yaml")).expect("registration written");
    registration
        .check_against(&config)
        .expect("the registration's tokens and namespaces match the config");
    assert_eq!(registration.address(), as_address);
    assert!(
        second.stderr.contains("/registration.yaml"),
        "{}",
        second.stderr
    );

    // stage 3: the bridge runs and answers the healthcheck's path (on a free loopback port)
    let port = free_port();
    let text = std::fs::read_to_string(&config_path)
        .expect("config")
        .replace("  hostname: 0.0.0.0", "  hostname: 127.0.0.1")
        .replace(
            &format!("  port: {}", example_port()),
            &format!("  port: {port}"),
        );
    std::fs::write(&config_path, text).expect("rewrite port");
    let (_, service) = bridge_service(&compose);
    let path = health_path(&str_list(&service["healthcheck"]["test"]).join(" "));
    let mut child = entrypoint(data, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("stage 3");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut status = None;
    while Instant::now() < deadline && status.is_none() {
        if let Ok(Some(exit)) = child.try_wait() {
            panic!("the bridge exited early: {exit}");
        }
        status = http_status(port, &path);
        if status.is_none() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, Some(200), "GET {path} on the running bridge");
}

#[test]
fn entrypoint_without_environment_keeps_placeholders_and_refuses_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let first = stage(data, &[]);
    assert!(first.ok, "stage 1 failed: {}", first.stderr);
    assert!(
        first.stderr.contains("Still placeholders"),
        "stage 1 should list the placeholders: {}",
        first.stderr
    );
    for key in [
        "domain: example.com",
        "msn.example.com:1863",
        "@admin:example.com",
    ] {
        assert!(
            first.stderr.contains(key),
            "{key} not listed: {}",
            first.stderr
        );
    }
    let config = Config::load(&data.join("config.yaml")).expect("config");
    assert_eq!(config.appservice.hostname, "0.0.0.0");
    assert_eq!(
        config.database.uri,
        format!("sqlite:{}/matrix-msn.db", data.display())
    );
    // stage 2 refuses the placeholders with the bridge's own error and writes nothing
    let second = stage(data, &[]);
    assert!(!second.ok, "stage 2 must fail on placeholders");
    assert!(
        second.stderr.contains("placeholder") && second.stderr.contains("fix"),
        "{}",
        second.stderr
    );
    assert!(!data.join("registration.yaml").exists());
}

#[test]
fn dockerfile_parser_joins_continuations_and_finds_the_last_stage() {
    let parsed = parse_dockerfile(
        "# c\nFROM a AS b\nRUN x \\\n  && y\n\nFROM c\nCOPY --from=b /o /p\nEXPOSE 1\n",
    );
    assert_eq!(parsed[1], ("RUN".into(), "x  && y".into()));
    assert_eq!(runtime_stage(&parsed).len(), 3);
    assert_eq!(
        health_port("exec 3<>/dev/tcp/127.0.0.1/${P:-4242} &&"),
        4242
    );
    assert_eq!(health_path("printf 'GET /health/x HTTP/1.1'"), "/health/x");
}
