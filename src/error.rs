//! Errors every parser returns as values (house rule 2): never a panic, never a stray
//! exception. `NeedMore` is not an error for streaming parsers: it is "call again with more".

use std::fmt;

/// Wire data that is not (or no longer) the protocol a parser expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl DecodeError {
    pub fn new(msg: impl Into<String>) -> Self {
        DecodeError(msg.into())
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

/// A capture that cannot be read further: the path, the byte offset of the damage, why.
/// Displayed exactly as Python's `CaptureError`: `path: offset N: reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureError {
    pub path: String,
    pub offset: u64,
    pub reason: String,
}

impl CaptureError {
    pub fn new(path: impl Into<String>, offset: u64, reason: impl Into<String>) -> Self {
        CaptureError {
            path: path.into(),
            offset,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: offset {}: {}", self.path, self.offset, self.reason)
    }
}

impl std::error::Error for CaptureError {}
