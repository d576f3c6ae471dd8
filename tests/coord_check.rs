//! `initscope coord-check` end to end on small data the test makes: the
//! records, charts and verdicts it writes, and its one-line refusals.

mod common;
use common::*;
use std::path::Path;

fn experiment(dir: &Path, data: &Path, model: &str) -> std::path::PathBuf {
    let text = format!(
        "dataset = \"{}\"\nbatch_size = 16\noptimizer = {{ kind = \"adam\", lr = 0.01 }}\n[model]\n{model}\n\
         [[variants]]\nname = \"standard\"\nweight_init = {{ scheme = \"pytorch_default\" }}\n\
         [[variants]]\nname = \"mup\"\nweight_init = {{ scheme = \"pytorch_default\" }}\n\
         model = {{ width = 8, depth = 2, parametrisation = {{ name = \"mup\", base_width = 8 }} }}\n",
        data.display()
    );
    let file = dir.join("coord.toml");
    std::fs::write(&file, text).unwrap();
    file
}

#[test]
fn coord_check_writes_one_row_per_layer_step_seed_width_and_a_verdict_per_variant() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 200, 50, 8);
    let file = experiment(tmp.path(), &data, "width = 8\ndepth = 2");
    let out = tmp.path().join("out");
    let args = ["coord-check", file.to_str().unwrap(), "--widths", "8,16,32", "--steps", "2", "--seeds", "2"];
    let r = initscope(&[&args[..], &["--out", out.to_str().unwrap()]].concat());
    assert!(r.status.success(), "{}", stderr(&r));
    let rows = std::fs::read_to_string(out.join("coord.csv")).unwrap();
    let header = rows.lines().next().unwrap();
    assert_eq!(header, "variant,width,layer,kind,step,seed,l1,std");
    // 2 variants x 3 widths x 2 seeds x 2 steps x (3 Linears + 2 activations).
    assert_eq!(rows.lines().count() - 1, 2 * 3 * 2 * 2 * 5);
    // Every mean |x| is a positive number.
    assert!(rows.lines().skip(1).all(|l| l.split(',').nth(6).unwrap().parse::<f64>().unwrap() > 0.0));
    let slopes = std::fs::read_to_string(out.join("slopes.csv")).unwrap();
    assert_eq!(slopes.lines().count() - 1, 2 * 2 * 5);
    let verdicts = std::fs::read_to_string(out.join("verdicts.txt")).unwrap();
    let lines: Vec<&str> = verdicts.lines().collect();
    assert_eq!(lines.len(), 2, "{verdicts}");
    for (line, variant) in lines.iter().zip(["standard", "mup"]) {
        assert!(
            line.starts_with(&format!("{variant}: passes: ")) || line.starts_with(&format!("{variant}: fails: ")),
            "{line}"
        );
        assert!(
            out.join(format!("coord-{variant}.svg")).is_file() && out.join(format!("coord-{variant}.png")).is_file()
        );
    }
    let stdout = String::from_utf8(r.stdout).unwrap();
    assert!(stdout.contains(lines[0]) && stdout.contains(lines[1]), "{stdout}");
}

#[test]
fn coord_check_refuses_bad_input_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 100, 20, 8);
    let uneven = experiment(tmp.path(), &data, "hidden = [16, 8]");
    let cases: [(&[&str], &str); 4] = [
        (
            &[uneven.to_str().unwrap()],
            "coord.toml: model.hidden: the coord check sets every hidden layer to each width",
        ),
        (&[uneven.to_str().unwrap(), "--widths", "16"], "--widths: give at least two widths"),
        (&[uneven.to_str().unwrap(), "--steps", "0"], "--steps and --seeds: each must be at least 1"),
        (&["no-such-file.toml"], "no-such-file.toml: no such experiment file or preset"),
    ];
    for (args, needle) in cases {
        let r = initscope(&[&["coord-check"][..], args].concat());
        assert_eq!(r.status.code(), Some(2), "{args:?}");
        let err = stderr(&r);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
