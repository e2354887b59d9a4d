use toy_data::datasets::*;

#[test]
fn two_clusters_layout_and_moments() {
    let n = 2000;
    let d = two_clusters(n, 1234);
    assert_eq!(d.points.dim(), (2 * n, 2));
    assert_eq!(&d.labels[..n], vec![0; n].as_slice());
    assert_eq!(&d.labels[n..], vec![1; n].as_slice());
    for (class, mean) in TWO_CLUSTERS_MEANS.iter().enumerate() {
        for (j, m) in mean.iter().enumerate() {
            let col = d.points.column(j);
            let part: Vec<f64> = col.iter().skip(class * n).take(n).copied().collect();
            let avg = part.iter().sum::<f64>() / n as f64;
            // 5 standard errors: 0.5/√2000 ≈ 0.011.
            assert!((avg - m).abs() < 5.0 * 0.5 / (n as f64).sqrt(), "{avg}");
        }
    }
    assert_eq!(two_clusters(10, 1), two_clusters(10, 1));
    assert_ne!(two_clusters(10, 1), two_clusters(10, 2));
    assert_eq!(two_clusters(0, 1).points.nrows(), 0);
}

#[test]
fn flexibility_layout_and_moments() {
    let v = flexibility_data(0);
    assert_eq!(v.len(), 500);
    let m0 = v[..200].iter().sum::<f64>() / 200.0;
    let m1 = v[200..].iter().sum::<f64>() / 300.0;
    // 5 standard errors: 1/√200 ≈ 0.071 and 1.5/√300 ≈ 0.087.
    assert!((m0 + 3.0).abs() < 5.0 / 200f64.sqrt(), "{m0}");
    assert!((m1 - 4.0).abs() < 5.0 * 1.5 / 300f64.sqrt(), "{m1}");
    assert_eq!(flexibility_data(0), v);
    let t = flexibility_truth();
    assert_eq!(t.weights(), [0.4, 0.6]);
    assert_eq!(t.variances_1d().unwrap(), vec![1.0, 2.25]);
}
