//! End-to-end tests of the command line on small data the tests make.

mod common;
use common::*;
use std::path::Path;

fn run_synthetic(data: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["run", "--dataset", data.to_str().unwrap(), "--epochs", "3", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    initscope(&args)
}

#[test]
fn run_writes_the_records_and_logs_as_the_original() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 3000, 500, 12);
    let out = tmp.path().join("run");
    let result = run_synthetic(&data, &out, &[]);
    assert!(result.status.success(), "{}", stderr(&result));
    let stdout = String::from_utf8(result.stdout).unwrap();
    // 2700 training images / 128 = 21 full batches.
    assert!(stdout.contains("Epoch: 001/003 | Batch 0000/0021 | Loss: "), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("Epoch: 003/003 | Train: ") && l.contains("% | Validation: ")));
    assert!(stdout.contains("Total Training Time: ") && stdout.contains("Test accuracy "));
    for file in ["experiment.toml", "summary.json", "log.txt"] {
        assert!(out.join(file).is_file(), "{file}");
    }
    for variant in ["kaiming", "normal"] {
        for file in ["steps.csv", "epochs.csv", "timings.csv", "initial.safetensors", "final.safetensors"] {
            assert!(out.join(variant).join(file).is_file(), "{variant}/{file}");
        }
        let steps = std::fs::read_to_string(out.join(variant).join("steps.csv")).unwrap();
        assert_eq!(steps.lines().count(), 1 + 3 * 21);
    }
    let log = std::fs::read_to_string(out.join("log.txt")).unwrap();
    assert!(stdout.starts_with(&log), "log.txt is the console log");

    // The bars are trivially separable: kaiming learns them, normal(0, 0.001) does not.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let test = |i: usize| {
        let t = &summary["variants"][i]["test"];
        t["correct"].as_f64().unwrap() / t["total"].as_f64().unwrap()
    };
    assert!(test(0) > 0.95, "kaiming test accuracy {}", test(0));
    assert!(test(1) < 0.3, "normal test accuracy {}", test(1));
}

#[test]
fn same_seed_gives_byte_identical_records_and_another_seed_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 1500, 200, 10);
    let (a, b, c) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("c"));
    for (dir, seed) in [(&a, "5"), (&b, "5"), (&c, "6")] {
        let r = run_synthetic(&data, dir, &["--seed", seed, "--quiet"]);
        assert!(r.status.success(), "{}", stderr(&r));
    }
    for variant in ["kaiming", "normal"] {
        for file in ["steps.csv", "epochs.csv", "initial.safetensors", "final.safetensors"] {
            let read = |d: &Path| std::fs::read(d.join(variant).join(file)).unwrap();
            assert_eq!(read(&a), read(&b), "{variant}/{file} differs between identical runs");
            assert_ne!(read(&a), read(&c), "{variant}/{file} does not depend on the seed");
        }
    }
    assert_eq!(std::fs::read(a.join("experiment.toml")).unwrap(), std::fs::read(b.join("experiment.toml")).unwrap());
}

#[test]
fn weights_are_saved_under_the_pytorch_names() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 600, 100, 8);
    let out = tmp.path().join("run");
    let r = run_synthetic(&data, &out, &["--quiet"]);
    assert!(r.status.success(), "{}", stderr(&r));
    let tensors = initscope::tensorfile::load(&out.join("kaiming/initial.safetensors")).unwrap();
    let names: Vec<(&str, &[usize])> = tensors.iter().map(|(n, s, _)| (n.as_str(), s.as_slice())).collect();
    assert_eq!(
        names,
        vec![
            ("my_network.1.bias", &[512][..]),
            ("my_network.1.weight", &[512, 64][..]),
            ("my_network.3.bias", &[256][..]),
            ("my_network.3.weight", &[256, 512][..]),
            ("my_network.5.bias", &[128][..]),
            ("my_network.5.weight", &[128, 256][..]),
            ("my_network.7.bias", &[64][..]),
            ("my_network.7.weight", &[64, 128][..]),
            ("my_network.9.bias", &[10][..]),
            ("my_network.9.weight", &[10, 64][..]),
        ]
    );
    // Initial kaiming weights of layer 1 lie within +-sqrt(6 / 64), biases are zero.
    let bound = (6.0f32 / 64.0).sqrt();
    assert!(tensors[1].2.iter().all(|w| w.abs() <= bound));
    assert!(tensors[0].2.iter().all(|&b| b == 0.0));
}

#[test]
fn bad_input_gives_one_line_and_a_nonzero_exit() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let one_line = |r: &std::process::Output, needle: &str| {
        assert_eq!(r.status.code(), Some(2), "bad input exits 2: {}", stderr(r));
        let err = stderr(r);
        assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
        assert!(err.contains(needle), "{err} lacks {needle}");
        assert!(!err.contains("panicked"), "{err}");
    };
    // A missing data directory.
    let missing = tmp.path().join("nowhere");
    one_line(&run_synthetic(&missing, &out, &[]), "nowhere: data directory not found");
    // A truncated image file.
    let data = synthetic_dir(tmp.path(), 300, 50, 8);
    let file = data.join("train-images-idx3-ubyte.gz");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    one_line(
        &run_synthetic(&data, &tmp.path().join("run2"), &[]),
        "train-images-idx3-ubyte.gz: corrupt or truncated gzip",
    );
    // A run directory that already holds something.
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "mine").unwrap();
    one_line(&run_synthetic(&data, &out, &[]), "already exists and is not empty");
    assert_eq!(std::fs::read_to_string(out.join("keep.txt")).unwrap(), "mine");
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 3000, 1500, 10);
    let (one, two, three) = (tmp.path().join("t1"), tmp.path().join("t2"), tmp.path().join("t3"));
    for (dir, threads) in [(&one, "1"), (&two, "2"), (&three, "3")] {
        let r = run_synthetic(&data, dir, &["--threads", threads, "--quiet"]);
        assert!(r.status.success(), "{}", stderr(&r));
    }
    for variant in ["kaiming", "normal"] {
        for file in ["steps.csv", "epochs.csv", "final.safetensors"] {
            let read = |d: &Path| std::fs::read(d.join(variant).join(file)).unwrap();
            assert_eq!(read(&one), read(&two), "{variant}/{file}: 1 vs 2 threads");
            assert_eq!(read(&one), read(&three), "{variant}/{file}: 1 vs 3 threads");
        }
    }
    // With 2 and 3 threads the two variants train side by side; the log
    // still holds one variant after the other, as with one thread.
    let log = |d: &Path| {
        let text = std::fs::read_to_string(d.join("log.txt")).unwrap();
        text.lines().filter(|l| !l.contains("Time")).map(String::from).collect::<Vec<_>>()
    };
    assert!(log(&one).iter().any(|l| l.contains("== normal ==")), "{:?}", log(&one));
    assert_eq!(log(&one), log(&two), "log.txt: 1 vs 2 threads");
    assert_eq!(log(&one), log(&three), "log.txt: 1 vs 3 threads");
}

fn write_experiment(dir: &Path, data: &Path, extra: &str) -> std::path::PathBuf {
    let mut exp = initscope::experiment::Experiment::seed_experiment();
    exp.dataset = initscope::data::DataSource::Dir(data.into());
    exp.epochs = 2;
    let path = dir.join("exp.toml");
    std::fs::write(&path, format!("{}{extra}", exp.to_toml())).unwrap();
    path
}

#[test]
fn experiment_files_run_and_bad_ones_name_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 600, 100, 8);
    let file = write_experiment(tmp.path(), &data, "");
    let out = tmp.path().join("run");
    let r = initscope(&["run", file.to_str().unwrap(), "--quiet", "--out", out.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    // The saved settings run again give the same records.
    let again = tmp.path().join("again");
    let saved = out.join("experiment.toml");
    let r = initscope(&["run", saved.to_str().unwrap(), "--quiet", "--out", again.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    for f in ["kaiming/steps.csv", "normal/epochs.csv", "kaiming/final.safetensors"] {
        assert_eq!(std::fs::read(out.join(f)).unwrap(), std::fs::read(again.join(f)).unwrap(), "{f}");
    }

    // An unknown key: exit 2, one line, the file and the line number.
    let text = std::fs::read_to_string(&file).unwrap();
    let line = text.lines().position(|l| l.starts_with("epochs")).unwrap() + 1;
    std::fs::write(&file, text.replace("epochs = 2", "epochs = 2\nepoch_count = 3")).unwrap();
    let r = initscope(&["run", file.to_str().unwrap(), "--out", tmp.path().join("x").to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    let err = stderr(&r);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(&format!("exp.toml:{}", line + 1)) && err.contains("epoch_count"), "{err}");
    // A bad value.
    std::fs::write(&file, text.replace("lr = 0.1", "lr = -1.0")).unwrap();
    let r = initscope(&["run", file.to_str().unwrap(), "--out", tmp.path().join("y").to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    let lr_line = text.lines().position(|l| l.starts_with("lr = ")).unwrap() + 1;
    assert!(
        stderr(&r).contains(&format!("exp.toml:{lr_line}: optimizer.lr: must be a positive number")),
        "{}",
        stderr(&r)
    );
    // An empty model.
    std::fs::write(&file, text.replace("hidden = [512, 256, 128, 64]", "hidden = []")).unwrap();
    let r = initscope(&["run", file.to_str().unwrap(), "--out", tmp.path().join("e").to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    let hidden_line = text.lines().position(|l| l.starts_with("hidden = ")).unwrap() + 1;
    assert!(
        stderr(&r)
            .contains(&format!("exp.toml:{hidden_line}: model.hidden: the model needs at least one hidden layer")),
        "{}",
        stderr(&r)
    );
    // Batch size 0 and an unknown scheme.
    std::fs::write(&file, text.replace("batch_size = 128", "batch_size = 0")).unwrap();
    let r = initscope(&["run", file.to_str().unwrap(), "--out", tmp.path().join("b").to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    let batch_line = text.lines().position(|l| l.starts_with("batch_size = ")).unwrap() + 1;
    assert!(stderr(&r).contains(&format!("exp.toml:{batch_line}: batch_size: must be at least 1")), "{}", stderr(&r));
    std::fs::write(&file, text.replace("scheme = \"normal\"", "scheme = \"gaussian\"")).unwrap();
    let r = initscope(&["run", file.to_str().unwrap(), "--out", tmp.path().join("s").to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    assert!(stderr(&r).contains("unknown variant `gaussian`"), "{}", stderr(&r));
    // A syntax error.
    std::fs::write(&file, "name = \"broken\n").unwrap();
    let r = initscope(&["run", file.to_str().unwrap(), "--out", tmp.path().join("z").to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    assert!(stderr(&r).contains("exp.toml:1"), "{}", stderr(&r));
}

#[test]
fn a_diverging_variant_stops_and_the_others_go_on() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 1500, 200, 10);
    let out = tmp.path().join("run");
    let r = run_synthetic(&data, &out, &["--lr", "10", "--quiet"]);
    assert!(r.status.success(), "{}", stderr(&r));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let variants = summary["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 2, "both variants ran");
    let kaiming = &variants[0];
    let step = kaiming["diverged_at"].as_u64().expect("kaiming at lr 10 diverges");
    assert_eq!(kaiming["steps"].as_u64().unwrap(), step);
    let kinds: Vec<&str> =
        kaiming["verdicts"].as_array().unwrap().iter().map(|v| v["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"nonfinite_loss"), "{kinds:?}");
    // The report and its charts cope with NaN.
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains(&format!("diverged at step {step}")));
}

/// Runs on `data` and expects exit 2 with one line containing `needle`.
fn rejects(data: &Path, needle: &str) {
    let out = data.parent().unwrap().join(format!("run-{}", needle.len()));
    let r = run_synthetic(data, &out, &["--quiet"]);
    assert_eq!(r.status.code(), Some(2), "{needle}: {}", stderr(&r));
    let err = stderr(&r);
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.contains(needle), "{err} lacks {needle}");
}

fn rewrite(data: &Path, file: &str, edit: impl Fn(&mut initscope::data::idx::IdxArray)) {
    use initscope::data::idx;
    let path = data.join(file);
    let mut array = idx::read(&path).unwrap();
    edit(&mut array);
    std::fs::write(&path, idx::gzip(&idx::encode(&array))).unwrap();
}

#[test]
fn each_kind_of_bad_data_is_named_with_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let fresh = |name: &str| {
        let root = tmp.path().join(name);
        synthetic_dir(&root, 400, 50, 8)
    };
    // A wrong magic number.
    let data = fresh("magic");
    let path = data.join("t10k-labels-idx1-ubyte.gz");
    let mut raw = initscope::data::idx::read_maybe_gz(&path).unwrap();
    raw[2] = 0x0c;
    std::fs::write(&path, initscope::data::idx::gzip(&raw)).unwrap();
    rejects(&data, "t10k-labels-idx1-ubyte.gz: not an IDX file: element type 0x0c");
    // More labels than images.
    let data = fresh("count");
    rewrite(&data, "train-labels-idx1-ubyte.gz", |a| {
        a.dims[0] += 1;
        a.data.push(3);
    });
    rejects(&data, "train-labels-idx1-ubyte.gz: 401 labels for 400 images");
    // A label outside 0..10.
    let data = fresh("range");
    rewrite(&data, "train-labels-idx1-ubyte.gz", |a| a.data[17] = 12);
    rejects(&data, "label 12 at index 17 is outside 0..10");
    // Images without pixels.
    let data = fresh("empty");
    rewrite(&data, "train-images-idx3-ubyte.gz", |a| {
        a.dims = vec![a.dims[0], 0, 8];
        a.data.clear();
    });
    rejects(&data, "train-images-idx3-ubyte.gz: images of 0x8 pixels");
    // Test images of another size than the training images (and the model).
    let data = fresh("dims");
    rewrite(&data, "t10k-images-idx3-ubyte.gz", |a| {
        a.dims = vec![a.dims[0], 4, 16];
    });
    let ok = initscope(&[
        "run",
        "--quiet",
        "--epochs",
        "1",
        "--dataset",
        data.to_str().unwrap(),
        "--out",
        tmp.path().join("d1").to_str().unwrap(),
    ]);
    assert!(ok.status.success(), "4x16 has as many pixels as 8x8: {}", stderr(&ok));
    rewrite(&data, "t10k-images-idx3-ubyte.gz", |a| {
        a.dims = vec![a.dims[0] / 2, 8, 16];
    });
    rewrite(&data, "t10k-labels-idx1-ubyte.gz", |a| {
        a.dims[0] /= 2;
        a.data.truncate(a.dims[0]);
    });
    rejects(&data, "the test images are 8x16 but the training images 8x8");
}

#[test]
fn a_known_data_set_with_a_wrong_checksum_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mnist");
    std::fs::create_dir_all(&dir).unwrap();
    let (images, _) = synthetic(10, 28, 1);
    let file = dir.join("train-images-idx3-ubyte.gz");
    std::fs::write(&file, initscope::data::idx::gzip(&initscope::data::idx::encode(&images))).unwrap();
    let r = initscope(&["data", "fetch", "mnist", "--data-dir", tmp.path().to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    let err = stderr(&r);
    assert!(err.contains("train-images-idx3-ubyte.gz: checksum mismatch for mnist"), "{err}");
    assert!(err.contains("expected 6bbc9ace898e44ae57da46a324031adb"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    // The user's file is left alone.
    assert!(file.is_file());
}

#[test]
fn an_unwritable_output_directory_is_refused_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 300, 50, 8);
    let blocker = tmp.path().join("a-file");
    std::fs::write(&blocker, "not a directory").unwrap();
    let out = blocker.join("run");
    let r = run_synthetic(&data, &out, &[]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(stderr(&r).contains("cannot create the run directory"), "{}", stderr(&r));
    assert!(r.stdout.is_empty(), "nothing trained: {}", String::from_utf8_lossy(&r.stdout));
}

#[test]
fn several_seeds_run_every_variant_per_seed_and_report_the_spread() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 600, 100, 8);
    let file = write_experiment(tmp.path(), &data, "");
    let text = std::fs::read_to_string(&file).unwrap().replace("seed = 123\n", "seed = 123\nseeds = [1, 2, 3]\n");
    std::fs::write(&file, text).unwrap();
    let out = tmp.path().join("run");
    let r = initscope(&["run", file.to_str().unwrap(), "--quiet", "--out", out.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let names: Vec<&str> =
        summary["variants"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["kaiming-seed1", "kaiming-seed2", "kaiming-seed3", "normal-seed1", "normal-seed2", "normal-seed3"]
    );
    assert!(summary["variants"].as_array().unwrap().iter().all(|v| v["group"] == "kaiming" || v["group"] == "normal"));
    // Different seeds, different initial weights.
    let w = |n: &str| std::fs::read(out.join(n).join("initial.safetensors")).unwrap();
    assert_ne!(w("kaiming-seed1"), w("kaiming-seed2"));
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains("<h2>Over seeds</h2>") && report.contains("&plusmn;"));
    assert!(out.join("plots/seeds-loss.png").is_file() && out.join("plots/seeds-accuracy.png").is_file());
}

#[test]
fn weights_from_a_file_start_the_run_and_a_wrong_shape_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 600, 100, 8);
    let first = tmp.path().join("first");
    let r = run_synthetic(&data, &first, &["--quiet"]);
    assert!(r.status.success(), "{}", stderr(&r));
    let weights = first.join("kaiming/final.safetensors");
    let file = write_experiment(tmp.path(), &data, "");
    let text = std::fs::read_to_string(&file).unwrap();
    let from_file = format!("{{ scheme = \"from_file\", path = \"{}\" }}", weights.display());
    let text = text.replacen(
        "[variants.weight_init]\nscheme = \"kaiming_uniform\"\nmode = \"fan_in\"\ngain = \"relu\"",
        &format!("weight_init = {from_file}"),
        1,
    );
    assert!(text.contains("from_file"), "{text}");
    std::fs::write(&file, &text).unwrap();
    let second = tmp.path().join("second");
    let r = initscope(&["run", file.to_str().unwrap(), "--quiet", "--out", second.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(std::fs::read(&weights).unwrap(), std::fs::read(second.join("kaiming/initial.safetensors")).unwrap());

    // The same weights for a network of another shape.
    let wider = text.replace("hidden = [512, 256, 128, 64]", "hidden = [100, 256, 128, 64]");
    std::fs::write(&file, wider).unwrap();
    let r = initscope(&["run", file.to_str().unwrap(), "--quiet", "--out", tmp.path().join("third").to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("my_network.1.weight has shape [512, 64], the model needs [100, 64]"),
        "{}",
        stderr(&r)
    );
}

#[test]
fn a_failing_variant_stops_the_one_beside_it_with_a_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 3000, 100, 8);
    // Weights of a narrower network: the seed model cannot take them.
    let file = write_experiment(tmp.path(), &data, "");
    let text = std::fs::read_to_string(&file).unwrap().replace("hidden = [512, 256, 128, 64]", "hidden = [32, 16]");
    std::fs::write(&file, &text).unwrap();
    let small = tmp.path().join("small");
    let r = initscope(&["run", file.to_str().unwrap(), "--quiet", "--epochs", "1", "--out", small.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    // Kaiming trains for long in one lane; the second variant's weights
    // do not fit, so the other lane fails at once.
    let weights = small.join("kaiming/final.safetensors");
    let text = text.replace("hidden = [32, 16]", "hidden = [512, 256, 128, 64]").replacen(
        "[variants.weight_init]\nscheme = \"normal\"\nmean = 0.0\nstd = 0.001",
        &format!("weight_init = {{ scheme = \"from_file\", path = \"{}\" }}", weights.display()),
        1,
    );
    assert!(text.contains("from_file"), "{text}");
    std::fs::write(&file, &text).unwrap();
    let out = tmp.path().join("run");
    let r = initscope(&[
        "run",
        file.to_str().unwrap(),
        "--quiet",
        "--threads",
        "2",
        "--epochs",
        "200",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(stderr(&r).contains("the model needs"), "{}", stderr(&r));
    // Kaiming stopped at a step boundary long before its 200 epochs, with a
    // checkpoint to resume from, instead of running to its end.
    let log = std::fs::read_to_string(out.join("log.txt")).unwrap();
    assert!(log.contains("Interrupted: kaiming stopped after step"), "{log}");
    assert!(!out.join("kaiming/final.safetensors").exists());
    assert!(out.join("kaiming/checkpoint.json").is_file());
}

#[test]
fn batch_norm_models_save_pytorch_state_dict_names() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 600, 100, 8);
    let file = tmp.path().join("bn.toml");
    let text = initscope::presets::text("seed-batchnorm").unwrap().replace("epochs = 15", "epochs = 2");
    std::fs::write(&file, text).unwrap();
    let out = tmp.path().join("run");
    let r = initscope(&[
        "run",
        file.to_str().unwrap(),
        "--quiet",
        "--dataset",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let bytes = std::fs::read(out.join("kaiming/final.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().cloned().collect();
    names.sort();
    // Linear, BatchNorm1d, ReLU per hidden layer: Linear at 1, 4, 7, 10, 13.
    for index in [1, 4, 7, 10, 13] {
        assert!(names.contains(&format!("my_network.{index}.weight")), "{names:?}");
    }
    for index in [2, 5, 8, 11] {
        for part in ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"] {
            assert!(names.contains(&format!("my_network.{index}.{part}")), "{index}.{part} in {names:?}");
        }
    }
    let counter = st.tensor("my_network.2.num_batches_tracked").unwrap();
    assert_eq!(counter.dtype(), safetensors::Dtype::I64);
    // 540 training images / 128 = 4 steps per epoch, 2 epochs.
    assert_eq!(i64::from_le_bytes(counter.data().try_into().unwrap()), 8);
    let var = st.tensor("my_network.2.running_var").unwrap();
    assert!(var.data().chunks(4).any(|c| f32::from_le_bytes(c.try_into().unwrap()) != 1.0), "running variance moved");
}

#[test]
fn a_layer_can_have_its_own_initialisation() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 600, 100, 8);
    let file = write_experiment(tmp.path(), &data, "");
    let text = std::fs::read_to_string(&file).unwrap();
    let own = "name = \"kaiming\"\nlayers = [{ layer = 5, weight_init = { scheme = \"constant\", value = 0.25 } }]";
    std::fs::write(&file, text.replacen("name = \"kaiming\"", own, 1)).unwrap();
    let out = tmp.path().join("run");
    let r = initscope(&["run", file.to_str().unwrap(), "--quiet", "--epochs", "1", "--out", out.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    let tensors = initscope::tensorfile::load(&out.join("kaiming/initial.safetensors")).unwrap();
    let get = |name: &str| tensors.iter().find(|t| t.0 == name).unwrap().2.clone();
    assert!(get("my_network.9.weight").iter().all(|&w| w == 0.25));
    let bound = (6.0f32 / 64.0).sqrt();
    let first = get("my_network.1.weight");
    assert!(first.iter().all(|w| w.abs() <= bound) && first.iter().any(|&w| w != 0.25));

    std::fs::write(&file, text.replacen("name = \"kaiming\"", &own.replace("layer = 5", "layer = 9"), 1)).unwrap();
    let r = initscope(&["run", file.to_str().unwrap(), "--out", tmp.path().join("bad").to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("variants[0].layers[0].layer: 9 is not a layer of this 5-layer network"),
        "{}",
        stderr(&r)
    );
}

/// The report and a comparison of two runs: every run named, every
/// verdict shown, and what the user wrote (the experiment's name) escaped,
/// never inserted as markup.
#[test]
fn reports_escape_what_the_user_wrote_and_compare_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 600, 100, 8);
    let file = write_experiment(tmp.path(), &data, "");
    let text = std::fs::read_to_string(&file).unwrap().replace("name = \"seed\"", "name = \"a<b & \\\"c\\\"\"");
    std::fs::write(&file, text).unwrap();
    let runs: Vec<_> = ["one", "two"].iter().map(|n| tmp.path().join(n)).collect();
    for (run, seed) in runs.iter().zip(["1", "2"]) {
        let r = initscope(&["run", file.to_str().unwrap(), "--quiet", "--seed", seed, "--out", run.to_str().unwrap()]);
        assert!(r.status.success(), "{}", stderr(&r));
    }
    let single = std::fs::read_to_string(runs[0].join("report.html")).unwrap();
    assert!(single.contains("<title>initscope: a&lt;b &amp; &quot;c&quot;</title>"), "the name is not escaped");
    assert!(!single.contains("a<b"), "the name went in as markup");
    let out = tmp.path().join("cmp.html");
    let r =
        initscope(&["report", runs[0].to_str().unwrap(), runs[1].to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    let page = std::fs::read_to_string(&out).unwrap();
    assert!(page.contains("initscope comparison of 2 runs"));
    for run in ["one", "two"] {
        assert!(page.contains(&format!("<h2>Settings of {run}</h2>")), "{run} missing");
        assert!(page.contains(&format!("<b>{run}/normal</b>")), "{run}/normal's verdicts missing");
    }
    assert!(!page.contains("a<b"), "the settings went in as markup");
    assert_eq!(page.matches("<img ").count(), page.matches("</figure>").count());
    assert!(page.matches("<img ").count() >= 2, "no overlay charts");
}

#[test]
fn a_three_line_file_runs_and_new_writes_a_starter() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 300, 50, 10);
    let file = tmp.path().join("xavier.toml");
    std::fs::write(&file, "[[variants]]\nname = \"xavier\"\nweight_init = { scheme = \"xavier_uniform\" }\n").unwrap();
    let out = tmp.path().join("run");
    let r = initscope(&[
        "run",
        file.to_str().unwrap(),
        "--quiet",
        "--epochs",
        "1",
        "--dataset",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let resolved = std::fs::read_to_string(out.join("experiment.toml")).unwrap();
    for key in
        ["name = \"xavier\"", "seed = 123", "batch_size = 128", "hidden = [512, 256, 128, 64]", "lr = 0.1", "bias_init"]
    {
        assert!(resolved.contains(key), "{key} missing from the resolved file:\n{resolved}");
    }

    let starter = tmp.path().join("trial");
    let r = initscope(&["new", starter.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    let written = tmp.path().join("trial.toml");
    let exp = initscope::experiment::Experiment::from_file(&written).unwrap();
    assert_eq!(exp.name, "trial");
    let r = initscope(&["new", starter.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2), "an existing file is not overwritten");
}
