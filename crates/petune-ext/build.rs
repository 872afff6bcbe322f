//! Compiles `csrc/petune_ext.cpp` and `csrc/petune_dist.cpp` with the `cc` crate against the
//! headers of the libtorch that torch-sys builds against, and links it with `torch_cpu` + `c10`
//! (libtorch_cpu also holds c10d: TCPStore and ProcessGroupGloo, with gloo linked in).
//!
//! libtorch is found as torch-sys finds it in `LIBTORCH` mode: `LIBTORCH` (set, relative
//! to the workspace, by `.cargo/config.toml`), or `LIBTORCH_INCLUDE` / `LIBTORCH_LIB` when
//! headers and libraries live apart; `LIBTORCH_CXX11_ABI` (default 1, right for the
//! torch ≥ 2.7 wheels that scripts/setup.sh installs). Only ATen and c10d headers are included,
//! so the two files compile in seconds; no system package beyond g++ is needed.

#[allow(dead_code)] // its `main` is for the packages that use it as their build script
#[path = "../../build-support/rpath.rs"]
mod rpath;

use std::path::PathBuf;

fn env(name: &str) -> Option<String> {
    println!("cargo:rerun-if-env-changed={name}");
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn main() {
    println!("cargo:rerun-if-changed=csrc");
    let libtorch = env("LIBTORCH").map(PathBuf::from);
    let include = env("LIBTORCH_INCLUDE").map(PathBuf::from).or_else(|| libtorch.clone());
    let lib = env("LIBTORCH_LIB").map(PathBuf::from).or_else(|| libtorch.clone());
    let (Some(include), Some(lib)) = (include, lib) else {
        // Without libtorch nothing links anyway; say what to do instead of a C++ error.
        panic!("LIBTORCH is not set; run scripts/setup.sh (it comes from .cargo/config.toml)");
    };
    let include = include.join("include");
    let lib = lib.join("lib");
    if !include.join("ATen").join("ATen.h").exists() {
        panic!("no libtorch headers in {}; run scripts/setup.sh first", include.display());
    }
    let abi = env("LIBTORCH_CXX11_ABI").unwrap_or_else(|| "1".into());
    cc::Build::new()
        .cpp(true)
        .file("csrc/petune_ext.cpp")
        .file("csrc/petune_dist.cpp")
        .flag("-std=c++17")
        // libtorch's headers are system headers here: their warnings are not ours.
        .flag("-isystem")
        .flag(include.to_string_lossy().as_ref())
        .flag("-isystem")
        .flag(include.join("torch/csrc/api/include").to_string_lossy().as_ref())
        // The few gloo declarations that c10d's ProcessGroupGloo.hpp needs (the wheel ships
        // none of gloo's headers; csrc/gloo-abi/README.md says why this is enough).
        .include("csrc/gloo-abi")
        .define("USE_C10D_GLOO", None)
        .define("_GLIBCXX_USE_CXX11_ABI", abi.as_str())
        .define("GLOG_USE_GLOG_EXPORT", None)
        .warnings(true)
        .compile("petune_ext");
    println!("cargo:rustc-link-search=native={}", lib.display());
    println!("cargo:rustc-link-lib=dylib=torch_cpu");
    println!("cargo:rustc-link-lib=dylib=c10");
    rpath::petune_rpath();
}
