//! The bridge's typed configuration: loading from YAML, validation, and the
//! values derived from it (the bot's and puppets' Matrix IDs).
//!
//! Owns: every key of `config.example.yaml`. Unknown keys are rejected
//! (`deny_unknown_fields`), and [`Config::validate`] rejects the example's
//! placeholder values and inconsistent settings with one clear error each.
//! Secrets (`as_token`, `hs_token`) are redacted in `Debug`.
//! Must not import: the bridge core, the Matrix HTTP layer, the store.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};
use url::Url;

/// The text the example config carries in place of the tokens; `--generate-registration`
/// replaces it, and running the bridge with it still in place is an error.
pub const TOKEN_PLACEHOLDER: &str = "This value is generated when generating the registration";

/// The example's homeserver domain: running with it is an error.
pub const DOMAIN_PLACEHOLDER: &str = "example.com";

/// The example's MSN host: running with it is an error.
pub const MSN_PLACEHOLDER: &str = "msn.example.com";

/// The marker in [`BridgeConfig::username_template`] that stands for the escaped MSN address.
pub const USERID_MARKER: &str = "{userid}";

/// Everything that can be wrong with a config file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {source}")]
    Parse {
        path: String,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("config key {key} still has the example's placeholder value; {hint}")]
    Placeholder {
        key: &'static str,
        hint: &'static str,
    },
    #[error("config key {key} is not a valid URL ({value}): {reason}")]
    BadUrl {
        key: &'static str,
        value: String,
        reason: String,
    },
    #[error("config key {key} is invalid: {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// The whole configuration file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub homeserver: HomeserverConfig,
    pub appservice: AppserviceConfig,
    pub database: DatabaseConfig,
    pub bridge: BridgeConfig,
    pub msn: MsnConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub logging: LoggingConfig,
}

/// The Prometheus endpoint, on a listener of its own.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `GET /metrics`.
    #[serde(default)]
    pub enabled: bool,
    /// `ip:port` to listen on.
    #[serde(default = "default_metrics_listen")]
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: default_metrics_listen(),
        }
    }
}

fn default_metrics_listen() -> String {
    "127.0.0.1:9464".into()
}

/// The MSN service the bridge logs its users in to.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MsnConfig {
    /// The dispatch or notification server, `host:port`.
    pub server: String,
    /// The Passport 1.4 nexus URL.
    pub nexus_url: String,
    /// A login (DALogin) URL to use instead of asking the nexus; empty for none.
    #[serde(default)]
    pub dalogin_url: String,
    /// Get the ticket from this `RST.srf` URL (one SOAP request) instead of the nexus and
    /// DALogin; empty for none.
    #[serde(default)]
    pub rst_url: String,
    /// Get the ticket from this Escargot `NotRST.srf` URL (one request, credentials in
    /// headers) instead of the nexus and DALogin; empty for none. Wins over `rst_url`.
    #[serde(default)]
    pub not_rst_url: String,
    /// Protocol versions offered, best first; each between 8 and 18.
    #[serde(default = "default_versions")]
    pub protocol_versions: Vec<u8>,
    /// A PEM file with an extra CA certificate to trust for Passport HTTPS; empty for none.
    #[serde(default)]
    pub extra_ca_file: String,
    /// The MSN status while the user's Matrix presence is offline: `away` (contacts can
    /// still write), `online` or `hidden` (contacts cannot start a conversation).
    #[serde(default)]
    pub offline_status: OfflineStatus,
    /// Keep the MSN friendly name in step with the Matrix display name.
    #[serde(default = "default_true")]
    pub sync_display_name: bool,
    /// Reconnect delays: the first, and the cap of the exponential backoff, in seconds.
    #[serde(default = "default_reconnect_initial")]
    pub reconnect_initial_seconds: u64,
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max_seconds: u64,
    /// After a restart, how many stored logins are started each second (each login then
    /// waits its turn among the few that run at once).
    #[serde(default = "default_restore_logins_per_second")]
    pub restore_logins_per_second: u32,
    /// How long a Matrix message waits for the user's MSN session to come back (a login
    /// being restored after a bridge restart, a reconnect) before it is reported
    /// undelivered, in seconds.
    #[serde(default = "default_delivery_wait")]
    pub delivery_wait_seconds: u64,
    /// How long one switchboard step (`XFR SB`, `USR`, `CAL` until the contact joins,
    /// `ANS`) may take before that switchboard is given up and a fresh one opened, in
    /// seconds.
    #[serde(default = "default_switchboard_step")]
    pub switchboard_step_seconds: u64,
    /// Least time between two P2P messages (pictures, files) on a switchboard, in
    /// milliseconds. Clients built on `msnp11-sdk` misread messages that arrive back to
    /// back; official clients need no pacing (0: paced by the server's answers alone).
    #[serde(default = "default_p2p_pacing")]
    pub p2p_pacing_ms: u64,
    /// The largest file bridged either way, in bytes: a larger file a contact offers is
    /// declined (with a notice), a larger one from Matrix is not offered.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// Where files on their way between MSN and Matrix are kept until they are posted;
    /// empty: `matrix-msn-files` in the system's temporary directory.
    #[serde(default)]
    pub file_dir: String,
}

impl MsnConfig {
    /// Where files on their way are kept ([`MsnConfig::file_dir`], or the default).
    pub fn file_dir(&self) -> std::path::PathBuf {
        if self.file_dir.trim().is_empty() {
            std::env::temp_dir().join("matrix-msn-files")
        } else {
            std::path::PathBuf::from(&self.file_dir)
        }
    }
}

/// What "offline in Matrix" means on MSN.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OfflineStatus {
    /// Away (AWY): contacts see the user away and can still start a conversation.
    #[default]
    Away,
    /// Stay online.
    Online,
    /// Appear offline (HDN): contacts see the user offline and cannot start a
    /// conversation (the server answers `217`); conversations already open go on, and
    /// the bridge goes online again as soon as the user writes.
    Hidden,
}

/// How the bridge reaches the homeserver.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HomeserverConfig {
    /// Client-server API base URL, e.g. `http://127.0.0.1:8008`.
    pub address: String,
    /// The server name: the part after `:` in user IDs.
    pub domain: String,
}

/// The appservice side: where the bridge listens and the tokens it shares with the homeserver.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppserviceConfig {
    /// The URL the homeserver uses to reach the bridge (goes into the registration).
    pub address: String,
    /// The address the HTTP server binds.
    pub hostname: String,
    pub port: u16,
    /// The appservice ID in the registration.
    #[serde(default = "default_id")]
    pub id: String,
    pub bot: BotConfig,
    /// Ask the homeserver for typing, receipts and presence (MSC2409).
    #[serde(default = "default_true")]
    pub ephemeral_events: bool,
    /// The largest transaction body accepted, in bytes.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    pub as_token: String,
    pub hs_token: String,
}

impl fmt::Debug for AppserviceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppserviceConfig")
            .field("address", &self.address)
            .field("hostname", &self.hostname)
            .field("port", &self.port)
            .field("id", &self.id)
            .field("bot", &self.bot)
            .field("ephemeral_events", &self.ephemeral_events)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("as_token", &"<redacted>")
            .field("hs_token", &"<redacted>")
            .finish()
    }
}

/// The bridge bot's profile.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BotConfig {
    pub username: String,
    #[serde(default)]
    pub displayname: Option<String>,
    /// An `mxc://` URI, or empty for none.
    #[serde(default)]
    pub avatar: Option<String>,
}

/// Where state is kept.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite:PATH` (or a bare file path) for the embedded default, `postgres://...` for PostgreSQL.
    pub uri: String,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// SQLite only: sync every commit to disk (`synchronous = FULL`), so that a homeserver
    /// transaction, once acknowledged, survives a power cut. Off: commits survive a crash
    /// of the bridge but not of the machine, and writes are several times cheaper.
    #[serde(default)]
    pub sqlite_power_safe: bool,
}

/// Bridge behaviour: names, commands, permissions.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeConfig {
    /// Localpart of puppets; `{userid}` is replaced by the escaped MSN address.
    #[serde(default = "default_username_template")]
    pub username_template: String,
    /// Puppet display name; `{displayname}` is the MSN friendly name.
    #[serde(default = "default_displayname_template")]
    pub displayname_template: String,
    /// Prefix for commands outside the management room.
    #[serde(default = "default_command_prefix")]
    pub command_prefix: String,
    /// Who may use the bridge: `*`, a server name or a user ID, mapped to `user` or `admin`.
    pub permissions: BTreeMap<String, PermissionLevel>,
    /// 64 hex digits: the key that encrypts stored MSN credentials. Generated with the tokens.
    pub credentials_key: String,
    /// Double puppeting (mautrix's convention): a homeserver name mapped to
    /// `as_token:<token>`, the token of a second registration that may act as that
    /// server's users. What a user writes in their own Messenger then appears as theirs.
    #[serde(default)]
    pub double_puppet_secrets: BTreeMap<String, String>,
    /// The shared secret of the provisioning API (`/_matrix/provision/v3/…`, mautrix's
    /// shape), sent as `Authorization: Bearer <secret>`; empty: the API is off.
    #[serde(default)]
    pub provisioning_secret: String,
    /// Whether each Matrix message's outcome is reported as a
    /// `com.beeper.message_send_status` event (mautrix's `message_status_events`).
    #[serde(default = "default_true")]
    pub message_status_events: bool,
}

impl BridgeConfig {
    /// The double-puppet tokens by homeserver name (the `as_token:` prefix removed).
    pub fn double_puppet_tokens(&self) -> std::collections::HashMap<String, String> {
        self.double_puppet_secrets
            .iter()
            .filter_map(|(server, secret)| {
                let token = secret.strip_prefix("as_token:")?;
                Some((server.clone(), token.to_owned()))
            })
            .collect()
    }
}

impl fmt::Debug for BridgeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BridgeConfig")
            .field("username_template", &self.username_template)
            .field("displayname_template", &self.displayname_template)
            .field("command_prefix", &self.command_prefix)
            .field("permissions", &self.permissions)
            .field("credentials_key", &"<redacted>")
            .field(
                "double_puppet_secrets",
                &self.double_puppet_secrets.keys().collect::<Vec<_>>(),
            )
            .field(
                "provisioning_secret",
                &(!self.provisioning_secret.is_empty()).then_some("<redacted>"),
            )
            .field("message_status_events", &self.message_status_events)
            .finish()
    }
}

/// What a Matrix user may do with the bridge, in increasing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PermissionLevel {
    /// Nothing: the bridge politely refuses.
    None,
    /// Log in and chat.
    User,
    /// Everything, including administrative commands.
    Admin,
}

/// Log output.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    /// A `tracing` filter directive, e.g. `info` or `matrix_msn=debug,info`.
    #[serde(default = "default_log_level")]
    pub level: String,
    /// `pretty` for people, `json` for machines.
    #[serde(default)]
    pub format: LogFormat,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            level: default_log_level(),
            format: LogFormat::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

fn default_id() -> String {
    "msn".into()
}
fn default_true() -> bool {
    true
}
fn default_max_body_bytes() -> usize {
    16 * 1024 * 1024
}
fn default_max_connections() -> u32 {
    5
}
fn default_username_template() -> String {
    format!("msn_{USERID_MARKER}")
}
fn default_displayname_template() -> String {
    "{displayname} (MSN)".into()
}
fn default_command_prefix() -> String {
    "!msn".into()
}
fn default_versions() -> Vec<u8> {
    (8..=18).rev().collect()
}
fn default_reconnect_initial() -> u64 {
    2
}
fn default_reconnect_max() -> u64 {
    300
}
fn default_restore_logins_per_second() -> u32 {
    20
}
fn default_delivery_wait() -> u64 {
    120
}
fn default_switchboard_step() -> u64 {
    5
}
fn default_p2p_pacing() -> u64 {
    5
}
fn default_max_file_bytes() -> u64 {
    100 * 1024 * 1024
}
fn default_log_level() -> String {
    "info".into()
}

impl Config {
    /// Reads and parses a config file (without validating it).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|source| ConfigError::Parse {
            path: path.display().to_string(),
            source,
        })
    }

    /// Parses YAML text (without validating it).
    pub fn parse(text: &str) -> Result<Self, serde_yaml::Error> {
        serde_yaml::from_str(text)
    }

    /// Checks everything that must hold before the bridge may run, tokens included.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_structure()?;
        for (key, token) in [
            ("appservice.as_token", &self.appservice.as_token),
            ("appservice.hs_token", &self.appservice.hs_token),
            ("bridge.credentials_key", &self.bridge.credentials_key),
        ] {
            if token == TOKEN_PLACEHOLDER || token.is_empty() {
                return Err(ConfigError::Placeholder {
                    key,
                    hint: "run with --generate-registration first",
                });
            }
        }
        let key = self.bridge.credentials_key.trim();
        if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ConfigError::Invalid {
                key: "bridge.credentials_key",
                reason: "must be 64 hex digits".into(),
            });
        }
        if self.appservice.as_token == self.appservice.hs_token {
            return Err(ConfigError::Invalid {
                key: "appservice.hs_token",
                reason: "must differ from as_token".into(),
            });
        }
        Ok(())
    }

    /// Checks everything but the tokens: what `--generate-registration` needs.
    pub fn validate_structure(&self) -> Result<(), ConfigError> {
        check_url("homeserver.address", &self.homeserver.address)?;
        check_url("appservice.address", &self.appservice.address)?;
        let domain = &self.homeserver.domain;
        if domain == DOMAIN_PLACEHOLDER {
            return Err(ConfigError::Placeholder {
                key: "homeserver.domain",
                hint: "set it to your homeserver's server name",
            });
        }
        if domain.is_empty() || domain.contains(['/', '@', ' ']) {
            return Err(ConfigError::Invalid {
                key: "homeserver.domain",
                reason: format!("{domain:?} is not a server name"),
            });
        }
        if self.appservice.hostname.parse::<IpAddr>().is_err()
            && self.appservice.hostname != "localhost"
        {
            return Err(ConfigError::Invalid {
                key: "appservice.hostname",
                reason: format!(
                    "{:?} is not an IP address to bind",
                    self.appservice.hostname
                ),
            });
        }
        for (server, secret) in &self.bridge.double_puppet_secrets {
            let token = secret.strip_prefix("as_token:").unwrap_or_default();
            if server.is_empty() || token.is_empty() || token.contains(char::is_whitespace) {
                return Err(ConfigError::Invalid {
                    key: "bridge.double_puppet_secrets",
                    reason: format!(
                        "map a server name to \"as_token:<token of a second registration>\" ({server:?})"
                    ),
                });
            }
        }
        let secret = &self.bridge.provisioning_secret;
        if !secret.is_empty() && (secret.len() < 16 || secret.contains(char::is_whitespace)) {
            return Err(ConfigError::Invalid {
                key: "bridge.provisioning_secret",
                reason: "use at least 16 characters without spaces, or leave it empty (off)".into(),
            });
        }
        if !is_localpart(&self.appservice.id) {
            return Err(ConfigError::Invalid {
                key: "appservice.id",
                reason: "use lowercase letters, digits and -._=".into(),
            });
        }
        if !is_localpart(&self.appservice.bot.username) {
            return Err(ConfigError::Invalid {
                key: "appservice.bot.username",
                reason: "use lowercase letters, digits and -._=".into(),
            });
        }
        if let Some(avatar) = self.appservice.bot.avatar.as_deref()
            && !avatar.is_empty()
            && !avatar.starts_with("mxc://")
        {
            return Err(ConfigError::Invalid {
                key: "appservice.bot.avatar",
                reason: format!("{avatar:?} is not an mxc:// URI"),
            });
        }
        self.check_username_template()?;
        if !self.bridge.displayname_template.contains("{displayname}") {
            return Err(ConfigError::Invalid {
                key: "bridge.displayname_template",
                reason: "must contain {displayname}".into(),
            });
        }
        if self.bridge.command_prefix.trim().is_empty() {
            return Err(ConfigError::Invalid {
                key: "bridge.command_prefix",
                reason: "must not be empty".into(),
            });
        }
        self.check_permissions()?;
        self.check_database()?;
        self.check_msn()?;
        if self.metrics.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::Invalid {
                key: "metrics.listen",
                reason: format!("{:?} is not ip:port", self.metrics.listen),
            });
        }
        if tracing_subscriber::EnvFilter::try_new(&self.logging.level).is_err() {
            return Err(ConfigError::Invalid {
                key: "logging.level",
                reason: format!("{:?} is not a tracing filter", self.logging.level),
            });
        }
        Ok(())
    }

    fn check_username_template(&self) -> Result<(), ConfigError> {
        let template = &self.bridge.username_template;
        if template.matches(USERID_MARKER).count() != 1 {
            return Err(ConfigError::Invalid {
                key: "bridge.username_template",
                reason: format!("must contain {USERID_MARKER} exactly once"),
            });
        }
        let probe = template.replace(USERID_MARKER, "x");
        if !is_localpart(&probe) {
            return Err(ConfigError::Invalid {
                key: "bridge.username_template",
                reason: "the rest of the template must be lowercase letters, digits and -._="
                    .into(),
            });
        }
        if probe == self.appservice.bot.username {
            return Err(ConfigError::Invalid {
                key: "bridge.username_template",
                reason: "puppets could collide with the bot's username".into(),
            });
        }
        Ok(())
    }

    fn check_permissions(&self) -> Result<(), ConfigError> {
        if self.bridge.permissions.is_empty() {
            return Err(ConfigError::Invalid {
                key: "bridge.permissions",
                reason: "no one may use the bridge; add at least one entry".into(),
            });
        }
        for subject in self.bridge.permissions.keys() {
            if subject == DOMAIN_PLACEHOLDER || subject.ends_with(&format!(":{DOMAIN_PLACEHOLDER}"))
            {
                return Err(ConfigError::Placeholder {
                    key: "bridge.permissions",
                    hint: "replace the example's entries with your own server or users",
                });
            }
            let ok = subject == "*"
                || (subject.starts_with('@') && subject.contains(':'))
                || (!subject.is_empty() && !subject.contains(['@', ' ', '/']));
            if !ok {
                return Err(ConfigError::Invalid {
                    key: "bridge.permissions",
                    reason: format!("{subject:?} is not *, a server name or a user ID"),
                });
            }
        }
        Ok(())
    }

    fn check_msn(&self) -> Result<(), ConfigError> {
        let msn = &self.msn;
        if msn.server.contains(MSN_PLACEHOLDER) || msn.nexus_url.contains(MSN_PLACEHOLDER) {
            return Err(ConfigError::Placeholder {
                key: "msn.server",
                hint: "set the MSN server and nexus URL of the service you use",
            });
        }
        let port_ok = msn.server.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0)
        });
        if !port_ok {
            return Err(ConfigError::Invalid {
                key: "msn.server",
                reason: format!("{:?} is not host:port", msn.server),
            });
        }
        check_url("msn.nexus_url", &msn.nexus_url)?;
        if !msn.dalogin_url.is_empty() {
            check_url("msn.dalogin_url", &msn.dalogin_url)?;
        }
        if !msn.rst_url.is_empty() {
            check_url("msn.rst_url", &msn.rst_url)?;
        }
        if !msn.not_rst_url.is_empty() {
            check_url("msn.not_rst_url", &msn.not_rst_url)?;
        }
        if msn.protocol_versions.is_empty()
            || msn.protocol_versions.iter().any(|v| !(8..=18).contains(v))
        {
            return Err(ConfigError::Invalid {
                key: "msn.protocol_versions",
                reason: "list versions between 8 and 18".into(),
            });
        }
        if !msn.extra_ca_file.is_empty() && !Path::new(&msn.extra_ca_file).is_file() {
            return Err(ConfigError::Invalid {
                key: "msn.extra_ca_file",
                reason: format!("{:?} is not a readable file", msn.extra_ca_file),
            });
        }
        if msn.reconnect_initial_seconds == 0
            || msn.reconnect_max_seconds < msn.reconnect_initial_seconds
        {
            return Err(ConfigError::Invalid {
                key: "msn.reconnect_max_seconds",
                reason: "delays must be positive and the cap at least the first delay".into(),
            });
        }
        // The pace is a timer of millisecond resolution: at most one login a millisecond.
        if !(1..=1_000).contains(&msn.restore_logins_per_second) {
            return Err(ConfigError::Invalid {
                key: "msn.restore_logins_per_second",
                reason: "must be between 1 and 1000".into(),
            });
        }
        if msn.switchboard_step_seconds == 0 {
            return Err(ConfigError::Invalid {
                key: "msn.switchboard_step_seconds",
                reason: "must be at least 1".into(),
            });
        }
        if msn.max_file_bytes == 0 {
            return Err(ConfigError::Invalid {
                key: "msn.max_file_bytes",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }

    fn check_database(&self) -> Result<(), ConfigError> {
        let uri = &self.database.uri;
        if uri.starts_with("postgres://") || uri.starts_with("postgresql://") {
            check_url("database.uri", uri)?;
        } else if uri.trim().is_empty() {
            return Err(ConfigError::Invalid {
                key: "database.uri",
                reason: "must be a SQLite file path or a postgres:// URL".into(),
            });
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::Invalid {
                key: "database.max_connections",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }

    /// `@<bot username>:<domain>`.
    pub fn bot_mxid(&self) -> String {
        format!(
            "@{}:{}",
            self.appservice.bot.username, self.homeserver.domain
        )
    }

    /// The registration's exclusive user namespace for puppets, derived from the template.
    pub fn puppet_namespace_regex(&self) -> String {
        let (prefix, suffix) = self
            .bridge
            .username_template
            .split_once(USERID_MARKER)
            .unwrap_or((self.bridge.username_template.as_str(), ""));
        format!(
            "@{}.+{}:{}",
            regex::escape(prefix),
            regex::escape(suffix),
            regex::escape(&self.homeserver.domain)
        )
    }

    /// The permission level of a Matrix user: an exact user entry wins over a server entry,
    /// which wins over `*`.
    pub fn permission_of(&self, mxid: impl AsRef<str>) -> PermissionLevel {
        let mxid = mxid.as_ref();
        let perms = &self.bridge.permissions;
        if let Some(level) = perms.get(mxid) {
            return *level;
        }
        let server = mxid.split_once(':').map(|(_, s)| s).unwrap_or("");
        if let Some(level) = perms.get(server) {
            return *level;
        }
        perms.get("*").copied().unwrap_or(PermissionLevel::None)
    }
}

fn check_url(key: &'static str, value: &str) -> Result<(), ConfigError> {
    let url = Url::parse(value).map_err(|e| ConfigError::BadUrl {
        key,
        value: value.to_owned(),
        reason: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https" | "postgres" | "postgresql") {
        return Err(ConfigError::BadUrl {
            key,
            value: value.to_owned(),
            reason: format!("unsupported scheme {:?}", url.scheme()),
        });
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::BadUrl {
            key,
            value: value.to_owned(),
            reason: "no host".into(),
        });
    }
    Ok(())
}

/// Whether `s` is a Matrix user localpart in the strict (historical-free) grammar.
fn is_localpart(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'=' | b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> String {
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml"))
            .expect("example config")
    }

    fn valid() -> Config {
        let mut c = Config::parse(&example()).expect("example parses");
        c.homeserver.domain = "localhost".into();
        c.bridge.permissions = [("localhost".to_string(), PermissionLevel::User)].into();
        c.appservice.as_token = "as_secret".into();
        c.appservice.hs_token = "hs_secret".into();
        c.bridge.credentials_key = "ab".repeat(32);
        c.msn.server = "127.0.0.1:1863".into();
        c.msn.nexus_url = "http://127.0.0.1:8080/rdr/pprdr.asp".into();
        c
    }

    fn err_of(c: &Config) -> String {
        c.validate().expect_err("should be rejected").to_string()
    }

    #[test]
    fn example_parses_but_is_rejected_for_placeholders() {
        let c = Config::parse(&example()).expect("example parses");
        let e = c.validate().expect_err("placeholders").to_string();
        assert!(e.contains("placeholder"), "{e}");
    }

    #[test]
    fn valid_config_passes() {
        valid().validate().expect("valid");
    }

    #[test]
    fn unknown_key_is_rejected() {
        let text = example().replace("homeserver:\n", "homeserver:\n  colour: blue\n");
        let e = Config::parse(&text).expect_err("unknown key").to_string();
        assert!(e.contains("unknown field `colour`"), "{e}");
    }

    #[test]
    fn token_placeholders_are_rejected() {
        let mut c = valid();
        c.appservice.as_token = TOKEN_PLACEHOLDER.into();
        assert!(err_of(&c).contains("appservice.as_token"));
        let mut c = valid();
        c.appservice.hs_token = TOKEN_PLACEHOLDER.into();
        assert!(err_of(&c).contains("appservice.hs_token"));
        let mut c = valid();
        c.appservice.hs_token = c.appservice.as_token.clone();
        assert!(err_of(&c).contains("must differ"));
    }

    #[test]
    fn placeholder_domain_and_permissions_are_rejected() {
        let mut c = valid();
        c.homeserver.domain = DOMAIN_PLACEHOLDER.into();
        assert!(err_of(&c).contains("homeserver.domain"));
        let mut c = valid();
        c.bridge.permissions = [("@admin:example.com".to_string(), PermissionLevel::Admin)].into();
        assert!(err_of(&c).contains("bridge.permissions"));
    }

    #[test]
    fn malformed_urls_are_rejected() {
        for bad in ["not a url", "ftp://host", "http://"] {
            let mut c = valid();
            c.homeserver.address = bad.into();
            assert!(err_of(&c).contains("homeserver.address"), "{bad}");
        }
        let mut c = valid();
        c.appservice.address = "127.0.0.1:29320".into();
        assert!(err_of(&c).contains("appservice.address"));
        let mut c = valid();
        c.database.uri = "postgres://".into();
        assert!(err_of(&c).contains("database.uri"));
    }

    #[test]
    fn username_template_must_fit_the_namespace() {
        for bad in [
            "msn_",
            "msn_{userid}_{userid}",
            "MSN_{userid}",
            "msn {userid}",
        ] {
            let mut c = valid();
            c.bridge.username_template = bad.into();
            assert!(err_of(&c).contains("bridge.username_template"), "{bad}");
        }
        let mut c = valid();
        c.bridge.username_template = "x{userid}".into();
        c.appservice.bot.username = "xx".into();
        assert!(err_of(&c).contains("collide"));
    }

    #[test]
    fn namespace_regex_matches_template_output_but_not_bot() {
        let mut c = valid();
        c.bridge.username_template = "msn.{userid}_x".into();
        let re = regex::Regex::new(&format!("^{}$", c.puppet_namespace_regex())).expect("regex");
        assert!(re.is_match("@msn.alice=40hotmail.com_x:localhost"));
        assert!(!re.is_match("@msnbot:localhost"));
        assert!(!re.is_match("@msnXalice_x:localhost"), "the dot is escaped");
    }

    #[test]
    fn msn_settings_are_checked() {
        let mut c = valid();
        c.msn.server = "msn.example.com:1863".into();
        assert!(err_of(&c).contains("placeholder"));
        for bad in ["host", "host:0", ":1863", "host:port"] {
            let mut c = valid();
            c.msn.server = bad.into();
            assert!(err_of(&c).contains("msn.server"), "{bad}");
        }
        let mut c = valid();
        c.msn.protocol_versions = vec![19];
        assert!(err_of(&c).contains("msn.protocol_versions"));
        let mut c = valid();
        c.bridge
            .double_puppet_secrets
            .insert("example.com".into(), "secret-without-prefix".into());
        assert!(err_of(&c).contains("bridge.double_puppet_secrets"));
        c.bridge
            .double_puppet_secrets
            .insert("example.com".into(), "as_token:abc".into());
        assert_eq!(
            c.bridge
                .double_puppet_tokens()
                .get("example.com")
                .map(String::as_str),
            Some("abc")
        );
        assert!(
            !format!("{:?}", c.bridge).contains("abc"),
            "tokens redacted"
        );
        let mut c = valid();
        c.msn.nexus_url = "nexus".into();
        assert!(err_of(&c).contains("msn.nexus_url"));
        let mut c = valid();
        c.msn.rst_url = "ftp://x/RST.srf".into();
        assert!(err_of(&c).contains("msn.rst_url"));
        c.msn.rst_url = String::new();
        c.msn.not_rst_url = "login.example/NotRST.srf".into();
        assert!(err_of(&c).contains("msn.not_rst_url"));
        let mut c = valid();
        c.msn.extra_ca_file = "/nonexistent/ca.pem".into();
        assert!(err_of(&c).contains("msn.extra_ca_file"));
        let mut c = valid();
        c.bridge.credentials_key = "xyz".into();
        assert!(err_of(&c).contains("bridge.credentials_key"));
        let mut c = valid();
        c.bridge.credentials_key = TOKEN_PLACEHOLDER.into();
        assert!(err_of(&c).contains("placeholder"));
    }

    #[test]
    fn metrics_listen_is_checked() {
        let mut c = valid();
        c.metrics.listen = "localhost".into();
        assert!(err_of(&c).contains("metrics.listen"));
    }

    #[test]
    fn permissions_resolve_most_specific_first() {
        let mut c = valid();
        c.bridge.permissions = [
            ("*".to_string(), PermissionLevel::None),
            ("localhost".to_string(), PermissionLevel::User),
            ("@boss:localhost".to_string(), PermissionLevel::Admin),
        ]
        .into();
        assert_eq!(c.permission_of("@boss:localhost"), PermissionLevel::Admin);
        assert_eq!(c.permission_of("@bob:localhost"), PermissionLevel::User);
        assert_eq!(c.permission_of("@eve:evil.org"), PermissionLevel::None);
    }

    #[test]
    fn debug_redacts_tokens() {
        let c = valid();
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("as_secret") && !dbg.contains("hs_secret"),
            "{dbg}"
        );
    }
}
