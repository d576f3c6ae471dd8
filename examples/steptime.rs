use initscope::data::LabeledImages;
use initscope::nn::{Activation, Init, Mlp};
use initscope::optim::Sgd;
use initscope::train::Trainer;
use std::time::Instant;
fn main() {
    let n = 54000;
    let data = LabeledImages {
        count: n,
        rows: 28,
        cols: 28,
        pixels: (0..n * 784).map(|i| (i * 7 % 256) as u8).collect(),
        labels: (0..n).map(|i| (i % 10) as u8).collect(),
    };
    for threads in [1, 2] {
        let mut model = Mlp::new(&[784, 512, 256, 128, 64, 10], Activation::Relu);
        model.initialise(&Init::kaiming_relu(), &Init::zeros(), 1);
        let mut t = Trainer::new(model, Sgd { lr: 0.01 }, 128, threads);
        let idx: Vec<u32> = (0..n as u32).collect();
        for b in idx.chunks_exact(128).take(20) {
            t.step(&data, b);
        }
        let start = Instant::now();
        for b in idx.chunks_exact(128) {
            t.step(&data, b);
        }
        let e = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let p = t.predict(&data, &idx);
        let ev = start.elapsed().as_secs_f64();
        println!(
            "threads {threads}: epoch steps {e:.3}s = {:.2} ms/step, {:.1} GFLOP/s; eval 54000 {ev:.3}s {}",
            e / 421.0 * 1e3,
            339e6 * 421.0 / e / 1e9,
            p.len()
        );
    }
}
