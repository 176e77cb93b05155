//! The appservice registration file: generating it from the config (with fresh random
//! tokens written back into the config file) and checking an existing one against the config.
//!
//! Owns: the registration YAML shape Synapse reads (`app_service_config_files`).
//! Must not import: the bridge core.

use std::fmt;
use std::path::Path;

use ruma::api::appservice;
use serde::{Deserialize, Serialize};

use crate::config::{Config, TOKEN_PLACEHOLDER};

/// Everything that can go wrong generating or checking a registration.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid registration: {source}")]
    Parse {
        path: String,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("cannot encode the registration: {0}")]
    Encode(#[source] serde_yaml::Error),
    #[error("the config file has no `{0}:` line under appservice to write the token into")]
    NoTokenLine(&'static str),
    #[error("no randomness available for tokens: {0}")]
    Random(String),
    #[error(
        "the registration does not match the config: {0}; regenerate it with --generate-registration"
    )]
    Mismatch(String),
}

/// An appservice registration as the homeserver reads it: ruma's type (the spec's
/// shape), with a `Debug` that leaves the tokens out.
#[derive(Clone, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Registration(pub appservice::Registration);

impl std::ops::Deref for Registration {
    type Target = appservice::Registration;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// Two registrations are the same when they serialize the same (ruma's type has no
/// `PartialEq`).
impl PartialEq for Registration {
    fn eq(&self, other: &Self) -> bool {
        serde_json::to_value(self).ok() == serde_json::to_value(other).ok()
    }
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("sender_localpart", &self.sender_localpart)
            .field("namespaces", &self.namespaces)
            .finish_non_exhaustive()
    }
}

impl Registration {
    /// Where the homeserver reaches the bridge (`url`; empty when the file has none).
    pub fn address(&self) -> &str {
        self.0.url.as_deref().unwrap_or_default()
    }

    /// The registration that matches `config` (its tokens included).
    pub fn from_config(config: &Config) -> Self {
        let domain = regex::escape(&config.homeserver.domain);
        let alias_prefix = config
            .bridge
            .username_template
            .split(crate::config::USERID_MARKER)
            .next()
            .unwrap_or_default();
        let mut namespaces = appservice::Namespaces::new();
        namespaces.users = vec![
            appservice::Namespace::new(true, config.puppet_namespace_regex()),
            appservice::Namespace::new(true, regex::escape(&config.bot_mxid())),
        ];
        namespaces.aliases = vec![appservice::Namespace::new(
            true,
            format!("#{}.+:{domain}", regex::escape(alias_prefix)),
        )];
        let mut registration: appservice::Registration = appservice::RegistrationInit {
            id: config.appservice.id.clone(),
            url: Some(config.appservice.address.clone()),
            as_token: config.appservice.as_token.clone(),
            hs_token: config.appservice.hs_token.clone(),
            sender_localpart: config.appservice.bot.username.clone(),
            namespaces,
            rate_limited: Some(false),
            protocols: None,
        }
        .into();
        registration.receive_ephemeral = config.appservice.ephemeral_events;
        Self(registration)
    }

    pub fn load(path: &Path) -> Result<Self, RegistrationError> {
        let text = std::fs::read_to_string(path).map_err(|source| RegistrationError::Read {
            path: path.display().to_string(),
            source,
        })?;
        serde_yaml::from_str(&text).map_err(|source| RegistrationError::Parse {
            path: path.display().to_string(),
            source,
        })
    }

    pub fn to_yaml(&self) -> Result<String, RegistrationError> {
        serde_yaml::to_string(self).map_err(RegistrationError::Encode)
    }

    /// Checks that a registration the homeserver holds fits the config: same tokens and ID,
    /// and a user namespace that covers the bot and the puppets the template makes.
    pub fn check_against(&self, config: &Config) -> Result<(), RegistrationError> {
        let mismatch = |what: &str| Err(RegistrationError::Mismatch(what.to_owned()));
        if self.id != config.appservice.id {
            return mismatch("the appservice id differs");
        }
        if self.as_token != config.appservice.as_token {
            return mismatch("as_token differs");
        }
        if self.hs_token != config.appservice.hs_token {
            return mismatch("hs_token differs");
        }
        if self.sender_localpart != config.appservice.bot.username {
            return mismatch("sender_localpart is not the bot's username");
        }
        let sample_puppet = format!(
            "@{}:{}",
            config
                .bridge
                .username_template
                .replace(crate::config::USERID_MARKER, "alice=40hotmail.com"),
            config.homeserver.domain
        );
        let covers = |mxid: &str| {
            self.namespaces.users.iter().any(|ns| {
                ns.exclusive
                    && regex::Regex::new(&format!("^(?:{})$", ns.regex))
                        .is_ok_and(|re| re.is_match(mxid))
            })
        };
        if !covers(&sample_puppet) {
            return mismatch(
                "no exclusive user namespace matches the puppets of bridge.username_template",
            );
        }
        Ok(())
    }
}

/// A fresh random token: a prefix and 64 hex digits (256 bits).
pub fn random_token(prefix: &str) -> Result<String, RegistrationError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| RegistrationError::Random(e.to_string()))?;
    let mut out = String::with_capacity(prefix.len() + 64);
    out.push_str(prefix);
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    Ok(out)
}

/// `--generate-registration`: gives the config tokens and a credentials key if it still has
/// the placeholders (and writes them into the config file, keeping its comments), then
/// writes the registration.
/// Existing tokens are kept, so regenerating never breaks a homeserver that has the old file.
pub fn generate(
    config_path: &Path,
    config: &mut Config,
    registration_path: &Path,
) -> Result<Registration, RegistrationError> {
    let mut text =
        std::fs::read_to_string(config_path).map_err(|source| RegistrationError::Read {
            path: config_path.display().to_string(),
            source,
        })?;
    for (key, prefix) in [
        ("as_token", "as_"),
        ("hs_token", "hs_"),
        ("credentials_key", ""),
    ] {
        let current = match key {
            "as_token" => &mut config.appservice.as_token,
            "hs_token" => &mut config.appservice.hs_token,
            _ => &mut config.bridge.credentials_key,
        };
        if current == TOKEN_PLACEHOLDER || current.is_empty() {
            *current = random_token(prefix)?;
            text = replace_yaml_value(&text, key, current)
                .ok_or(RegistrationError::NoTokenLine(key))?;
        }
    }
    std::fs::write(config_path, &text).map_err(|source| RegistrationError::Write {
        path: config_path.display().to_string(),
        source,
    })?;
    let registration = Registration::from_config(config);
    std::fs::write(registration_path, registration.to_yaml()?).map_err(|source| {
        RegistrationError::Write {
            path: registration_path.display().to_string(),
            source,
        }
    })?;
    Ok(registration)
}

/// Replaces the value of the first line `  key: ...` (any indentation), keeping the rest.
fn replace_yaml_value(text: &str, key: &str, value: &str) -> Option<String> {
    let mut done = false;
    let mut out = String::with_capacity(text.len() + value.len());
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if !done && trimmed.starts_with(&format!("{key}:")) {
            let indent = &line[..line.len() - trimmed.len()];
            out.push_str(&format!("{indent}{key}: \"{value}\"\n"));
            done = true;
        } else {
            out.push_str(line);
        }
    }
    done.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PermissionLevel;

    fn example_path() -> &'static str {
        concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml")
    }

    #[test]
    fn generate_fills_tokens_keeps_comments_and_is_stable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg_path = dir.path().join("config.yaml");
        let reg_path = dir.path().join("registration.yaml");
        let text = std::fs::read_to_string(example_path())
            .expect("example")
            .replace("domain: example.com", "domain: localhost")
            .replace("msn.example.com", "127.0.0.1");
        std::fs::write(&cfg_path, text).expect("write");
        let mut config = Config::load(&cfg_path).expect("load");
        config.bridge.permissions = [("localhost".into(), PermissionLevel::User)].into();
        let reg = generate(&cfg_path, &mut config, &reg_path).expect("generate");
        assert!(reg.as_token.starts_with("as_") && reg.as_token.len() == 67);
        assert_eq!(config.bridge.credentials_key.len(), 64);
        assert_ne!(reg.as_token, reg.hs_token);

        let reloaded = Config::load(&cfg_path).expect("reload");
        assert_eq!(
            reloaded.bridge.credentials_key,
            config.bridge.credentials_key
        );
        assert_eq!(reloaded.appservice.as_token, reg.as_token);
        assert_eq!(reloaded.appservice.hs_token, reg.hs_token);
        let rewritten = std::fs::read_to_string(&cfg_path).expect("read");
        assert!(rewritten.contains("# How the bridge reaches your homeserver."));

        let on_disk = Registration::load(&reg_path).expect("registration");
        assert_eq!(on_disk, reg);
        on_disk.check_against(&reloaded).expect("consistent");

        // A second run keeps the tokens.
        let mut again = Config::load(&cfg_path).expect("reload");
        let reg2 = generate(&cfg_path, &mut again, &reg_path).expect("regenerate");
        assert_eq!(reg2, reg);
    }

    #[test]
    fn registration_mismatches_are_reported() {
        let mut config = Config::parse(
            &std::fs::read_to_string(example_path())
                .expect("example")
                .replace("domain: example.com", "domain: localhost"),
        )
        .expect("parse");
        config.appservice.as_token = "as_1".into();
        config.appservice.hs_token = "hs_1".into();
        let reg = Registration::from_config(&config);
        reg.check_against(&config).expect("matches");

        let mut other = config.clone();
        other.appservice.hs_token = "hs_2".into();
        assert!(
            reg.check_against(&other)
                .unwrap_err()
                .to_string()
                .contains("hs_token")
        );

        let mut other = config.clone();
        other.bridge.username_template = "msnp_{userid}".into();
        let e = reg.check_against(&other).unwrap_err().to_string();
        assert!(e.contains("namespace"), "{e}");
    }

    #[test]
    fn debug_redacts_tokens() {
        let mut config = Config::parse(&std::fs::read_to_string(example_path()).expect("example"))
            .expect("parse");
        config.appservice.as_token = "as_secret".into();
        let dbg = format!("{:?}", Registration::from_config(&config));
        assert!(!dbg.contains("as_secret"), "{dbg}");
    }
}
