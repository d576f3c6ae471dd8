//! The one distinction the command line needs from errors: bad input (a
//! file, a setting, an argument: exit 2) or a failure while running
//! (exit 1).

/// An error in what the user gave: a data file, a setting, a path.
/// Wrapped around an error's message so that the command line can exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// Makes an [`InputError`] from anything printable.
pub fn input(message: impl std::fmt::Display) -> anyhow::Error {
    InputError(message.to_string()).into()
}

/// `e` and its causes as one line (`outer: inner: ...`, newlines folded):
/// how the command line, a sweep's failed point and the benchmarks say an
/// error.
pub fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}

/// A setting that cannot run: the setting's path (`optimizer.lr`,
/// `variants[1].model.residual.blocks`) and what is wrong with it, kept
/// apart so that the file's line of the setting can be found from the path
/// (`toml_lines`) without reading the message back. Shown as
/// `<key>: <message>`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct SettingError {
    /// The setting's path.
    pub key: String,
    /// What is wrong, in one line.
    pub message: String,
}

impl SettingError {
    /// The complaint `message` about setting `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        SettingError { key: key.into(), message: message.into() }
    }

    /// The same complaint about the setting at `prefix.<key>` (a table's
    /// settings checked on their own, then placed in the file).
    pub fn under(self, prefix: &str) -> Self {
        SettingError { key: format!("{prefix}.{}", self.key), ..self }
    }
}

impl From<SettingError> for InputError {
    fn from(e: SettingError) -> Self {
        InputError(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_and_its_causes_are_one_line() {
        let e = anyhow::anyhow!("expected 784 pixels\ngot 3").context("data/train.idx");
        assert_eq!(one_line(&e), "data/train.idx: expected 784 pixels got 3");
    }
}
