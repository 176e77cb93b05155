//! The `matrix-msn` command line: load and validate the config, then either write the
//! appservice registration (`-g`) or run the bridge until SIGINT/SIGTERM.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;

use matrix_msn::config::Config;
use matrix_msn::matrix::registration::{self, Registration};

/// A Matrix application service that bridges MSN Messenger.
#[derive(Parser, Debug)]
#[command(name = "matrix-msn", version, about)]
struct Cli {
    /// The config file.
    #[arg(short, long, default_value = "config.yaml")]
    config: PathBuf,
    /// Write the appservice registration (filling the config's tokens) and exit.
    #[arg(short = 'g', long)]
    generate_registration: bool,
    /// The registration file: written by -g; when running, checked against the config if it exists.
    #[arg(short, long, default_value = "registration.yaml")]
    registration: PathBuf,
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line: every error's message already states its cause.
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = Config::load(&cli.config)?;
    if cli.generate_registration {
        config.validate_structure()?;
        registration::generate(&cli.config, &mut config, &cli.registration)?;
        println!(
            "Wrote {} and the tokens into {}. Add the registration to your homeserver \
             (Synapse: app_service_config_files) and restart it.",
            cli.registration.display(),
            cli.config.display()
        );
        return Ok(());
    }
    config.validate()?;
    matrix_msn::logging::init(&config.logging, std::io::stderr)
        .map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))?;
    let registration = if cli.registration.exists() {
        Some(Registration::load(&cli.registration)?)
    } else {
        None
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let running =
            matrix_msn::app::start(config, registration.as_ref(), shutdown.clone()).await?;
        tokio::spawn(wait_for_signal(shutdown));
        running.wait().await?;
        tracing::info!("stopped");
        Ok(())
    })
}

async fn wait_for_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    shutdown.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
    shutdown.cancel();
}
