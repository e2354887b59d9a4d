//! xtask's integration tests, one test binary with each file a module: one link instead
//! of four, and the harness spreads all of them over the cores at once. A new file here
//! needs its `mod` line below (`.ci/run` checks that none is missing).

mod bad_input;
mod common;
mod divergence;
mod interrupt;
mod reproducible;
