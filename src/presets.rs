//! Built-in experiments, shipped as experiment files inside the program:
//! listed by `initscope presets`, printed by `--show NAME`, run by
//! `initscope run NAME`.

use crate::experiment::Experiment;
use anyhow::Result;
use std::path::Path;

/// `(name, file text)` of every preset.
pub const PRESETS: [(&str, &str); 8] = [
    ("seed", include_str!("../presets/seed.toml")),
    ("seed-batchnorm", include_str!("../presets/seed-batchnorm.toml")),
    ("all-inits", include_str!("../presets/all-inits.toml")),
    ("depth", include_str!("../presets/depth.toml")),
    ("glorot2010", include_str!("../presets/glorot2010.toml")),
    ("zeros", include_str!("../presets/zeros.toml")),
    ("rezero-deep", include_str!("../presets/rezero-deep.toml")),
    ("coord-check", include_str!("../presets/coord-check.toml")),
];

/// `(name, file text)` of every sweep preset (a `[sweep]` table of axes
/// over an experiment), run by `initscope sweep NAME`.
pub const SWEEP_PRESETS: [(&str, &str); 6] = [
    ("depth-sweep", include_str!("../presets/depth-sweep.toml")),
    ("tanh-trainability", include_str!("../presets/tanh-trainability.toml")),
    ("residual-depth", include_str!("../presets/residual-depth.toml")),
    ("warmup-init", include_str!("../presets/warmup-init.toml")),
    ("lr-transfer", include_str!("../presets/lr-transfer.toml")),
    ("residual-trainability", include_str!("../presets/residual-trainability.toml")),
];

/// A commented starter experiment file for `initscope new NAME`: two
/// variants, every other setting shown at the seed's value, commented out.
pub fn starter(name: &str) -> String {
    include_str!("../presets/starter.toml").replace("NAME", name)
}

/// The file text of the sweep preset `name`.
pub fn sweep_text(name: &str) -> Option<&'static str> {
    SWEEP_PRESETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The file text of the preset `name`.
pub fn text(name: &str) -> Option<&'static str> {
    PRESETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The preset `name`, parsed and validated.
pub fn load(name: &str) -> Option<Result<Experiment>> {
    text(name).map(|t| Experiment::from_toml(t, Path::new(&format!("preset {name}"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_parses_and_validates() {
        for (name, _) in PRESETS {
            let exp = load(name).unwrap().unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert_eq!(exp.name, name);
            assert!(!exp.description.is_empty(), "{name} has no description");
        }
    }

    #[test]
    fn every_sweep_preset_expands_into_valid_points_named_after_it() {
        for (name, text) in SWEEP_PRESETS {
            let spec = crate::sweep::SweepSpec::from_toml(text, name).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert_eq!(spec.name(), name);
            let points = spec.points().unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert!(points.len() > 1 && !points[0].experiment.description.is_empty(), "{name}");
        }
    }

    #[test]
    fn the_starter_file_runs_as_written_and_its_comments_are_the_seed() {
        let text = starter("trial");
        let exp = Experiment::from_toml(&text, Path::new("trial.toml")).unwrap();
        assert_eq!(exp.name, "trial");
        assert_eq!(exp.variants.len(), 2);
        // Uncommenting every setting changes nothing: the comments are the defaults.
        let uncommented: String = text
            .lines()
            .map(|l| if l.starts_with("# ") && (l.contains(" = ") || l.starts_with("# [")) { &l[2..] } else { l })
            .filter(|l| !l.starts_with("description"))
            .map(|l| format!("{l}\n"))
            .collect();
        let full = Experiment::from_toml(&uncommented, Path::new("trial.toml")).unwrap();
        assert_eq!(full, exp);
    }

    #[test]
    fn the_seed_preset_is_the_seed_experiment() {
        assert_eq!(load("seed").unwrap().unwrap(), Experiment::seed_experiment());
    }
}
