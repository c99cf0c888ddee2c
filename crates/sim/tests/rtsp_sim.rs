//! The simulated RTSP camera against real clients: ffprobe (FFmpeg's RTSP client) over TCP
//! and UDP, and retina (the client our puller is built on).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use retina::client::{PlayOptions, Session, SessionOptions, SetupOptions, Transport};
use retina::codec::{CodecItem, FrameFormat};
use tokio_util::sync::CancellationToken;
use vigil_media::VideoParameters;
use vigil_sim::rtsp::{DemoClip, Fault, SimServer, Stream};

async fn server() -> SimServer {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = SimServer::start(addr, CancellationToken::new())
        .await
        .unwrap();
    for clip in DemoClip::ALL {
        let stream = Stream {
            clip: Arc::new(clip.load().unwrap()),
            fault: Fault::None,
        };
        server.add_stream(&format!("/{}", clip.file_name()), stream);
    }
    server
}

/// Runs ffprobe on `url`; reading stops after about two seconds of packets.
async fn ffprobe(url: &str, transport: &str) -> serde_json::Value {
    let output = tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-rtsp_transport", transport])
        .args([
            "-read_intervals",
            "%+2",
            "-count_packets",
            "-select_streams",
            "v:0",
        ])
        .args([
            "-show_entries",
            "stream=codec_name,width,height,r_frame_rate,nb_read_packets",
        ])
        .args(["-of", "json", url])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(30), output)
        .await
        .expect("ffprobe did not finish within 30 s")
        .unwrap_or_else(|e| {
            panic!("cannot run ffprobe ({e}); install the test tools with scripts/ensure-test-deps")
        });
    assert!(
        output.status.success(),
        "ffprobe {url} over {transport} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn check_ffprobe(transport: &str) {
    let server = server().await;
    for (clip, codec_name, width, height) in [
        (DemoClip::H264_720p, "h264", 1280, 720),
        (DemoClip::H265_720p, "hevc", 1280, 720),
        (DemoClip::H264_360p, "h264", 640, 360),
    ] {
        let url = server.url(&format!("/{}", clip.file_name()));
        let probe = ffprobe(&url, transport).await;
        let stream = &probe["streams"][0];
        assert_eq!(stream["codec_name"], codec_name, "{url}: {probe}");
        assert_eq!(stream["width"], width, "{url}: {probe}");
        assert_eq!(stream["height"], height, "{url}: {probe}");
        assert_eq!(stream["r_frame_rate"], "25/1", "{url}: {probe}");
        let packets: u64 = stream["nb_read_packets"]
            .as_str()
            .and_then(|n| n.parse().ok())
            .unwrap_or_default();
        assert!(
            packets >= 25,
            "{url} over {transport}: {packets} packets in 2 s: {probe}"
        );
    }
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffprobe_reads_every_bundled_clip_over_tcp() {
    check_ffprobe("tcp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffprobe_reads_every_bundled_clip_over_udp() {
    check_ffprobe("udp").await;
}

/// Pulls `count` frames with retina and returns (parameters, frames as (timestamp, key)).
async fn retina_frames(
    url: &str,
    transport: Transport,
    count: usize,
) -> (VideoParameters, Vec<(i64, bool)>) {
    let url = url::Url::parse(url).unwrap();
    let mut session = Session::describe(url, SessionOptions::default())
        .await
        .unwrap();
    session
        .setup(
            0,
            SetupOptions::default()
                .transport(transport)
                .frame_format(FrameFormat::MP4),
        )
        .await
        .unwrap();
    let mut demuxed = session
        .play(PlayOptions::default())
        .await
        .unwrap()
        .demuxed()
        .unwrap();
    let mut frames = Vec::new();
    let mut params = None;
    while frames.len() < count {
        let item = tokio::time::timeout(Duration::from_secs(5), demuxed.next())
            .await
            .expect("no frame within 5 s")
            .expect("stream ended")
            .expect("retina error");
        if let CodecItem::VideoFrame(frame) = item {
            if params.is_none() {
                let Some(retina::codec::ParametersRef::Video(p)) =
                    demuxed.streams()[0].parameters()
                else {
                    panic!("no video parameters after the first frame");
                };
                let entry = p.mp4_sample_entry().build().unwrap();
                params = Some(VideoParameters::from_sample_entry(entry.into()).unwrap());
            }
            // Every frame must be well-formed length-prefixed NAL units.
            let data = bytes::Bytes::from(frame.data().to_vec());
            let nals = vigil_media::VideoFrame::new(0, false, data)
                .nal_units()
                .count();
            assert!(nals > 0);
            // Key frames as vigil-media classifies them (IRAP): retina flags only IDR pictures
            // of H.265, not the CRA pictures x265 puts at every later GOP.
            let is_key = params
                .as_ref()
                .is_some_and(|p: &VideoParameters| p.codec().is_key_frame(frame.data()));
            frames.push((frame.timestamp().timestamp(), is_key));
        }
    }
    (params.unwrap(), frames)
}

async fn check_retina(transport: Transport) {
    let server = server().await;
    for clip in [DemoClip::H264_720p, DemoClip::H265_720p] {
        let loaded = clip.load().unwrap();
        let url = server.url(&format!("/{}", clip.file_name()));
        let (params, frames) = retina_frames(&url, transport.clone(), 60).await;
        assert_eq!(params.codec(), clip.codec());
        assert_eq!((params.width(), params.height()), (1280, 720));
        // Not compared whole: retina's `avcC` omits the optional High-profile extension
        // bytes that vigil-media writes, so the sample entries differ byte for byte.
        assert_eq!(params.rfc6381_codec(), loaded.params.rfc6381_codec());
        assert_eq!(params.frame_rate(), loaded.params.frame_rate());
        assert_eq!(params.parameter_sets(), loaded.params.parameter_sets());
        assert!(
            frames[0].1,
            "the first frame retina returns is the clip's key frame"
        );
        let keys: Vec<usize> = (0..frames.len()).filter(|&i| frames[i].1).collect();
        assert_eq!(keys, [0, 25, 50], "{clip:?}");
        for pair in frames.windows(2) {
            assert_eq!(pair[1].0 - pair[0].0, 3600, "25 fps at 90 kHz");
        }
    }
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retina_pulls_key_frames_and_parameters_over_tcp() {
    check_retina(Transport::Tcp(Default::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retina_pulls_key_frames_and_parameters_over_udp() {
    check_retina(Transport::Udp(Default::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_path_is_not_found_and_frames_are_counted() {
    let server = server().await;
    let url = url::Url::parse(&server.url("/nope")).unwrap();
    let Err(err) = Session::describe(url, SessionOptions::default()).await else {
        panic!("DESCRIBE of an unknown path succeeded");
    };
    assert_eq!(err.status_code(), Some(404));
    let before = server.frames_sent();
    let _ = retina_frames(&server.url("/demo-360p.h264"), Transport::default(), 10).await;
    assert!(server.frames_sent() >= before + 10);
    assert!(server.sessions() >= 2);
}
