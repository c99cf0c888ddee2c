//! SIP parse and access errors.

use thiserror::Error;

use super::header::HeaderName;

/// Why a SIP message or one of its headers could not be used. Every variant names the header or
/// line involved; values are truncated so that a hostile peer cannot blow up the logs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SipError {
    /// Nothing but line ends.
    #[error("empty SIP message")]
    Empty,
    /// The start line is neither `METHOD uri SIP/2.0` nor `SIP/2.0 code reason`.
    #[error("invalid start line {line:?}: {reason}")]
    InvalidStartLine {
        /// The line (lossy, truncated).
        line: String,
        /// Why.
        reason: &'static str,
    },
    /// No empty line ends the header block.
    #[error("header block not terminated by an empty line ({len} bytes seen)")]
    UnterminatedHeaders {
        /// Bytes examined.
        len: usize,
    },
    /// More header lines than the configured limit.
    #[error("more than {limit} header lines")]
    TooManyHeaders {
        /// The limit.
        limit: usize,
    },
    /// A header that must be present is missing.
    #[error("missing {0} header")]
    MissingHeader(HeaderName),
    /// A header value that does not parse.
    #[error("invalid {name} header {value:?}: {reason}")]
    InvalidHeader {
        /// The header.
        name: HeaderName,
        /// Its value (lossy, truncated).
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// A URI that does not parse.
    #[error("invalid URI {uri:?}: {reason}")]
    InvalidUri {
        /// The URI (truncated).
        uri: String,
        /// Why.
        reason: &'static str,
    },
    /// Two `Content-Length` headers that disagree.
    #[error("conflicting Content-Length headers {first} and {second}")]
    ConflictingContentLength {
        /// First value.
        first: usize,
        /// Second value.
        second: usize,
    },
    /// A body larger than the configured limit.
    #[error("body of {len} bytes exceeds the limit of {limit}")]
    BodyTooLarge {
        /// Announced length.
        len: usize,
        /// The limit.
        limit: usize,
    },
}
