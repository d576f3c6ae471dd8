//! Residual networks end to end from experiment files: a run on small
//! synthetic data with LayerNorm and a trainable alpha beside Fixup, its
//! records (weights under the module names, the rule's zeros, alpha
//! trained, theory per block, a probe row per Linear) and the one-line
//! errors of contradictory settings.

mod common;
use common::*;
use std::path::Path;

fn write_experiment(dir: &Path, data: &Path, model: &str) -> std::path::PathBuf {
    let text = format!(
        r#"dataset = "{data}"
epochs = 2
batch_size = 50
log_every = 0

[model]
{model}

[optimizer]
lr = 0.05

[probe]
every = 5

[[variants]]
name = "layernorm"
weight_init = {{ scheme = "kaiming_normal" }}

[[variants]]
name = "fixup"
weight_init = {{ scheme = "kaiming_normal" }}
model = {{ width = 16, residual = {{ blocks = 3, rule = "fixup" }} }}

[[variants]]
name = "off"
weight_init = {{ scheme = "kaiming_normal" }}
model = {{ width = 16, residual = {{ blocks = 3, alpha = {{ init = 0.0, trainable = false }} }} }}
"#,
        data = data.display()
    );
    let file = dir.join("residual.toml");
    std::fs::write(&file, text).unwrap();
    file
}

fn tensors(path: &Path) -> std::collections::BTreeMap<String, Vec<f32>> {
    let all = initscope::tensorfile::load(path).unwrap();
    all.into_iter().map(|(name, _, values)| (name, values)).collect()
}

#[test]
fn a_residual_experiment_trains_and_records_its_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 600, 100, 8);
    let model = r#"width = 16
activation = "relu"
residual = { blocks = 3, norm = "layer_norm", alpha = { init = 0.5, trainable = true } }"#;
    let file = write_experiment(tmp.path(), &data, model);
    let out = tmp.path().join("out");
    let run = initscope(&["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(run.status.success(), "{}", stderr(&run));

    let (initial, last) =
        (tensors(&out.join("layernorm/initial.safetensors")), tensors(&out.join("layernorm/final.safetensors")));
    assert_eq!(initial["blocks.2.alpha"], [0.5]);
    assert_ne!(last["blocks.2.alpha"], [0.5], "alpha is trained");
    assert_eq!(initial["blocks.0.norm1.weight"], vec![1.0; 16]);
    assert_eq!(initial["output.weight"].len(), 160);
    // Fixup: the branch ends and the classifier start at zero, the scalar biases at 0, the multipliers at 1.
    let fixup = tensors(&out.join("fixup/initial.safetensors"));
    for name in ["blocks.0.fc2.weight", "blocks.2.fc2.weight", "blocks.1.fc2.bias", "output.weight", "output.bias"] {
        assert!(fixup[name].iter().all(|&v| v == 0.0), "{name}");
    }
    assert!(fixup["blocks.1.fc1.weight"].iter().any(|&v| v != 0.0));
    assert_eq!(
        (fixup["blocks.0.alpha"][0], fixup["blocks.0.bias1a"][0], fixup["blocks.2.bias_out"][0]),
        (1.0, 0.0, 0.0)
    );
    let trained = tensors(&out.join("fixup/final.safetensors"));
    assert!(trained["blocks.0.fc2.weight"].iter().any(|&v| v != 0.0), "the zero branches learn");

    // Theory: one prediction per block, the stream growing through the branches.
    let theory: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("layernorm/theory.json")).unwrap()).unwrap();
    let blocks = theory["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 3);
    assert!(blocks[2]["stream_out"].as_f64().unwrap() > blocks[0]["stream_in"].as_f64().unwrap());
    assert_eq!(theory["layers"].as_array().unwrap().len(), 2 + 3 * 2);
    // The probe records every Linear: input, 3 x 2 in the branches, output.
    let layers = std::fs::read_to_string(out.join("layernorm/probe/layers.csv")).unwrap();
    let step0: Vec<&str> = layers.lines().skip(1).filter(|l| l.starts_with("0,")).collect();
    assert_eq!(step0.len(), 8);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let kinds = |v: usize| -> Vec<String> {
        let verdicts = summary["variants"][v]["verdicts"].as_array().unwrap();
        verdicts.iter().map(|v| v["kind"].as_str().unwrap().to_string()).collect()
    };
    assert!(!kinds(1).contains(&"vanishing_signal".into()), "Fixup's zero branches are by design: {:?}", kinds(1));
    assert!(!kinds(1).contains(&"branches_off".into()), "Fixup's branches learn: {:?}", kinds(1));
    assert!(kinds(2).contains(&"branches_off".into()), "a fixed zero alpha keeps them off: {:?}", kinds(2));
    // The layer norms' verdict: the stream they normalised at step 0, measured, beside theory without them.
    let norm_verdict =
        summary["variants"][0]["verdicts"].as_array().unwrap().iter().find(|v| v["kind"] == "norm_compensating");
    let message = norm_verdict.expect("layer norm's verdict")["message"].as_str().unwrap();
    assert!(message.starts_with("layer norm compensating: at step 0 the residual stream's RMS is"), "{message}");
    assert!(message.contains("without the norms, mean-field theory predicts"), "{message}");
    assert!(!kinds(1).contains(&"norm_compensating".into()), "Fixup has no norm: {:?}", kinds(1));

    // blocks.csv: a row per recorded step and block; Fixup's branches start at exactly 0 and open.
    let blocks = |v: &str| -> Vec<Vec<f64>> {
        let text = std::fs::read_to_string(out.join(v).join("probe/blocks.csv")).unwrap();
        assert!(text.starts_with("step,block,stream_rms,branch_rms,branch_ratio,alpha\n"));
        text.lines().skip(1).map(|l| l.split(',').map(|c| c.parse().unwrap()).collect()).collect()
    };
    let fixup = blocks("fixup");
    assert_eq!(fixup.iter().filter(|r| r[0] == 0.0).count(), 3);
    assert!(fixup.iter().filter(|r| r[0] == 0.0).all(|r| r[3] == 0.0 && r[5] == 1.0));
    assert!(fixup.last().unwrap()[3] > 0.0);
    let ln = blocks("layernorm");
    assert!(ln.first().unwrap()[5] == 0.5 && ln.last().unwrap()[5] != 0.5, "alpha over time");
    // The report draws each residual variant's branch ratio per block.
    let svg = std::fs::read_to_string(out.join("plots/layernorm-branch-ratio.svg")).unwrap();
    assert!(svg.contains("block 1") && svg.contains("block 3"), "a line per block");
    // A trained alpha is drawn against the step; a fixed one is not.
    assert!(std::fs::read_to_string(out.join("plots/layernorm-alpha.svg")).unwrap().contains("block 2"));
    assert!(!out.join("plots/off-alpha.svg").exists(), "a fixed alpha has no chart");
}

#[test]
fn contradictory_residual_settings_are_one_line_errors_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 100, 20, 8);
    for (model, expected) in [
        ("width = 16\ndepth = 3\nresidual = { blocks = 2 }", "`residual.blocks`, not `depth`"),
        (
            "width = 16\nresidual = { blocks = 2, rule = \"rezero\", norm = \"layer_norm\" }",
            "model.residual.norm: ReZero has no normalisation",
        ),
        ("width = 16\nresidual = { blocks = 2, branch_layers = 3 }", "model.residual.branch_layers: must be 1 or 2"),
        ("width = 16\nresidual = { blocks = 0 }", "model.residual.blocks:"),
        (
            "width = 16\nbatch_norm = true\nresidual = { blocks = 2 }",
            "model.batch_norm: a residual network's norm is `residual.norm`",
        ),
        (
            "width = 16\nresidual = { blocks = 2, rule = \"fixup\", alpha = { init = 0.0 } }",
            "model.residual.alpha: rule Fixup sets",
        ),
    ] {
        let file = write_experiment(tmp.path(), &data, model);
        let run = initscope(&["run", file.to_str().unwrap(), "--out", tmp.path().join("never").to_str().unwrap()]);
        let err = stderr(&run);
        assert!(!run.status.success() && err.contains(expected), "{model}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("residual.toml:"), "names the file: {err}");
        assert!(!tmp.path().join("never").exists());
    }
}
