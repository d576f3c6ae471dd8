//! File writing that never leaves a half-written file behind.

use anyhow::{Context, Result};
use std::path::Path;

/// Writes `bytes` to `path` atomically: to a temporary file in the same
/// directory first, flushed, then renamed over `path`. A reader sees the old
/// file or the new one, never a mixture, even if the process is killed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .with_context(|| format!("{}: cannot create a temporary file", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_data())
        .with_context(|| format!("{}: cannot write", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // tempfile creates 0600; records are ordinary files for other tools.
        let _ = tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644));
    }
    tmp.persist(path).with_context(|| format!("{}: cannot write", path.display()))?;
    Ok(())
}
