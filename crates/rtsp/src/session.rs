//! One RTSP session with retina: open it (DESCRIBE, SETUP, PLAY under timeouts), then read
//! frames under the stall and key-frame watchdogs. Shared by the puller and the access test.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use retina::client::{Demuxed, PlayOptions, Session, SessionOptions, SetupOptions};
use retina::codec::{CodecItem, FrameFormat, ParametersRef};
use tokio_util::sync::CancellationToken;
use vigil_media::VideoCodec;
use vigil_store::SourceEvent;

use crate::error::{ErrorContext, PullError, Stage};
use crate::ingest::{Ingest, RawFrame};
use crate::source::{CameraSource, Redactor, Transport};

/// The facts about a source that error classification needs, owned.
#[derive(Debug, Clone)]
pub(crate) struct SourceFacts {
    authority: String,
    path: String,
    user: Option<String>,
    redactor: Redactor,
}

impl SourceFacts {
    pub(crate) fn new(source: &CameraSource) -> Self {
        Self {
            authority: source.url.authority(),
            path: source.url.path().to_owned(),
            user: source.credentials.as_ref().map(|c| c.username().to_owned()),
            redactor: source.redactor(),
        }
    }

    fn at(&self, stage: Stage) -> ErrorContext<'_> {
        ErrorContext {
            stage,
            authority: &self.authority,
            path: &self.path,
            user: self.user.as_deref(),
            redactor: &self.redactor,
        }
    }
}

/// A playing session, reduced to its one video stream.
pub(crate) struct Opened {
    demuxed: Demuxed,
    stream: usize,
    pub(crate) codec: VideoCodec,
}

/// Policy `FirstSupportedVideoStream`: record the first H.264/H.265 video stream of the SDP.
/// Cameras list audio, ONVIF metadata (`application`) and sometimes a second video stream;
/// only one video stream is set up, so no bandwidth is spent on the others.
/// `streams` are `(media, encoding name)` in SDP order.
fn pick_video(streams: &[(&str, &str)]) -> Result<(usize, VideoCodec), PullError> {
    let mut unsupported = None;
    for (i, (media, encoding)) in streams.iter().enumerate() {
        if !media.eq_ignore_ascii_case("video") {
            continue;
        }
        match encoding.to_ascii_lowercase().as_str() {
            "h264" => return Ok((i, VideoCodec::H264)),
            "h265" => return Ok((i, VideoCodec::H265)),
            other => {
                unsupported.get_or_insert_with(|| other.to_owned());
            }
        }
    }
    if let Some(encoding) = unsupported {
        return Err(PullError::UnsupportedCodec { encoding });
    }
    let offered: Vec<String> = streams
        .iter()
        .map(|(media, encoding)| format!("{media}/{encoding}"))
        .collect();
    Err(PullError::NoVideoStream {
        offered: if offered.is_empty() {
            "nothing".to_owned()
        } else {
            offered.join(", ")
        },
    })
}

async fn limited<T>(
    stage: Stage,
    limit: Duration,
    facts: &SourceFacts,
    fut: impl std::future::Future<Output = Result<T, retina::Error>>,
) -> Result<T, PullError> {
    match tokio::time::timeout(limit, fut).await {
        Err(_) => Err(PullError::Timeout {
            stage,
            after: Some(limit),
        }),
        Ok(Err(e)) => Err(facts.at(stage).classify(&e)),
        Ok(Ok(v)) => Ok(v),
    }
}

/// DESCRIBE, SETUP (the video stream only), PLAY.
pub(crate) async fn open(
    source: &CameraSource,
    facts: &SourceFacts,
    user_agent: &str,
) -> Result<Opened, PullError> {
    let options = SessionOptions::default()
        .creds(source.credentials.as_ref().map(|c| c.to_retina()))
        .user_agent(user_agent.to_owned());
    let t = source.timeouts;
    let mut session = limited(
        Stage::Describe,
        t.describe,
        facts,
        Session::describe(source.url.as_url().clone(), options),
    )
    .await?;
    let offered: Vec<(&str, &str)> = session
        .streams()
        .iter()
        .map(|s| (s.media(), s.encoding_name()))
        .collect();
    let (stream, codec) = pick_video(&offered)?;
    let transport = match source.transport {
        Transport::Tcp => retina::client::Transport::Tcp(Default::default()),
        Transport::Udp => retina::client::Transport::Udp(Default::default()),
    };
    // MP4 framing: 4-byte length prefixes, parameter sets out of band (in the sample entry).
    let setup = SetupOptions::default()
        .transport(transport)
        .frame_format(FrameFormat::MP4);
    limited(Stage::Setup, t.request, facts, session.setup(stream, setup)).await?;
    let playing = limited(
        Stage::Play,
        t.request,
        facts,
        session.play(PlayOptions::default()),
    )
    .await?;
    let demuxed = playing
        .demuxed()
        .map_err(|e| facts.at(Stage::Play).classify(&e))?;
    Ok(Opened {
        demuxed,
        stream,
        codec,
    })
}

/// The watchdogs of a session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Watchdogs {
    /// No frame at all for this long: stall.
    pub stall: Duration,
    /// No key frame this long after PLAY: the camera is misconfigured (or the stream is
    /// broken in a way that never lets a decoder start).
    pub key_frame: Duration,
}

/// How a session ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamEnd {
    Cancelled,
    /// The frame callback had enough (access test).
    Done,
}

/// What the frame callback wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Stop,
}

/// Reads frames until an error, cancellation, or `on_frame` says stop. `on_frame` receives
/// every frame's event (`None` when dropped before the first key frame).
pub(crate) async fn stream(
    opened: &mut Opened,
    ingest: &mut Ingest,
    facts: &SourceFacts,
    watchdogs: Watchdogs,
    cancel: &CancellationToken,
    mut on_frame: impl FnMut(Option<SourceEvent>, &Ingest) -> Result<Flow, PullError>,
) -> Result<StreamEnd, PullError> {
    let started = tokio::time::Instant::now();
    let key_deadline = started + watchdogs.key_frame;
    let mut stall_deadline = started + watchdogs.stall;
    // One timer, moved as frames arrive (cheaper than a new timer per frame).
    let timer = tokio::time::sleep_until(started);
    tokio::pin!(timer);
    loop {
        let mut deadline = stall_deadline;
        if !ingest.seen_key() {
            deadline = deadline.min(key_deadline);
        }
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        let item = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Ok(StreamEnd::Cancelled),
            _ = &mut timer => {
                let now = tokio::time::Instant::now();
                if !ingest.seen_key() && now >= key_deadline {
                    return Err(PullError::NoKeyFrame { waited: watchdogs.key_frame });
                }
                return Err(PullError::Stall { after: watchdogs.stall });
            }
            item = opened.demuxed.next() => item,
        };
        let frame = match item {
            None => {
                return Err(PullError::Disconnected {
                    detail: "the camera ended the stream".into(),
                })
            }
            Some(Err(e)) => return Err(facts.at(Stage::Streaming).classify(&e)),
            Some(Ok(CodecItem::VideoFrame(f))) if f.stream_id() == opened.stream => f,
            Some(Ok(_)) => continue,
        };
        stall_deadline = tokio::time::Instant::now() + watchdogs.stall;
        let received_at = crate::clock::now();
        if frame.has_new_parameters() || ingest.params().is_none() {
            let entry = sample_entry(&opened.demuxed, opened.stream)?;
            ingest.set_sample_entry(entry)?;
        }
        let raw = RawFrame {
            pts: frame.timestamp().timestamp(),
            loss: frame.loss(),
            data: Bytes::from(frame.into_data()),
        };
        let event = ingest.frame(raw, received_at, Instant::now())?;
        if on_frame(event, ingest)? == Flow::Stop {
            return Ok(StreamEnd::Done);
        }
    }
}

/// The stream's current MP4 sample entry, built by retina from its parameters.
fn sample_entry(demuxed: &Demuxed, stream: usize) -> Result<Bytes, PullError> {
    let params = demuxed.streams().get(stream).and_then(|s| s.parameters());
    let Some(ParametersRef::Video(params)) = params else {
        return Err(PullError::BadData {
            detail: "no codec parameters (SPS/PPS) in the SDP or in band".into(),
        });
    };
    params
        .mp4_sample_entry()
        .build()
        .map(Bytes::from)
        .map_err(|e| PullError::BadData {
            detail: format!(
                "cannot build an MP4 sample entry from the camera's parameters: {}",
                e.to_string().lines().next().unwrap_or_default()
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_supported_video_stream_is_picked() {
        let sdp = [
            ("audio", "PCMA"),
            ("application", "vnd.onvif.metadata"),
            ("video", "H265"),
        ];
        assert_eq!(pick_video(&sdp).unwrap(), (2, VideoCodec::H265));
        let two = [("video", "JPEG"), ("video", "h264")];
        assert_eq!(pick_video(&two).unwrap(), (1, VideoCodec::H264));
    }

    #[test]
    fn other_video_codecs_are_unsupported() {
        let err = pick_video(&[("audio", "PCMU"), ("video", "JPEG")]).unwrap_err();
        assert_eq!(
            err,
            PullError::UnsupportedCodec {
                encoding: "jpeg".into()
            }
        );
    }

    #[test]
    fn no_video_names_what_was_offered() {
        let err = pick_video(&[("audio", "PCMA")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the camera offers no video stream (it offers: audio/PCMA)"
        );
        assert!(pick_video(&[]).unwrap_err().to_string().contains("nothing"));
    }
}
