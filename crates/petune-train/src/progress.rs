//! A progress bar on stderr for long steps (hidden when stderr is not a terminal or
//! when asked to be quiet).

use indicatif::{ProgressBar, ProgressStyle};

/// A step counter with a message.
pub struct Bar {
    inner: Option<ProgressBar>,
}

impl Bar {
    /// A bar of `total` steps starting at `done`.
    pub fn new(total: u64, done: u64, quiet: bool) -> Bar {
        if quiet {
            return Bar { inner: None };
        }
        let pb = ProgressBar::new(total);
        if let Ok(style) = ProgressStyle::with_template(
            "{bar:30} {pos}/{len} steps {elapsed_precise} eta {eta} {msg}",
        ) {
            pb.set_style(style);
        }
        pb.set_position(done);
        Bar { inner: Some(pb) }
    }

    /// Moves to `pos` with a message.
    pub fn set(&self, pos: u64, msg: &str) {
        if let Some(pb) = &self.inner {
            pb.set_position(pos);
            pb.set_message(msg.to_string());
        }
    }

    /// Prints a line above the bar.
    pub fn println(&self, line: &str) {
        if let Some(pb) = &self.inner {
            pb.println(line);
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(pb) = &self.inner {
            pb.finish_and_clear();
        }
    }
}
