//! Loading numeric columns from a CSV file with a header line.
//!
//! Cells are trimmed, a UTF-8 byte-order mark before the first header name is ignored,
//! and LF or CRLF line ends both work. Every problem is its own [`DataError`] variant
//! naming the file, the 1-based line, the column and the bad text. Arbitrary bytes
//! never panic: text that is not UTF-8 is an error naming its line.

use std::collections::HashMap;
use std::path::Path;

use csv::{ByteRecord, ReaderBuilder};
use ndarray::Array2;

use crate::{DataError, MAX_CLASSES, MIN_CLASSES};

/// The values of one numeric column, in file order.
pub fn load_column(path: &Path, column: &str) -> Result<Vec<f64>, DataError> {
    Ok(load_columns(path, &[column])?.into_raw_vec_and_offset().0)
}

/// The values of `columns` as an n × columns.len() array, rows in file order.
///
/// If the header repeats a name, the first column of that name is used.
pub fn load_columns(path: &Path, columns: &[&str]) -> Result<Array2<f64>, DataError> {
    require_columns(columns)?;
    let (mut reader, header) = open_table(path)?;
    let indices = columns
        .iter()
        .map(|&c| column_index(path, &header, c))
        .collect::<Result<Vec<usize>, DataError>>()?;

    let mut record = ByteRecord::new();
    let mut values = Vec::new();
    let mut n_rows = 0;
    while read_row(path, &mut reader, &mut record, header.len())? {
        let line = line_of(&record);
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

/// Numeric columns and an optional class label column read by [`load_labelled`].
#[derive(Debug, Clone, PartialEq)]
pub struct CsvData {
    /// n × column_names.len() values, kept rows in file order.
    pub points: Array2<f64>,
    /// The class of each kept row (an index into `class_names`); `None` without a
    /// label column.
    pub labels: Option<Vec<usize>>,
    /// The distinct labels as written (trimmed), sorted; empty without a label column.
    pub class_names: Vec<String>,
    /// The numeric columns' names, as requested.
    pub column_names: Vec<String>,
    /// Rows skipped for a missing or invalid cell (0 unless `drop_missing`).
    pub dropped_rows: usize,
}

impl CsvData {
    /// Number of kept rows.
    pub fn len(&self) -> usize {
        self.points.nrows()
    }

    /// Whether no rows were kept (never true for a successful [`load_labelled`]).
    pub fn is_empty(&self) -> bool {
        self.points.nrows() == 0
    }

    /// Number of classes (0 without a label column).
    pub fn n_classes(&self) -> usize {
        self.class_names.len()
    }
}

/// Cell texts that mean "missing" (compared ignoring ASCII case, after trimming).
pub const MISSING_TOKENS: [&str; 5] = ["", "NA", "N/A", "NaN", "null"];

/// Whether a trimmed cell is one of [`MISSING_TOKENS`].
fn is_missing(text: &str) -> bool {
    MISSING_TOKENS.iter().any(|t| t.eq_ignore_ascii_case(text))
}

/// Numeric `columns` and, if `label` is given, a class label column.
///
/// Labels are any text (e.g. species names) or integers. The classes are the distinct
/// labels, sorted numerically if all parse as integers (`i64`), else lexicographically
/// (by bytes); `labels[i]` is the row's index in `class_names`, which keeps each label's
/// text. Between [`MIN_CLASSES`](crate::MIN_CLASSES) and
/// [`MAX_CLASSES`](crate::MAX_CLASSES) (2..=16) classes are required, else
/// [`DataError::ClassCount`].
///
/// With `drop_missing = false` every problem is an error as in [`load_columns`], and a
/// missing label (one of [`MISSING_TOKENS`]: `""`, `NA`, `N/A`, `NaN`, `null`, any ASCII
/// case) is [`DataError::MissingLabel`]. With `drop_missing = true`, a row with an
/// empty, missing, non-numeric or non-finite cell in a selected column, or a missing
/// label, is skipped and counted in [`CsvData::dropped_rows`]; if every row is skipped
/// the result is [`DataError::AllRowsDropped`]. Ragged rows and text that is not UTF-8
/// are errors either way.
pub fn load_labelled(
    path: &Path,
    columns: &[&str],
    label: Option<&str>,
    drop_missing: bool,
) -> Result<CsvData, DataError> {
    require_columns(columns)?;
    let (mut reader, header) = open_table(path)?;
    let indices = columns
        .iter()
        .map(|&c| column_index(path, &header, c))
        .collect::<Result<Vec<usize>, DataError>>()?;
    let label_index = label.map(|c| column_index(path, &header, c)).transpose()?;

    let mut record = ByteRecord::new();
    let mut values = Vec::new();
    let mut row_values = Vec::with_capacity(indices.len());
    let mut label_texts: Vec<String> = Vec::new();
    let mut n_rows = 0;
    let mut dropped_rows = 0;
    'rows: while read_row(path, &mut reader, &mut record, header.len())? {
        let line = line_of(&record);
        row_values.clear();
        for &idx in &indices {
            match parse_cell(path, line, &header[idx], &record[idx]) {
                Ok(v) => row_values.push(v),
                Err(
                    DataError::EmptyCell { .. }
                    | DataError::NonNumeric { .. }
                    | DataError::NonFiniteCell { .. },
                ) if drop_missing => {
                    dropped_rows += 1;
                    continue 'rows;
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(idx) = label_index {
            let text = cell_text(path, line, &record[idx])?;
            if is_missing(text) {
                if drop_missing {
                    dropped_rows += 1;
                    continue 'rows;
                }
                return Err(DataError::MissingLabel {
                    path: path.to_path_buf(),
                    line,
                    column: header[idx].clone(),
                    text: text.to_string(),
                });
            }
            label_texts.push(text.to_string());
        }
        values.extend_from_slice(&row_values);
        n_rows += 1;
    }
    if n_rows == 0 {
        return Err(if dropped_rows > 0 {
            DataError::AllRowsDropped {
                path: path.to_path_buf(),
                dropped: dropped_rows,
            }
        } else {
            DataError::NoDataRows {
                path: path.to_path_buf(),
            }
        });
    }
    let points = Array2::from_shape_vec((n_rows, columns.len()), values)
        .expect("n_rows × columns values were pushed");

    let (labels, class_names) = match label_index {
        None => (None, Vec::new()),
        Some(idx) => {
            let (labels, class_names) = encode_classes(path, &header[idx], &label_texts)?;
            (Some(labels), class_names)
        }
    };
    Ok(CsvData {
        points,
        labels,
        class_names,
        column_names: columns.iter().map(|c| c.trim().to_string()).collect(),
        dropped_rows,
    })
}

/// Sorted distinct classes of `texts` and each text's class index; 2..=16 required.
fn encode_classes(
    path: &Path,
    column: &str,
    texts: &[String],
) -> Result<(Vec<usize>, Vec<String>), DataError> {
    let mut classes: Vec<&str> = texts.iter().map(String::as_str).collect();
    classes.sort_unstable();
    classes.dedup();
    let integers: Option<Vec<i64>> = classes.iter().map(|c| c.parse().ok()).collect();
    if let Some(ints) = integers {
        let mut keyed: Vec<(i64, &str)> = ints.into_iter().zip(classes).collect();
        keyed.sort_unstable();
        classes = keyed.into_iter().map(|(_, c)| c).collect();
    }
    let count = classes.len();
    if !(MIN_CLASSES..=MAX_CLASSES).contains(&count) {
        const SHOWN: usize = 5;
        let mut examples: Vec<String> = classes
            .iter()
            .take(SHOWN)
            .map(|c| format!("{c:?}"))
            .collect();
        if count > SHOWN {
            examples.push("…".into());
        }
        return Err(DataError::ClassCount {
            path: path.to_path_buf(),
            column: column.to_string(),
            count,
            examples,
        });
    }
    let index: HashMap<&str, usize> = classes.iter().enumerate().map(|(i, &c)| (c, i)).collect();
    let labels = texts.iter().map(|t| index[t.as_str()]).collect();
    Ok((labels, classes.into_iter().map(String::from).collect()))
}

/// Fails on an empty column list.
fn require_columns(columns: &[&str]) -> Result<(), DataError> {
    if columns.is_empty() {
        return Err(DataError::InvalidParameter {
            name: "columns",
            value: "[]".into(),
            allowed: "at least one column name",
        });
    }
    Ok(())
}

type Reader = csv::Reader<std::io::BufReader<std::fs::File>>;

/// Opens `path` and reads its header (trimmed names, a leading BOM dropped).
fn open_table(path: &Path) -> Result<(Reader, Vec<String>), DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::Io {
        path: path.to_path_buf(),
        message: one_line(&e.to_string()),
    })?;
    let mut reader = ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(std::io::BufReader::new(file));
    let mut record = ByteRecord::new();
    if !reader
        .read_byte_record(&mut record)
        .map_err(|e| csv_error(path, e))?
    {
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
    Ok((reader, header))
}

/// The index of the first header column named `column` (trimmed).
fn column_index(path: &Path, header: &[String], column: &str) -> Result<usize, DataError> {
    header
        .iter()
        .position(|h| h == column.trim())
        .ok_or_else(|| DataError::MissingColumn {
            path: path.to_path_buf(),
            column: column.to_string(),
            available: header.to_vec(),
        })
}

/// Reads the next data row into `record`; false at the end. A row whose field count
/// differs from the header's is [`DataError::RaggedRow`].
fn read_row(
    path: &Path,
    reader: &mut Reader,
    record: &mut ByteRecord,
    n_fields: usize,
) -> Result<bool, DataError> {
    if !reader
        .read_byte_record(record)
        .map_err(|e| csv_error(path, e))?
    {
        return Ok(false);
    }
    if record.len() != n_fields {
        return Err(DataError::RaggedRow {
            path: path.to_path_buf(),
            line: line_of(record),
            expected: n_fields,
            found: record.len(),
        });
    }
    Ok(true)
}

/// A parser failure as a [`DataError`].
fn csv_error(path: &Path, e: csv::Error) -> DataError {
    match e.kind() {
        csv::ErrorKind::Io(io) => DataError::Io {
            path: path.to_path_buf(),
            message: one_line(&io.to_string()),
        },
        _ => DataError::Csv {
            path: path.to_path_buf(),
            line: e.position().map_or(0, |p| p.line()),
            message: one_line(&e.to_string()),
        },
    }
}

/// A cell's trimmed UTF-8 text.
fn cell_text<'a>(path: &Path, line: u64, bytes: &'a [u8]) -> Result<&'a str, DataError> {
    std::str::from_utf8(bytes)
        .map(str::trim)
        .map_err(|_| DataError::InvalidUtf8 {
            path: path.to_path_buf(),
            line,
        })
}

/// One cell as a finite number.
fn parse_cell(path: &Path, line: u64, column: &str, bytes: &[u8]) -> Result<f64, DataError> {
    let text = cell_text(path, line, bytes)?;
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
