//! Log setup: a `tracing` subscriber from the config's filter and format. Secrets never
//! reach a log line because no code logs them: types holding secrets redact their `Debug`,
//! and request spans record paths without query strings.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::{LogFormat, LoggingConfig};

/// Installs the global subscriber writing to `writer`. `RUST_LOG`, when set, wins over the config.
pub fn init<W>(config: &LoggingConfig, writer: W) -> Result<(), String>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .map_err(|e| e.to_string())?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let result = match config.format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| e.to_string())
}
