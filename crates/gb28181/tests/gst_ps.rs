//! PS produced by another muxer: GStreamer's `mpegpsmux` (x264 from `videotestsrc`, 100 frames,
//! 25 fps), cut into one RTP frame per video PES (with the pack/system headers and PSM that
//! precede it), packetized with our `PsRtpPacketizer` and sent over UDP to a
//! media session (`server::media::run_session`, the task the server runs per channel). Every
//! frame comes out, ffprobe reads the fMP4 we write from them, and stopping the session ends
//! the recording interval with `Interrupted`.

mod common;

use std::time::Duration;

use common::*;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use vigil_gb28181::server::media::{
    run_session, MediaSocket, SessionConfig, SessionControl, SessionCounters,
};
use vigil_gb28181::server::ChannelKey;
use vigil_media::rtp::PsRtpPacketizer;
use vigil_media::VideoCodec;
use vigil_store::SourceEvent;

const FRAMES: usize = 100;

fn gst_ps(dir: &std::path::Path) -> Vec<u8> {
    let out = dir.join("gst.ps");
    let status = std::process::Command::new("gst-launch-1.0")
        .args([
            "-q",
            "videotestsrc",
            &format!("num-buffers={FRAMES}"),
            "!",
            "video/x-raw,format=I420,width=640,height=360,framerate=25/1",
            "!",
            "x264enc",
            "key-int-max=25",
            "bframes=0",
            "tune=zerolatency",
            "!",
            "h264parse",
            "!",
            "mpegpsmux",
            "!",
            "filesink",
        ])
        .arg(format!("location={}", out.display()))
        .status()
        .expect("gst-launch-1.0 runs (install it with scripts/ensure-test-deps)");
    assert!(status.success(), "gst-launch failed: {status}");
    std::fs::read(out).unwrap()
}

/// Splits a program stream into one piece per video PES, each starting with the pack header
/// (and system header / PSM) that precedes it, if any. `mpegpsmux` writes a pack header only
/// now and then, and one PES per access unit.
fn frames_of_ps(ps: &[u8]) -> Vec<&[u8]> {
    let at = |id: u8| -> Vec<usize> {
        ps.windows(4)
            .enumerate()
            .filter(|(_, w)| *w == [0, 0, 1, id])
            .map(|(i, _)| i)
            .collect()
    };
    let pes = at(0xe0);
    let packs = at(0xba);
    let mut cuts = Vec::new();
    let mut prev = 0;
    for &s in &pes {
        let cut = packs
            .iter()
            .copied()
            .find(|&p| p >= prev && p < s)
            .unwrap_or(s);
        cuts.push(cut);
        prev = s + 4;
    }
    cuts[0] = 0;
    cuts.iter()
        .enumerate()
        .map(|(k, &c)| &ps[c..cuts.get(k + 1).copied().unwrap_or(ps.len())])
        .collect()
}

#[tokio::test]
async fn gstreamer_mpegpsmux_output_demuxes_into_every_frame() {
    init_logging();
    let dir = tempfile::tempdir().unwrap();
    let ps = gst_ps(dir.path());
    let packs = frames_of_ps(&ps);
    assert_eq!(packs.len(), FRAMES, "one PES per frame");

    let rx_sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = rx_sock.local_addr().unwrap();
    let ssrc = 0x0BEB_DFA1;
    let (sink, mut events) = mpsc::channel(1024);
    let (control, stop_tx, _notes) = SessionControl::new();
    let counters = SessionCounters::new();
    let key = ChannelKey {
        device: "34020000001320000001".parse().unwrap(),
        channel: "34020000001310000001".parse().unwrap(),
    };
    let session = tokio::spawn(run_session(
        MediaSocket::Udp(rx_sock),
        SessionConfig {
            key,
            ssrc,
            no_rtp_timeout: Duration::from_secs(5),
        },
        sink,
        counters.clone(),
        control,
    ));

    let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut rtp = PsRtpPacketizer::new(ssrc, 96, 1000, 1400);
    let mut out = Vec::new();
    let mut sent = 0;
    for (i, p) in packs.iter().enumerate() {
        out.clear();
        rtp.packetize(p, (i as u32) * 3600, &mut out);
        for pkt in &out {
            tx.send_to(pkt, to).await.unwrap();
            sent += 1;
            if sent % 64 == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    }
    eventually(Duration::from_secs(5), "frames demuxed", || {
        counters.channel.snapshot().frames as usize >= FRAMES - 1
    })
    .await;
    stop_tx.send("test over".into()).unwrap();
    let end = session.await.unwrap();
    assert!(!end.failure, "stopped, not failed: {}", end.reason);
    let mut evs = Vec::new();
    while let Ok(e) = events.try_recv() {
        evs.push(e);
    }
    assert!(
        matches!(evs.last(), Some(SourceEvent::Interrupted { reason, .. }) if reason == "test over"),
        "the session ends the recording interval"
    );
    let (params, frames) = frames_of(&evs).unwrap();
    assert_eq!(
        frames.len(),
        FRAMES,
        "every frame, the last one flushed at the stop"
    );
    assert_eq!(params.codec(), VideoCodec::H264);
    assert_eq!((params.width(), params.height()), (640, 360));
    assert!(frames[0].is_key);
    assert!(
        frames.iter().filter(|f| f.is_key).count() >= FRAMES / 25,
        "a key frame at least every 25"
    );
    for w in frames.windows(2) {
        assert_eq!(w[1].pts - w[0].pts, 3600, "25 fps PTS from the PES headers");
    }
    let c = counters.channel.snapshot();
    assert_eq!((c.rtp_lost, c.ps_corrupt, c.rtp_ssrc_mismatches), (0, 0, 0));
    assert_eq!(c.rtp_packets, sent as u64);
    let path = dir.path().join("gst.mp4");
    write_fmp4(&path, &params, &frames);
    let (name, w, h, n) = ffprobe(&path);
    assert_eq!((name.as_str(), w, h, n), ("h264", 640, 360, FRAMES as u64));
}
