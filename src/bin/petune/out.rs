//! The CLI's results on standard output, without a panic when the reader has gone.
//!
//! `println!` panics when stdout is a pipe whose reader closed early (`petune params ... |
//! head -1`): Rust ignores SIGPIPE, so the write fails with `BrokenPipe` and the macro
//! turns that into a panic. Every result the CLI prints goes through [`outln!`] / [`out!`]
//! instead, which return the failure as [`StdoutClosed`]; `main` ends such a run quietly
//! with status 0, as a command whose reader stopped reading is not a failure of the command.

use std::fmt;
use std::io::Write;

/// Standard output's reader has gone (the write met a broken pipe).
#[derive(Debug)]
pub struct StdoutClosed;

impl fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("standard output was closed by its reader")
    }
}

impl std::error::Error for StdoutClosed {}

/// Writes `args` to standard output and flushes, a broken pipe as [`StdoutClosed`].
pub fn write_stdout(args: fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_fmt(args).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        other => Ok(other?),
    }
}

/// True when `e` (or a cause of it) is [`StdoutClosed`].
pub fn is_stdout_closed(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<StdoutClosed>())
}

/// `print!` that returns `anyhow::Result<()>` instead of panicking on a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::write_stdout(format_args!($($arg)*))
    };
}

/// `println!` that returns `anyhow::Result<()>` instead of panicking on a closed pipe.
macro_rules! outln {
    () => {
        $crate::out::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::out::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {out, outln};
