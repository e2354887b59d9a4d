use ndarray::{array, Array2};
use toy_data::*;

#[test]
fn standardizer_round_trip() {
    let x = array![[1.0, -200.0, 0.5], [2.0, 350.0, 0.25], [4.5, 10.0, 0.125]];
    let s = Standardizer::fit(x.view()).unwrap();
    assert_eq!(s.dim(), 3);
    let z = s.transform(x.view());
    for col in z.columns() {
        // Mean 0 and population variance 1, up to rounding (values of order 1).
        assert!(col.mean().unwrap().abs() < 1e-12);
        let var = col.iter().map(|v| v * v).sum::<f64>() / 3.0;
        assert!((var - 1.0).abs() < 1e-12, "{var}");
    }
    let back = s.inverse(z.view());
    // A few roundings of values up to 350 in magnitude: relative 1e-12 is ample.
    for (a, b) in back.iter().zip(&x) {
        assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} vs {b}");
    }
    // Population std: column 0 = [1, 2, 4.5], mean 2.5, var (2.25+0.25+4)/3.
    assert!((s.std[0] - (6.5f64 / 3.0).sqrt()).abs() < 1e-15);

    // Flat slices agree with the array methods.
    let mut flat: Vec<f64> = x.iter().copied().collect();
    s.transform_slice(&mut flat);
    assert_eq!(flat, z.iter().copied().collect::<Vec<_>>());
    s.inverse_slice(&mut flat);
    assert_eq!(flat, back.iter().copied().collect::<Vec<_>>());
    let mut flat32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    s.transform_slice_f32(&mut flat32);
    for (a, b) in flat32.iter().zip(z.iter()) {
        // f32 rounding of values of order 1 (plus of the inputs): 1e-5 is generous.
        assert!((f64::from(*a) - b).abs() < 1e-5);
    }
    s.inverse_slice_f32(&mut flat32);
    for (a, b) in flat32.iter().zip(x.iter()) {
        assert!((f64::from(*a) - b).abs() < 1e-5 * b.abs().max(1.0));
    }
}

#[test]
fn standardizer_errors() {
    let x = array![[1.0, 3.0], [2.0, 3.0]];
    let e = Standardizer::fit(x.view()).unwrap_err();
    assert_eq!(
        e,
        DataError::ConstantColumn {
            column: "column 1".into(),
            value: 3.0
        }
    );
    let e = Standardizer::fit_named(x.view(), &["sepal", "petal"]).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("\"petal\"") && msg.contains('3'), "{msg}");
    assert!(check_not_constant(x.view(), &["a".to_string(), "b".to_string()]).is_err());
    assert!(check_not_constant(array![[1.0, 3.0], [2.0, 4.0]].view(), &["a"]).is_ok());
    assert!(matches!(
        Standardizer::fit(Array2::<f64>::zeros((0, 2)).view()),
        Err(DataError::InvalidParameter { .. })
    ));
    assert!(matches!(
        Standardizer::fit(Array2::<f64>::zeros((3, 0)).view()),
        Err(DataError::ZeroDimension { .. })
    ));
    assert!(matches!(
        Standardizer::fit(array![[1.0], [f64::NAN]].view()),
        Err(DataError::NonFiniteData {
            row: 1,
            column: 0,
            ..
        })
    ));
    // One row: every column is constant.
    assert!(matches!(
        Standardizer::fit(array![[1.0, 2.0]].view()),
        Err(DataError::ConstantColumn { .. })
    ));
}

#[test]
#[should_panic(expected = "columns")]
fn transform_checks_columns() {
    let s = Standardizer::fit(array![[1.0, 2.0], [3.0, 5.0]].view()).unwrap();
    let _ = s.transform(array![[1.0, 2.0, 3.0]].view());
}

#[test]
fn standardizer_is_serde() {
    fn assert_serde<T: serde::Serialize + serde::de::DeserializeOwned>() {}
    assert_serde::<Standardizer>();
}

#[test]
fn holdout_split() {
    let (train, held) = split_holdout(100, 0.2, 9);
    assert_eq!((train.len(), held.len()), (80, 20));
    let mut all: Vec<usize> = train.iter().chain(&held).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..100).collect::<Vec<_>>());
    assert!(train.windows(2).all(|w| w[0] < w[1]));
    assert!(held.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(split_holdout(100, 0.2, 9), (train, held.clone()));
    assert_ne!(split_holdout(100, 0.2, 10).1, held);
    // A seeded shuffle, not a prefix or suffix.
    assert_ne!(held, (80..100).collect::<Vec<_>>());
    assert_eq!(split_holdout(10, 0.0, 1), ((0..10).collect(), vec![]));
    assert_eq!(split_holdout(10, 1.0, 1), (vec![], (0..10).collect()));
    assert_eq!(split_holdout(0, 0.5, 1), (vec![], vec![]));
    assert_eq!(split_holdout(7, 0.5, 1).1.len(), 4); // round(3.5) = 4
}

#[test]
#[should_panic(expected = "fraction")]
fn holdout_rejects_bad_fraction() {
    let _ = split_holdout(10, 1.5, 0);
}
