//! A guided run whose guidance term becomes non-finite stops with
//! `SamplerError::NonFinite` naming the step t, whether the classifier's gradient is NaN
//! or finite but so large that the scaled step overflows f32.

use candle_core::{Device, Tensor};
use models::{NoisePredictor, NoisyClassifier};
use sampler::{sample, ClassifierGuidance, SamplerConfig, SamplerError};
use schedule::NoiseSchedule;

/// ε = 0: the reverse process only rescales and adds noise, always finite.
struct ZeroNoise;

impl NoisePredictor for ZeroNoise {
    fn num_steps(&self) -> usize {
        500
    }
    fn dim(&self) -> usize {
        2
    }
    fn predict_noise(&self, x_t: &Tensor, _t: usize) -> candle_core::Result<Tensor> {
        x_t.zeros_like()
    }
}

/// Linear "log-probabilities" x · W: the gradient of class c is column c of W, `slope`
/// along the first axis (0 for class 1), or NaN at step `nan_at`.
struct Linear {
    slope: f32,
    nan_at: Option<usize>,
}

impl NoisyClassifier for Linear {
    fn num_steps(&self) -> usize {
        500
    }
    fn num_classes(&self) -> usize {
        2
    }
    fn log_probs(&self, x_t: &Tensor, t: usize) -> candle_core::Result<Tensor> {
        let a = if self.nan_at == Some(t) {
            f32::NAN
        } else {
            self.slope
        };
        let w = Tensor::new(&[[a, 0.0f32], [0.0, 0.0]], &Device::Cpu)?;
        x_t.matmul(&w)
    }
}

fn config() -> SamplerConfig {
    SamplerConfig {
        num_samples: 16,
        ..SamplerConfig::default()
    }
}

#[test]
fn a_nan_guidance_gradient_stops_at_its_step() {
    let schedule = NoiseSchedule::notebook();
    let clf = Linear {
        slope: 1.0,
        nan_at: Some(217),
    };
    let g = ClassifierGuidance::one_class(&clf, 0, 30.0, 16).unwrap();
    let err = sample(&ZeroNoise, &schedule, Some(&g), &config()).unwrap_err();
    assert!(matches!(err, SamplerError::NonFinite { t: 217 }), "{err}");
    assert!(err.to_string().contains("t = 217"), "{err}");
    // The same classifier without the NaN step samples to the end (so the error above is
    // the NaN's, not the slope's).
    let clf = Linear {
        slope: 1.0,
        nan_at: None,
    };
    let g = ClassifierGuidance::one_class(&clf, 0, 30.0, 16).unwrap();
    let run = sample(&ZeroNoise, &schedule, Some(&g), &config()).unwrap();
    assert!(run.final_points().iter().all(|v| v.is_finite()));
}

#[test]
fn an_overflowing_guidance_step_stops_at_the_first_step() {
    // s · σ_t² · ∇ = 1e6 · β_500 (0.02) · 1e37 = 2e41 > f32::MAX (3.4e38): x_499 is
    // infinite, so the first step, t = 500, is named.
    let schedule = NoiseSchedule::notebook();
    let clf = Linear {
        slope: 1e37,
        nan_at: None,
    };
    let g = ClassifierGuidance::one_class(&clf, 0, 1e6, 16).unwrap();
    let err = sample(&ZeroNoise, &schedule, Some(&g), &config()).unwrap_err();
    assert!(matches!(err, SamplerError::NonFinite { t: 500 }), "{err}");
    // Class 1's gradient is 0 here: the same scale and classifier stay finite.
    let g = ClassifierGuidance::one_class(&clf, 1, 1e6, 16).unwrap();
    assert!(sample(&ZeroNoise, &schedule, Some(&g), &config()).is_ok());
}
