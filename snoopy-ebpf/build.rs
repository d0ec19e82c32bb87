//! Builds the kernel programs (`ebpf/`, a no_std crate for the bpfel-unknown-none target)
//! with aya-build and bpf-linker, into OUT_DIR, where `src/programs.rs` includes them.
//!
//! Stable Rust builds them: `core` for the BPF target is built from the `rust-src` component
//! (`-Z build-std=core`), which RUSTC_BOOTSTRAP=1 allows. It is set here, for the eBPF
//! build only, never for the host build. Needs: `rustup component add rust-src` and
//! `bpf-linker` (0.13.0, LLVM 22) on the PATH; `testbed/setup.sh` installs both.

use std::path::PathBuf;

fn main() {
    let here = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let programs = here.join("ebpf");
    println!(
        "cargo:rerun-if-changed={}",
        here.join("common/src").display()
    );
    if let Err(err) = which_bpf_linker() {
        panic!("{err}");
    }
    // SAFETY: a build script is single-threaded here; nothing reads the environment concurrently.
    // CARGO_TERM_QUIET: aya-build relays every stderr line of the inner cargo as a warning;
    // only its errors are worth that.
    unsafe {
        std::env::set_var("RUSTC_BOOTSTRAP", "1");
        std::env::set_var("CARGO_TERM_QUIET", "true");
    }
    // aya-build runs `cargo build --package …` in the current directory: the programs' own
    // workspace (it is excluded from the repository's).
    std::env::set_current_dir(&programs).expect("entering snoopy-ebpf/ebpf");
    let root = programs.to_str().expect("a UTF-8 path");
    let package = aya_build::Package {
        name: "snoopy-ebpf-programs",
        root_dir: root,
        ..Default::default()
    };
    // The toolchain building us (rustup sets RUSTUP_TOOLCHAIN for cargo's children), so the
    // programs are compiled by the same rustc, whose LLVM bpf-linker must match.
    let toolchain = std::env::var("RUSTUP_TOOLCHAIN").unwrap_or_else(|_| "stable".into());
    println!("cargo:rerun-if-env-changed=RUSTUP_TOOLCHAIN");
    if let Err(err) = aya_build::build_ebpf([package], aya_build::Toolchain::Custom(&toolchain)) {
        panic!(
            "building the eBPF programs (snoopy-ebpf/ebpf) failed: {err:#}\n\
             They need `rustup component add rust-src` and bpf-linker 0.13.0 built against LLVM 22 \
             (`testbed/setup.sh ebpf` installs both)."
        );
    }
}

fn which_bpf_linker() -> Result<(), String> {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join("bpf-linker").is_file()))
        .unwrap_or(false);
    if found {
        Ok(())
    } else {
        Err(
            "bpf-linker is not on the PATH: the eBPF programs of snoopy-ebpf cannot be linked. \
             Run `testbed/setup.sh ebpf` (or `make setup`), which installs bpf-linker 0.13.0 \
             against Debian's llvm-22-dev"
                .into(),
        )
    }
}
