//! The command line's overrides of an experiment's settings, applied one
//! way for `run` and for `sweep`: each is a setting's dotted path with a
//! TOML value, set on the experiment's table (a run's whole experiment, or
//! the table every point of a sweep starts from, under its axes) by
//! [`set_path`], the same setter the sweep's axes use.

use crate::error::input;
use crate::experiment::Experiment;
use crate::rng::RngKind;
use anyhow::Result;
use toml::{Table, Value};

/// Settings given on the command line, each replacing the file's (from
/// Python: a dict of the same names).
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    /// `epochs`.
    pub epochs: Option<usize>,
    /// `dataset`: a name or a directory.
    pub dataset: Option<String>,
    /// `optimizer.lr`, and every variant's own optimiser's `lr`.
    pub lr: Option<f64>,
    /// `seed`.
    pub seed: Option<u64>,
    /// `probe.every`.
    pub probe_every: Option<usize>,
    /// `rng`.
    pub rng: Option<RngKind>,
}

impl Overrides {
    /// Whether nothing is overridden.
    pub fn is_empty(&self) -> bool {
        *self == Overrides::default()
    }

    /// The `(path, value)` settings these overrides make on the experiment
    /// table `table`: `--lr` sets the experiment's `optimizer.lr` and the
    /// `lr` of every variant that has its own optimiser.
    pub fn settings(&self, table: &Table) -> Result<Vec<(String, Value)>> {
        let integer = |flag: &str, n: u64| {
            i64::try_from(n).map(Value::Integer).map_err(|_| input(format!("{flag}: at most 2^63 - 1, got {n}")))
        };
        let mut out = Vec::new();
        if let Some(lr) = self.lr {
            out.push(("optimizer.lr".to_string(), Value::Float(lr)));
            let variants = table.get("variants").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
            for (i, _) in variants.iter().enumerate().filter(|(_, v)| v.get("optimizer").is_some()) {
                out.push((format!("variants.{i}.optimizer.lr"), Value::Float(lr)));
            }
        }
        if let Some(epochs) = self.epochs {
            out.push(("epochs".into(), integer("--epochs", epochs as u64)?));
        }
        if let Some(dataset) = &self.dataset {
            out.push(("dataset".into(), Value::String(dataset.clone())));
        }
        if let Some(seed) = self.seed {
            out.push(("seed".into(), integer("--seed", seed)?));
        }
        if let Some(every) = self.probe_every {
            out.push(("probe.every".into(), integer("--probe-every", every as u64)?));
        }
        if let Some(rng) = self.rng {
            out.push(("rng".into(), Value::String(rng.as_str().into())));
        }
        Ok(out)
    }

    /// Sets these overrides on the experiment table `table`.
    pub fn apply_to_table(&self, table: &mut Table) -> Result<()> {
        for (path, value) in self.settings(table)? {
            let mut root = Value::Table(std::mem::take(table));
            let result = set_path(&mut root, &path, &value);
            if let Value::Table(t) = root {
                *table = t;
            }
            result.map_err(|e| input(format!("{path}: {e}")))?;
        }
        Ok(())
    }

    /// `exp` with these overrides, validated (an input error naming the
    /// setting when an override makes it invalid).
    pub fn apply(&self, exp: &Experiment) -> Result<Experiment> {
        if self.is_empty() {
            return Ok(exp.clone());
        }
        let Ok(Value::Table(mut table)) = Value::try_from(exp) else {
            unreachable!("an experiment serialises to a table (its settings.toml)")
        };
        self.apply_to_table(&mut table)?;
        let overridden: Experiment = Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| input(e.message().trim().replace('\n', " ")))?;
        overridden.validate()?;
        Ok(overridden)
    }
}

/// Sets the dotted `path` in `root` to `value`: a segment is a key, an
/// index into a list (0-based) or `*` (every element). Missing tables are
/// made; missing list elements are an error.
pub fn set_path(root: &mut Value, path: &str, value: &Value) -> std::result::Result<(), String> {
    let segments: Vec<&str> = path.split('.').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err("an empty segment in the path".into());
    }
    set_in(root, &segments, value, "")
}

fn set_in(node: &mut Value, segments: &[&str], value: &Value, done: &str) -> std::result::Result<(), String> {
    let (first, rest) = segments.split_first().expect("a path has a segment");
    let here = if done.is_empty() { first.to_string() } else { format!("{done}.{first}") };
    match node {
        Value::Table(table) => {
            if *first == "*" || first.parse::<usize>().is_ok() {
                return Err(format!("{}: is a table, not a list, so `{first}` selects nothing", name(done)));
            }
            if rest.is_empty() {
                table.insert(first.to_string(), value.clone());
                return Ok(());
            }
            let child = table.entry(first.to_string()).or_insert_with(|| Value::Table(Table::new()));
            set_in(child, rest, value, &here)
        }
        Value::Array(items) => {
            let targets: Vec<usize> = if *first == "*" {
                (0..items.len()).collect()
            } else {
                let i: usize = first
                    .parse()
                    .map_err(|_| format!("{}: is a list; select an element with an index or *", name(done)))?;
                if i >= items.len() {
                    return Err(format!(
                        "{done}.{first}: index out of range: the file has {} (0..{})",
                        items.len(),
                        items.len().saturating_sub(1)
                    ));
                }
                vec![i]
            };
            for i in targets {
                if rest.is_empty() {
                    items[i] = value.clone();
                } else {
                    set_in(&mut items[i], rest, value, &format!("{done}.{i}"))?;
                }
            }
            Ok(())
        }
        Value::String(s) => Err(format!("{}: is a value ({s}), not a table", name(done))),
        other => Err(format!("{}: is a value ({other}), not a table", name(done))),
    }
}

fn name(path: &str) -> &str {
    if path.is_empty() {
        "the file"
    } else {
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `run`'s overrides are the sweep's: the same settings on the same table.
    #[test]
    fn overrides_set_the_paths_a_file_would() {
        let mut exp = Experiment::seed_experiment();
        exp.variants[1].optimizer = Some(exp.optimizer);
        let set = Overrides {
            lr: Some(0.5),
            epochs: Some(3),
            seed: Some(9),
            rng: Some(RngKind::Torch),
            ..Default::default()
        };
        let out = set.apply(&exp).unwrap();
        assert_eq!((out.optimizer.lr, out.epochs, out.seed, out.rng), (0.5, 3, 9, RngKind::Torch));
        assert_eq!(out.variants[1].optimizer.unwrap().lr, 0.5, "a variant's own optimiser too");
        assert!(out.variants[0].optimizer.is_none(), "no optimiser is given to a variant without one");
        let mut expected = exp.clone();
        (expected.optimizer.lr, expected.epochs, expected.seed, expected.rng) = (0.5, 3, 9, RngKind::Torch);
        expected.variants[1].optimizer.as_mut().unwrap().lr = 0.5;
        assert_eq!(out, expected, "nothing else moves through the table's round trip");
        assert_eq!(Overrides::default().apply(&exp).unwrap(), exp);
        // An override that makes the experiment invalid names the setting.
        let zero = Overrides { epochs: Some(0), ..Default::default() };
        assert_eq!(zero.apply(&exp).unwrap_err().to_string(), "epochs: must be at least 1");
        let huge = Overrides { seed: Some(u64::MAX), ..Default::default() };
        assert!(huge.apply(&exp).unwrap_err().to_string().starts_with("--seed: at most 2^63 - 1"));
    }
}
