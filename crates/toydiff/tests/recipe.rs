use models::{ClassifierConfig, DenoiserConfig, LrSchedule};
use schedule::ScheduleKind;
use toy_data::BuiltinSet;
use toydiff::*;

#[test]
fn fnv1a_matches_the_published_test_vectors() {
    // From the FNV reference (isthe.com/chongo/tech/comp/fnv): "" and "a", 64-bit FNV-1a.
    let hash = |s: &str| {
        let mut h = Fnv1a::default();
        h.write(s.as_bytes());
        h.0
    };
    assert_eq!(hash(""), 0xcbf29ce484222325);
    assert_eq!(hash("a"), 0xaf63dc4c8601ec8c);
    assert_eq!(hash("foobar"), 0x85944171f73967e8);
}

#[test]
fn defaults_are_the_notebooks_and_every_bad_field_is_named() {
    let r = RecipeParams::default().check().unwrap();
    assert!(r.is_notebook() && !r.standardise);
    assert_eq!(r.schedule, ScheduleKind::NOTEBOOK_LINEAR.into());
    assert_eq!(r.denoiser_config(), DenoiserConfig::default());
    assert_eq!(r.classifier_config(2), ClassifierConfig::default());
    assert_eq!(r.classifier_epochs(500), 1000);
    let moons = RecipeParams {
        dataset: Some(BuiltinSet::Moons),
        ..RecipeParams::default()
    }
    .check()
    .unwrap();
    assert!(moons.standardise);
    // 800 training rows, batch 128: 7 steps an epoch, 8000 / 7 rounded up.
    assert_eq!(moons.classifier_epochs(800), 1143);
    let bad = |p: RecipeParams| p.check().unwrap_err();
    let d = RecipeParams::default;
    assert_eq!(
        bad(RecipeParams {
            num_steps: 0,
            ..d()
        }),
        RecipeError::NumSteps(0)
    );
    assert_eq!(
        bad(RecipeParams {
            width: Some(0),
            ..d()
        }),
        RecipeError::Width(0)
    );
    assert_eq!(
        bad(RecipeParams {
            depth: Some(17),
            ..d()
        }),
        RecipeError::Depth(17)
    );
    assert_eq!(
        bad(RecipeParams {
            steps: Some(0),
            ..d()
        }),
        RecipeError::Steps(0)
    );
    assert_eq!(
        bad(RecipeParams {
            epochs: Some(0),
            ..d()
        }),
        RecipeError::Epochs(0)
    );
    assert_eq!(bad(RecipeParams { batch: 0, ..d() }), RecipeError::Batch(0));
    for p in [0.0, 1.0, -0.2, f64::NAN] {
        assert!(matches!(
            bad(RecipeParams {
                cond_dropout: Some(p),
                ..d()
            }),
            RecipeError::CondDropout(_)
        ));
    }
    assert_eq!(r.training.cond_dropout, models::DEFAULT_LABEL_DROPOUT);
    assert_eq!(r.conditional_training().training.seed, 1238);
    // The conditional net's own steps: twice the denoiser's on the notebook's data,
    // cosine-decayed; a recipe written before the fields trains as the denoiser did.
    let c = r.conditional_training().training;
    assert_eq!((c.steps, c.lr_schedule), (4000, LrSchedule::Cosine));
    let mut old = r.clone();
    (old.training.cond_steps, old.training.cond_lr) = (None, None);
    let c = old.conditional_training().training;
    assert_eq!((c.steps, c.lr_schedule), (2000, LrSchedule::Constant));
    assert_eq!(
        bad(RecipeParams {
            cond_steps: Some(0),
            ..d()
        }),
        RecipeError::CondSteps(0)
    );
    assert_eq!(
        bad(RecipeParams {
            learning_rate: f64::NAN,
            ..d()
        })
        .to_string(),
        "learning rate NaN is invalid: use a number in (0, 10]"
    );
    assert_eq!(
        bad(RecipeParams {
            n_data: Some(1),
            ..d()
        }),
        RecipeError::DataSize(1)
    );
    assert!(matches!(
        bad(RecipeParams {
            schedule: Some(ScheduleKind::Cosine { offset: -1.0 }),
            ..d()
        }),
        RecipeError::Schedule(_)
    ));
    let csv = |columns: &[&str], label: Option<&str>| RecipeParams {
        csv: Some(CsvParams {
            path: "a.csv".into(),
            columns: columns.iter().map(|s| s.to_string()).collect(),
            label: label.map(String::from),
            drop_missing: false,
        }),
        ..d()
    };
    assert!(matches!(
        bad(csv(&["a"], None)),
        RecipeError::ColumnCount { count: 1, .. }
    ));
    assert!(matches!(
        bad(csv(&["a", "a"], None)),
        RecipeError::SameColumnTwice(_)
    ));
    assert!(matches!(
        bad(csv(&["a", "b"], Some("b"))),
        RecipeError::LabelIsAColumn { .. }
    ));
}

#[test]
fn the_run_id_follows_the_recipe_and_the_data_not_the_csv_path() {
    let r = RecipeParams::default().check().unwrap();
    let id = r.run_id(7);
    assert_eq!(id.len(), 16);
    assert_eq!(id, r.clone().run_id(7), "the same recipe, the same id");
    assert_ne!(id, r.run_id(8), "other data, another id");
    let other_seed = RecipeParams {
        seed: 1,
        ..RecipeParams::default()
    }
    .check()
    .unwrap();
    assert_ne!(id, other_seed.run_id(7));
    let cosine = RecipeParams {
        schedule: Some(ScheduleKind::Cosine { offset: 0.008 }),
        ..RecipeParams::default()
    }
    .check()
    .unwrap();
    assert_ne!(id, cosine.run_id(7));
    let at = |path: &str| {
        RecipeParams {
            csv: Some(CsvParams {
                path: path.into(),
                columns: vec!["a".into(), "b".into()],
                ..CsvParams::default()
            }),
            ..RecipeParams::default()
        }
        .check()
        .unwrap()
        .run_id(7)
    };
    assert_eq!(at("one.csv"), at("other/two.csv"));
    // A recipe survives its JSON.
    let text = serde_json::to_string(&cosine).unwrap();
    assert_eq!(serde_json::from_str::<Recipe>(&text).unwrap(), cosine);
    // A recipe written before the label dropout existed reads with the default.
    let old = text.replace(",\"cond_dropout\":0.2", "");
    assert_ne!(old, text);
    assert_eq!(serde_json::from_str::<Recipe>(&old).unwrap(), cosine);
}
