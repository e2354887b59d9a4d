//! The notebook's first half with toy-data alone: sample 0.4·N(−2, 0.5²) + 0.6·N(3, 1²)
//! with the latent component, fit a Normal and mixtures k = 1..4, and print the comparison.
//!
//! `cargo run -p toydiff-toy-data --example fit_mixture`

use rand::{rngs::StdRng, SeedableRng};
use toy_data::{compare_models, fit_mixture, notebook_gmm_1d, EmConfig};

fn main() -> Result<(), toy_data::DataError> {
    let gmm = notebook_gmm_1d();
    let mut rng = StdRng::seed_from_u64(1234);
    let (x, z) = gmm.sample_one_with_latent(&mut rng);
    println!(
        "Generated value: {:.2}, latent component z = {}",
        x[0],
        z + 1
    );

    let data = gmm.sample(1000, &mut rng);
    let fit = fit_mixture(data.view(), &EmConfig::new(2).with_seed(7))?;
    println!("EM fit (k = 2): {fit}");

    let comparison = compare_models(data.view(), 4, 3, 7)?;
    print!("{}", comparison.to_markdown(true));
    Ok(())
}
