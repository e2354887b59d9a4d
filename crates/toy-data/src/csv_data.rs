//! Loading numeric columns from a CSV file with a header line.
//!
//! Cells are trimmed, a UTF-8 byte-order mark before the first header name is ignored,
//! and LF or CRLF line ends both work. Every problem is its own [`DataError`] variant
//! naming the file, the 1-based line, the column and the bad text. Arbitrary bytes
//! never panic: text that is not UTF-8 is an error naming its line.

use std::path::Path;

use csv::{ByteRecord, ReaderBuilder};
use ndarray::Array2;

use crate::DataError;

/// The values of one numeric column, in file order.
pub fn load_column(path: &Path, column: &str) -> Result<Vec<f64>, DataError> {
    Ok(load_columns(path, &[column])?.into_raw_vec_and_offset().0)
}

/// The values of `columns` as an n × columns.len() array, rows in file order.
///
/// If the header repeats a name, the first column of that name is used.
pub fn load_columns(path: &Path, columns: &[&str]) -> Result<Array2<f64>, DataError> {
    if columns.is_empty() {
        return Err(DataError::InvalidParameter {
            name: "columns",
            value: "[]".into(),
            allowed: "at least one column name",
        });
    }
    let file = std::fs::File::open(path).map_err(|e| DataError::Io {
        path: path.to_path_buf(),
        message: one_line(&e.to_string()),
    })?;
    let mut reader = ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(std::io::BufReader::new(file));
    let csv_error = |e: csv::Error| match e.kind() {
        csv::ErrorKind::Io(io) => DataError::Io {
            path: path.to_path_buf(),
            message: one_line(&io.to_string()),
        },
        _ => DataError::Csv {
            path: path.to_path_buf(),
            line: e.position().map_or(0, |p| p.line()),
            message: one_line(&e.to_string()),
        },
    };

    let mut record = ByteRecord::new();
    if !reader.read_byte_record(&mut record).map_err(csv_error)? {
        return Err(DataError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    let header_line = line_of(&record);
    let header = record
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let text = std::str::from_utf8(field).map_err(|_| DataError::InvalidUtf8 {
                path: path.to_path_buf(),
                line: header_line,
            })?;
            let text = if i == 0 {
                text.trim_start_matches('\u{feff}')
            } else {
                text
            };
            Ok(text.trim().to_string())
        })
        .collect::<Result<Vec<String>, DataError>>()?;
    let indices = columns
        .iter()
        .map(|&c| {
            header
                .iter()
                .position(|h| h == c.trim())
                .ok_or_else(|| DataError::MissingColumn {
                    path: path.to_path_buf(),
                    column: c.to_string(),
                    available: header.clone(),
                })
        })
        .collect::<Result<Vec<usize>, DataError>>()?;

    let mut values = Vec::new();
    let mut n_rows = 0;
    while reader.read_byte_record(&mut record).map_err(csv_error)? {
        let line = line_of(&record);
        if record.len() != header.len() {
            return Err(DataError::RaggedRow {
                path: path.to_path_buf(),
                line,
                expected: header.len(),
                found: record.len(),
            });
        }
        for &idx in &indices {
            values.push(parse_cell(path, line, &header[idx], &record[idx])?);
        }
        n_rows += 1;
    }
    if n_rows == 0 {
        return Err(DataError::NoDataRows {
            path: path.to_path_buf(),
        });
    }
    Ok(Array2::from_shape_vec((n_rows, columns.len()), values)
        .expect("n_rows × columns values were pushed"))
}

/// One cell as a finite number.
fn parse_cell(path: &Path, line: u64, column: &str, bytes: &[u8]) -> Result<f64, DataError> {
    let text = std::str::from_utf8(bytes).map_err(|_| DataError::InvalidUtf8 {
        path: path.to_path_buf(),
        line,
    })?;
    let text = text.trim();
    if text.is_empty() {
        return Err(DataError::EmptyCell {
            path: path.to_path_buf(),
            line,
            column: column.to_string(),
        });
    }
    let value: f64 = text.parse().map_err(|_| DataError::NonNumeric {
        path: path.to_path_buf(),
        line,
        column: column.to_string(),
        text: text.to_string(),
    })?;
    if !value.is_finite() {
        return Err(DataError::NonFiniteCell {
            path: path.to_path_buf(),
            line,
            column: column.to_string(),
            text: text.to_string(),
        });
    }
    Ok(value)
}

/// The 1-based line where `record` starts (0 if the reader did not say).
fn line_of(record: &ByteRecord) -> u64 {
    record.position().map_or(0, |p| p.line())
}

fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A file under the temp dir, unique per process and test, removed on drop.
    struct TempCsv(PathBuf);

    impl TempCsv {
        fn new(name: &str, bytes: &[u8]) -> Self {
            let path = std::env::temp_dir()
                .join(format!("toy-data-test-{}-{name}.csv", std::process::id()));
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
        assert!(
            matches!(&e, DataError::MissingColumn { available, .. } if available == &["a", "b"])
        );
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
}
