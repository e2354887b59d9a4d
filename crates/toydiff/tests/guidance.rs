use std::path::Path;

use toydiff::{guidance, GuidanceSettings, OutDir, PipelineError, Silent, Timings};

use crate::common::scratch;

#[test]
fn bad_settings_are_refused_before_the_checkpoint_is_read() {
    let dir = scratch("guidance");
    let out = OutDir::new(&dir).unwrap();
    let missing = Path::new("no-such-checkpoint-folder");
    let run = |s: &GuidanceSettings| guidance(s, missing, &out, &Silent, &mut Timings::default());
    // Good settings get as far as the checkpoint folder, which does not exist.
    let ok = GuidanceSettings::default();
    let err = run(&ok).err().unwrap();
    assert!(!matches!(err, PipelineError::BadGuidance(_)), "{err}");
    for bad in [
        GuidanceSettings { n: 1, ..ok.clone() },
        GuidanceSettings {
            scales: vec![-1.0],
            ..ok.clone()
        },
        GuidanceSettings {
            weights: vec![f64::NAN],
            ..ok.clone()
        },
        GuidanceSettings {
            floor_repeats: 0,
            ..ok.clone()
        },
    ] {
        assert!(matches!(run(&bad), Err(PipelineError::BadGuidance(_))));
    }
    assert!(!dir.exists(), "a refused run writes nothing");
}
