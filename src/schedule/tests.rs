//! The schedules against their closed forms (PyTorch's own fixtures are in
//! `tests/schedules.rs`), and the settings' checks.

use super::*;

fn values(shape: &Shape, lr: f64, n: usize) -> Vec<f64> {
    let mut s = LrSchedule::new(shape, lr, n).unwrap();
    (0..n)
        .map(|_| {
            let v = s.lr();
            s.advance();
            v
        })
        .collect()
}

fn read(text: &str) -> ScheduleSettings {
    toml::from_str(text).unwrap()
}

/// The recursive forms PyTorch steps with agree with each class's closed
/// form to rounding: cosine `eta + (lr - eta)(1 + cos(pi t / T)) / 2`,
/// step `lr gamma^floor(t / s)`, linear `lr (a + (b - a) min(t, n) / n)`.
#[test]
fn recursive_forms_follow_the_closed_forms() {
    let cosine = values(&Shape::Cosine { t_max: 50, eta_min: 0.01 }, 0.1, 50);
    for (t, v) in cosine.iter().enumerate() {
        let closed = 0.01 + 0.09 * (1.0 + (std::f64::consts::PI * t as f64 / 50.0).cos()) / 2.0;
        assert!((v - closed).abs() < 1e-14, "cosine at {t}: {v} vs {closed}");
    }
    let step = values(&Shape::Step { step_size: 7, gamma: 0.5 }, 1.0, 30);
    assert!(step.iter().enumerate().all(|(t, v)| *v == 0.5f64.powi((t / 7) as i32)), "{step:?}");
    let linear = values(&Shape::Linear { start_factor: 0.25, end_factor: 1.0, total_iters: 10 }, 0.2, 20);
    for (t, v) in linear.iter().enumerate() {
        let closed = 0.2 * (0.25 + 0.75 * t.min(10) as f64 / 10.0);
        assert!((v - closed).abs() < 1e-15, "linear at {t}: {v} vs {closed}");
    }
    let multi = values(&Shape::MultiStep { milestones: vec![3, 5, 5], gamma: 0.1 }, 1.0, 8);
    let expected = [1.0, 1.0, 1.0, 0.1, 0.1, 0.001, 0.001, 0.001];
    assert!(multi.iter().zip(expected).all(|(v, e)| (v - e).abs() < 1e-15), "{multi:?}");
}

/// A warm-up rises from `start_factor * lr` to `lr` in `warmup_steps`, and
/// the main shape then starts from its beginning (its closed form at 0).
#[test]
fn warmup_hands_over_at_its_milestone() {
    let s = read("kind = \"cosine\"\nt_max = 10\ninterval = \"step\"\nwarmup_steps = 4\nwarmup_start_factor = 0.1");
    let v = values(&s.effective_shape(), 1.0, 16);
    let rising = [0.1, 0.325, 0.55, 0.775];
    assert!(v[..4].iter().zip(rising).all(|(a, b)| (a - b).abs() < 1e-12), "{v:?}");
    assert_eq!(v[4], 1.0, "{v:?}");
    assert!(v[5] < 1.0 && (v[14] - 0.0).abs() < 1e-12, "{v:?}");
}

/// OneCycle starts at max_lr / div_factor, peaks at max_lr after
/// `pct_start` of the cycle, ends at start / final_div_factor; the momentum
/// moves the other way.
#[test]
fn one_cycle_rises_peaks_and_falls() {
    let s = read("kind = \"one_cycle\"\nmax_lr = 1.0\ntotal_steps = 101\npct_start = 0.5");
    let mut run = LrSchedule::new(&s.shape, 0.1, 100).unwrap();
    assert!((run.lr() - 0.04).abs() < 1e-12 && run.momentum() == Some(0.95));
    let mut seen = Vec::new();
    for _ in 0..=100 {
        seen.push((run.lr(), run.momentum().unwrap()));
        run.advance();
    }
    let peak = seen.iter().enumerate().max_by(|a, b| a.1 .0.total_cmp(&b.1 .0)).unwrap();
    assert!((49..=50).contains(&peak.0) && (peak.1 .0 - 1.0).abs() < 1e-3, "{peak:?}");
    assert!((seen[100].0 - 0.04 / 1e4).abs() < 1e-12, "{:?}", seen[100]);
    assert!((peak.1 .1 - 0.85).abs() < 1e-3 && (seen[100].1 - 0.95).abs() < 1e-12);
    assert!(LrSchedule::new(&s.shape, 0.1, 200).unwrap_err().to_string().contains("fewer than the run's 200"));
    let empty = read("kind = \"one_cycle\"\nmax_lr = 1.0\npct_start = 0.0");
    assert!(LrSchedule::new(&empty.shape, 0.1, 10).unwrap_err().to_string().contains("phase 1 is empty"));
}

/// Replaying `n` advances gives the same state as taking them live.
#[test]
fn a_replayed_schedule_continues_with_the_same_bits() {
    let s = read("kind = \"exponential\"\ngamma = 0.97\ninterval = \"step\"\nwarmup_steps = 5");
    let mut live = LrSchedule::new(&s.effective_shape(), 0.3, 50).unwrap();
    (0..17).for_each(|_| live.advance());
    let mut replayed = LrSchedule::new(&s.effective_shape(), 0.3, 50).unwrap().advanced(17);
    for _ in 0..20 {
        assert_eq!(live.lr().to_bits(), replayed.lr().to_bits());
        live.advance();
        replayed.advance();
    }
}

#[test]
fn impossible_schedules_are_rejected_naming_the_field() {
    let check = |text: &str| read(text).validate("schedule", 0.1).unwrap_err().to_string();
    assert!(check("kind = \"cosine\"\nt_max = 10\neta_min = 0.5").starts_with("schedule.eta_min:"));
    assert!(check("kind = \"step\"\nstep_size = 0").starts_with("schedule.step_size:"));
    assert!(check("kind = \"constant\"\nwarmup_steps = 10").contains("interval = \"step\""));
    assert!(check("kind = \"linear\"\nstart_factor = 0.0").starts_with("schedule.start_factor:"));
    assert!(check("kind = \"multi_step\"\nmilestones = [5, 3]").starts_with("schedule.milestones[1]:"));
    let seq = "kind = \"sequence\"\nmilestones = [10]\n[[schedules]]\nkind = \"constant\"\n";
    assert!(check(seq).starts_with("schedule.milestones:"));
    let nested = format!("{seq}[[schedules]]\nkind = \"one_cycle\"\nmax_lr = 1.0\n");
    assert!(check(&nested).starts_with("schedule.schedules[1].kind:"));
    assert!(toml::from_str::<ScheduleSettings>("kind = \"cosine\"\nt_max = 3\netamin = 0.1").is_err());
    assert!(toml::from_str::<ScheduleSettings>("kind = \"cosin\"").is_err());
    assert!(read("kind = \"cosine\"\nt_max = 10\ninterval = \"step\"\nwarmup_steps = 3")
        .validate("schedule", 0.1)
        .is_ok());
}
