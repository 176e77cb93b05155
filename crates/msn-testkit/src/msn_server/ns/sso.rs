//! MSNP15+ single sign-on on the test NS (MSNP.md §2.5.1), as Escargot does it: `USR
//! SSO I` is answered with the shields (`GCF 0`) and `USR … SSO S MBI_KEY_OLD <nonce>`;
//! `USR SSO S` is checked against the ticket and the binary secret `RST.srf` issued with
//! it: the MBI blob recomputed byte for byte with the IV it carries (mandatory from
//! MSNP16, only when present on MSNP15) and the machine GUID's form (MSNP16+). Anything
//! wrong is `911` and a disconnect. The recomputation uses `msnp::mbi`, which its own
//! tests hold to MSNP.md's worked vector.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;

use msnp::frame::Frame;
use msnp::verb::Verb;

use super::super::conn::error;
use super::super::state::{ServerEvent, random_u64};
use super::{Flow, Ns, SHIELDS};

/// The policy the server names (§2.5.1).
pub(crate) const MBI_POLICY: &str = "MBI_KEY_OLD";

/// A nonce as Escargot makes it: base64 of 48 random bytes (64 characters).
fn nonce() -> String {
    let bytes: Vec<u8> = (0..6).flat_map(|_| random_u64().to_le_bytes()).collect();
    STANDARD.encode(bytes)
}

/// Whether `blob` is the MBI response to `nonce` under `secret` (§2.5.3): the IV is read
/// from the blob (bytes 28..36 after the header), everything else recomputed.
fn mbi_matches(secret: &str, nonce: &str, blob: &str) -> bool {
    let Ok(raw) = STANDARD.decode(blob) else {
        return false;
    };
    let Some(iv) = raw.get(28..36).and_then(|iv| <[u8; 8]>::try_from(iv).ok()) else {
        return false;
    };
    msnp::mbi::response(secret, nonce, iv).is_ok_and(|expected| expected == blob)
}

/// Escargot's check of the machine GUID: `{`, 8-4-4-4-12 hex digits, `}` (braces
/// optional).
fn machine_guid_ok(guid: &str) -> bool {
    let inner = guid.strip_prefix('{').unwrap_or(guid);
    let inner = inner.strip_suffix('}').unwrap_or(inner);
    let groups: Vec<&str> = inner.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl Ns {
    /// `USR trid SSO I|S …` (MSNP15+).
    pub(super) fn usr_sso(&mut self, f: &Frame) -> Flow {
        let trid = f.trid;
        match (f.arg(1), f.arg(2)) {
            (Some("I"), Some(email)) => {
                let Some(email) = self.known_account(email, trid) else {
                    return Flow::Close;
                };
                self.email = Some(email);
                self.send(
                    Frame::command(Verb::GCF, 0, Vec::<String>::new())
                        .with_payload(Bytes::from_static(SHIELDS.as_bytes())),
                );
                let nonce = nonce();
                self.sso_nonce = Some(nonce.clone());
                self.send(Frame::command(
                    Verb::USR,
                    trid.unwrap_or(0),
                    ["SSO", "S", MBI_POLICY, nonce.as_str()],
                ));
                Flow::Continue
            }
            (Some("S"), Some(ticket)) => {
                let (blob, guid) = (f.arg(3), f.arg(4));
                let secret = self
                    .shared
                    .lock()
                    .tickets
                    .get(ticket)
                    .and_then(|t| t.binary_secret.clone());
                let nonce = self.sso_nonce.take().unwrap_or_default();
                let mbi_ok = match (blob, secret) {
                    (Some(blob), Some(secret)) => mbi_matches(&secret, &nonce, blob),
                    // MSNP15 may leave the blob out (§2.5.5).
                    (None, _) => self.version < 16,
                    (Some(_), None) => false,
                };
                let guid_ok = self.version < 16 || guid.is_some_and(machine_guid_ok);
                if !(mbi_ok && guid_ok) {
                    let email = self.me();
                    self.shared.emit(ServerEvent::LoginFailed { email });
                    self.send(error(911, trid));
                    return Flow::Close;
                }
                self.login(trid, ticket, guid.map(str::to_owned))
            }
            _ => self.err(201, trid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mbi_check_takes_the_right_blob_only() {
        let secret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYX";
        let nonce = nonce();
        assert_eq!(nonce.len(), 64);
        let blob = msnp::mbi::response(secret, &nonce, [9; 8]).expect("a blob");
        assert!(mbi_matches(secret, &nonce, &blob));
        assert!(!mbi_matches(secret, "another nonce", &blob));
        assert!(!mbi_matches(
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYY",
            &nonce,
            &blob
        ));
        assert!(!mbi_matches(secret, &nonce, "HAAAAA=="));
        assert!(machine_guid_ok("{6F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F9}"));
        assert!(machine_guid_ok("6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"));
        assert!(!machine_guid_ok("{6F1E2D3C-4B5A-4978-8695}"));
        assert!(!machine_guid_ok("{6F1E2D3C-4B5A-4978-8695-A4B3C2D1E0FZ}"));
    }
}
