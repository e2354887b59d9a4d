use rand::{rngs::StdRng, SeedableRng};
use sampler::knn::Grid2;
use sampler::metrics::{energy_distance, subsample_rows, widen};
use sampler::{SampleRun, Snapshot};
use toy_data::{BuiltinSet, GaussianMixture};
use toydiff::sample::{
    evaluate_with_limit, figure_rows, floor_repeats, frames, knn_labels, knn_labels_scan,
    EVAL_SAMPLES, FIGURE_POINTS, MIN_FLOOR_REPEATS,
};
use toydiff::{
    Prepared, RecipeParams, Runs, SampleSettings, SamplerChoice, SamplerKind, SamplingMetrics,
    Silent,
};
use viz::Panel;

/// A run whose every snapshot and sample is `points` (f32, row-major).
fn fake_run(points: Vec<f32>) -> SampleRun {
    SampleRun {
        dim: 2,
        snapshots: vec![Snapshot {
            t: 0,
            points: points.clone(),
        }],
        samples: points,
    }
}

fn draws(m: &GaussianMixture, n: usize, seed: u64) -> Vec<f32> {
    let s = m.sample(n, &mut StdRng::seed_from_u64(seed));
    s.iter().map(|&v| v as f32).collect()
}

#[test]
fn evaluation_subsamples_above_its_limit_and_records_every_size() {
    let n = 600;
    let settings = SampleSettings {
        n,
        ..SampleSettings::default()
    };
    let plan = settings.sampler.plan(500).unwrap();
    for dataset in [None, Some(BuiltinSet::Moons)] {
        let recipe = RecipeParams {
            dataset,
            n_data: dataset.map(|_| 3000),
            ..RecipeParams::default()
        }
        .check()
        .unwrap();
        let data = Prepared::from_recipe(&recipe, 1, &Silent).unwrap();
        // Samples of the data's own law where it is known; of the training rows else.
        let sample = |seed: u64| match data.meta.truth() {
            Some(truth) => draws(&truth, n, seed),
            None => {
                let train = widen(&data.train_standardised());
                let rows = subsample_rows(&train, 2, n, seed);
                rows.iter().map(|&v| v as f32).collect()
            }
        };
        let runs = Runs {
            unguided: fake_run(sample(1)),
            guided: vec![(0, fake_run(sample(2))), (1, fake_run(sample(3)))],
            free_weight: None,
        };
        let full = evaluate_with_limit(&settings, &plan, &data, &runs, 1000).unwrap();
        let cut = evaluate_with_limit(&settings, &plan, &data, &runs, 200).unwrap();
        // The samples back in the data's units, as the stage writes them.
        let mut points = widen(runs.unguided.final_points());
        data.meta.standardizer.inverse_slice(&mut points);
        let (u, c) = (&full.unguided, &cut.unguided);
        // Under the limit: every sample, as before the limit existed (the same bits).
        let expected = match data.meta.truth() {
            Some(truth) => {
                let fresh = truth.sample(n, &mut StdRng::seed_from_u64(settings.seed + 20));
                assert_eq!(u.energy_distance_reference_size, n);
                energy_distance(&points, fresh.as_slice().unwrap(), 2)
            }
            None => {
                let heldout = widen(&data.heldout_standardised());
                assert_eq!(u.energy_distance_reference_size, 600, "20% of 3,000 rows");
                energy_distance(&widen(runs.unguided.final_points()), &heldout, 2)
            }
        };
        assert_eq!(u.energy_distance.to_bits(), expected.to_bits());
        assert_eq!(
            (u.energy_distance_sample_size, u.energy_noise_floor.n),
            (n, n)
        );
        assert_eq!(u.energy_noise_floor.repeats, floor_repeats(n));
        // Over it: 200 samples against 200 reference points, the floor at 200.
        assert_eq!(
            (
                c.energy_distance_sample_size,
                c.energy_distance_reference_size
            ),
            (200, 200)
        );
        assert_eq!(
            (c.energy_noise_floor.n, c.energy_noise_floor.repeats),
            (200, 40)
        );
        // The samples follow the reference's law, so the distance is sampling noise:
        // p95 is its 95th percentile at this size, three times it far in the tail.
        assert!(
            c.energy_distance.abs() < 3.0 * c.energy_noise_floor.p95,
            "{} vs {:?}",
            c.energy_distance,
            c.energy_noise_floor
        );
        assert!(c.energy_noise_floor.std_error > 0.0);
        for g in cut.guided.values() {
            // Precision uses every sample; the distances (exact reference only) 200.
            assert_eq!(g.precision_sample_size, n);
            if let Some(floor) = g.energy_noise_floor {
                assert_eq!(g.energy_distance_sample_size, Some(200));
                assert_eq!(g.energy_distance_reference_size, Some(200));
                assert_eq!((floor.n, floor.repeats), (200, 40));
            }
        }
        // Per-sample statistics do not depend on the limit.
        assert_eq!(u.modes, c.modes);
        assert_eq!(u.class_fractions, c.class_fractions);
        let precisions =
            |m: &SamplingMetrics| m.guided.values().map(|g| g.precision).collect::<Vec<_>>();
        assert_eq!(precisions(&full), precisions(&cut));
    }
}

#[test]
fn knn_votes_through_the_grid_match_the_scan() {
    use rand::Rng;
    let mut rng = StdRng::seed_from_u64(9);
    // Training points on a coarse lattice, each twice (duplicates, many equal
    // distances), three classes, one of only 3 points (fewer than the KNN = 5 votes);
    // queries inside, on lattice points and far outside.
    let mut train = Vec::new();
    let mut labels = Vec::new();
    for rep in 0..2 {
        for x in 0..12 {
            for y in 0..6 {
                train.extend([x as f64 * 0.5, y as f64 * 0.5]);
                labels.push(((x + y + rep) % 2) as u32);
            }
        }
    }
    train.extend([9.0, 9.0, 9.1, 9.0, 9.0, 9.1]);
    labels.extend([2, 2, 2]);
    let mut points: Vec<f64> = (0..400)
        .flat_map(|_| {
            [
                rng.random_range(-2..=24) as f64 * 0.25,
                rng.random_range(-2..=40) as f64 * 0.25,
            ]
        })
        .collect();
    points.extend([100.0, 100.0, -50.0, 3.0, 9.05, 9.05]);
    let grid = Grid2::new(&train);
    let fast = knn_labels(&points, &grid, &labels, 3);
    assert_eq!(fast, knn_labels_scan(&points, &train, &labels, 3));
    // The small class wins near its 3 points even though k = 5 > 3 (3 of 5 votes).
    assert_eq!(fast[fast.len() - 1], 2);
}

#[test]
fn floors_keep_40_repeats_up_to_1000_points_and_figures_draw_stated_rows() {
    assert_eq!(floor_repeats(500), 40);
    assert_eq!(floor_repeats(1000), 40);
    assert_eq!(floor_repeats(1500), 17);
    assert_eq!(floor_repeats(EVAL_SAMPLES), MIN_FLOOR_REPEATS);
    assert_eq!(figure_rows(FIGURE_POINTS, 1), None);
    let rows = figure_rows(10 * FIGURE_POINTS, 1).unwrap();
    assert_eq!(rows.len(), FIGURE_POINTS);
    assert!(rows.windows(2).all(|w| w[0] < w[1]) && rows[FIGURE_POINTS - 1] < 10 * FIGURE_POINTS);
    assert_eq!(figure_rows(10 * FIGURE_POINTS, 1), Some(rows));
}

/// The scatter panels of the sampling figures' first frame for `runs` sampled by `plan`.
fn first_frame(data: &Prepared, runs: &Runs, choice: SamplerChoice) -> Vec<viz::Scatter> {
    let plan = choice.plan(500).unwrap();
    frames(data, runs, &plan)[0]
        .iter()
        .map(|panel| match panel {
            Panel::Scatter(s) => s.clone(),
            other => panic!("a sampling frame draws scatter plots, not {other:?}"),
        })
        .collect()
}

#[test]
fn legends_say_how_many_points_a_series_draws_of_how_many() {
    // 12,345 data rows: the figures draw 4,000 of them. The unguided run sampled 12,345
    // points and its snapshots kept 2,000; each guided run drew every one of its 600.
    let recipe = RecipeParams {
        dataset: Some(BuiltinSet::Moons),
        n_data: Some(12_345),
        ..RecipeParams::default()
    }
    .check()
    .unwrap();
    let data = Prepared::from_recipe(&recipe, 1, &Silent).unwrap();
    let points = |n: usize| vec![0.0f32; 2 * n];
    let runs = Runs {
        unguided: SampleRun {
            dim: 2,
            snapshots: vec![Snapshot {
                t: 0,
                points: points(2000),
            }],
            samples: points(12_345),
        },
        guided: vec![(0, fake_run(points(600))), (1, fake_run(points(600)))],
        free_weight: None,
    };
    let panels = first_frame(&data, &runs, SamplerChoice::new(SamplerKind::Ddpm));
    let labels = |s: &viz::Scatter| s.series.iter().map(|p| p.label.clone()).collect::<Vec<_>>();
    assert_eq!(
        labels(&panels[0]),
        [
            "Original data (4,000 of 12,345)",
            "Unguided (2,000 of 12,345)"
        ]
    );
    assert_eq!(panels[0].series[0].points.len(), FIGURE_POINTS);
    assert_eq!(panels[0].series[1].points.len(), 2000);
    assert_eq!(
        panels[1].series.len(),
        3,
        "the data, then one series a class"
    );
    assert_eq!(panels[1].series[0].label, "Original data (4,000 of 12,345)");
    // Drawn whole: no count.
    assert!(labels(&panels[1])[1..].iter().all(|l| !l.contains(" of ")));
}

#[test]
fn titles_name_every_sampler_but_ddpm() {
    let recipe = RecipeParams::default().check().unwrap();
    let data = Prepared::from_recipe(&recipe, 1, &Silent).unwrap();
    let runs = Runs {
        unguided: fake_run(vec![0.0; 20]),
        guided: vec![(0, fake_run(vec![0.0; 20]))],
        free_weight: None,
    };
    let title = |kind, steps, eta| {
        let panels = first_frame(&data, &runs, SamplerChoice { kind, steps, eta });
        (panels[0].title.clone(), panels[1].title.clone())
    };
    // ddpm keeps the notebook's titles, so its figures stay byte-identical.
    assert_eq!(
        title(SamplerKind::Ddpm, None, None),
        ("Unguided, t = 0".into(), "Classifier-guided, t = 0".into())
    );
    let unguided = |kind, steps, eta| title(kind, steps, eta).0;
    assert_eq!(
        unguided(SamplerKind::Heun, None, None),
        "Unguided, Heun 50 steps, t = 0"
    );
    assert_eq!(
        unguided(SamplerKind::Euler, Some(20), None),
        "Unguided, Euler 20 steps, t = 0"
    );
    assert_eq!(
        unguided(SamplerKind::Ddim, Some(20), Some(0.5)),
        "Unguided, DDIM η = 0.5, 20 steps, t = 0"
    );
    assert_eq!(
        title(SamplerKind::DpmSolver, Some(10), None).1,
        "Classifier-guided, DPM-Solver++(2M) 10 steps, t = 0"
    );
}
