//! What the stages print. A stage prints through [`say!`]; `cargo xtask all` runs some
//! stages on a second thread and [`captured`] keeps their lines until it is their turn,
//! so the report reads in the notebook's order whichever stage finishes first.

use std::cell::RefCell;

thread_local! {
    /// The lines of a stage running under [`captured`] on this thread.
    static CAPTURE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Prints `text` on stdout, or keeps it when this thread runs under [`captured`].
pub fn print(text: &str) {
    let kept = CAPTURE.with(|c| match c.borrow_mut().as_mut() {
        Some(buffer) => {
            buffer.push_str(text);
            true
        }
        None => false,
    });
    if !kept {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        // A closed stdout (`| head`) must not fail the stage.
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

/// True while this thread runs under [`captured`] (progress bars stay hidden then).
pub fn capturing() -> bool {
    CAPTURE.with(|c| c.borrow().is_some())
}

/// Runs `f` keeping what it prints; returns its result and the text.
pub fn captured<T>(f: impl FnOnce() -> T) -> (T, String) {
    let previous = CAPTURE.with(|c| c.borrow_mut().replace(String::new()));
    let value = f();
    let text = CAPTURE.with(|c| std::mem::replace(&mut *c.borrow_mut(), previous));
    (value, text.unwrap_or_default())
}

/// `println!` through [`print()`].
macro_rules! say {
    () => {
        $crate::console::print("\n")
    };
    ($($arg:tt)*) => {
        $crate::console::print(&format!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use say;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_keeps_the_lines_and_nests() {
        let ((inner, inner_text), outer_text) = captured(|| {
            say!("outer {}", 1);
            let r = captured(|| {
                say!("inner");
                7
            });
            say!("outer again");
            r
        });
        assert_eq!(inner, 7);
        assert_eq!(inner_text, "inner\n");
        assert_eq!(outer_text, "outer 1\nouter again\n");
        assert!(!capturing());
    }
}
