//! PS written by other muxers (GStreamer `mpegpsmux`, ffmpeg `-f vob`) demuxes into the right
//! frames, and PS written by our muxer demuxes back and is accepted by ffprobe.

mod common;

use bytes::{Bytes, BytesMut};
use common::{clip_frames, events, ffprobe, testdata, video, write};
use vigil_media::ps::{PsDemuxer, PsEvent, PsMuxConfig, PsMuxer};
use vigil_media::rtp::{
    self, PsRtpPacketizer, ReceiverConfig, Reordered, Rfc4571Decoder, RtpReceiver,
};
use vigil_media::{AudioCodec, AudioPacket, VideoCodec, VideoFrame, VideoParameters};

const H264_CLIP: &str = "gen/h264_main_320x180_25fps.h264";
const H265_CLIP: &str = "gen/h265_main_340x190_25fps.h265";

fn demux(data: &[u8], seed: u64) -> (Vec<PsEvent>, PsDemuxer) {
    let mut d = PsDemuxer::default();
    let mut ev = Vec::new();
    for c in common::chunks(data, seed, 1400) {
        d.push(c).unwrap();
        ev.extend(events(&mut d));
    }
    d.flush();
    ev.extend(events(&mut d));
    (ev, d)
}

fn params(ev: &[PsEvent]) -> Vec<&VideoParameters> {
    ev.iter()
        .filter_map(|e| match e {
            PsEvent::Parameters(p) => Some(p),
            _ => None,
        })
        .collect()
}

/// NAL units of a frame, without access unit delimiters (muxers may add them).
fn nals_without_aud(f: &VideoFrame, codec: VideoCodec) -> Vec<Bytes> {
    common::nals(f)
        .into_iter()
        .filter(|n| match codec {
            VideoCodec::H264 => n[0] & 0x1f != 9,
            VideoCodec::H265 => (n[0] >> 1) & 0x3f != 35,
        })
        .collect()
}

#[test]
fn gstreamer_mpegpsmux_h264_with_aac() {
    let (ev, d) = demux(&testdata("gen/gst_mpegpsmux_h264_aac.ps"), 1);
    let frames = video(&ev);
    let clip = clip_frames(H264_CLIP, VideoCodec::H264);
    assert_eq!(frames.len(), 50);
    assert_eq!(clip.len(), 50);
    let keys: Vec<usize> = (0..50).filter(|&i| frames[i].is_key).collect();
    assert_eq!(keys, [0, 25]);
    for (i, (f, c)) in frames.iter().zip(&clip).enumerate() {
        assert_eq!(
            nals_without_aud(f, VideoCodec::H264),
            nals_without_aud(c, VideoCodec::H264),
            "frame {i}"
        );
        assert_eq!(f.pts - frames[0].pts, 3600 * i as i64, "frame {i} pts");
    }
    let p = params(&ev);
    assert_eq!(p.len(), 1);
    assert_eq!((p[0].width(), p[0].height()), (320, 180));
    assert_eq!(p[0].rfc6381_codec(), "avc1.4D400C");
    assert_eq!(p[0].frame_rate(), Some((25, 1)));

    let audio: Vec<&AudioPacket> = ev
        .iter()
        .filter_map(|e| match e {
            PsEvent::Audio(a) => Some(a),
            _ => None,
        })
        .collect();
    assert_eq!(audio.len(), 43);
    assert!(audio
        .iter()
        .all(|a| a.codec == AudioCodec::Aac && a.pts.is_some()));
    let s = d.stats();
    assert_eq!((s.resyncs, s.pts_guessed, s.psm_crc_mismatches), (0, 0, 0));
}

#[test]
fn ffmpeg_vob_h265_without_psm_and_unaligned_pes() {
    // ffmpeg's muxer writes no PSM (codec sniffed from the NAL headers) and starts PES packets
    // in the middle of frames (PTS applies to the first frame beginning in the PES).
    let (ev, d) = demux(&testdata("gen/ffmpeg_vob_h265.ps"), 2);
    assert!(d.psm().is_none());
    assert_eq!(d.video_codec(), Some(VideoCodec::H265));
    let frames = video(&ev);
    let clip = clip_frames(H265_CLIP, VideoCodec::H265);
    assert_eq!(frames.len(), 50);
    let keys: Vec<usize> = (0..50).filter(|&i| frames[i].is_key).collect();
    assert_eq!(keys, [0, 25]);
    for (i, (f, c)) in frames.iter().zip(&clip).enumerate() {
        assert_eq!(common::nals(f), common::nals(c), "frame {i}");
    }
    // ffmpeg puts no PTS on some PES; those frames are extrapolated.
    let pts: Vec<i64> = frames.iter().map(|f| f.pts - frames[0].pts).collect();
    assert_eq!(pts, (0..50).map(|i| i * 3600).collect::<Vec<_>>());
    let p = params(&ev);
    assert_eq!(p.len(), 1);
    assert_eq!(
        (p[0].codec(), p[0].width(), p[0].height()),
        (VideoCodec::H265, 340, 190)
    );
    assert_eq!(p[0].rfc6381_codec(), "hvc1.1.6.L60.90");
    assert_eq!(p[0].frame_rate(), Some((25, 1)));
}

fn mux_clip(frames: &[VideoFrame], codec: VideoCodec, with_audio: bool) -> Bytes {
    let mut m = PsMuxer::new(PsMuxConfig {
        audio: with_audio.then_some(AudioCodec::G711A),
        ..PsMuxConfig::video(codec)
    });
    let mut out = BytesMut::new();
    for f in frames {
        m.mux_video(f, &mut out).unwrap();
        if with_audio {
            let a = AudioPacket {
                codec: AudioCodec::G711A,
                stream_id: 0xC0,
                pts: Some(f.pts),
                data: Bytes::from(vec![0xD5; 320]),
            };
            m.mux_audio(&a, &mut out);
        }
    }
    m.end(&mut out);
    out.freeze()
}

#[test]
fn our_mux_round_trips_through_our_demux() {
    for (clip, codec) in [(H264_CLIP, VideoCodec::H264), (H265_CLIP, VideoCodec::H265)] {
        let frames: Vec<VideoFrame> = clip_frames(clip, codec)
            .into_iter()
            .map(|f| VideoFrame::new(f.pts + 8_589_930_000, f.is_key, f.data))
            .collect();
        // Timestamps start just below the 33-bit wrap: the demuxer extends them.
        let ps = mux_clip(&frames, codec, true);
        for seed in 0..5 {
            let (ev, d) = demux(&ps, seed);
            let got: Vec<VideoFrame> = video(&ev).into_iter().cloned().collect();
            assert_eq!(got.len(), frames.len());
            for (g, f) in got.iter().zip(&frames) {
                assert_eq!((g.is_key, &g.data), (f.is_key, &f.data));
                assert_eq!(g.pts - got[0].pts, f.pts - frames[0].pts);
            }
            assert_eq!(d.stats().audio_packets, 50);
            assert_eq!(d.stats().resyncs, 0);
            let audio_codec = ev.iter().find_map(|e| match e {
                PsEvent::Audio(a) => Some(a.codec),
                _ => None,
            });
            assert_eq!(audio_codec, Some(AudioCodec::G711A));
        }
    }
}

#[test]
fn our_mux_over_rtp_and_rfc4571_round_trips() {
    let frames = clip_frames(H264_CLIP, VideoCodec::H264);
    let mut m = PsMuxer::new(PsMuxConfig::video(VideoCodec::H264));
    let mut pk = PsRtpPacketizer::new(0x0BEB_DFA1, 96, 65_500, 1400);
    let mut tcp_stream = Vec::new();
    for f in &frames {
        let mut ps = BytesMut::new();
        m.mux_video(f, &mut ps).unwrap();
        let mut pkts = Vec::new();
        pk.packetize(&ps, f.pts as u32, &mut pkts);
        for p in pkts {
            tcp_stream.extend_from_slice(&rtp::rfc4571_frame(&p).unwrap());
        }
    }
    let mut tcp = Rfc4571Decoder::new();
    let mut rx = RtpReceiver::new(ReceiverConfig::gb28181(0x0BEB_DFA1));
    let mut d = PsDemuxer::default();
    let mut got = Vec::new();
    for c in common::chunks(&tcp_stream, 9, 3000) {
        tcp.push(c);
        while let Some(p) = tcp.next_packet() {
            rx.receive(p).unwrap();
            while let Some(item) = rx.pop() {
                let Reordered::Packet(p) = item else {
                    panic!("no loss expected")
                };
                d.push(&p.payload).unwrap();
                if p.header.marker {
                    // The marker ends the frame: it is emitted without waiting for the next.
                    d.end_of_access_unit();
                    let ev = events(&mut d);
                    let v = video(&ev);
                    assert_eq!(v.len(), 1, "one frame per marker");
                    got.push(v[0].clone());
                }
            }
        }
    }
    assert_eq!(got, frames);
    let s = rx.reorder_stats();
    assert_eq!((s.lost, s.duplicates), (0, 0));
    assert!(s.delivered > 36, "sequence numbers wrapped past 65535");
}

#[test]
fn ffprobe_accepts_our_ps() {
    let dir = tempfile::tempdir().unwrap();
    for (clip, codec, name, w, h) in [
        (H264_CLIP, VideoCodec::H264, "h264", 320, 180),
        (H265_CLIP, VideoCodec::H265, "hevc", 340, 190),
    ] {
        let frames = clip_frames(clip, codec);
        let path = write(
            dir.path(),
            &format!("{name}.ps"),
            &mux_clip(&frames, codec, false),
        );
        let j = ffprobe(
            &path,
            &[
                "-f",
                "mpeg",
                "-count_frames",
                "-show_streams",
                "-show_format",
            ],
        );
        assert_eq!(j["format"]["format_name"], "mpeg", "{name}");
        let streams = j["streams"].as_array().unwrap();
        assert_eq!(streams.len(), 1, "{name}: {j}");
        let s = &streams[0];
        assert_eq!(s["codec_name"], name);
        assert_eq!(
            (s["width"].as_u64(), s["height"].as_u64()),
            (Some(w), Some(h))
        );
        assert_eq!(s["nb_read_frames"], "50", "{name}");
    }
}

#[test]
fn parameter_sets_are_inserted_for_rtsp_style_frames() {
    // RTSP cameras often send SPS/PPS only in the SDP: frames without them get the ones from
    // the sample entry in front of key frames.
    let frames = clip_frames(H264_CLIP, VideoCodec::H264);
    let params = VideoParameters::from_access_unit(VideoCodec::H264, &frames[0].data)
        .unwrap()
        .unwrap();
    let stripped: Vec<VideoFrame> = frames
        .iter()
        .map(|f| {
            let mut d = BytesMut::new();
            for n in f.nal_units().map(Result::unwrap) {
                if !matches!(n[0] & 0x1f, 7 | 8) {
                    vigil_media::nal::put_avcc_nal(&mut d, n);
                }
            }
            VideoFrame::new(f.pts, f.is_key, d.freeze())
        })
        .collect();
    let mut m = PsMuxer::new(PsMuxConfig::video(VideoCodec::H264));
    m.set_parameters(params.clone());
    let mut out = BytesMut::new();
    for f in &stripped {
        m.mux_video(f, &mut out).unwrap();
    }
    let (ev, _) = demux(&out, 3);
    assert_eq!(params_of(&ev), vec![params]);
    let got = video(&ev);
    assert_eq!(got[0].data, frames[0].data);
    assert_eq!(got[25].data, frames[25].data);
}

fn params_of(ev: &[PsEvent]) -> Vec<VideoParameters> {
    params(ev).into_iter().cloned().collect()
}
