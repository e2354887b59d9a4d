//! Where the 2-D training data comes from (a built-in set or a user's CSV), how it is
//! standardised, and how it travels with the checkpoints so that `sample` needs nothing
//! else.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use toy_data::{BuiltinSet, Covariance, GaussianMixture, Standardizer};

use crate::console::say;
use crate::flags::DataArgs;
use crate::output::OutDir;

/// Name of the data description inside a checkpoint folder.
pub const META_FILE: &str = "data.json";
/// Name of the data itself (original units, with labels and the split) in a checkpoint folder.
pub const DATA_FILE: &str = "data.csv";
const FORMAT: &str = "toydiff-data-v1";
/// Fraction of a data set held out for evaluation when no exact reference exists.
pub const HELDOUT_FRACTION: f64 = 0.2;

/// Everything `sample` needs to know about the data a checkpoint was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataMeta {
    /// Always "toydiff-data-v1".
    pub format: String,
    /// The built-in set, if the data is one.
    pub dataset: Option<BuiltinSet>,
    /// The CSV file, if the data came from one.
    pub csv: Option<PathBuf>,
    /// Names of the two coordinates (the CSV's columns, or x and y).
    pub column_names: Vec<String>,
    /// Class names in class-index order; empty when the data has no labels.
    pub class_names: Vec<String>,
    /// Mean and standard deviation of each column: the networks see (x − mean)/std.
    pub standardizer: Standardizer,
    /// Rows used for training.
    pub n_train: usize,
    /// Rows held out for evaluation (0 when an exact reference exists).
    pub n_heldout: usize,
    /// The seed the data (and its split) came from.
    pub seed: u64,
}

impl DataMeta {
    /// A short name for messages and titles.
    pub fn display_name(&self) -> String {
        match (&self.dataset, &self.csv) {
            (Some(set), _) => set.name().to_string(),
            (None, Some(path)) => path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| "csv".into()),
            _ => "data".into(),
        }
    }

    pub fn is_labelled(&self) -> bool {
        !self.class_names.is_empty()
    }

    /// Whether this is the notebook's own setup (kept in its units, with its networks).
    pub fn is_notebook(&self) -> bool {
        self.dataset == Some(BuiltinSet::TwoClusters)
    }

    /// The true distribution in original units, where one is known.
    pub fn truth(&self) -> Option<GaussianMixture> {
        self.dataset.and_then(|d| d.true_mixture())
    }
}

/// A data set ready for training: original units, labels, and the train/held-out split.
pub struct Prepared {
    pub meta: DataMeta,
    /// All rows, original units, n × 2.
    pub points: Array2<f64>,
    /// Class index of each row.
    pub labels: Option<Vec<usize>>,
    /// Whether each row is held out.
    pub heldout: Vec<bool>,
    /// Rows skipped by --drop-missing.
    pub dropped_rows: usize,
}

impl Prepared {
    /// Loads or generates the data named by the flags and checks it can be trained on.
    pub fn from_args(args: &DataArgs, seed: u64, min_rows: usize) -> anyhow::Result<Self> {
        let (dataset, csv, points, labels, class_names, column_names, dropped) = if let Some(path) =
            &args.data
        {
            let columns: Vec<&str> = args.columns.iter().map(String::as_str).collect();
            if columns.len() != 2 {
                bail!(
                    "--columns {} names {} column(s): give exactly two, e.g. --columns x,y",
                    args.columns.join(","),
                    columns.len()
                );
            }
            if columns[0] == columns[1] {
                bail!(
                    "--columns {} names the same column twice: give two different columns",
                    args.columns.join(",")
                );
            }
            if let Some(label) = args.label.as_deref().filter(|l| columns.contains(l)) {
                bail!(
                    "--label {label} is also one of --columns {}: the class column must be another column",
                    args.columns.join(",")
                );
            }
            let d =
                toy_data::load_labelled(path, &columns, args.label.as_deref(), args.drop_missing)?;
            if d.dropped_rows > 0 {
                say!(
                    "--drop-missing: skipped {} row(s) with a missing or non-numeric cell",
                    d.dropped_rows
                );
            }
            let dropped = d.dropped_rows;
            (
                None,
                Some(path.clone()),
                d.points,
                d.labels,
                d.class_names,
                d.column_names,
                dropped,
            )
        } else {
            let set = args.dataset.unwrap_or(BuiltinSet::TwoClusters);
            let n = args.n_data.unwrap_or_else(|| set.default_size());
            let d = set.generate(n, seed);
            let columns = d.column_names.to_vec();
            (
                Some(set),
                None,
                d.points,
                d.labels,
                d.class_names,
                columns,
                0,
            )
        };
        if points.nrows() < min_rows {
            bail!(
                "the data has {} row(s) but training needs at least {min_rows} (one batch): add rows or lower --batch",
                points.nrows()
            );
        }
        toy_data::check_not_constant(points.view(), &column_names)?;
        // The notebook's data stays in its own units (its figures, accuracy at t = 250
        // and exact references are in them); everything else is standardised.
        let standardizer = if dataset == Some(BuiltinSet::TwoClusters) {
            Standardizer {
                mean: vec![0.0; 2],
                std: vec![1.0; 2],
            }
        } else {
            Standardizer::fit_named(points.view(), &column_names)?
        };
        let exact = dataset.and_then(|d| d.true_mixture()).is_some();
        let mut heldout = vec![false; points.nrows()];
        if !exact {
            let (_, held) = toy_data::split_holdout(points.nrows(), HELDOUT_FRACTION, seed);
            for i in held {
                heldout[i] = true;
            }
        }
        let n_heldout = heldout.iter().filter(|&&h| h).count();
        Ok(Self {
            meta: DataMeta {
                format: FORMAT.into(),
                dataset,
                csv,
                column_names,
                class_names,
                standardizer,
                n_train: points.nrows() - n_heldout,
                n_heldout,
                seed,
            },
            points,
            labels,
            heldout,
            dropped_rows: dropped,
        })
    }

    /// Training rows, standardised, row-major f32.
    pub fn train_standardised(&self) -> Vec<f32> {
        self.rows_standardised(false)
    }

    /// Held-out rows, standardised, row-major f32 (empty when nothing is held out).
    pub fn heldout_standardised(&self) -> Vec<f32> {
        self.rows_standardised(true)
    }

    fn rows_standardised(&self, held: bool) -> Vec<f32> {
        let mut out = Vec::new();
        for (row, &h) in self.points.rows().into_iter().zip(&self.heldout) {
            if h == held {
                out.extend(row.iter().map(|&v| v as f32));
            }
        }
        self.meta.standardizer.transform_slice_f32(&mut out);
        out
    }

    /// Labels of the training rows (or of the held-out ones).
    pub fn labels_of(&self, held: bool) -> Option<Vec<u32>> {
        self.labels.as_ref().map(|labels| {
            labels
                .iter()
                .zip(&self.heldout)
                .filter(|(_, &h)| h == held)
                .map(|(&l, _)| l as u32)
                .collect()
        })
    }

    /// Writes `data.json` and `data.csv` into the checkpoint folder.
    pub fn save(&self, out: &OutDir, folder: &str) -> anyhow::Result<()> {
        out.write_json(&format!("{folder}/{META_FILE}"), &self.meta)?;
        let mut text = format!(
            "{},{},class,split\n",
            self.meta.column_names[0], self.meta.column_names[1]
        );
        for (i, row) in self.points.rows().into_iter().enumerate() {
            let class = match &self.labels {
                Some(l) => self.meta.class_names[l[i]].as_str(),
                None => "",
            };
            let split = if self.heldout[i] { "heldout" } else { "train" };
            text.push_str(&format!(
                "{},{},{},{}\n",
                row[0],
                row[1],
                csv_field(class),
                split
            ));
        }
        out.write(&format!("{folder}/{DATA_FILE}"), text.as_bytes())?;
        Ok(())
    }

    /// Reads back what [`Prepared::save`] wrote.
    pub fn load(folder: &Path) -> anyhow::Result<Self> {
        let meta_path = folder.join(META_FILE);
        let bytes = std::fs::read(&meta_path).with_context(|| {
            format!(
                "cannot read '{}': run `cargo xtask train` first, or pass --checkpoints DIR",
                meta_path.display()
            )
        })?;
        let meta: DataMeta = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "'{}' is not a toydiff data description",
                meta_path.display()
            )
        })?;
        if meta.format != FORMAT || meta.column_names.len() != 2 || meta.standardizer.dim() != 2 {
            bail!(
                "'{}' has format '{}' with {} column(s): expected {FORMAT} with 2 columns",
                meta_path.display(),
                meta.format,
                meta.column_names.len()
            );
        }
        let data_path = folder.join(DATA_FILE);
        let bad = |line: usize, what: &str| {
            anyhow::anyhow!("{} line {line}: {what}", data_path.display())
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_path(&data_path)
            .with_context(|| format!("cannot read '{}'", data_path.display()))?;
        let header = reader
            .headers()
            .map_err(|e| bad(1, &e.to_string()))?
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').to_string())
            .collect::<Vec<_>>();
        let expected = [
            meta.column_names[0].as_str(),
            meta.column_names[1].as_str(),
            "class",
            "split",
        ];
        if header != expected {
            return Err(bad(
                1,
                &format!(
                    "the header is {} but {META_FILE} describes columns {}: the checkpoint folder mixes two runs; retrain",
                    header.join(","),
                    expected.join(",")
                ),
            ));
        }
        let (mut values, mut labels, mut heldout) = (Vec::new(), Vec::new(), Vec::new());
        for (i, record) in reader.records().enumerate() {
            let line = i + 2;
            let record = record.map_err(|e| bad(line, &e.to_string()))?;
            if record.len() != 4 {
                return Err(bad(line, "expected 4 fields (x, y, class, split)"));
            }
            for j in 0..2 {
                let v: f64 = record[j]
                    .trim()
                    .parse()
                    .map_err(|_| bad(line, &format!("'{}' is not a number", &record[j])))?;
                values.push(v);
            }
            if meta.is_labelled() {
                let class = meta
                    .class_names
                    .iter()
                    .position(|c| c == &record[2])
                    .ok_or_else(|| {
                        bad(
                            line,
                            &format!("class '{}' is not in {META_FILE}", &record[2]),
                        )
                    })?;
                labels.push(class);
            }
            heldout.push(&record[3] == "heldout");
        }
        if heldout.is_empty() {
            bail!("{} holds no rows", data_path.display());
        }
        let points = Array2::from_shape_vec((heldout.len(), 2), values)?;
        let labels = meta.is_labelled().then_some(labels);
        Ok(Self {
            meta,
            points,
            labels,
            heldout,
            dropped_rows: 0,
        })
    }

    /// The range each axis of a figure shows: the notebook's [−6, 6] for its own data,
    /// otherwise the data's range padded by 15%.
    pub fn axes(&self) -> ((f64, f64), (f64, f64)) {
        if self.meta.is_notebook() {
            return ((-6.0, 6.0), (-6.0, 6.0));
        }
        let range = |j: usize| {
            let col = self.points.column(j);
            let lo = col.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = col.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let pad = 0.15 * (hi - lo);
            (lo - pad, hi + pad)
        };
        (range(0), range(1))
    }
}

/// A CSV field, quoted when it must be.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The mixture of (x − mean)/std when x follows `m`: means (μ − mean)/std,
/// covariances D⁻¹ Σ D⁻¹ with D = diag(std).
pub fn standardise_mixture(
    m: &GaussianMixture,
    s: &Standardizer,
) -> anyhow::Result<GaussianMixture> {
    let d = m.dim();
    let means = m
        .means()
        .iter()
        .map(|mu| (0..d).map(|j| (mu[j] - s.mean[j]) / s.std[j]).collect())
        .collect();
    let covs = (0..m.n_components())
        .map(|k| {
            let c = m.covariance_matrix(k);
            let mut out = vec![0.0; d * d];
            for i in 0..d {
                for j in 0..d {
                    out[i * d + j] = c[i * d + j] / (s.std[i] * s.std[j]);
                }
            }
            Covariance::Full(out)
        })
        .collect();
    Ok(GaussianMixture::new(m.weights().to_vec(), means, covs)?)
}

/// A file name for a class: letters, digits, '-' and '_' kept, anything else '_'.
pub fn file_safe(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "class".into()
    } else {
        s
    }
}
