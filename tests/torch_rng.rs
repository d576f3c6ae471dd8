//! `rng = "torch"` against fixtures made by PyTorch itself
//! (scripts/torch-fixtures.py; tests/fixtures/torch/README.md says how).
//! No PyTorch is needed here.

mod common;
use common::*;

use initscope::data::fetch::md5_hex;
use initscope::data::order::TorchLoaders;
use initscope::nn::{torch_init, Activation, Init, Model};
use initscope::rng::torch::TorchGenerator;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

fn rng_json() -> Value {
    torch_fixture_json("rng.json")
}

fn small_tensors() -> BTreeMap<String, Vec<f32>> {
    torch_fixture_tensors("small-init.safetensors")
}

fn bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn index_bytes(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The `loss` column of a steps.csv.
fn step_losses(path: &Path) -> Vec<f64> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let c = reader.headers().unwrap().iter().position(|h| h == "loss").expect("a loss column");
    reader.records().map(|r| r.unwrap()[c].parse().unwrap()).collect()
}

fn scheme(value: &Value) -> Init {
    serde_json::from_value(value.clone()).unwrap()
}

/// The model a fixture variant describes, initialised as PyTorch would,
/// and the generator after it.
fn torch_model(sizes: &[usize], variant: &Value, seed: u64) -> (Model, TorchGenerator) {
    let mut model = Model::mlp(sizes, Activation::Relu);
    let schemes = vec![(scheme(&variant["weight_init"]), scheme(&variant["bias_init"])); sizes.len() - 1];
    let generator = torch_init::initialise(&mut model, &schemes, seed);
    (model, generator)
}

#[test]
fn generator_draws_equal_pytorchs() {
    let fixture = &rng_json()["generator"];
    let mut g = TorchGenerator::manual_seed(123);
    let words: Vec<String> = (0..64).map(|_| g.dataloader_base_seed().to_string()).collect();
    let expected: Vec<String> =
        fixture["int64_random"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert_eq!(words, expected);

    let mut g = TorchGenerator::manual_seed(123);
    let mut uniform = vec![0.0f32; 64];
    g.fill_uniform(&mut uniform, -0.7, 0.3);
    let expected: Vec<f32> =
        fixture["uniform_-0.7_0.3"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    assert_eq!(bytes(&uniform), bytes(&expected));

    let perm = TorchGenerator::manual_seed(123).randperm(54_000);
    assert_eq!(md5_hex(&index_bytes(&perm)), fixture["randperm_54000_md5"].as_str().unwrap());

    // Fewer than 16 values take the double Box-Muller path, whose second
    // sample waits in the generator for the next call.
    let mut g = TorchGenerator::manual_seed(5);
    for (n, expected) in
        [5, 1, 7, 15].into_iter().zip(fixture["normal_0.25_3_seed5_sizes_5_1_7_15"].as_array().unwrap())
    {
        let mut out = vec![0.0f32; n];
        g.fill_normal(&mut out, 0.25, 3.0);
        let expected: Vec<f32> = expected.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        assert_eq!(bytes(&out), bytes(&expected), "normal_ of {n}");
    }
}

#[test]
fn initial_weights_of_a_small_network_equal_pytorchs_bit_for_bit() {
    let fixture = &rng_json()["small"];
    let tensors = small_tensors();
    let sizes: Vec<usize> = serde_json::from_value(fixture["sizes"].clone()).unwrap();
    let mut compared = 0;
    for (name, variant) in fixture["variants"].as_object().unwrap() {
        for seed in fixture["seeds"].as_array().unwrap() {
            let seed = seed.as_u64().unwrap();
            let (model, _) = torch_model(&sizes, variant, seed);
            for initscope::nn::model::TensorSlot { name: tensor, range, .. } in model.tensors() {
                let expected = &tensors[&format!("{name}/seed{seed}/{tensor}")];
                let got = &model.params[range];
                let differ = got.iter().zip(expected).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
                assert_eq!(differ, 0, "{name}, seed {seed}, {tensor}: {differ} of {} values differ", got.len());
                compared += got.len();
            }
        }
    }
    assert!(compared > 20_000, "compared {compared} values");
}

#[test]
fn initial_weights_of_the_seed_network_equal_pytorchs_bit_for_bit() {
    let fixture = &rng_json()["seed_network"];
    let small = &rng_json()["small"]["variants"];
    let sizes: Vec<usize> = serde_json::from_value(fixture["sizes"].clone()).unwrap();
    for seed in [123, 1] {
        for name in ["kaiming", "normal"] {
            let (model, _) = torch_model(&sizes, &small[name], seed);
            for initscope::nn::model::TensorSlot { name: tensor, range, .. } in model.tensors() {
                let expected = &fixture["tensors"][format!("{name}/seed{seed}/{tensor}")];
                let got = &model.params[range];
                assert_eq!(
                    md5_hex(&bytes(got)),
                    expected["md5"],
                    "{name}, seed {seed}, {tensor}: head {:?}",
                    &got[..4]
                );
            }
        }
    }
}

/// Every index of every batch the notebook's three loaders yield in the
/// first two epochs.
#[test]
fn batches_hold_the_notebooks_images_in_its_order() {
    let json = rng_json();
    let (small, tensors) = (&json["small"], small_tensors());
    let sizes: Vec<usize> = serde_json::from_value(small["sizes"].clone()).unwrap();
    let (_, generator) = torch_model(&sizes, &small["variants"]["xavier_tanh"], 123);
    // 300 images, the last 30 for validation, batch 32: 8 full training batches.
    let mut loaders = TorchLoaders::new(generator, 0..270, 270..300, true);
    for epoch in [1, 2] {
        let orders = loaders.epoch(epoch);
        let expected = |part: &str| -> Vec<u32> {
            tensors[&format!("orders/epoch{epoch}/{part}")].iter().map(|&v| v as u32).collect()
        };
        assert_eq!(orders.train[..256], expected("train")[..], "epoch {epoch} training");
        assert_eq!(orders.train_eval[..256], expected("train_eval")[..], "epoch {epoch} accuracy pass");
        assert_eq!(orders.valid, expected("valid"), "epoch {epoch} validation");
    }
    // Asking again (a resumed run) replays the same orders.
    assert_eq!(
        loaders.epoch(1).train[..256],
        tensors["orders/epoch1/train"].iter().map(|&v| v as u32).collect::<Vec<_>>()[..]
    );

    let seed = &json["seed_network"];
    let (_, generator) = torch_model(&[784, 512, 256, 128, 64, 10], &small["variants"]["kaiming"], 123);
    let mut loaders = TorchLoaders::new(generator, 0..54_000, 54_000..60_000, true);
    for epoch in [1, 2] {
        let orders = loaders.epoch(epoch);
        let parts = [
            ("train", &orders.train[..421 * 128]),
            ("train_eval", &orders.train_eval[..421 * 128]),
            ("valid", &orders.valid[..]),
        ];
        for (part, got) in parts {
            let expected = &seed["orders"][format!("epoch{epoch}/{part}")];
            assert_eq!(got.len() as u64, expected["len"].as_u64().unwrap(), "epoch {epoch} {part}");
            assert_eq!(md5_hex(&index_bytes(got)), expected["md5"], "epoch {epoch} {part}: head {:?}", &got[..8]);
        }
    }
}

#[test]
fn schemes_pytorch_draws_differently_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("ortho.toml");
    std::fs::write(&file, "rng = \"torch\"\n[[variants]]\nname = \"o\"\nweight_init = { scheme = \"orthogonal\" }\n")
        .unwrap();
    let out = initscope(&["run", file.to_str().unwrap(), "--out", tmp.path().join("r").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("variants[0].weight_init") && err.contains("orthogonal"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// The seed experiment's Kaiming variant with `--rng torch` on the real
/// MNIST (fetched by the project's own command): the initial weights in
/// initial.safetensors are PyTorch's, and the first 50 minibatch losses
/// follow PyTorch's within 1e-5 relative.
#[test]
fn seed_kaiming_follows_pytorchs_losses() {
    let fetch = initscope(&["data", "fetch", "mnist"]);
    assert!(fetch.status.success(), "fetch failed: {}", stderr(&fetch));
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("kaiming.toml");
    std::fs::write(
        &file,
        "epochs = 1\n[[variants]]\nname = \"kaiming\"\nweight_init = { scheme = \"kaiming_uniform\" }\n",
    )
    .unwrap();
    let out = tmp.path().join("run");
    let run = initscope(&["run", file.to_str().unwrap(), "--rng", "torch", "--quiet", "--out", out.to_str().unwrap()]);
    assert!(run.status.success(), "{}", stderr(&run));

    let json = rng_json();
    let initial = initscope::tensorfile::load(&out.join("kaiming/initial.safetensors")).unwrap();
    for (name, _, values) in &initial {
        let expected = &json["seed_network"]["tensors"][format!("kaiming/seed123/{name}")]["md5"];
        assert_eq!(md5_hex(&bytes(values)), *expected, "initial {name}");
    }
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["variants"][0]["rng"], "torch");

    let losses = step_losses(&out.join("kaiming/steps.csv"));
    let expected = json["seed_losses"]["kaiming"].as_array().unwrap();
    for (step, (ours, theirs)) in losses.iter().zip(expected).take(50).enumerate() {
        let theirs = theirs.as_f64().unwrap();
        let relative = (ours - theirs).abs() / theirs.abs();
        assert!(relative <= 1e-5, "step {step}: {ours} against PyTorch's {theirs} ({relative:.1e} relative)");
    }
}
