//! Sets `cfg(toydiff_avx512)` when the compiler is Rust 1.89 or newer, where the AVX-512
//! target features and intrinsics are stable: the fused kernels then carry AVX-512
//! versions (picked at run time, on CPUs that have it). Older compilers build without.

use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(toydiff_avx512)");
    println!("cargo::rerun-if-env-changed=RUSTC");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let minor = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| {
            // "rustc 1.95.0 (…)" → 95
            let version = v.split_whitespace().nth(1)?.to_string();
            let mut parts = version.split('.');
            (parts.next()? == "1").then_some(())?;
            parts.next()?.parse::<u32>().ok()
        });
    if minor.is_some_and(|m| m >= 89) {
        println!("cargo::rustc-cfg=toydiff_avx512");
    }
}
