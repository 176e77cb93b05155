//! `CHL`/`QRY` challenge responses (MSNP.md §3): the MSNP8–10 MD5 form (§3.2), the
//! MSNP11+ algorithm (§3.3) and the product id/key table (§3.5).
//!
//! Pure functions over the challenge string; building the `QRY` frame is the only
//! link to framing. Must not keep state or know about connections.

use bytes::Bytes;
use md5::{Digest, Md5};

use super::frame::Frame;
use super::verb::Verb;

/// A product id / product key pair (§3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Product {
    /// Sent in `QRY trid <id> 32`.
    pub id: &'static str,
    /// Secret mixed into the response.
    pub key: &'static str,
}

macro_rules! products {
    ($($name:ident = $id:literal, $key:literal;)*) => {
        $(
            #[doc = concat!("Product `", $id, "` (§3.5).")]
            pub const $name: Product = Product { id: $id, key: $key };
        )*
        /// Every pair listed in §3.5, in table order.
        pub const ALL_PRODUCTS: &[Product] = &[$($name),*];
    };
}

products! {
    MSMSGS = "msmsgs@msnmsgr.com", "Q1P7W2E4J9R8U3S5";
    PROD0038 = "PROD0038W!61ZTF9", "VT6PX?UQTM4WM%YR";
    PROD0058 = "PROD0058#7IL2{QD", "QHDCY@7R1TB6W?5B";
    PROD0061 = "PROD0061VRRZH@4F", "JXQ6J@TUOGYV@N0M";
    PROD0050 = "PROD00504RLUG%WL", "I2EBK%PYNLZL5_J4";
    PROD0076 = "PROD0076ENE8*@AW", "CEQJ8}OE0!WTSWII";
    PROD0090 = "PROD0090YUAUV{2B", "YMM8C_H7KCQ2S_KL";
    PROD0101 = "PROD0101{0RM?UBW", "CFHUR$52U_{VIX5T";
    PROD0097 = "PROD00974#MT*RC2", "LMCVO*18PQJ3H!K3";
    PROD0104 = "PROD0104U6VVM{UJ", "VK67B}379XYM5}$T";
    PROD0106 = "PROD01065C%ZFN6F", "O4BG@C7BWLYQX?5G";
    PROD0112 = "PROD0112J1LW7%NB", "RH96F{PHI8PPX_TJ";
    PROD0113 = "PROD0113H11T8$X_", "RG@XY*28Q5QHS%Q5";
    PROD0114 = "PROD0114ES4Z%Q5W", "PK}_A_0N_K%O?A9S";
    PROD0118 = "PROD0118R6%2WYOS", "YIXPX@5I2P0UT*LK";
    PROD0119 = "PROD0119GSJUC$18", "ILTXC!4IXB5FB*PX";
    PROD0120 = "PROD0120PW!CCV9@", "C1BX{V4W}Q3*10SM";
}

/// The pair §3.5 recommends for a negotiated MSNP version.
pub fn recommended_product(version: u8) -> Product {
    match version {
        0..=10 => PROD0061,
        11..=12 => PROD0090,
        13..=14 => PROD0106,
        _ => PROD0120,
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        for nibble in [b >> 4, b & 0xf] {
            s.push(char::from(
                HEX.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
    }
    s
}

/// MSNP8–10 response (§3.2): lowercase hex of `MD5(challenge ‖ product_key)`.
pub fn md5_response(challenge: &str, product: Product) -> String {
    let mut h = Md5::new();
    h.update(challenge.as_bytes());
    h.update(product.key.as_bytes());
    hex_lower(&h.finalize())
}

fn le_words(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    bytes
        .chunks_exact(4)
        .filter_map(|c| <[u8; 4]>::try_from(c).ok())
        .map(|c| u64::from(u32::from_le_bytes(c)))
}

/// MSNP11+ response (§3.3), 32 lowercase hex characters.
pub fn msnp11_response(challenge: &str, product: Product) -> String {
    const M: u64 = 0x7FFF_FFFF;
    // Step 1–2: MD5 of challenge ‖ key as four little-endian words, masked copies in h.
    let mut md5 = Md5::new();
    md5.update(challenge.as_bytes());
    md5.update(product.key.as_bytes());
    let digest = md5.finalize();
    let mut d = le_words(&digest);
    let mut next = || d.next().unwrap_or(0);
    let (d0, d1, d2, d3) = (next(), next(), next(), next());
    let h = [d0 & M, d1 & M, d2 & M, d3 & M];

    // Step 3: challenge ‖ id padded with ASCII '0' by 8 - len % 8 (a full 8 when already
    // aligned, as MSP31 and Escargot do).
    let mut s = Vec::with_capacity(challenge.len() + product.id.len() + 8);
    s.extend_from_slice(challenge.as_bytes());
    s.extend_from_slice(product.id.as_bytes());
    let pad = 8 - s.len() % 8;
    s.resize(s.len() + pad, b'0');

    // Step 4–6.
    let w: Vec<u64> = le_words(&s).collect();
    let (mut hi, mut lo) = (0u64, 0u64);
    let [h0, h1, h2, h3] = h;
    for pair in w.chunks_exact(2) {
        let &[w0, w1] = pair else { continue };
        // No overflow: w < 2^32, constants and h < 2^31, t and hi < 2^32 (§3.3 step 5).
        let mut t = (w0 * 0x0E79_A9C1) % M;
        t += hi;
        t = (t * h0 + h1) % M;
        hi = (w1 + t) % M;
        hi = (hi * h2 + h3) % M;
        // lo is never reduced inside the loop; u64 wrap-around is the reference behaviour.
        lo = lo.wrapping_add(hi).wrapping_add(t);
    }
    hi = (hi + h1) % M;
    lo = lo.wrapping_add(h3) % M;

    // Step 7–8: XOR the *unmasked* words (ESC24's masked variant is wrong, §3.3).
    let r = [d0 ^ hi, d1 ^ lo, d2 ^ hi, d3 ^ lo];
    let mut out = Vec::with_capacity(16);
    for word in r {
        // Every value fits in 32 bits: the operands are u32 words and values < 2^31.
        out.extend_from_slice(&(word as u32).to_le_bytes());
    }
    hex_lower(&out)
}

/// The response for a negotiated version: MD5 form below MSNP11, else §3.3.
pub fn response(version: u8, challenge: &str, product: Product) -> String {
    if version >= 11 {
        msnp11_response(challenge, product)
    } else {
        md5_response(challenge, product)
    }
}

/// The `QRY trid <product-id> 32` frame answering `CHL 0 <challenge>` (§3.1).
pub fn qry_frame(trid: u32, version: u8, challenge: &str, product: Product) -> Frame {
    let body = Bytes::from(response(version, challenge, product));
    Frame::command(Verb::QRY, trid, [product.id]).with_payload(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_3_4_vectors() {
        let cases = [
            (
                "13038318816579321232",
                PROD0090,
                "b01c13020e374d4fa20abfad6981b7a9",
            ),
            (
                "22210219642164014968",
                PROD0119,
                "a400af809ac86fbdf6deec7286fc06b8",
            ),
            (
                "15570131571988941333",
                PROD0120,
                "9cb1df88322e338f23c67780a2ff14e1",
            ),
        ];
        for (chl, product, want) in cases {
            assert_eq!(msnp11_response(chl, product), want, "{chl} {}", product.id);
            assert_eq!(response(12, chl, product), want);
        }
    }

    #[test]
    fn section_3_2_md5_vector() {
        assert_eq!(
            md5_response("15570131571988941333", MSMSGS),
            "8f2f5a91b72102cd28355e9fc9000d6e"
        );
        assert_eq!(
            response(9, "15570131571988941333", MSMSGS),
            "8f2f5a91b72102cd28355e9fc9000d6e"
        );
    }

    #[test]
    fn odd_challenges_do_not_panic() {
        for chl in ["", "x", "0123456789abcdef", "ünïcödé", &"9".repeat(1000)] {
            for &p in ALL_PRODUCTS {
                assert_eq!(msnp11_response(chl, p).len(), 32);
                assert_eq!(md5_response(chl, p).len(), 32);
            }
        }
    }

    #[test]
    fn qry_frame_wire_form() {
        let f = qry_frame(10, 12, "13038318816579321232", PROD0090);
        let wire = f.to_bytes().unwrap_or_default();
        assert_eq!(
            &wire[..],
            b"QRY 10 PROD0090YUAUV{2B 32\r\nb01c13020e374d4fa20abfad6981b7a9"
        );
        assert_eq!(recommended_product(12), PROD0090);
        assert_eq!(recommended_product(18), PROD0120);
        assert_eq!(ALL_PRODUCTS.len(), 17);
    }
}
