//! The sampler's tests, one test binary with each file a module: one link instead of
//! one a file, and the harness spreads all of them over the cores at once. They use the
//! public API only (so do the former unit tests: the crate root's in `ddpm`, each
//! module's in the file of its name, `classifier_free`'s in `free_guidance`), so the
//! library itself is compiled once, for the pipeline and the tests alike (`[lib] test =
//! false`). A new file here needs its `mod` line below (`.ci/run` checks that none is
//! missing).

mod common;
mod ddpm;
mod divergence;
mod exact_sampling;
mod free_guidance;
mod guidance_gradient;
mod knn;
mod likelihood;
mod metrics;
mod reproducible_bits;
mod solvers;
mod trained_guidance;
