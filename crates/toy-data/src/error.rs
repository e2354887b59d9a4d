//! The crate's single error type: one variant per problem, each message one line
//! naming the bad value and what is allowed.

use std::path::PathBuf;

/// Everything that can go wrong when building a mixture, fitting one or loading data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DataError {
    // ----- mixture parameters -----
    /// A mixture was given no components.
    #[error("a mixture needs at least one component, but 0 were given")]
    NoComponents,

    /// The per-component lists have different lengths.
    #[error(
        "component lists disagree: {weights} weights, {means} means, {covariances} covariances (all must be equal)"
    )]
    ComponentCountMismatch {
        /// Number of weights.
        weights: usize,
        /// Number of means.
        means: usize,
        /// Number of covariances (or standard deviations).
        covariances: usize,
    },

    /// The dimension is zero (a mean with no coordinates, or data with no columns).
    #[error("{what} has dimension 0; the dimension must be at least 1")]
    ZeroDimension {
        /// What had no coordinates.
        what: String,
    },

    /// A vector or matrix has the wrong number of entries for the mixture's dimension.
    #[error("{what} has {found} values, but the dimension {dim} requires {expected}")]
    DimensionMismatch {
        /// Which parameter or input.
        what: String,
        /// The dimension of the mixture.
        dim: usize,
        /// Number of values required.
        expected: usize,
        /// Number of values given.
        found: usize,
    },

    /// A weight is negative.
    #[error("weight {index} is {value}; weights must be >= 0")]
    NegativeWeight {
        /// Component index (0-based).
        index: usize,
        /// The weight given.
        value: f64,
    },

    /// The weights do not sum to one.
    #[error("weights sum to {sum}; they must sum to 1 (within 1e-9)")]
    WeightsSum {
        /// Their sum.
        sum: f64,
    },

    /// A parameter is NaN or infinite.
    #[error("{what} is {value}; it must be finite")]
    NonFiniteParameter {
        /// Which parameter, e.g. `mean 1[0]`.
        what: String,
        /// The value given.
        value: f64,
    },

    /// A variance (isotropic, diagonal, or a diagonal entry of a full matrix) is <= 0.
    #[error("variance {value} in component {component} must be > 0")]
    NonPositiveVariance {
        /// Component index (0-based).
        component: usize,
        /// The variance given.
        value: f64,
    },

    /// A standard deviation is <= 0 (or not finite).
    #[error("standard deviation {value} of component {component} must be > 0 and finite")]
    NonPositiveStdDev {
        /// Component index (0-based).
        component: usize,
        /// The standard deviation given.
        value: f64,
    },

    /// A full covariance matrix is not symmetric.
    #[error(
        "covariance of component {component} is not symmetric: entry ({row},{col}) = {upper} but ({col},{row}) = {lower}"
    )]
    AsymmetricCovariance {
        /// Component index (0-based).
        component: usize,
        /// Row of the upper entry.
        row: usize,
        /// Column of the upper entry.
        col: usize,
        /// Value at (row, col).
        upper: f64,
        /// Value at (col, row).
        lower: f64,
    },

    /// A full covariance matrix is not (numerically) positive definite.
    #[error(
        "covariance of component {component} is not positive definite (Cholesky pivot {pivot} at row {row}); it must be symmetric positive definite"
    )]
    NotPositiveDefinite {
        /// Component index (0-based).
        component: usize,
        /// Row where the Cholesky factorisation failed.
        row: usize,
        /// The failing pivot (<= 0, or negligible against the diagonal entry).
        pivot: f64,
    },

    // ----- fitting -----
    /// A fitting or comparison parameter is out of range.
    #[error("{name} = {value} is not allowed; {name} must be {allowed}")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// The value given, formatted.
        value: String,
        /// What is allowed.
        allowed: &'static str,
    },

    /// Too few data rows to fit `k` components.
    #[error(
        "{rows} data rows are too few to fit k = {k} components; at least {needed} are needed"
    )]
    TooFewRows {
        /// Rows available.
        rows: usize,
        /// Components requested.
        k: usize,
        /// Rows needed (max(k, 2)).
        needed: usize,
    },

    /// A data value is NaN or infinite.
    #[error("data value at row {row}, column {column} is {value}; data must be finite")]
    NonFiniteData {
        /// Row index (0-based).
        row: usize,
        /// Column index (0-based).
        column: usize,
        /// The value.
        value: f64,
    },

    /// A data column spans so wide a range that sums of squared distances could overflow.
    #[error(
        "data column {column} spans {range:e}; with these rows and columns the span must be below {limit:e} so squared distances stay finite"
    )]
    DataRangeTooLarge {
        /// Column index (0-based).
        column: usize,
        /// max − min of the column.
        range: f64,
        /// The largest span allowed: √(1e300 / (n·d)).
        limit: f64,
    },

    /// EM failed (did not converge, or degenerated) in every restart.
    #[error(
        "EM for k = {k} components failed in all {restarts} restarts (last failure: {last_error}); try more restarts or iterations, a looser tolerance, or a smaller k"
    )]
    NotConverged {
        /// Components requested.
        k: usize,
        /// Restarts tried.
        restarts: usize,
        /// The last restart's failure, as text.
        last_error: String,
    },

    // ----- CSV -----
    /// The file could not be opened or read.
    #[error("cannot read {}: {message}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's message.
        message: String,
    },

    /// The file is empty (no header line).
    #[error("{} is empty; a header line and at least one data row are required", path.display())]
    EmptyFile {
        /// The file.
        path: PathBuf,
    },

    /// The file has a header but no data rows.
    #[error("{} has a header but no data rows; at least one data row is required", path.display())]
    NoDataRows {
        /// The file.
        path: PathBuf,
    },

    /// A requested column is not in the header.
    #[error("{} has no column {column:?}; its columns are: {}", path.display(), available.join(", "))]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column asked for.
        column: String,
        /// The columns the header has.
        available: Vec<String>,
    },

    /// A cell in a requested column is empty.
    #[error("{} line {line}, column {column:?}: the cell is empty; a finite number is required", path.display())]
    EmptyCell {
        /// The file.
        path: PathBuf,
        /// 1-based line number in the file.
        line: u64,
        /// Column name.
        column: String,
    },

    /// A cell is not a number.
    #[error("{} line {line}, column {column:?}: {text:?} is not a number; a finite number is required", path.display())]
    NonNumeric {
        /// The file.
        path: PathBuf,
        /// 1-based line number in the file.
        line: u64,
        /// Column name.
        column: String,
        /// The cell's text.
        text: String,
    },

    /// A cell is NaN or ±infinity.
    #[error("{} line {line}, column {column:?}: {text:?} is not finite; a finite number is required", path.display())]
    NonFiniteCell {
        /// The file.
        path: PathBuf,
        /// 1-based line number in the file.
        line: u64,
        /// Column name.
        column: String,
        /// The cell's text.
        text: String,
    },

    /// A row has a different number of fields from the header.
    #[error("{} line {line}: expected {expected} fields (as in the header) but found {found}", path.display())]
    RaggedRow {
        /// The file.
        path: PathBuf,
        /// 1-based line number in the file.
        line: u64,
        /// Fields in the header.
        expected: usize,
        /// Fields in this row.
        found: usize,
    },

    /// The header or a used cell is not valid UTF-8.
    #[error("{} line {line}: text is not valid UTF-8", path.display())]
    InvalidUtf8 {
        /// The file.
        path: PathBuf,
        /// 1-based line number in the file.
        line: u64,
    },

    /// Any other CSV parse failure.
    #[error("{} line {line}: CSV error: {message}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line number (0 if unknown).
        line: u64,
        /// The parser's message.
        message: String,
    },

    /// A row of the label column is missing ("", "NA", "N/A", "NaN" or "null") and
    /// missing rows were not asked to be dropped.
    #[error("{} line {line}, column {column:?}: the label {text:?} is missing; a class label is required (or drop rows with missing values)", path.display())]
    MissingLabel {
        /// The file.
        path: PathBuf,
        /// 1-based line number in the file.
        line: u64,
        /// The label column's name.
        column: String,
        /// The cell's (trimmed) text.
        text: String,
    },

    /// The label column has too few or too many distinct classes.
    #[error("{} column {column:?} has {count} distinct class labels ({}); {MIN_CLASSES}..={MAX_CLASSES} classes are allowed", path.display(), examples.join(", "))]
    ClassCount {
        /// The file.
        path: PathBuf,
        /// The label column's name.
        column: String,
        /// Distinct labels found.
        count: usize,
        /// All the labels when there are few, else the first few (sorted) and "…".
        examples: Vec<String>,
    },

    /// Every data row had a missing or invalid cell and was dropped.
    #[error("{} has no usable rows: all {dropped} data rows had a missing or invalid cell and were dropped; at least one complete row is required", path.display())]
    AllRowsDropped {
        /// The file.
        path: PathBuf,
        /// Rows dropped (all of them).
        dropped: usize,
    },

    // ----- built-in data sets and preprocessing -----
    /// A built-in data set name is not known.
    #[error("unknown data set {name:?}; the allowed names are: {}", allowed.join(", "))]
    UnknownDataset {
        /// The name given.
        name: String,
        /// The names allowed.
        allowed: Vec<String>,
    },

    /// A column holds one value only, so it cannot be standardised (its std is 0).
    #[error("column {column:?} is constant (every value is {value}); a constant column cannot be standardised")]
    ConstantColumn {
        /// The column's name (or `column j`, 0-based, when unnamed).
        column: String,
        /// Its only value.
        value: f64,
    },
}

/// Fewest distinct classes a label column may have.
pub const MIN_CLASSES: usize = 2;
/// Most distinct classes a label column may have.
pub const MAX_CLASSES: usize = 16;
