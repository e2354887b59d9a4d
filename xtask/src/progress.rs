//! Progress bars for long stages (hidden automatically when stderr is not a terminal,
//! and while a stage's output is captured, see [`crate::console::captured`]).

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

pub fn bar(len: u64, what: &str) -> ProgressBar {
    if crate::console::capturing() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>22} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// [`bar`], drawn in `bars` with the other bars of stages that run side by side.
pub fn bar_in(bars: &MultiProgress, len: u64, what: &str) -> ProgressBar {
    if crate::console::capturing() {
        return ProgressBar::hidden();
    }
    bars.add(bar(len, what))
}
