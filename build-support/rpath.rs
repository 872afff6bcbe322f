//! Embeds libtorch's lib directory in the RUNPATH of every binary, test and example of
//! this package, so that none of them needs LD_LIBRARY_PATH (see docs/setup.md).
fn main() {
    petune_rpath();
}

/// Emits the rpath link argument (and the rerun trigger) for this package.
pub fn petune_rpath() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let Ok(libtorch) = std::env::var("LIBTORCH") else {
        println!("cargo:warning=LIBTORCH is not set; run scripts/setup.sh (it comes from .cargo/config.toml)");
        return;
    };
    let lib = std::path::Path::new(&libtorch).join("lib");
    if !lib.join("libtorch_cpu.so").exists() {
        println!("cargo:warning=no libtorch in {}; run scripts/setup.sh first", lib.display());
    }
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
}
