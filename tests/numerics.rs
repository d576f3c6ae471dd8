//! Same bits on every machine: the same runs under two different cache
//! descriptions (and thread counts) give byte-identical records and
//! weights, and the weights every machine must reproduce are committed as
//! md5 fingerprints.
//!
//! `gemm` reads the cache sizes and associativity from
//! `/sys/devices/system/cpu/cpu*/cache/index*/` and used to block the
//! products' sums by them. The test gives the binary a made-up description
//! by bind-mounting a directory over `/sys/devices/system/cpu` in a private
//! mount namespace (`unshare -m`, as root, which the tests and CI are).

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A cache description: (level, type, size, ways) per index, 2 CPUs.
type Topology = [(u8, &'static str, &'static str, u32); 4];

/// An Intel-like description: L1d 48 KiB 12-way (gemm's k-block 784 for
/// 784-long sums, one block), L2 1280 KiB, L3 32 MiB.
const INTEL_LIKE: Topology =
    [(1, "Data", "48K", 12), (1, "Instruction", "32K", 8), (2, "Unified", "1280K", 20), (3, "Unified", "32768K", 12)];
/// An AMD EPYC-like description: L1d 32 KiB 8-way (gemm's k-block 392:
/// two blocks), L2 512 KiB, L3 8 MiB.
const EPYC_LIKE: Topology =
    [(1, "Data", "32K", 8), (1, "Instruction", "32K", 8), (2, "Unified", "512K", 8), (3, "Unified", "8192K", 16)];

/// Writes a `/sys/devices/system/cpu` look-alike with `topology` for cpu0
/// and cpu1 under `root`.
fn fake_cpu_dir(root: &Path, topology: &Topology) -> PathBuf {
    for cpu in 0..2 {
        for (index, (level, kind, size, ways)) in topology.iter().enumerate() {
            let dir = root.join(format!("cpu{cpu}/cache/index{index}"));
            std::fs::create_dir_all(&dir).unwrap();
            let shared = if *level == 3 { "0-1".to_string() } else { cpu.to_string() };
            for (file, value) in [
                ("level", level.to_string()),
                ("type", kind.to_string()),
                ("size", size.to_string()),
                ("ways_of_associativity", ways.to_string()),
                ("coherency_line_size", "64".to_string()),
                ("shared_cpu_list", shared),
            ] {
                std::fs::write(dir.join(file), format!("{value}\n")).unwrap();
            }
        }
    }
    root.to_path_buf()
}

/// `program args` with `cpu_dir` mounted over `/sys/devices/system/cpu`
/// in a private mount namespace; fails the test, saying why, where the
/// namespace cannot be made (not root, no `unshare`).
fn under_topology(cpu_dir: &Path, program: &Path, args: &[&str]) -> std::process::Output {
    let script = r#"mount --bind "$0" /sys/devices/system/cpu || exit 97; exec "$@""#;
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script])
        .arg(cpu_dir)
        .arg(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("this test needs util-linux's unshare (as root) to fake the caches: {e}"));
    assert!(
        out.status.code() != Some(97) && !stderr(&out).contains("unshare failed"),
        "this test fakes the cache description with `unshare -m` and `mount --bind`, which need root: {}",
        stderr(&out)
    );
    out
}

/// The seed network (Kaiming and N(0, 0.001)), a tanh network, Adam and
/// batch norm, on 28x28 images so that layer 1 sums 784 products.
fn experiment_file(dir: &Path, data: &Path) -> PathBuf {
    let text = format!(
        r#"name = "numerics"
dataset = "{data}"
seed = 11
epochs = 1
batch_size = 64
log_every = 0

[[variants]]
name = "kaiming"
weight_init = {{ scheme = "kaiming_uniform", mode = "fan_in", gain = "relu" }}

[[variants]]
name = "normal"
weight_init = {{ scheme = "normal", mean = 0.0, std = 0.001 }}

[[variants]]
name = "tanh"
weight_init = {{ scheme = "xavier_uniform", gain = "tanh" }}
model = {{ hidden = [600, 128], activation = "tanh" }}

[[variants]]
name = "adam"
weight_init = {{ scheme = "kaiming_uniform", mode = "fan_in", gain = "relu" }}
optimizer = {{ kind = "adam", lr = 0.001 }}

[[variants]]
name = "batchnorm"
weight_init = {{ scheme = "kaiming_uniform", mode = "fan_in", gain = "relu" }}
model = {{ hidden = [512, 256, 128, 64], batch_norm = true }}
"#,
        data = data.display()
    );
    let file = dir.join("numerics.toml");
    std::fs::write(&file, text).unwrap();
    file
}

const VARIANTS: [&str; 5] = ["kaiming", "normal", "tanh", "adam", "batchnorm"];
const RECORDS: [&str; 6] =
    ["steps.csv", "epochs.csv", "final.safetensors", "test_predictions.csv", "probe/layers.csv", "probe/changes.csv"];

/// md5 of each variant's `final.safetensors` after one epoch of
/// [`experiment_file`] on `synthetic_dir(_, 1200, 200, 28)`: what every
/// machine with FMA kernels (numerics `x86_64-fma/k512`) must reproduce.
const GOLDEN: [(&str, &str); 5] = [
    ("kaiming", "b4333dddd23e81de1481f338335a7148"),
    ("normal", "7a9d3ecaca8fe90187afd2e796ca2973"),
    ("tanh", "45136989dbd4fd324ed74b3bc780ea3c"),
    ("adam", "e45f0adcae9e18d6b51ac9ab33bc68b3"),
    ("batchnorm", "0351f800ba67b7ff7ba1bd47c71d331d"),
];

fn md5_hex(bytes: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn records_are_identical_under_other_caches_and_threads_and_match_the_golden_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 1200, 200, 28);
    let file = experiment_file(tmp.path(), &data);
    let binary = Path::new(env!("CARGO_BIN_EXE_initscope"));
    let mut outs = Vec::new();
    for (name, topology, threads) in [("intel", &INTEL_LIKE, "1"), ("epyc", &EPYC_LIKE, "2")] {
        let cpu_dir = fake_cpu_dir(&tmp.path().join(format!("sys-{name}")), topology);
        let seen = under_topology(&cpu_dir, Path::new("cat"), &["/sys/devices/system/cpu/cpu0/cache/index0/size"]);
        assert_eq!(String::from_utf8_lossy(&seen.stdout).trim(), topology[0].2, "the fake description is not seen");
        let out = tmp.path().join(format!("run-{name}"));
        let args = ["run", file.to_str().unwrap(), "--quiet", "--threads", threads, "--out", out.to_str().unwrap()];
        let r = under_topology(&cpu_dir, binary, &args);
        assert!(r.status.success(), "{name}: {}", stderr(&r));
        outs.push(out);
    }
    for variant in VARIANTS {
        for record in RECORDS {
            let read = |d: &Path| std::fs::read(d.join(variant).join(record)).unwrap();
            assert!(read(&outs[0]) == read(&outs[1]), "{variant}/{record} differs between the two cache descriptions");
        }
    }
    let fingerprints: Vec<(&str, String)> = VARIANTS
        .iter()
        .map(|v| (*v, md5_hex(&std::fs::read(outs[0].join(v).join("final.safetensors")).unwrap())))
        .collect();
    eprintln!("{fingerprints:?}");
    let numerics = initscope::nn::matmul::numerics_fingerprint();
    if numerics == "x86_64-fma/k512" {
        for ((variant, ours), (_, golden)) in fingerprints.iter().zip(GOLDEN) {
            assert_eq!(ours, golden, "{variant}: final weights differ from the committed golden fingerprint");
        }
    } else {
        panic!(
            "numerics {numerics}: the golden fingerprints are for x86_64-fma/k512; this machine's are {fingerprints:?}"
        );
    }
}
