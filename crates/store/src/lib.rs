//! The segmented on-disk recording store: crash-safe writer, recovery, retention and time-range reader.

pub mod ingest;

pub use ingest::SourceEvent;
