//! Device selection by name (`cpu`, `cuda`, `cuda:N`, `auto`) for every entry point
//! (run configs, `petune bench`, examples), and libtorch's CUDA backend on demand.
//!
//! Why the backend is loaded by hand: libtorch registers its CUDA backend from the
//! static initialisers of `libtorch_cuda.so`. A Rust binary links that library only if
//! the linker keeps it, and with `--as-needed` (the default of most toolchains) it is
//! dropped because no symbol of it is referenced; `tch::Cuda::is_available()` then says
//! false on a GPU machine (tch's README suggests `-Wl,--no-as-needed -ltorch_cuda`).
//! Linking it unconditionally would make every binary need the CUDA runtime libraries
//! at start, also on CPU machines (CI). So the binaries link the CPU part only and
//! [`load_cuda_backend`] `dlopen`s `libtorch_cuda.so` (global symbols, so its
//! registrations are visible) when a device name asks for CUDA. The library is searched
//! as the dynamic loader does: `LD_LIBRARY_PATH`, then the binary's RUNPATH (the
//! libtorch it was built against, docs/setup.md).

use std::sync::OnceLock;

use tch::Device;

use crate::error::{Error, Result};

/// Makes libtorch's CUDA backend available to this process if the CUDA libraries load;
/// returns whether libtorch then sees a GPU. Idempotent and cheap after the first call.
/// Call it before anything asks libtorch about CUDA (libtorch may cache "no CUDA").
pub fn load_cuda_backend() -> bool {
    cuda_backend_load_result().is_ok() && tch::Cuda::is_available()
}

/// Why libtorch's CUDA backend could not be loaded (the dynamic loader's message), or
/// `Ok` when it was loaded (which says nothing of a GPU being there).
pub fn cuda_backend_load_result() -> &'static std::result::Result<(), String> {
    static LOADED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    LOADED.get_or_init(dlopen_torch_cuda)
}

#[cfg(unix)]
fn dlopen_torch_cuda() -> std::result::Result<(), String> {
    // SAFETY: `dlopen` with a NUL-terminated name; the handle is deliberately never
    // closed (the backend must stay registered for the life of the process). Loading
    // runs libtorch_cuda's static initialisers, which only register the backend.
    // `dlerror` returns a NUL-terminated message owned by the loader (or null), read
    // at once on this thread.
    unsafe {
        let handle = libc::dlopen(c"libtorch_cuda.so".as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL);
        if !handle.is_null() {
            return Ok(());
        }
        let msg = libc::dlerror();
        if msg.is_null() {
            return Err("libtorch_cuda.so: not loadable".into());
        }
        Err(std::ffi::CStr::from_ptr(msg).to_string_lossy().into_owned())
    }
}

#[cfg(not(unix))]
fn dlopen_torch_cuda() -> std::result::Result<(), String> {
    Err("loading libtorch's CUDA backend by hand is implemented for Unix only".into())
}

/// A device name, read without asking libtorch anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeviceName {
    Cpu,
    Auto,
    Cuda(usize),
}

fn read_name(name: &str) -> Option<DeviceName> {
    match name {
        "cpu" => Some(DeviceName::Cpu),
        "auto" => Some(DeviceName::Auto),
        "cuda" => Some(DeviceName::Cuda(0)),
        other => other.strip_prefix("cuda:")?.parse().ok().map(DeviceName::Cuda),
    }
}

/// Whether `name` is a well-formed device name (without asking libtorch anything).
pub fn is_device_name(name: &str) -> bool {
    read_name(name).is_some()
}

/// The device named `cpu`, `cuda` (GPU 0), `cuda:N` or `auto` (GPU 0 when libtorch sees
/// one, else CPU). Naming a GPU that is not there is an error, not a silent CPU run.
pub fn parse_device(name: &str) -> Result<Device> {
    let index = match read_name(name) {
        Some(DeviceName::Cpu) => return Ok(Device::Cpu),
        Some(DeviceName::Auto) => {
            return Ok(if load_cuda_backend() { Device::Cuda(0) } else { Device::Cpu })
        }
        Some(DeviceName::Cuda(index)) => index,
        None => {
            return Err(Error::config(
                "device",
                format!("`{name}` is not a device: use cpu, cuda, cuda:N or auto"),
            ))
        }
    };
    if !load_cuda_backend() {
        let why = match cuda_backend_load_result() {
            Ok(()) => "libtorch's CUDA backend loaded, but it sees no GPU".to_string(),
            Err(e) => format!(
                "libtorch's CUDA backend did not load ({e}); libtorch_cuda.so and the CUDA \
                 libraries must be on LD_LIBRARY_PATH or in the binary's RUNPATH"
            ),
        };
        return Err(Error::config("device", format!("`{name}` asks for CUDA: {why}")));
    }
    let count = tch::Cuda::device_count() as usize;
    if index >= count {
        return Err(Error::config(
            "device",
            format!("`{name}`: libtorch sees {count} GPU(s), numbered from 0"),
        ));
    }
    Ok(Device::Cuda(index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_bad_names_are_config_errors() {
        assert_eq!(parse_device("cpu").unwrap(), Device::Cpu);
        let auto = parse_device("auto").unwrap();
        assert_eq!(auto.is_cuda(), tch::Cuda::is_available());
        for bad in ["gpu", "cuda:", "cuda:x", ""] {
            assert!(!is_device_name(bad));
            let err = parse_device(bad).unwrap_err().to_string();
            assert!(err.contains("device"), "{bad}: {err}");
        }
        assert!(is_device_name("cuda:1"));
    }

    #[test]
    fn a_missing_gpu_is_an_error_not_a_cpu_run() {
        if tch::Cuda::is_available() {
            return; // exercised on GPU machines by the benchmarks instead
        }
        let err = parse_device("cuda").unwrap_err().to_string();
        assert!(err.contains("asks for CUDA"), "{err}");
        assert!(parse_device("cuda:3").is_err());
    }
}
