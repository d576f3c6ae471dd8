//! Training recipes in whole runs: a run stopped mid-schedule and resumed
//! from its checkpoint continues with the same bits (lr, momentum and
//! weights); an epoch schedule moves the lr only at epoch boundaries;
//! clipping on every step is named by a verdict; bad recipes are one-line
//! errors naming the file, line and field.

mod common;
use common::*;

use initscope::data::Dataset;
use initscope::experiment::Experiment;
use initscope::spec::{DataShape, RunSpec};
use initscope::train::checkpoint::{load_checkpoint, save_checkpoint};
use initscope::train::{train_variant, Event, Observer, VariantOutcome};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Each step's (lr, loss) bits, the final parameters, and a checkpoint
/// written where training was interrupted.
struct Keep<'a> {
    dir: &'a Path,
    steps: Vec<(u64, u32)>,
    params: Vec<f32>,
}

impl Observer for Keep<'_> {
    fn on_event(&mut self, _: &str, event: &Event) -> anyhow::Result<()> {
        match event {
            Event::Step { loss, trainer, .. } => self.steps.push((trainer.optimizer().lr().to_bits(), loss.to_bits())),
            Event::Interrupted { model, optimizer, checkpoint } => {
                save_checkpoint(self.dir, checkpoint, model, optimizer)?
            }
            Event::End { model, .. } => self.params = model.params.clone(),
            _ => {}
        }
        Ok(())
    }
}

fn experiment(schedule: &str, data: &Path) -> Experiment {
    let text = format!(
        "dataset = {data:?}\nepochs = 3\nbatch_size = 50\n[model]\nwidth = 16\ndepth = 2\n\
         [optimizer]\nkind = \"sgd\"\nlr = 0.2\nmomentum = 0.5\n{schedule}\n\
         [[variants]]\nname = \"k\"\nweight_init = {{ scheme = \"kaiming_uniform\", gain = \"relu\" }}\n"
    );
    Experiment::from_toml(&text, Path::new("recipe.toml")).unwrap()
}

/// Trains the experiment's one run, stopping after `stop_after` steps if
/// given; returns what it kept.
fn train<'a>(spec: &RunSpec, data: &Dataset, dir: &'a Path, stop_after: Option<usize>, resume: bool) -> Keep<'a> {
    let mut keep = Keep { dir, steps: Vec::new(), params: Vec::new() };
    let calls = AtomicUsize::new(0);
    // Asked once before the first step, then after each.
    let stop = || stop_after.is_some_and(|n| calls.fetch_add(1, Ordering::SeqCst) > n);
    let loaded = if resume { load_checkpoint(dir).unwrap() } else { None };
    let resume = loaded.as_ref().map(|(c, t, s)| (c, &t[..], s));
    let outcome = train_variant(spec, data, 2, resume, &stop, &mut keep).unwrap();
    assert_eq!(matches!(outcome, VariantOutcome::Interrupted(_)), stop_after.is_some());
    keep
}

/// OneCycle (which drives SGD's momentum) and a warm-up into cosine, each
/// stopped inside the schedule's rise and again in its fall: the resumed
/// run's lrs, losses and final weights equal the uninterrupted run's bits.
#[test]
fn a_run_resumed_mid_schedule_continues_with_the_same_bits() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = synthetic_dir(tmp.path(), 600, 100, 8);
    let schedules = [
        "[schedule]\nkind = \"one_cycle\"\nmax_lr = 0.5\ninterval = \"step\"",
        "[schedule]\nkind = \"cosine\"\nt_max = 20\neta_min = 0.01\ninterval = \"step\"\nwarmup_steps = 9",
    ];
    for schedule in schedules {
        let exp = experiment(schedule, &data_dir);
        let data = exp.dataset.load(tmp.path()).unwrap();
        let spec = RunSpec::all(&exp, DataShape::of(&data)).remove(0);
        let whole_dir = tmp.path().join("whole");
        std::fs::create_dir_all(&whole_dir).unwrap();
        let whole = train(&spec, &data, &whole_dir, None, false);
        assert_eq!(whole.steps.len(), 30, "3 epochs of 10 steps");
        let lrs: std::collections::BTreeSet<u64> = whole.steps.iter().map(|s| s.0).collect();
        assert!(lrs.len() > 20, "the lr moves every step: {schedule}");
        for stop_at in [4, 17] {
            let dir = tmp.path().join(format!("stopped{stop_at}"));
            std::fs::create_dir_all(&dir).unwrap();
            let first = train(&spec, &data, &dir, Some(stop_at), false);
            let rest = train(&spec, &data, &dir, None, true);
            let steps: Vec<_> = first.steps.iter().chain(&rest.steps).copied().collect();
            assert_eq!(steps, whole.steps, "{schedule}: stopped after {stop_at} steps");
            assert!(rest.params == whole.params, "{schedule}: final weights differ after a stop at {stop_at}");
        }
    }
}

/// `interval = "epoch"` steps the schedule after each epoch: StepLR with
/// step_size 1 halves the lr at each epoch boundary, never within one.
#[test]
fn an_epoch_schedule_moves_at_epoch_boundaries() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = synthetic_dir(tmp.path(), 600, 100, 8);
    let exp = experiment("[schedule]\nkind = \"step\"\nstep_size = 1\ngamma = 0.5", &data_dir);
    let data = exp.dataset.load(tmp.path()).unwrap();
    let spec = RunSpec::all(&exp, DataShape::of(&data)).remove(0);
    let kept = train(&spec, &data, tmp.path(), None, false);
    let lrs: Vec<f64> = kept.steps.iter().map(|s| f64::from_bits(s.0)).collect();
    for (k, lr) in lrs.iter().enumerate() {
        assert_eq!(*lr, 0.2 * 0.5f64.powi((k / 10) as i32), "step {k}");
    }
}

/// A bound far below the gradient's norm clips every step: the verdict
/// says so, and steps.csv records the norm and the flag.
#[test]
fn clipping_every_step_is_named_in_the_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = synthetic_dir(tmp.path(), 600, 100, 8);
    let file = tmp.path().join("clip.toml");
    let text = format!(
        "dataset = {data_dir:?}\nepochs = 2\n[model]\nwidth = 16\ndepth = 2\n[clip]\nmax_norm = 1e-3\n\
         [[variants]]\nname = \"k\"\nweight_init = {{ scheme = \"kaiming_uniform\", gain = \"relu\" }}\n"
    );
    std::fs::write(&file, text).unwrap();
    let out = tmp.path().join("out");
    let r = initscope(&["run", file.to_str().unwrap(), "--quiet", "--out", out.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let verdicts = summary["variants"][0]["verdicts"].as_array().unwrap();
    let clipped = verdicts.iter().find(|v| v["kind"] == "clipped_most_steps").expect("the clipping verdict");
    assert!(clipped["message"].as_str().unwrap().contains("(100%; 100% of the last tenth)"), "{clipped}");
    let steps = std::fs::read_to_string(out.join("k/steps.csv")).unwrap();
    assert!(steps.starts_with("step,epoch,batch,loss,lr,grad_norm,clipped\n"), "{steps}");
    assert!(steps.lines().skip(1).all(|l| l.ends_with(",true")), "every step clipped");
    assert!(out.join("plots/k-optimizer.png").exists(), "the report draws the gradient norm and the bound");
}

/// Bad recipes name the file, the line and the field, in one line.
#[test]
fn bad_recipes_are_one_line_errors_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let base = "[[variants]]\nname = \"k\"\nweight_init = { scheme = \"kaiming_uniform\" }\n";
    let cases = [
        (
            "[schedule]\nkind = \"cosine\"\nt_max = 10\neta_min = 0.5\n",
            ":4: schedule.eta_min: must be in [0, lr = 0.1]",
        ),
        ("[schedule]\nkind = \"constant\"\nwarmup_steps = 10\n", ":3: schedule.warmup_steps: counts optimiser steps"),
        ("[schedule]\nkind = \"cosin\"\n", "unknown variant `cosin`"),
        ("[clip]\nmax_norm = -1.0\n", ":2: clip.max_norm: must be a positive number"),
        ("[loss]\nkind = \"cross_entropy\"\nlabel_smoothing = 1.5\n", ":3: loss.label_smoothing: must be in [0, 1]"),
        (
            "[optimizer]\nkind = \"adagrad\"\nlr = 0.01\n[schedule]\nkind = \"one_cycle\"\nmax_lr = 0.1\n",
            "schedule.cycle_momentum: adagrad has no momentum to cycle",
        ),
    ];
    for (recipe, expected) in cases {
        let file = tmp.path().join("bad.toml");
        std::fs::write(&file, format!("{recipe}{base}")).unwrap();
        let r = initscope(&["run", file.to_str().unwrap(), "--quiet", "--out", tmp.path().join("o").to_str().unwrap()]);
        let err = stderr(&r);
        assert_eq!(r.status.code(), Some(2), "{recipe}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("bad.toml") && err.contains(expected), "{recipe}\nexpected {expected:?} in {err}");
    }
}
