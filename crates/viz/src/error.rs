//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while drawing, encoding or writing a figure.
///
/// Every message is one line. [`VizError::Io`] names the path it failed on and
/// carries the underlying [`std::io::Error`] both in its message and as its
/// [`source`](std::error::Error::source), so the reason shows with a plain `{}`.
#[derive(Debug, thiserror::Error)]
pub enum VizError {
    /// A file-system operation on `path` failed.
    #[error("I/O error at {}: {source}", path.display())]
    Io {
        /// The path the operation was about (the target, not the temporary file).
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// plotters failed while drawing (this should not happen on valid input).
    #[error("rendering failed: {0}")]
    Render(String),
    /// PNG or GIF encoding failed.
    #[error("encoding failed: {0}")]
    Encode(String),
    /// The caller passed something that cannot be drawn or encoded: empty data,
    /// an empty or reversed range, a zero width or height, a frame of the wrong size…
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

/// Shorthand for an [`VizError::InvalidInput`] result.
pub(crate) fn invalid<T>(msg: impl Into<String>) -> Result<T, VizError> {
    Err(VizError::InvalidInput(msg.into()))
}
