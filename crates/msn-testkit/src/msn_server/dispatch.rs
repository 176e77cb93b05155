//! Dispatch server (MSNP.md §0.1, §2.4.1): answers `VER` and `CVR` like the NS and
//! `USR … TWN I` (MSNP8–14) or `USR … SSO I` (MSNP15+) with `XFR trid NS host:port 0
//! host:port`, then closes, so clients must reconnect to the notification server and
//! restart at `VER`. The wrong scheme for the version closes, as on the NS.

use std::sync::Arc;

use tokio::net::TcpStream;

use msnp::frame::Frame;
use msnp::verb::Verb;

use super::conn::{self, Read};
use super::state::{ServerKind, Shared};

/// Serves one dispatch connection.
pub(crate) async fn run(stream: TcpStream, shared: Arc<Shared>) {
    let (mut reader, conn) = conn::start(stream, &shared, &shared.shutdown);
    let mut version = 0u8;
    loop {
        let frame = tokio::select! {
            () = conn.cancel.cancelled() => break,
            read = reader.next(version) => match read {
                Read::Frame(frame) => frame,
                Read::Closed => break,
            },
        };
        shared.record(None, conn::redact(ServerKind::Dispatch, &frame));
        let Some(trid) = frame.trid else { break };
        match frame.verb.as_str() {
            "VER" => {
                let chosen = frame.args.iter().find_map(|a| {
                    let v = a.strip_prefix("MSNP")?.parse::<u8>().ok()?;
                    shared.config.versions.contains(&v).then_some(v)
                });
                match chosen {
                    Some(v) => {
                        version = v;
                        conn.send(Frame::command(Verb::VER, trid, [format!("MSNP{v}")]));
                    }
                    None => {
                        conn.send(Frame::command(Verb::VER, trid, ["0"]));
                        break;
                    }
                }
            }
            "CVR" => {
                let v = frame.arg(5).unwrap_or("7.5.0324");
                conn.send(Frame::command(
                    Verb::CVR,
                    trid,
                    [
                        v,
                        v,
                        v,
                        "http://127.0.0.1/download",
                        "http://127.0.0.1/info",
                    ],
                ));
            }
            "USR"
                if frame.arg(0) == Some(if version >= 15 { "SSO" } else { "TWN" })
                    && frame.arg(1) == Some("I") =>
            {
                let ns = shared.ns_addr.to_string();
                let ds = shared.dispatch_addr.to_string();
                conn.send(Frame::command(
                    Verb::XFR,
                    trid,
                    ["NS", ns.as_str(), "0", ds.as_str()],
                ));
                break;
            }
            _ => break,
        }
    }
    conn.close();
}
