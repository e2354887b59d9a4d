//! Progress bars for long stages (hidden automatically when stderr is not a terminal,
//! and while a stage's output is captured, see [`crate::console::captured`]).

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

fn bar(len: u64, what: &str) -> ProgressBar {
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

/// The console as the pipeline's [`toydiff::Observer`]: report lines through
/// [`crate::console::print`] (kept while a stage's output is captured), progress bars
/// drawn together in one [`MultiProgress`].
#[derive(Default)]
pub struct Console {
    bars: MultiProgress,
}

impl Console {
    pub fn new() -> Self {
        Self::default()
    }
}

struct Bar(ProgressBar);

impl toydiff::Progress for Bar {
    fn set(&self, position: u64) {
        self.0.set_position(position);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl toydiff::Observer for Console {
    fn line(&self, text: &str) {
        crate::console::print(&format!("{text}\n"));
    }
    fn bar(&self, what: &str, len: u64) -> Box<dyn toydiff::Progress> {
        Box::new(Bar(bar_in(&self.bars, len, what)))
    }
}
