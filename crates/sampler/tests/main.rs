//! The sampler's integration tests, one test binary with each file a module: one link
//! instead of six, and the harness spreads all of them over the cores at once. A new file
//! here needs its `mod` line below (`.ci/run` checks that none is missing).

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
