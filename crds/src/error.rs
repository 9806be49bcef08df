//! Errors of this crate (problems inside the configuration are `Diagnostic`s, not errors).

use std::path::PathBuf;

/// Failure to read the configuration at all.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// The path given could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The path is neither a regular file nor a directory (e.g. a socket).
    #[error("{} is neither a file nor a directory", path.display())]
    NotFileOrDirectory { path: PathBuf },
}

impl CrdError {
    /// Whether retrying may help. A missing path, a permission problem or bad data will not
    /// change by itself (definitive); other I/O failures (interrupted reads, timeouts of network
    /// file systems, EIO) may (transient).
    pub fn is_transient(&self) -> bool {
        match self {
            CrdError::Io { source, .. } => !matches!(
                source.kind(),
                std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::PermissionDenied
                    | std::io::ErrorKind::InvalidData
                    | std::io::ErrorKind::InvalidInput
                    | std::io::ErrorKind::NotADirectory
                    | std::io::ErrorKind::IsADirectory
            ),
            CrdError::NotFileOrDirectory { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let missing = CrdError::Io {
            path: "x".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert!(!missing.is_transient());
        let flaky = CrdError::Io {
            path: "x".into(),
            source: std::io::Error::from(std::io::ErrorKind::Interrupted),
        };
        assert!(flaky.is_transient());
    }
}
