use std::path::PathBuf;
use toy_data::*;

/// A file under the temp dir, unique per process and test, removed on drop.
struct TempCsv(PathBuf);

impl TempCsv {
    fn new(name: &str, bytes: &[u8]) -> Self {
        let path =
            std::env::temp_dir().join(format!("toy-data-test-{}-{name}.csv", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        Self(path)
    }
}

impl Drop for TempCsv {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn loads_columns_in_any_order() {
    let f = TempCsv::new("ok", b"x,y,label\n1,2,a\n 3.5 , -4e1 ,b\n\n");
    let a = load_columns(&f.0, &["y", "x"]).unwrap();
    assert_eq!(a, ndarray::array![[2.0, 1.0], [-40.0, 3.5]]);
    assert_eq!(load_column(&f.0, "x").unwrap(), vec![1.0, 3.5]);
}

#[test]
fn bom_and_crlf_work() {
    let f = TempCsv::new("bom", b"\xEF\xBB\xBFx,y\r\n1,2\r\n3,4\r\n");
    assert_eq!(load_column(&f.0, "x").unwrap(), vec![1.0, 3.0]);
    assert_eq!(load_column(&f.0, "y").unwrap(), vec![2.0, 4.0]);
}

#[test]
fn quoted_cells_work() {
    let f = TempCsv::new("quoted", b"\"a b\",\"c\"\n\"1.5\",2\n");
    assert_eq!(load_column(&f.0, "a b").unwrap(), vec![1.5]);
}

#[test]
fn missing_file() {
    let path = std::env::temp_dir().join("toy-data-test-no-such-file.csv");
    let e = load_column(&path, "x").unwrap_err();
    assert!(matches!(e, DataError::Io { .. }), "{e}");
    assert!(e.to_string().contains("no-such-file"), "{e}");
}

#[test]
fn missing_column_lists_columns() {
    let f = TempCsv::new("missing", b"a,b\n1,2\n");
    let e = load_column(&f.0, "x").unwrap_err();
    assert!(matches!(&e, DataError::MissingColumn { available, .. } if available == &["a", "b"]));
    assert!(e.to_string().ends_with("its columns are: a, b"), "{e}");
}

#[test]
fn empty_file() {
    let f = TempCsv::new("empty", b"");
    assert!(matches!(
        load_column(&f.0, "x"),
        Err(DataError::EmptyFile { .. })
    ));
}

#[test]
fn header_only() {
    let f = TempCsv::new("header", b"x,y\r\n");
    assert!(matches!(
        load_column(&f.0, "x"),
        Err(DataError::NoDataRows { .. })
    ));
}

#[test]
fn empty_cell() {
    let f = TempCsv::new("emptycell", b"x,y\n1,2\n,3\n");
    let e = load_column(&f.0, "x").unwrap_err();
    assert!(
        matches!(&e, DataError::EmptyCell { line: 3, column, .. } if column == "x"),
        "{e}"
    );
    // The other column is fine.
    assert_eq!(load_column(&f.0, "y").unwrap(), vec![2.0, 3.0]);
}

#[test]
fn non_numeric_cell() {
    let f = TempCsv::new("nonnum", b"x\n1\n2\nabc\n");
    let e = load_column(&f.0, "x").unwrap_err();
    assert!(
        matches!(&e, DataError::NonNumeric { line: 4, text, .. } if text == "abc"),
        "{e}"
    );
    let s = e.to_string();
    assert!(s.contains("line 4") && s.contains("\"abc\"") && s.contains("\"x\""));
}

#[test]
fn nan_and_infinite_cells() {
    for (name, text) in [("nan", "NaN"), ("inf", "inf"), ("neginf", "-infinity")] {
        let f = TempCsv::new(name, format!("x\n1\n{text}\n").as_bytes());
        let e = load_column(&f.0, "x").unwrap_err();
        assert!(
            matches!(&e, DataError::NonFiniteCell { line: 3, text: t, .. } if t == text),
            "{e}"
        );
    }
}

#[test]
fn ragged_row() {
    let f = TempCsv::new("ragged", b"x,y\n1,2\n3\n");
    assert_eq!(
        load_column(&f.0, "x"),
        Err(DataError::RaggedRow {
            path: f.0.clone(),
            line: 3,
            expected: 2,
            found: 1
        })
    );
}

#[test]
fn invalid_utf8_names_the_line() {
    let f = TempCsv::new("utf8", b"x\n1\n\xff\xfe\n");
    assert!(matches!(
        load_column(&f.0, "x"),
        Err(DataError::InvalidUtf8 { line: 3, .. })
    ));
    let f = TempCsv::new("utf8h", b"\xc3(x\n1\n");
    assert!(matches!(
        load_column(&f.0, "x"),
        Err(DataError::InvalidUtf8 { line: 1, .. })
    ));
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A deterministic byte soup (xorshift), including quotes, commas, CR/LF and NULs.
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect();
    for cut in [0, 1, 7, 100, 1000, 4096] {
        let f = TempCsv::new(&format!("soup{cut}"), &bytes[..cut]);
        let _ = load_columns(&f.0, &["x", "y"]);
    }
}

#[test]
fn no_columns_requested() {
    let f = TempCsv::new("nocols", b"x\n1\n");
    assert!(matches!(
        load_columns(&f.0, &[]),
        Err(DataError::InvalidParameter { .. })
    ));
}

#[test]
fn labelled_string_classes() {
    let f = TempCsv::new(
        "species",
        b"sepal,petal,species\n5.1,1.4,setosa\n7.0,4.7,versicolor\n6.3,6.0,virginica\n4.9,1.4,setosa\n6.4,4.5,versicolor\n",
    );
    let d = load_labelled(&f.0, &["petal", "sepal"], Some("species"), false).unwrap();
    assert_eq!(
        d.points,
        ndarray::array![[1.4, 5.1], [4.7, 7.0], [6.0, 6.3], [1.4, 4.9], [4.5, 6.4]]
    );
    assert_eq!(d.class_names, ["setosa", "versicolor", "virginica"]);
    assert_eq!(d.labels, Some(vec![0, 1, 2, 0, 1]));
    assert_eq!(d.column_names, ["petal", "sepal"]);
    assert_eq!((d.dropped_rows, d.len(), d.n_classes()), (0, 5, 3));
    // Without a label column.
    let d = load_labelled(&f.0, &["sepal"], None, false).unwrap();
    assert_eq!((d.labels, d.class_names.len()), (None, 0));
}

#[test]
fn labelled_integer_classes_sort_numerically() {
    // Lexicographic order would put "10" before "2" and "-1" first by byte.
    let f = TempCsv::new("intlab", b"x,y,c\n1,1,10\n2,2,2\n3,3,-1\n4,4, 2 \n5,5,10\n");
    let d = load_labelled(&f.0, &["x", "y"], Some("c"), false).unwrap();
    assert_eq!(d.class_names, ["-1", "2", "10"]);
    assert_eq!(d.labels, Some(vec![2, 1, 0, 1, 2]));
    // Mixed integers and text: lexicographic.
    let f = TempCsv::new("mixlab", b"x,c\n1,10\n2,2\n3,b\n");
    let d = load_labelled(&f.0, &["x"], Some("c"), false).unwrap();
    assert_eq!(d.class_names, ["10", "2", "b"]);
    assert_eq!(d.labels, Some(vec![0, 1, 2]));
}

#[test]
fn labelled_class_count_limits() {
    let f = TempCsv::new("oneclass", b"x,c\n1,a\n2,a\n");
    let e = load_labelled(&f.0, &["x"], Some("c"), false).unwrap_err();
    assert!(matches!(&e, DataError::ClassCount { count: 1, .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("1 distinct") && msg.contains("2..=16") && msg.contains("\"a\""),
        "{msg}"
    );

    let mut text = String::from("x,c\n");
    for i in 0..17 {
        text.push_str(&format!("{i},k{i:02}\n"));
    }
    let f = TempCsv::new("manyclass", text.as_bytes());
    let e = load_labelled(&f.0, &["x"], Some("c"), false).unwrap_err();
    assert!(matches!(&e, DataError::ClassCount { count: 17, .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("17 distinct") && msg.contains("2..=16"),
        "{msg}"
    );
    assert!(
        msg.contains("\"k00\"") && msg.contains("\"k04\"") && msg.contains('…'),
        "{msg}"
    );
    assert!(!msg.contains("k05"), "only a few are listed: {msg}");
    // 16 is allowed.
    let text: String = text.lines().take(17).map(|l| format!("{l}\n")).collect();
    let f = TempCsv::new("sixteen", text.as_bytes());
    assert_eq!(
        load_labelled(&f.0, &["x"], Some("c"), false)
            .unwrap()
            .n_classes(),
        16
    );
}

#[test]
fn labelled_drop_missing() {
    let f = TempCsv::new(
        "dropna",
        b"x,y,c\n1,2,a\nNA,3,b\n4,,a\n5,6,\n7,N/A,b\n8,nan,a\n9,null,b\n10,abc,a\n11,inf,b\n12,13,NA\n14,15,b\n",
    );
    let d = load_labelled(&f.0, &["x", "y"], Some("c"), true).unwrap();
    assert_eq!(d.points, ndarray::array![[1.0, 2.0], [14.0, 15.0]]);
    assert_eq!(d.labels, Some(vec![0, 1]));
    assert_eq!(d.dropped_rows, 9);
    // Missing cells outside the selected and label columns do not matter.
    let d = load_labelled(&f.0, &["x"], None, true).unwrap();
    assert_eq!(d.dropped_rows, 1);
    assert_eq!(d.len(), 10);

    // Without drop_missing: NA names its line and column.
    let e = load_labelled(&f.0, &["x", "y"], Some("c"), false).unwrap_err();
    assert!(
        matches!(&e, DataError::NonNumeric { line: 3, column, text, .. } if column == "x" && text == "NA"),
        "{e}"
    );
    let msg = e.to_string();
    assert!(msg.contains("line 3") && msg.contains("\"x\""), "{msg}");
    // An empty label is an error unless dropping.
    let f = TempCsv::new("emptylab", b"x,c\n1,a\n2,\n3,b\n");
    let e = load_labelled(&f.0, &["x"], Some("c"), false).unwrap_err();
    assert!(
        matches!(&e, DataError::MissingLabel { line: 3, column, .. } if column == "c"),
        "{e}"
    );
    let d = load_labelled(&f.0, &["x"], Some("c"), true).unwrap();
    assert_eq!((d.len(), d.dropped_rows), (2, 1));

    // Every row dropped.
    let f = TempCsv::new("alldrop", b"x,c\nNA,a\n1,\n");
    assert_eq!(
        load_labelled(&f.0, &["x"], Some("c"), true),
        Err(DataError::AllRowsDropped {
            path: f.0.clone(),
            dropped: 2
        })
    );
    // Ragged rows are errors even when dropping.
    let f = TempCsv::new("dropragged", b"x,c\n1,a\n2\n");
    assert!(matches!(
        load_labelled(&f.0, &["x"], Some("c"), true),
        Err(DataError::RaggedRow { line: 3, .. })
    ));
}

#[test]
fn labelled_missing_label_column_lists_columns() {
    let f = TempCsv::new("nolab", b"x,y\n1,2\n");
    let e = load_labelled(&f.0, &["x"], Some("species"), false).unwrap_err();
    assert!(
        matches!(&e, DataError::MissingColumn { column, available, .. } if column == "species" && available == &["x", "y"]),
        "{e}"
    );
    assert!(e.to_string().ends_with("its columns are: x, y"), "{e}");
    let e = load_labelled(&f.0, &["z"], None, true).unwrap_err();
    assert!(matches!(&e, DataError::MissingColumn { column, .. } if column == "z"));
    assert!(matches!(
        load_labelled(&f.0, &[], None, false),
        Err(DataError::InvalidParameter { .. })
    ));
}

#[test]
fn labelled_bom_and_crlf() {
    let f = TempCsv::new("labbom", b"\xEF\xBB\xBFspecies,x\r\nb,1\r\na,2\r\n");
    let d = load_labelled(&f.0, &["x"], Some("species"), false).unwrap();
    assert_eq!(d.points, ndarray::array![[1.0], [2.0]]);
    assert_eq!(d.class_names, ["a", "b"]);
    assert_eq!(d.labels, Some(vec![1, 0]));
}

#[test]
fn labelled_missing_file_and_bytes() {
    let path = std::env::temp_dir().join("toy-data-test-no-such-labelled.csv");
    assert!(matches!(
        load_labelled(&path, &["x"], Some("c"), true),
        Err(DataError::Io { .. })
    ));
    let f = TempCsv::new("labutf8", b"x,c\n1,a\n2,\xff\n");
    assert!(matches!(
        load_labelled(&f.0, &["x"], Some("c"), true),
        Err(DataError::InvalidUtf8 { line: 3, .. })
    ));
}
