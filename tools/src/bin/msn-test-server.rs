//! `msn-test-server`: the in-process MSNP8–12 test server of `msn_testkit`, run on
//! its own for trying the bridge locally (`scripts/run-local.sh` starts it).
//!
//! ```text
//! msn-test-server --account me@example.com:secret:Me \
//!                 --account echo@example.com:pw2:Echo --friends me@example.com,echo@example.com \
//!                 --echo-bot echo@example.com
//! ```
//!
//! Once ready it prints one line on stdout,
//! `dispatch=127.0.0.1:PORT nexus=http://127.0.0.1:PORT/rdr/pprdr.asp` (the ports are
//! random), logs to stderr (`RUST_LOG` filters) and runs until SIGINT or SIGTERM. The echo
//! bot logs in with the bridge's own MSN client (`matrix_msn::net`), answers every
//! conversation invitation, replies "You said: <text>" to text and a nudge to a nudge.
#![allow(
    clippy::indexing_slicing,
    reason = "a measuring tool reading JSON it asked for; unwrap, expect and panic stay denied"
)]

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use matrix_msn::net::{
    Backoff, MsnSession, MsnSettings, SbClient, SessionEvent, SwitchboardEvent, http_client,
};
use msn_testkit::{MsnServer, MsnServerConfig, MsnServerHandle};
use msnp::{MsgPayload, NsConfig, NsEvent, SbConfig, SbEvent, Secret, TextFormat};

/// Runs the MSNP8–12 test server for local trials of the bridge.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// An account, EMAIL:PASSWORD:FRIENDLY (the friendly name may be left out). Repeatable.
    #[arg(long = "account", value_name = "EMAIL:PASSWORD:FRIENDLY")]
    accounts: Vec<String>,
    /// Accounts that become mutual friends, EMAIL,EMAIL[,...]. Repeatable.
    #[arg(long = "friends", value_name = "EMAIL,EMAIL")]
    friends: Vec<String>,
    /// Log this account (one of --account) in as a bot that echoes what it is told.
    #[arg(long = "echo-bot", value_name = "EMAIL")]
    echo_bot: Option<String>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let server = MsnServer::start(MsnServerConfig::default())
        .await
        .context("starting the test server")?;
    let mut passwords = Vec::new();
    for spec in &args.accounts {
        let mut parts = spec.splitn(3, ':');
        let (Some(email), Some(password)) = (parts.next(), parts.next()) else {
            bail!("--account {spec:?} is not EMAIL:PASSWORD[:FRIENDLY]");
        };
        if !email.contains('@') || password.is_empty() {
            bail!("--account {spec:?} is not EMAIL:PASSWORD[:FRIENDLY]");
        }
        server.add_account(email, password, parts.next().unwrap_or(""));
        passwords.push((email.to_lowercase(), password.to_owned()));
        tracing::info!(%email, "account added");
    }
    for spec in &args.friends {
        let emails: Vec<&str> = spec.split(',').map(str::trim).collect();
        for (i, a) in emails.iter().enumerate() {
            for b in &emails[i + 1..] {
                server.make_friends(a, b);
                tracing::info!(%a, %b, "friends");
            }
        }
    }
    let _bot = match &args.echo_bot {
        Some(email) => {
            let email = email.to_lowercase();
            let Some((_, password)) = passwords.iter().find(|(e, _)| *e == email) else {
                bail!("--echo-bot {email}: add it with --account first");
            };
            Some(start_echo_bot(&server, &email, password).await?)
        }
        None => None,
    };

    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "dispatch={} nexus={}",
        server.dispatch_addr(),
        server.nexus_url()
    )?;
    out.flush()?;
    drop(out);
    tracing::info!(dispatch = %server.dispatch_addr(), nexus = %server.nexus_url(), "ready");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping");
    Ok(())
}

/// Logs the echo bot in and serves it in the background; the session lives as long as the
/// returned handle.
async fn start_echo_bot(
    server: &MsnServerHandle,
    email: &str,
    password: &str,
) -> Result<MsnSession> {
    let settings = Arc::new(MsnSettings::new(
        server.dispatch_addr().to_string(),
        server.nexus_url(),
    ));
    let http = http_client(None, Duration::from_secs(15))?;
    let mut config = NsConfig::new(email);
    config.personal_message = Some("I repeat what you say".into());
    let backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
    let (session, mut events) = MsnSession::start(
        settings.clone(),
        http,
        config,
        Secret::new(password),
        backoff,
    )
    .await
    .context("logging the echo bot in")?;
    let account = email.to_owned();
    tokio::spawn(async move {
        let mut version = 12;
        while let Some(event) = events.recv().await {
            match event {
                SessionEvent::Connected { version: v } => {
                    version = v;
                    tracing::info!(%account, version, "echo bot online");
                }
                SessionEvent::Ns(NsEvent::SwitchboardInvite {
                    session_id,
                    address,
                    auth,
                    inviter,
                    ..
                }) => {
                    tracing::info!(%inviter, "echo bot invited to a conversation");
                    let config = SbConfig::new(account.clone(), version);
                    let settings = settings.clone();
                    tokio::spawn(async move {
                        match SbClient::answer(&settings, config, &address, &auth, &session_id)
                            .await
                        {
                            Ok((sb, sb_events)) => echo(sb, sb_events).await,
                            Err(e) => tracing::warn!(error = %e, "echo bot cannot answer"),
                        }
                    });
                }
                SessionEvent::Ns(_) => {}
                SessionEvent::Reconnecting { reason, .. } => {
                    tracing::warn!(%reason, "echo bot reconnecting");
                }
                SessionEvent::Ended(reason) => {
                    tracing::warn!(?reason, "echo bot session ended");
                    break;
                }
            }
        }
    });
    Ok(session)
}

/// Echoes one conversation until it closes.
async fn echo(sb: SbClient, mut events: matrix_msn::net::SbEvents) {
    while let Some(event) = events.recv().await {
        let SwitchboardEvent::Session(event) = event else {
            continue;
        };
        let result = match event {
            SbEvent::Message {
                from,
                payload: MsgPayload::Text { text, .. },
                ..
            } => {
                tracing::info!(%from, %text, "echo");
                sb.send_text(format!("You said: {text}"), TextFormat::default())
                    .await
            }
            SbEvent::Message {
                from,
                payload: MsgPayload::Nudge,
                ..
            } => {
                tracing::info!(%from, "nudge back");
                sb.send_nudge().await
            }
            SbEvent::Closed(reason) => {
                tracing::info!(?reason, "conversation closed");
                break;
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "echo bot cannot reply");
        }
    }
}
