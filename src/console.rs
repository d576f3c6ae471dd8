//! The console: the original's log lines on standard output (and in the
//! run's `log.txt`), and a progress bar per running variant on standard
//! error when it is a terminal.
//!
//! Variants may train side by side; their lines still come out variant
//! after variant, in the experiment's order: the [`OrderedLog`] prints the
//! earliest unfinished variant's lines as they come and holds the others'
//! until every variant before them has finished.

use crate::train::{Event, Observer};
use anyhow::Result;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// The run's log: standard output (unless quiet) and `log.txt`, with the
/// lines of variants that train side by side kept in the experiment's order.
pub struct OrderedLog {
    state: Mutex<LogState>,
    bars: MultiProgress,
    quiet: bool,
}

struct LogState {
    file: Option<File>,
    /// Units in the order their lines must appear; `head` is the one whose
    /// lines go out as they come.
    order: Vec<usize>,
    head: usize,
    held: BTreeMap<usize, Vec<String>>,
    finished: Vec<usize>,
}

impl OrderedLog {
    /// A log for units `order` (indices, in the order their lines appear),
    /// appending to `file` when given.
    pub fn new(file: Option<File>, order: Vec<usize>, quiet: bool) -> Arc<Self> {
        let state = LogState { file, order, head: 0, held: BTreeMap::new(), finished: Vec::new() };
        let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        Arc::new(OrderedLog { state: Mutex::new(state), bars, quiet })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        // A panicking writer cannot leave the state half-changed in a way
        // that matters more than losing the log; carry on with it.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn emit(&self, state: &mut LogState, text: &str) -> Result<()> {
        if !self.quiet {
            self.bars.suspend(|| println!("{text}"));
        }
        if let Some(file) = &mut state.file {
            writeln!(file, "{text}")?;
        }
        Ok(())
    }

    /// A line of `unit` (a line of no unit when `None`: printed at once).
    pub fn line(&self, unit: Option<usize>, text: &str) -> Result<()> {
        let mut state = self.lock();
        let head = state.order.get(state.head).copied();
        match unit {
            Some(u) if Some(u) != head => {
                state.held.entry(u).or_default().push(text.to_string());
                Ok(())
            }
            _ => self.emit(&mut state, text),
        }
    }

    /// `unit` has written its last line: the next units' held lines follow.
    pub fn finish(&self, unit: usize) -> Result<()> {
        let mut state = self.lock();
        state.finished.push(unit);
        while let Some(&head) = state.order.get(state.head) {
            if !state.finished.contains(&head) {
                break;
            }
            state.head += 1;
            let Some(&next) = state.order.get(state.head) else { break };
            for text in state.held.remove(&next).unwrap_or_default() {
                self.emit(&mut state, &text)?;
            }
        }
        Ok(())
    }

    /// Writes out whatever is still held (after an error or interruption),
    /// in unit order.
    pub fn flush_held(&self) -> Result<()> {
        let mut state = self.lock();
        let held = std::mem::take(&mut state.held);
        for text in held.into_values().flatten() {
            self.emit(&mut state, &text)?;
        }
        Ok(())
    }
}

/// Prints one variant's log lines of the spec and draws its progress bar.
pub struct Console {
    log: Arc<OrderedLog>,
    unit: usize,
    bar: Option<ProgressBar>,
    log_every: usize,
    epochs: usize,
    steps_per_epoch: usize,
}

impl Console {
    /// The console of unit `unit` (its index in the experiment's runs),
    /// writing to `log`; a loss line every `log_every` steps (0: none).
    pub fn new(log: Arc<OrderedLog>, unit: usize, log_every: usize) -> Self {
        Console { log, unit, bar: None, log_every, epochs: 0, steps_per_epoch: 0 }
    }

    /// Prints one line of this unit to the console and the log file.
    pub fn line(&mut self, text: &str) -> Result<()> {
        self.log.line(Some(self.unit), text)
    }
}

impl Observer for Console {
    fn on_event(&mut self, variant: &str, event: &Event) -> Result<()> {
        match event {
            Event::Start { steps_per_epoch, epochs, .. } | Event::Resume { steps_per_epoch, epochs, .. } => {
                self.epochs = *epochs;
                self.steps_per_epoch = *steps_per_epoch;
                let mut done = 0;
                match event {
                    Event::Resume { checkpoint, .. } => {
                        done = checkpoint.steps_taken;
                        self.line(&format!(
                            "== {variant} (resumed after step {} of epoch {}) ==",
                            checkpoint.step, checkpoint.epoch
                        ))?
                    }
                    _ => self.line(&format!("== {variant} =="))?,
                }
                let bar = ProgressBar::with_draw_target(
                    Some((epochs * steps_per_epoch) as u64),
                    ProgressDrawTarget::stderr(),
                );
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix} [{bar:30}] {pos}/{len} steps, {elapsed} elapsed, {eta} left",
                    )
                    .expect("the template is valid")
                    .progress_chars("=> "),
                );
                bar.set_prefix(variant.to_string());
                bar.set_position(done as u64);
                self.bar = (!self.log.quiet).then(|| self.log.bars.add(bar));
            }
            Event::Step { epoch, step, loss, .. } => {
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
                if self.log_every > 0 && step.is_multiple_of(self.log_every) {
                    self.line(&format!(
                        "Epoch: {epoch:03}/{:03} | Batch {step:04}/{:04} | Loss: {loss:.4}",
                        self.epochs, self.steps_per_epoch
                    ))?;
                }
            }
            Event::Epoch { metrics: m, .. } => {
                self.line(&format!(
                    "Epoch: {:03}/{:03} | Train: {:.2}% | Validation: {:.2}%",
                    m.epoch,
                    self.epochs,
                    m.train.percent(),
                    m.valid.percent()
                ))?;
                self.line(&format!("Time elapsed: {:.2} min", m.elapsed_s / 60.0))?;
            }
            Event::Updated { .. } => {}
            Event::Interrupted { .. } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                    self.log.bars.remove(&bar);
                }
            }
            Event::End { summary, .. } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                    self.log.bars.remove(&bar);
                }
                if let Some(step) = summary.diverged_at {
                    self.line(&format!("Diverged at step {step}: the loss is not finite; this variant stopped there"))?;
                }
                self.line(&format!("Total Training Time: {:.2} min", summary.seconds / 60.0))?;
                self.line(&format!("Test accuracy {:.2}%", summary.test.percent()))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(file: &tempfile::NamedTempFile) -> String {
        std::fs::read_to_string(file.path()).unwrap()
    }

    #[test]
    fn later_units_lines_wait_for_the_earlier_units() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let log = OrderedLog::new(Some(file.reopen().unwrap()), vec![3, 5, 7], true);
        log.line(Some(5), "b1").unwrap();
        log.line(Some(3), "a1").unwrap();
        log.line(Some(7), "c1").unwrap();
        assert_eq!(read(&file), "a1\n", "only the first unit's line is out");
        log.finish(7).unwrap();
        log.line(Some(5), "b2").unwrap();
        assert_eq!(read(&file), "a1\n");
        log.finish(3).unwrap();
        // Unit 5 is now the head: its held lines come out, later ones at once.
        assert_eq!(read(&file), "a1\nb1\nb2\n");
        log.line(Some(5), "b3").unwrap();
        log.finish(5).unwrap();
        // Unit 7 finished earlier: its held line follows at once.
        assert_eq!(read(&file), "a1\nb1\nb2\nb3\nc1\n");
    }

    #[test]
    fn held_lines_are_flushed_in_unit_order() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let log = OrderedLog::new(Some(file.reopen().unwrap()), vec![0, 1, 2], true);
        log.line(Some(2), "c").unwrap();
        log.line(Some(1), "b").unwrap();
        log.line(None, "run line").unwrap();
        log.flush_held().unwrap();
        assert_eq!(read(&file), "run line\nb\nc\n");
    }
}
