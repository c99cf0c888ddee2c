//! RTSP puller (retina): one supervised task per camera feeding the segment store.
//!
//! - [`PullerRegistry`] starts, stops and restarts pullers by camera ID and lists their
//!   [`PullerState`]s; [`spawn`] runs one puller without a registry.
//! - Each puller opens the camera ([`CameraSource`]: URL without credentials, optional
//!   [`Credentials`] for Basic/Digest, TCP or UDP, timeouts), sends the stream's frames to
//!   the caller's bounded `mpsc` channel as [`vigil_store::SourceEvent`]s, and on any
//!   failure sends `Interrupted`, publishes `Retrying` with a classified [`PullError`] and
//!   reconnects with exponential backoff and jitter ([`BackoffPolicy`]).
//! - [`probe`] is the access test (接入检测): a few seconds of video checked against an
//!   [`HdRequirement`], reported as a serialisable [`AccessTestReport`].
//!
//! # Events
//! One channel per camera (events do not name their camera). `params` is one `Arc` per
//! parameter change, built with `VideoParameters::from_sample_entry` from retina's sample
//! entry; `received_at` is the wall clock when the frame's last packet was read; frames before
//! a session's first key frame are dropped and counted. A slow consumer never blocks the
//! socket read: frames are dropped up to the next key frame, behind an `Interrupted` (policy
//! `DropToNextKeyFrame` in the `sink` module), so memory is bounded by the channel capacity.
//! `Interrupted` is sent only when frames went out since the last one, so a camera that is
//! refused every minute does not flood the store; it is dated at the last frame that went
//! out (a stall is noticed seconds later), or at the first dropped frame. Size each channel
//! for a couple of seconds of frames (e.g. 64–256): the store's occasional pauses are
//! absorbed, and a longer stall of the store costs a GOP, not memory.
//!
//! # Camera quirk policies (each tested where it is defined)
//! `SecretQueryKeys` (source), `FirstSupportedVideoStream` (session), `StartAtKeyFrame`,
//! `IrapIsKey`, `ClockJumpDetection` (ingest), `DropToNextKeyFrame` (sink),
//! `AuthFailureWaitsLongest` (backoff), `RotatedSensorIsHd` (probe).
//!
//! Credentials never reach a log, a state or a report: [`RtspUrl`] holds no user
//! information and masks secret query values when shown, [`Credentials`] has no `Display` or
//! `Serialize`, and third-party error messages are scrubbed of the password before use.

mod backoff;
mod clock;
mod error;
mod ingest;
mod probe;
mod puller;
mod registry;
mod session;
mod sink;
mod source;
mod state;

pub use backoff::BackoffPolicy;
pub use error::{ErrorKind, PullError, Stage};
pub use ingest::{ClockJump, SessionCounters};
pub use probe::{
    probe, probe_until, AccessFailure, AccessTestReport, FailureKind, HdRequirement, ProbeOptions,
};
pub use puller::{spawn, PullerHandle, PullerOptions};
pub use registry::{PullerRegistry, RegistryError};
pub use source::{
    is_secret_query_key, CameraSource, Credentials, RtspUrl, Timeouts, Transport, UrlError,
};
pub use state::{PullerState, StopReason, Streaming};
