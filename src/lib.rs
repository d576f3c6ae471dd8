//! initscope: weight-initialisation and training-dynamics experiments on
//! neural networks.
//!
//! Data flows one way: settings ([`experiment`], with its
//! [`parametrisation`] and [`schedule`] tables; the command line's
//! [`overrides`]; the [`presets`]) -> one resolved run ([`spec`]) -> data
//! ([`data`]) -> model ([`nn`], [`optim`]) and theory's prediction
//! ([`theory`]) -> trainer ([`train`], on the lanes of [`parallel`]) ->
//! observers ([`probe`], [`record`], [`console`]) -> [`run`] -> charts and
//! report ([`plot`], [`report`], [`tensorboard`]). [`record`] owns the run
//! directory: its file names, `summary.json`, and the readers the report,
//! the sweeps and the TensorBoard export use. [`coord_check`] (muP's
//! coordinate check) and [`lr_transfer`] (the best learning rate per width)
//! analyse runs' records for the charts and the sweep report. [`sweep`] and
//! [`bench`](mod@bench) sit above runs and use them ([`presets`] reads the
//! sweep presets through [`sweep`]). The leaves ([`error`], [`fit`],
//! [`fsutil`], [`nonfinite`], [`rng`], [`runlock`], [`tensorfile`],
//! [`table`], [`toml_lines`], [`verdict`]) use nothing above them;
//! `scripts/module-graph.sh` checks that the graph has no cycle.

pub mod bench;
pub mod console;
pub mod coord_check;
pub mod data;
pub mod error;
pub mod experiment;
pub mod fit;
pub mod fsutil;
pub mod lr_transfer;
pub mod memo;
pub mod nn;
pub mod nonfinite;
pub mod optim;
pub mod overrides;
pub mod parallel;
pub mod parametrisation;
pub mod plot;
pub mod presets;
pub mod probe;
pub mod record;
pub mod report;
pub mod rng;
pub mod run;
pub mod runlock;
pub mod schedule;
pub mod spec;
pub mod sweep;
pub mod table;
pub mod tensorboard;
pub mod tensorfile;
pub mod theory;
pub mod toml_lines;
pub mod train;
pub mod verdict;
