//! The pipeline library's tests, one test binary with each file a module (one per stage
//! module, the schedule's round trip through a checkpoint, and `common`'s helpers). They
//! use the public API only, so the library itself is compiled once, for the pipeline and
//! the tests alike (`[lib] test = false`). A new file here needs its `mod` line below
//! (`.ci/run` checks that none is missing).

// The tests' closures hand the pipeline's own `Result<_, PipelineError>` straight back,
// as the library does; boxing it only for the tests would change nothing they check.
#![allow(clippy::result_large_err)]

mod checkpoint_schedule;
mod common;
mod guidance;
mod likelihood;
mod metrics;
mod recipe;
mod sample;
mod samplers;
