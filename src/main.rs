fn main() {
    let root = std::path::PathBuf::from(std::env::args().nth(1).unwrap());
    let d = initscope::data::Dataset::load(initscope::data::DatasetName::Mnist, &root).unwrap();
    println!("{} {}", d.train.count, d.test.count);
}
