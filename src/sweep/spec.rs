//! A sweep file: an experiment file plus a `[sweep]` table of axes, and its
//! expansion into points, each a resolved and validated experiment.
//!
//! ```toml
//! [sweep]
//! "optimizer.lr" = [0.01, 0.1]                 # an axis: a dotted path and its values
//! "variants.*.weight_init.gain" = [0.5, 1.0]   # `*`: every element of a list
//! "variants.1.weight_init.std" = [1e-3, 1e-2]  # an index (0-based): one element
//! [[sweep.zip]]                                # tied axes: move together
//! "model.depth" = [2, 10]
//! "optimizer.lr" = [0.1, 0.01]
//! [sweep.random]                               # random search: `samples` draws
//! samples = 8
//! seed = 1
//! "optimizer.momentum" = { uniform = [0.0, 0.99] }
//! "optimizer.lr" = { log_uniform = [1e-4, 1.0] }
//! ```
//! The sweep is the grid (product) of the axes, the last varying fastest:
//! first the single keys in the file's order, then the tied axes (`zip`,
//! `random`) in the file's order, wherever the file writes them.

use crate::error::{input, SettingError};
use crate::experiment::Experiment;
pub use crate::overrides::set_path;
use crate::rng::Stream;
use crate::toml_lines::TomlLines;
use anyhow::Result;
use std::path::Path;
use toml::{Table, Value};

/// One dimension of the grid: the paths it sets and, per position, their values.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    /// The dotted paths it sets: one, or several when tied (`zip`, `random`).
    pub keys: Vec<String>,
    /// Per position along the axis, one value per key.
    pub values: Vec<Vec<Value>>,
    /// The line of the file where its (first) key is written.
    line: Option<usize>,
}

/// A parsed sweep file: the experiment it varies and its axes.
#[derive(Clone, Debug)]
pub struct SweepSpec {
    /// How the file is named in errors.
    source: String,
    /// The file's text (to find lines for errors).
    text: String,
    /// The experiment without its `[sweep]` table, overrides applied.
    base: Table,
    /// The grid's dimensions, in the file's order.
    pub axes: Vec<Axis>,
}

/// One point of the grid: where it lies and the experiment it runs.
#[derive(Clone, Debug)]
pub struct Point {
    /// Its place in the sweep, 0-based.
    pub index: usize,
    /// Every swept path with its value here, in the axes' order.
    pub values: Vec<(String, Value)>,
    /// The resolved experiment.
    pub experiment: Experiment,
}

impl Point {
    /// `key = value, ...`: the point's place, as errors and logs show it.
    pub fn describe(&self) -> String {
        describe(&self.values)
    }
}

fn describe(values: &[(String, Value)]) -> String {
    values.iter().map(|(k, v)| format!("{k} = {}", value_text(v))).collect::<Vec<_>>().join(", ")
}

/// A value as a table cell and in messages: strings bare, others as TOML.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl SweepSpec {
    /// Reads a sweep file; errors name the file and line.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| input(format!("{}: cannot read: {e}", path.display())))?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses sweep-file text; `source` names it in errors.
    pub fn from_toml(text: &str, source: &str) -> Result<Self> {
        let mut base: Table = text.parse().map_err(|e: toml::de::Error| {
            let line = e.span().map(|span| crate::toml_lines::line_of_offset(text, span.start));
            let at = line.map_or(String::new(), |l| format!(":{l}"));
            input(format!("{source}{at}: {}", e.message().trim().replace('\n', " ")))
        })?;
        let spec = SweepSpec { source: source.into(), text: text.into(), base: Table::new(), axes: Vec::new() };
        if !base.contains_key("name") {
            let stem = crate::experiment::stem_name(Path::new(source));
            base.insert("name".into(), Value::String(stem));
        }
        let Some(sweep) = base.remove("sweep") else {
            return Err(input(format!(
                "{source}: no [sweep] table: this is an experiment file (run it with initscope run), or add the axes to sweep"
            )));
        };
        let Value::Table(sweep) = sweep else {
            return Err(spec.error(spec.line_of_key("sweep"), "sweep: must be a table of axes"));
        };
        let mut axes = Vec::new();
        for (key, value) in sweep {
            match key.as_str() {
                "zip" => spec.parse_zip(value, &mut axes)?,
                "random" => axes.push(spec.parse_random(value)?),
                _ => {
                    let line = spec.line_of_key(&key);
                    let values = spec.list(&key, value, line)?;
                    axes.push(Axis { keys: vec![key], values: values.into_iter().map(|v| vec![v]).collect(), line });
                }
            }
        }
        // One order whatever the file's layout, the one `resolved_toml`
        // writes (plain keys before `[[sweep.zip]]`), so that the resolved
        // file numbers the points as the file did.
        axes.sort_by_key(|a| a.keys.len() > 1);
        if axes.is_empty() {
            return Err(spec.error(spec.line_of_key("sweep"), "sweep: no axes: add a key with a list of values"));
        }
        let mut seen: Vec<&str> = Vec::new();
        for axis in &axes {
            for key in &axis.keys {
                if seen.contains(&key.as_str()) {
                    return Err(spec.error(spec.last_line_of_key(key), &format!("sweep.\"{key}\": swept twice")));
                }
                seen.push(key);
            }
        }
        Ok(SweepSpec { base, axes, ..spec })
    }

    /// A one-line input error naming the file and, where known, the line.
    fn error(&self, line: Option<usize>, message: &str) -> anyhow::Error {
        let at = line.map_or(String::new(), |l| format!(":{l}"));
        input(format!("{}{at}: {message}", self.source))
    }

    /// The line of `key` inside the `[sweep]` tables (quoted or bare), or
    /// of the `[sweep]` table itself.
    fn line_of_key(&self, key: &str) -> Option<usize> {
        let lines = TomlLines::new(&self.text);
        lines.lines_of_key_under("sweep", key).first().copied().or_else(|| lines.line_of("sweep"))
    }

    /// The line of the last place `key` is written in the `[sweep]` tables.
    fn last_line_of_key(&self, key: &str) -> Option<usize> {
        let lines = TomlLines::new(&self.text);
        lines.lines_of_key_under("sweep", key).last().copied().or_else(|| lines.line_of("sweep"))
    }

    /// The values of an axis: a non-empty list.
    fn list(&self, key: &str, value: Value, line: Option<usize>) -> Result<Vec<Value>> {
        match value {
            Value::Array(values) if values.is_empty() => {
                Err(self.error(line, &format!("sweep.\"{key}\": the list is empty; an axis needs at least one value")))
            }
            Value::Array(values) => Ok(values),
            other => {
                Err(self.error(line, &format!("sweep.\"{key}\": must be a list of values, got {}", value_text(&other))))
            }
        }
    }

    /// `[[sweep.zip]]` (or `zip = { ... }`): each table's lists, equally
    /// long, make one axis.
    fn parse_zip(&self, value: Value, axes: &mut Vec<Axis>) -> Result<()> {
        let tables = match value {
            Value::Array(items) => items,
            table @ Value::Table(_) => vec![table],
            _ => return Err(self.error(self.line_of_key("zip"), "sweep.zip: must be a table of equally long lists")),
        };
        for table in tables {
            let Value::Table(table) = table else {
                return Err(self.error(self.line_of_key("zip"), "sweep.zip: must be a table of equally long lists"));
            };
            let mut axis = Axis { keys: Vec::new(), values: Vec::new(), line: None };
            for (key, value) in table {
                let line = self.line_of_key(&key);
                let values = self.list(&key, value, line)?;
                if axis.keys.is_empty() {
                    axis.values = vec![Vec::new(); values.len()];
                    axis.line = line;
                } else if values.len() != axis.values.len() {
                    return Err(self.error(
                        line,
                        &format!(
                            "sweep.zip.\"{key}\": {} values, but \"{}\" has {}: tied axes need equally long lists",
                            values.len(),
                            axis.keys[0],
                            axis.values.len()
                        ),
                    ));
                }
                axis.keys.push(key);
                axis.values.iter_mut().zip(values).for_each(|(position, v)| position.push(v));
            }
            if axis.keys.is_empty() {
                return Err(self.error(self.line_of_key("zip"), "sweep.zip: an empty table ties no axes"));
            }
            axes.push(axis);
        }
        Ok(())
    }

    /// `[sweep.random]`: `samples` points drawn (with `seed`) from each
    /// key's `{ uniform = [a, b] }`, `{ log_uniform = [a, b] }` or
    /// `{ choice = [...] }`; one axis whose positions are the samples.
    fn parse_random(&self, value: Value) -> Result<Axis> {
        let line = self.line_of_key("random");
        let Value::Table(mut table) = value else {
            return Err(self.error(line, "sweep.random: must be a table with samples and distributions"));
        };
        let samples = match table.remove("samples") {
            Some(Value::Integer(n)) if n >= 1 => n as usize,
            _ => {
                return Err(self.error(self.line_of_key("samples"), "sweep.random.samples: must be a whole number >= 1"))
            }
        };
        let seed = match table.remove("seed") {
            None => 0,
            Some(Value::Integer(n)) if n >= 0 => n as u64,
            Some(_) => {
                return Err(self.error(self.line_of_key("seed"), "sweep.random.seed: must be a whole number >= 0"))
            }
        };
        let mut draws = Vec::new();
        for (key, spec) in table {
            draws.push((
                key.clone(),
                Distribution::parse(&spec)
                    .map_err(|e| self.error(self.line_of_key(&key), &format!("sweep.random.\"{key}\": {e}")))?,
            ));
        }
        if draws.is_empty() {
            return Err(self.error(line, "sweep.random: no keys to draw"));
        }
        let mut stream = Stream::new(seed, "sweep/random", 0);
        let values = (0..samples).map(|_| draws.iter().map(|(_, d)| d.draw(&mut stream)).collect()).collect();
        let keys = draws.into_iter().map(|(k, _)| k).collect();
        Ok(Axis { keys, values, line })
    }

    /// Sets `key` (a dotted path) in the experiment every point starts
    /// from: the command line's overrides. Axes still take precedence.
    pub fn set_base(&mut self, key: &str, value: Value) -> Result<()> {
        let mut root = Value::Table(std::mem::take(&mut self.base));
        let result = set_path(&mut root, key, &value);
        let Value::Table(table) = root else { unreachable!("the root stays a table") };
        self.base = table;
        result.map_err(|e| self.error(None, &e))
    }

    /// Sets the command line's overrides on the experiment every point
    /// starts from, as `run` sets them on its experiment.
    pub fn apply_overrides(&mut self, overrides: &crate::overrides::Overrides) -> Result<()> {
        for (path, value) in overrides.settings(&self.base)? {
            self.set_base(&path, value)?;
        }
        Ok(())
    }

    /// The experiment's `name` (what a sweep directory is named after by
    /// default); `sweep` when the file has none.
    pub fn name(&self) -> String {
        self.base.get("name").and_then(Value::as_str).unwrap_or("sweep").to_string()
    }

    /// The number of points (the product of the axes' lengths).
    pub fn len(&self) -> usize {
        self.axes.iter().fold(1usize, |n, a| n.saturating_mul(a.values.len()))
    }

    /// Always false: a sweep has at least one axis of at least one value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The swept paths, in order: the sweep table's axis columns.
    pub fn keys(&self) -> Vec<String> {
        self.axes.iter().flat_map(|a| a.keys.iter().cloned()).collect()
    }

    /// Where point `index` (0-based) lies: its position along each axis
    /// (the last axis varies fastest).
    pub fn positions(&self, index: usize) -> Vec<usize> {
        let mut rest = index;
        let mut positions = vec![0; self.axes.len()];
        for (a, axis) in self.axes.iter().enumerate().rev() {
            positions[a] = rest % axis.values.len();
            rest /= axis.values.len();
        }
        positions
    }

    /// Point `index` (0-based), resolved and validated. A bad value is one
    /// line naming the file, the line of the axis at fault, the point and
    /// its axis values.
    pub fn point(&self, index: usize) -> Result<Point> {
        let positions = self.positions(index);
        let mut values = Vec::new();
        let mut root = Value::Table(self.base.clone());
        for (axis, &p) in self.axes.iter().zip(&positions) {
            for (key, value) in axis.keys.iter().zip(&axis.values[p]) {
                set_path(&mut root, key, value).map_err(|e| self.error(axis.line, &format!("sweep.\"{key}\": {e}")))?;
                values.push((key.clone(), value.clone()));
            }
        }
        let experiment = resolve(root).map_err(|invalid| {
            let line = match &invalid {
                Invalid::Setting(e) => self
                    .axis_on_path(&e.key)
                    .or_else(|| self.blame_by_trial(&positions))
                    .or_else(|| TomlLines::new(&self.text).line_of(&e.key)),
                Invalid::Shape(_) => self.blame_by_trial(&positions),
            };
            self.error(line, &format!("point {} of {} ({}): {invalid}", index + 1, self.len(), describe(&values)))
        })?;
        Ok(Point { index, values, experiment })
    }

    /// The line of the first axis whose values at `positions`, set alone
    /// on the file's experiment, make it invalid (for errors that name no
    /// key, such as a value of the wrong type).
    fn blame_by_trial(&self, positions: &[usize]) -> Option<usize> {
        // When the file's experiment fails without any axis, no axis is to blame.
        resolve(Value::Table(self.base.clone())).ok()?;
        self.axes.iter().zip(positions).find_map(|(axis, &p)| {
            let mut root = Value::Table(self.base.clone());
            let set = axis.keys.iter().zip(&axis.values[p]).all(|(k, v)| set_path(&mut root, k, v).is_ok());
            (set && resolve(root).is_err()).then_some(axis.line).flatten()
        })
    }

    /// Every point, resolved and validated before anything runs: the first
    /// bad one is the error.
    pub fn points(&self) -> Result<Vec<Point>> {
        (0..self.len()).map(|i| self.point(i)).collect()
    }

    /// The line of the axis on whose path the setting `key` lies
    /// (`variants.*.weight_init` for `variants[2].weight_init.gain`).
    fn axis_on_path(&self, key: &str) -> Option<usize> {
        let key: Vec<&str> = key.split(['.', '[', ']']).filter(|s| !s.is_empty()).collect();
        let on_path = |path: &str| {
            let path: Vec<&str> = path.split('.').collect();
            path.iter().zip(&key).all(|(p, k)| p == k || (*p == "*" && k.parse::<usize>().is_ok()))
        };
        let axes = || self.axes.iter().flat_map(|a| a.keys.iter().map(move |k| (k, a.line)));
        axes().find(|(k, _)| key.len() > 1 && on_path(k)).and_then(|(_, l)| l)
    }

    /// The resolved sweep file: the experiment (overrides applied) and the
    /// axes with every value stated (random draws as a tied axis).
    pub fn resolved_toml(&self) -> String {
        let mut sweep = Table::new();
        let mut zip = Vec::new();
        for axis in &self.axes {
            let columns = axis.keys.iter().enumerate().map(|(c, k)| {
                (k.clone(), Value::Array(axis.values.iter().map(|position| position[c].clone()).collect()))
            });
            if axis.keys.len() == 1 {
                sweep.extend(columns);
            } else {
                zip.push(Value::Table(columns.collect()));
            }
        }
        if !zip.is_empty() {
            sweep.insert("zip".into(), Value::Array(zip));
        }
        let mut file = self.base.clone();
        file.insert("sweep".into(), Value::Table(sweep));
        toml::to_string(&file).expect("a table always serialises")
    }
}

/// Why a point's table is no experiment.
#[derive(Debug, thiserror::Error)]
enum Invalid {
    /// It does not have an experiment's shape (a value of the wrong type,
    /// an unknown key): the deserialiser's one line, which names no setting.
    #[error("{0}")]
    Shape(String),
    /// A setting that cannot run.
    #[error("{0}")]
    Setting(#[from] SettingError),
}

/// The experiment a (sweep-free) file table describes, validated.
fn resolve(root: Value) -> std::result::Result<Experiment, Invalid> {
    let exp: Experiment =
        root.try_into().map_err(|e: toml::de::Error| Invalid::Shape(e.message().trim().replace('\n', " ")))?;
    exp.check_settings()?;
    Ok(exp)
}

/// How `[sweep.random]` draws one key.
enum Distribution {
    Uniform(f64, f64),
    LogUniform(f64, f64),
    Choice(Vec<Value>),
}

impl Distribution {
    fn parse(spec: &Value) -> std::result::Result<Self, String> {
        let form = "must be { uniform = [a, b] }, { log_uniform = [a, b] } or { choice = [...] }";
        let Some((kind, arg)) = spec.as_table().filter(|t| t.len() == 1).and_then(|t| t.iter().next()) else {
            return Err(form.into());
        };
        let range = || -> std::result::Result<(f64, f64), String> {
            let bounds: Vec<f64> = arg
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_float().or(v.as_integer().map(|i| i as f64))).collect())
                .unwrap_or_default();
            match bounds[..] {
                [a, b] if a.is_finite() && b.is_finite() && a < b => Ok((a, b)),
                _ => Err(format!("{kind}: needs two numbers [a, b] with a < b")),
            }
        };
        match kind.as_str() {
            "uniform" => range().map(|(a, b)| Distribution::Uniform(a, b)),
            "log_uniform" => match range()? {
                (a, b) if a > 0.0 => Ok(Distribution::LogUniform(a, b)),
                _ => Err("log_uniform: both bounds must be positive".into()),
            },
            "choice" => match arg.as_array() {
                Some(values) if !values.is_empty() => Ok(Distribution::Choice(values.clone())),
                _ => Err("choice: needs a non-empty list".into()),
            },
            _ => Err(form.into()),
        }
    }

    fn draw(&self, stream: &mut Stream) -> Value {
        match self {
            Distribution::Uniform(a, b) => Value::Float(a + (b - a) * stream.unit_f64()),
            Distribution::LogUniform(a, b) => Value::Float((a.ln() + (b.ln() - a.ln()) * stream.unit_f64()).exp()),
            Distribution::Choice(values) => values[stream.below(values.len() as u32) as usize].clone(),
        }
    }
}

#[cfg(test)]
mod tests;
