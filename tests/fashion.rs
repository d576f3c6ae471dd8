//! Fashion-MNIST end to end through an experiment file, fetched by the
//! project's own `initscope data fetch`: Debian's `dataset-fashion-mnist`
//! where it is installed, else the data set's mirror, else the package's
//! archive downloaded from the machine's Debian mirror.

mod common;
use common::*;

#[test]
fn fashion_mnist_runs_from_an_experiment_file() {
    let fetch = initscope(&["data", "fetch", "fashion-mnist"]);
    assert!(fetch.status.success(), "fetch failed: {}", stderr(&fetch));
    let tmp = tempfile::tempdir().unwrap();
    let mut exp = initscope::experiment::Experiment::seed_experiment();
    exp.name = "fashion".into();
    exp.dataset = "fashion-mnist".to_string().into();
    exp.epochs = 2;
    exp.variants.truncate(1);
    let file = tmp.path().join("fashion.toml");
    std::fs::write(&file, exp.to_toml()).unwrap();
    assert!(std::fs::read_to_string(&file).unwrap().contains("dataset = \"fashion-mnist\""));
    let out = tmp.path().join("run");
    let r = initscope(&["run", file.to_str().unwrap(), "--quiet", "--out", out.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let test = &summary["variants"][0]["test"];
    let accuracy = test["correct"].as_f64().unwrap() / test["total"].as_f64().unwrap();
    // An MLP reaches about 85-88 % on Fashion-MNIST after two epochs; chance is 10 %.
    assert!(accuracy > 0.8, "test accuracy {accuracy}");
    assert_eq!(test["total"], 10_000);
}
