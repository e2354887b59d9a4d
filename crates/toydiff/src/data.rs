//! Where the 2-D training data comes from (a built-in set or a user's CSV), how it is
//! standardised and split, and how it travels with the checkpoints so that `sample`
//! needs nothing else.

use std::path::{Path, PathBuf};

use ndarray::Array2;
use serde::{Deserialize, Serialize};
use toy_data::{BuiltinSet, Covariance, GaussianMixture, Standardizer};

use crate::error::{PipelineError, Result};
use crate::observer::{say, Observer};
use crate::output::OutDir;
use crate::recipe::{DataSource, Fnv1a, Recipe};

/// Name of the data description inside a checkpoint folder.
pub const META_FILE: &str = "data.json";
/// Name of the data itself (original units, with labels and the split) in a checkpoint folder.
pub const DATA_FILE: &str = "data.csv";
const FORMAT: &str = "toydiff-data-v1";
/// The first line of `data.csv`, before the run id.
const RUN_LINE: &str = "# toydiff run ";
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
    /// The run this file belongs to (absent in folders written before run ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
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

    /// Whether the data has class labels.
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
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Its description.
    pub meta: DataMeta,
    /// All rows, original units, n × 2.
    pub points: Array2<f64>,
    /// Class index of each row.
    pub labels: Option<Vec<usize>>,
    /// Whether each row is held out.
    pub heldout: Vec<bool>,
    /// Rows skipped by --drop-missing.
    pub dropped_rows: usize,
    /// The run id `data.csv` carried when it was read (None for fresh data).
    pub csv_run_id: Option<String>,
}

impl Prepared {
    /// Loads or generates the recipe's data and checks it can be trained on (at least
    /// `min_rows` rows, no constant column).
    pub fn from_recipe(recipe: &Recipe, min_rows: usize, obs: &dyn Observer) -> Result<Self> {
        let seed = recipe.seeds().data;
        let (dataset, csv, points, labels, class_names, column_names, dropped) = match &recipe.data
        {
            DataSource::Csv {
                path,
                columns,
                label,
                drop_missing,
            } => {
                let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
                let d = toy_data::load_labelled(path, &columns, label.as_deref(), *drop_missing)?;
                if d.dropped_rows > 0 {
                    say!(
                        obs,
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
            }
            DataSource::Builtin { set, n, seed } => {
                let d = set.generate(*n, *seed);
                let columns = d.column_names.to_vec();
                (
                    Some(*set),
                    None,
                    d.points,
                    d.labels,
                    d.class_names,
                    columns,
                    0,
                )
            }
        };
        if points.nrows() < min_rows {
            return Err(PipelineError::TooFewRows {
                rows: points.nrows(),
                min: min_rows,
            });
        }
        toy_data::check_not_constant(points.view(), &column_names)?;
        let standardizer = if recipe.standardise {
            Standardizer::fit_named(points.view(), &column_names)?
        } else {
            Standardizer {
                mean: vec![0.0; 2],
                std: vec![1.0; 2],
            }
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
                run_id: None,
            },
            points,
            labels,
            heldout,
            dropped_rows: dropped,
            csv_run_id: None,
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

    /// `data.csv` without its run line: header `X,Y,class,split`, then every row.
    fn csv_body(&self) -> String {
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
        text
    }

    /// FNV-1a hash of the data as `data.csv` holds it (values, classes, split): part of
    /// the run id.
    pub fn digest(&self) -> u64 {
        let mut h = Fnv1a::default();
        h.write(self.csv_body().as_bytes());
        h.0
    }

    /// Writes `data.json` and `data.csv` (first line `# toydiff run <id>`) into the
    /// checkpoint folder, both carrying `run_id`.
    pub fn save(&self, out: &OutDir, folder: &str, run_id: &str) -> Result<()> {
        let meta = DataMeta {
            run_id: Some(run_id.to_string()),
            ..self.meta.clone()
        };
        out.write_json(&format!("{folder}/{META_FILE}"), &meta)?;
        let text = format!("{RUN_LINE}{run_id}\n{}", self.csv_body());
        out.write(&format!("{folder}/{DATA_FILE}"), text.as_bytes())?;
        Ok(())
    }

    /// Reads back what [`Prepared::save`] wrote.
    pub fn load(folder: &Path) -> Result<Self> {
        let meta_path = folder.join(META_FILE);
        let bytes =
            std::fs::read(&meta_path).map_err(|_| PipelineError::MissingCheckpointFile {
                path: meta_path.clone(),
                checkpoint: false,
            })?;
        let meta: DataMeta = serde_json::from_slice(&bytes).map_err(|e| {
            PipelineError::BadCheckpointFile(format!(
                "'{}' is not a toydiff data description: {e}",
                meta_path.display()
            ))
        })?;
        if meta.format != FORMAT || meta.column_names.len() != 2 || meta.standardizer.dim() != 2 {
            return Err(PipelineError::BadCheckpointFile(format!(
                "'{}' has format '{}' with {} column(s): expected {FORMAT} with 2 columns",
                meta_path.display(),
                meta.format,
                meta.column_names.len()
            )));
        }
        let data_path = folder.join(DATA_FILE);
        let bad = |line: usize, what: &str| {
            PipelineError::BadCheckpointFile(format!("{} line {line}: {what}", data_path.display()))
        };
        let text = std::fs::read_to_string(&data_path).map_err(|source| PipelineError::Io {
            what: "cannot read",
            path: data_path.clone(),
            source,
        })?;
        // The run line (absent in folders written before run ids).
        let (csv_run_id, body, first_line) = match text.strip_prefix(RUN_LINE) {
            Some(rest) => {
                let (id, body) = rest.split_once('\n').unwrap_or((rest, ""));
                (Some(id.trim().to_string()), body, 2)
            }
            None => (None, text.as_str(), 1),
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(body.as_bytes());
        let header = reader
            .headers()
            .map_err(|e| bad(first_line, &e.to_string()))?
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
                first_line,
                &format!(
                    "the header is {} but {META_FILE} describes columns {}: the checkpoint folder mixes two runs; retrain",
                    header.join(","),
                    expected.join(",")
                ),
            ));
        }
        let (mut values, mut labels, mut heldout) = (Vec::new(), Vec::new(), Vec::new());
        for (i, record) in reader.records().enumerate() {
            let line = i + first_line + 1;
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
            return Err(PipelineError::BadCheckpointFile(format!(
                "{} holds no rows",
                data_path.display()
            )));
        }
        let points = Array2::from_shape_vec((heldout.len(), 2), values)
            .map_err(|e| bad(first_line, &e.to_string()))?;
        let labels = meta.is_labelled().then_some(labels);
        Ok(Self {
            meta,
            points,
            labels,
            heldout,
            dropped_rows: 0,
            csv_run_id,
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
pub fn standardise_mixture(m: &GaussianMixture, s: &Standardizer) -> Result<GaussianMixture> {
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
