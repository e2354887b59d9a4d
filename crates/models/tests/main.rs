//! Most of the models crate's integration tests, one test binary with each file a module
//! (one link instead of three). The two training runs, `accuracy_regression` and
//! `denoiser_training`, stay binaries of their own: each sets RAYON_NUM_THREADS for its
//! process, which must not race with other tests. A new file here needs its `mod` line
//! below or a `[[test]]` entry in Cargo.toml (`.ci/run` checks that none is missing).

mod checkpoint_format;
mod common;
mod fuzz_checkpoint;
mod guidance_gradient;
mod noise_divergence;
