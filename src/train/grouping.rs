//! Which runs train together in lockstep (see [`super::lockstep`]), how
//! many at once, and on how many threads.
//!
//! Lockstep is asked for (`--lockstep`, `--group-size`): on the machines
//! measured so far it trained as fast as runs side by side, one per
//! thread, on the smallest networks and up to 25 % slower on larger ones
//! (the README's table), so runs train alone by default.
//! Runs are grouped when their networks have the same shapes and they take
//! the same steps: the same layers and widths, batch size, epochs, steps
//! per epoch and validation split (and, for a sweep, the same data set). A
//! group's size is bounded by the memory its members need
//! ([`member_bytes`], against a quarter of the memory available) and by
//! `--group-size`; there are at least as many groups as threads, and each
//! trains on one thread (on several only when there are fewer runs than
//! threads).

use super::{EVAL_BATCH, SHARDS};

use crate::spec::RunSpec;

/// How runs are grouped: the command line's `--lockstep` and
/// `--group-size`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Grouping {
    /// Every run alone, side by side on the threads (the default).
    #[default]
    Off,
    /// Groups as large as memory allows, at least one per thread.
    Auto,
    /// At most this many runs per group.
    AtMost(usize),
}

impl Grouping {
    /// The grouping that a front's `lockstep` switch and `group_size`
    /// ask for (a size implies lockstep); a size of 0 is an input error
    /// naming `size_name`, the option as that front spells it.
    pub fn requested(lockstep: bool, group_size: Option<usize>, size_name: &str) -> anyhow::Result<Grouping> {
        Ok(match (lockstep, group_size) {
            (_, Some(0)) => return Err(crate::error::input(format!("{size_name}: must be at least 1"))),
            (_, Some(n)) => Grouping::AtMost(n),
            (true, None) => Grouping::Auto,
            (false, None) => Grouping::Off,
        })
    }
}

/// The groups to train: each a list of positions in the runs given, and
/// the threads each group trains with (groups run side by side on
/// `lanes` lanes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Positions of the runs in each group, in the runs' order.
    pub groups: Vec<Vec<usize>>,
    /// Groups trained at once.
    pub lanes: usize,
    /// Threads of each lane.
    pub threads: usize,
}

impl Plan {
    /// One line for the progress output: "lockstep: 7 groups of up to 8
    /// runs, 1 at a time on 2 threads".
    pub fn describe(&self) -> String {
        let largest = self.groups.iter().map(Vec::len).max().unwrap_or(0);
        if largest <= 1 {
            return format!("no lockstep: {} runs, {} at a time", self.groups.len(), self.lanes);
        }
        let (count, s) = (self.groups.len(), if self.groups.len() == 1 { "" } else { "s" });
        let threads = if self.threads == 1 { "1 thread".to_string() } else { format!("{} threads", self.threads) };
        format!("lockstep: {count} group{s} of up to {largest} runs, {} at a time on {threads} each", self.lanes)
    }
}

/// What must be equal for two runs to train in lockstep (the data set is
/// the caller's to match).
pub fn lockstep_key(spec: &RunSpec) -> String {
    let layers: Vec<_> = spec.model().info().into_iter().map(|i| (i.kind, i.fan_in, i.fan_out)).collect();
    let steps = (spec.batch_size, spec.epochs, spec.steps_per_epoch, spec.validation_fraction);
    format!("{layers:?}|{steps:?}")
}

/// Bytes one member of a group holds while it trains: its parameters,
/// gradients and optimiser state, and its workspaces (every layer's output
/// and the backward buffers, for the training shards and one evaluation
/// batch per thread).
pub fn member_bytes(spec: &RunSpec, threads: usize) -> usize {
    let model = spec.model();
    let params = model.params.len();
    let outputs: usize = model.info().iter().map(|i| i.fan_out).sum::<usize>() + model.input_width;
    let rows = spec.batch_size + threads * EVAL_BATCH;
    4 * (params * (3 + SHARDS) + 2 * rows * outputs)
}

/// Memory a plan may fill: a quarter of what the system has available
/// (`MemAvailable`), or 2 GiB where that cannot be read.
fn memory_budget() -> usize {
    let available = std::fs::read_to_string("/proc/meminfo").ok().and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
        line.split_whitespace().nth(1)?.parse::<usize>().ok().map(|kib| kib * 1024)
    });
    available.map_or(2 << 30, |bytes| bytes / 4)
}

/// Groups `specs` (runs on one data set) for `threads` threads.
pub fn plan(specs: &[&RunSpec], threads: usize, grouping: Grouping) -> Plan {
    plan_keyed(specs, &vec![String::new(); specs.len()], threads, grouping)
}

/// [`plan`] for runs that may group only where `keys` are equal too (their
/// data sets, say).
pub fn plan_keyed(specs: &[&RunSpec], keys: &[String], threads: usize, grouping: Grouping) -> Plan {
    let threads = threads.max(1);
    if grouping == Grouping::Off || specs.len() <= 1 {
        let lanes = threads.min(specs.len()).max(1);
        return Plan { groups: (0..specs.len()).map(|i| vec![i]).collect(), lanes, threads: (threads / lanes).max(1) };
    }
    let mut classes: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let key = format!("{}|{}", keys[i], lockstep_key(spec));
        match classes.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(i),
            None => classes.push((key, vec![i])),
        }
    }
    // Groups train side by side, one per thread: a group on several
    // threads splits each step's shards between them and waits for both
    // at every step, which measured slower (see the README).
    let budget = memory_budget();
    let mut groups = Vec::new();
    for (_, members) in classes {
        let by_memory = (budget / member_bytes(specs[members[0]], 1).max(1)).max(1);
        let cap = match grouping {
            Grouping::AtMost(n) => n.max(1).min(by_memory),
            _ => by_memory,
        };
        let count = members.len().div_ceil(cap).max(threads.min(members.len()));
        groups.extend((0..count).map(|g| members[crate::parallel::part(members.len(), count, g)].to_vec()));
    }
    let lanes = threads.min(groups.len()).max(1);
    Plan { groups, lanes, threads: (threads / lanes).max(1) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::Experiment;
    use crate::spec::DataShape;

    fn specs(text: &str) -> Vec<RunSpec> {
        let text = format!("{text}[[variants]]\nname = \"a\"\nweight_init = {{ scheme = \"kaiming_uniform\" }}\n");
        let exp = Experiment::from_toml(&text, std::path::Path::new("test.toml")).unwrap();
        RunSpec::all(&exp, DataShape { input_width: 784, classes: 10 })
    }

    #[test]
    fn same_shapes_group_and_other_shapes_do_not() {
        let runs = specs("seeds = [1, 2, 3, 4, 5, 6]\n[model]\nwidth = 32\ndepth = 2\n");
        let refs: Vec<&RunSpec> = runs.iter().collect();
        let plan = plan(&refs, 2, Grouping::Auto);
        assert_eq!(plan.groups, vec![vec![0, 1, 2], vec![3, 4, 5]]);
        assert_eq!((plan.lanes, plan.threads), (2, 1));
        let capped = super::plan(&refs, 2, Grouping::AtMost(2));
        assert_eq!(capped.groups, vec![vec![0, 1], vec![2, 3], vec![4, 5]]);
        let off = super::plan(&refs, 2, Grouping::Off);
        assert_eq!((off.groups.len(), off.lanes, off.threads), (6, 2, 1));
        let wider = specs("[model]\nwidth = 64\ndepth = 2\n");
        let mixed = [&runs[0], &wider[0], &runs[1], &runs[2]];
        let plan = super::plan(&mixed, 1, Grouping::Auto);
        assert_eq!(plan.groups, vec![vec![0, 2, 3], vec![1]]);
        assert!(plan.describe().starts_with("lockstep: 2 groups of up to 3 runs, 1 at a time"), "{}", plan.describe());
    }

    #[test]
    fn fewer_runs_than_threads_share_the_threads() {
        let runs = specs("seeds = [1, 2]\n[model]\nwidth = 32\ndepth = 2\n");
        let refs: Vec<&RunSpec> = runs.iter().collect();
        let plan = plan(&refs, 4, Grouping::Auto);
        assert_eq!((plan.groups.len(), plan.lanes, plan.threads), (2, 2, 2), "{plan:?}");
    }
}
