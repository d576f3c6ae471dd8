//! The console: the original's log lines on standard output (and in the
//! run's `log.txt`), and a progress bar on standard error when it is a
//! terminal.

use crate::train::{Event, Observer};
use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::fs::File;
use std::io::Write;

/// Prints the log lines of the spec and draws a progress bar.
pub struct Console {
    log: Option<File>,
    bar: Option<ProgressBar>,
    log_every: usize,
    epochs: usize,
    steps_per_epoch: usize,
    quiet: bool,
}

impl Console {
    /// Logs to stdout (unless `quiet`) and to `log` when given; a loss line
    /// every `log_every` steps (0: none).
    pub fn new(log: Option<File>, log_every: usize, quiet: bool) -> Self {
        Console { log, bar: None, log_every, epochs: 0, steps_per_epoch: 0, quiet }
    }

    /// Prints one line to the console and the log file.
    pub fn line(&mut self, text: &str) -> Result<()> {
        if !self.quiet {
            match &self.bar {
                Some(bar) => bar.suspend(|| println!("{text}")),
                None => println!("{text}"),
            }
        }
        if let Some(log) = &mut self.log {
            writeln!(log, "{text}")?;
        }
        Ok(())
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
                self.bar = (!self.quiet).then_some(bar);
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
            Event::Interrupted { .. } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
            }
            Event::End { summary, .. } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
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
