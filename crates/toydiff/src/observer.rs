//! How a stage tells its caller what it is doing: lines of text and progress bars. The
//! library prints nothing itself; `cargo xtask` prints the lines and draws the bars.

/// Receives a stage's report lines and makes its progress bars.
pub trait Observer: Sync {
    /// One line of the stage's report (no trailing newline).
    fn line(&self, text: &str);
    /// A progress bar of `len` steps labelled `what`.
    fn bar(&self, what: &str, len: u64) -> Box<dyn Progress>;
}

/// A progress bar a stage moves.
pub trait Progress: Send + Sync {
    /// Steps done so far.
    fn set(&self, position: u64);
    /// The work is done: the bar goes away.
    fn finish(&self);
}

/// An observer that drops every line and draws nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

struct NoBar;

impl Progress for NoBar {
    fn set(&self, _: u64) {}
    fn finish(&self) {}
}

impl Observer for Silent {
    fn line(&self, _: &str) {}
    fn bar(&self, _: &str, _: u64) -> Box<dyn Progress> {
        Box::new(NoBar)
    }
}

/// `observer.line(&format!(…))`.
macro_rules! say {
    ($obs:expr) => {
        $obs.line("")
    };
    ($obs:expr, $($arg:tt)*) => {
        $obs.line(&format!($($arg)*))
    };
}
pub(crate) use say;
