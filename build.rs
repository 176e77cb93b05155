//! Link settings of the bridge's binary.
//!
//! Relative relocations packed (`DT_RELR`, glibc 2.36 and later): a position-independent
//! binary keeps one 8-byte entry per word to relocate at start-up (about 100,000 here,
//! 0.8 MB read at every start); packed, they take a few kilobytes. The pages of the binary
//! are most of the bridge's resident memory (README, Performance).
fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.ends_with("-linux-gnu") && std::env::var_os("MATRIX_MSN_NO_RELR").is_none() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-env-changed=MATRIX_MSN_NO_RELR");
}
