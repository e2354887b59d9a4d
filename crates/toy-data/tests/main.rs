//! toy-data's tests, one test binary with each file a module (one per source module, plus
//! the CSV fuzzer). They use the public API only, so the library itself is compiled once,
//! for the pipeline and the tests alike (`[lib] test = false`). A new file here needs its
//! `mod` line below (`.ci/run` checks that none is missing).

mod compare;
mod csv_data;
mod datasets;
mod fit;
mod fuzz_csv;
mod mixture;
mod prep;
mod toy_sets;
