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
