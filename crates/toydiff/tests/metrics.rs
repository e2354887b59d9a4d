use std::collections::BTreeMap;

use toydiff::*;

#[test]
fn metrics_json_has_sorted_keys_and_round_trips() {
    let floor = FloorMetrics {
        mean: 0.01,
        n: 500,
        p95: 0.02,
        repeats: 40,
        std_error: 0.001,
    };
    let mode = ModeMetrics {
        count: 250,
        fraction: 0.5,
        mean: vec![-2.0, -2.0],
        mode: 0,
        std: vec![1.0, 1.0],
    };
    let guided = GuidedMetrics {
        energy_distance_reference_size: Some(500),
        energy_distance_sample_size: Some(500),
        energy_distance_to_class: Some(0.1),
        energy_noise_floor: Some(floor),
        modes: Some(vec![mode.clone()]),
        precision: 1.0,
        precision_rule: Some("rule".into()),
        precision_sample_size: 500,
        target_class: "0".into(),
    };
    let metrics = Metrics {
        train: Some(TrainMetrics {
            accuracy_t250: Some(0.95),
            accuracy_t250_std_error: Some(0.002),
            accuracy_t250_test_points: 10_000,
            bayes_accuracy_t250: Some(0.954),
            beta_schedule: "linear".into(),
            classes: vec!["0".into(), "1".into()],
            classifier_final_loss: Some(0.2),
            classifier_loss_floor: None,
            conditional_denoiser_final_loss: Some(0.3),
            dataset: "two-clusters".into(),
            denoiser_final_loss: 0.34,
            denoiser_loss_floor: Some(0.335),
            dropped_rows: 0,
            run_id: "0123456789abcdef".into(),
        }),
        sampling: Some(SamplingMetrics {
            guided: BTreeMap::from([("guided_0".into(), guided.clone())]),
            settings: SamplingSettingsRecord {
                cfg_weight: None,
                guidance: "classifier".into(),
                eta: Some(0.5),
                model_evaluations: 99,
                n: 500,
                sampler: "heun".into(),
                steps: 50,
                scale: 30.0,
                seed: 1234,
                snapshot_every: 10,
                variance: "beta".into(),
            },
            unguided: UnguidedMetrics {
                class_fractions: Some(vec![0.5, 0.5]),
                energy_distance: 0.001,
                energy_distance_reference_size: 500,
                energy_distance_sample_size: 500,
                energy_noise_floor: floor,
                mode_balance: Some(0.5),
                modes: Some(vec![mode]),
                reference: "exact mixture".into(),
            },
        }),
    };
    // serde_json's own map (without its preserve_order feature, as here) sorts its
    // keys: the typed struct writes the same text only if its fields, at every level,
    // come in sorted order, as the untyped maps it replaced wrote them.
    let text = serde_json::to_string_pretty(&metrics).unwrap();
    let sorted = serde_json::to_string_pretty(&serde_json::to_value(&metrics).unwrap()).unwrap();
    assert_eq!(text, sorted);
    let back: Metrics = serde_json::from_str(&text).unwrap();
    assert_eq!(back, metrics);
    // Only the sampling block (no train fields): the train part reads back as None.
    let only = Metrics {
        train: None,
        ..metrics
    };
    let back: Metrics = serde_json::from_str(&serde_json::to_string(&only).unwrap()).unwrap();
    assert_eq!(back, only);
}
