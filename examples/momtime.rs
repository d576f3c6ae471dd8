use initscope::probe::stats::Moments;
use std::time::Instant;
fn main() {
    let v: Vec<f32> = (0..575_050).map(|i| ((i * 37 % 1001) as f32 - 500.0) * 1e-3).collect();
    let mut acc = 0.0;
    let start = Instant::now();
    for _ in 0..200 {
        acc += Moments::of(&v).std();
    }
    println!("moments of 575k: {:.3} ms ({acc})", start.elapsed().as_secs_f64() / 200.0 * 1e3);
}
