//! Sweeps: many runs of one experiment that differ in a few settings,
//! gathered into one table and one picture. A sweep sits above runs and
//! uses them: each point is an ordinary run directory.
//!
//! ```text
//! <sweep>/sweep.toml            the resolved sweep file (axes and experiment)
//! <sweep>/sweep.csv             one row per point and variant, rewritten after each point
//! <sweep>/status/<point>.json   a point that failed (a crash or an I/O error), and why
//! <sweep>/runs/<point>/         what `initscope run` writes, for each point
//! <sweep>/lr-optima.csv         a sweep of width against lr: each width's best lr
//! <sweep>/report.html           the table and the phase diagrams
//! ```

pub mod spec;

pub use spec::{Point, SweepSpec};
pub mod dir;
pub mod local;
mod overlay;
pub mod queue;
pub mod report;
pub mod slurm;
pub mod table;

pub use dir::SweepDir;
pub use local::{run_sweep, SweepOptions, SweepOutcome};
pub use report::{build_sweep_report, Metric};
