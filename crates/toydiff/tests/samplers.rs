use toydiff::samplers::{frontier_plans, FRONTIER_STEPS};
use toydiff::{PipelineError, SamplerChoice, SamplerKind};

#[test]
fn the_frontier_runs_ddpm_once_and_every_solver_at_each_k_up_to_t() {
    let plans = frontier_plans(&FRONTIER_STEPS, 500).unwrap();
    assert_eq!(plans.len(), 1 + 4 * FRONTIER_STEPS.len());
    assert_eq!(plans[0].kind, SamplerKind::Ddpm);
    assert_eq!(plans[0].steps(), 500);
    let heun_50 = plans
        .iter()
        .find(|p| p.kind == SamplerKind::Heun && p.steps() == 50)
        .unwrap();
    assert_eq!(heun_50.model_evaluations(), 99);
    // T = 60: K = 100, 250, 500 are left out; DDPM runs its 60.
    let short = frontier_plans(&FRONTIER_STEPS, 60).unwrap();
    assert_eq!(short.len(), 1 + 4 * 4);
    assert!(short.iter().all(|p| p.steps() <= 60));
}

#[test]
fn sampler_choices_are_checked_against_t() {
    let plan = |kind, steps, eta| SamplerChoice { kind, steps, eta }.plan(500);
    assert_eq!(plan(SamplerKind::Ddim, None, None).unwrap().eta, Some(0.0));
    assert_eq!(plan(SamplerKind::Heun, None, None).unwrap().steps(), 50);
    assert_eq!(
        plan(SamplerKind::Ddpm, Some(500), None).unwrap().steps(),
        500
    );
    for bad in [
        plan(SamplerKind::Ddim, Some(0), None),
        plan(SamplerKind::Ddim, Some(501), None),
        plan(SamplerKind::Ddpm, Some(50), None),
        plan(SamplerKind::Ddim, None, Some(1.5)),
        plan(SamplerKind::Euler, None, Some(0.5)),
    ] {
        assert!(matches!(bad, Err(PipelineError::BadSampler(_))), "{bad:?}");
    }
    // T below the default 50: the default K is T.
    let short = SamplerChoice::new(SamplerKind::DpmSolver).plan(20).unwrap();
    assert_eq!(short.steps(), 20);
}
