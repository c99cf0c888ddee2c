//! Policy `PesHeaderWithoutMarkerByte` of the PS demuxer: program streams in the PES header
//! layout of the `gb28181-rs` 0.14 device library (which leaves out the flags byte carrying
//! the `'10'` marker and pads with `0x00` after the timestamps) demux into exactly the frames
//! of the standard stream, in any chunking; standard streams are read as before.

mod common;

use bytes::BytesMut;
use common::{clip_frames, events, video};
use proptest::prelude::*;
use vigil_media::ps::{PsDemuxConfig, PsDemuxer, PsEvent, PsMuxConfig, PsMuxer};
use vigil_media::{VideoCodec, VideoFrame};

/// The first bytes of a PS frame muxed by gb28181-rs 0.14.1 `mux_h264_to_ps` (key frame of
/// the 720p demo clip, PTS = DTS = 0), captured while developing the GB/T 28181 server
/// (`crates/gb28181/testdata/interop/SOURCES.md`): pack header, its 11-byte PSM, then the
/// broken PES header and the start of the SPS.
const GB28181_RS_KEY_FRAME_HEAD: &[u8] = &[
    0x00, 0x00, 0x01, 0xba, 0x44, 0x00, 0x04, 0x00, 0x04, 0x01, 0x00, 0x9c, 0x43, 0xf8, 0x00, 0x00,
    0x01, 0xbb, 0x00, 0x0b, 0x01, 0x00, 0x00, 0x00, 0x04, 0x1b, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x01, 0xe0, 0x1b, 0xc9, 0xc0, 0x0a, 0x31, 0x00, 0x01, 0x00, 0x01, 0x11, 0x00, 0x01, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x67, 0x64, 0x00, 0x1f,
];

const H264_CLIP: &str = "gen/h264_main_320x180_25fps.h264";

/// Our muxer's PS for the H.264 test clip (standard PES headers).
fn standard_ps() -> (Vec<VideoFrame>, Vec<u8>) {
    let frames = clip_frames(H264_CLIP, VideoCodec::H264);
    let mut mux = PsMuxer::new(PsMuxConfig::video(VideoCodec::H264));
    let mut out = BytesMut::new();
    for f in &frames {
        mux.mux_video(f, &mut out).unwrap();
    }
    (frames, out.to_vec())
}

/// Rewrites every video PES header of a standard program stream into the gb28181-rs layout:
/// `80 flags len [ts…]` becomes `flags len [ts…] 00`, same length. Walks the units by their
/// lengths (so payload bytes are never taken for headers). Returns the stream and how many
/// headers were rewritten.
fn to_gb28181_rs_layout(ps: &[u8]) -> (Vec<u8>, u64) {
    let mut out = ps.to_vec();
    let mut i = 0;
    let mut n = 0;
    while i + 14 <= out.len() {
        assert_eq!(&out[i..i + 3], &[0, 0, 1], "unit start at {i}");
        let id = out[i + 3];
        let len = match id {
            0xBA => 14 + usize::from(out[i + 13] & 0x07),
            0xB9 => 4,
            _ => 6 + usize::from(u16::from_be_bytes([out[i + 4], out[i + 5]])),
        };
        if i + len > out.len() {
            break;
        }
        if (0xE0..=0xEF).contains(&id) {
            let h = i + 6;
            assert_eq!(out[h] >> 6, 0b10, "standard header at {i}");
            let data_len = usize::from(out[h + 2]);
            assert!(matches!(data_len, 0 | 5 | 10), "no stuffing in our muxer");
            out.copy_within(h + 1..h + 3 + data_len, h);
            out[h + 2 + data_len] = 0;
            n += 1;
        }
        i += len;
    }
    (out, n)
}

fn demux_in_chunks(data: &[u8], seed: u64, max: usize) -> (Vec<PsEvent>, PsDemuxer) {
    let mut d = PsDemuxer::default();
    let mut ev = Vec::new();
    for c in common::chunks(data, seed, max) {
        d.push(c).unwrap();
        ev.extend(events(&mut d));
    }
    d.flush();
    ev.extend(events(&mut d));
    (ev, d)
}

#[test]
fn quirk_pes_header_without_marker_byte_gb28181_rs() {
    // The captured bytes: the header is read with PTS = DTS = 0 and the SPS follows it.
    let mut d = PsDemuxer::default();
    d.push(GB28181_RS_KEY_FRAME_HEAD).unwrap();
    let s = d.stats();
    assert_eq!(s.packs, 1);
    assert_eq!(s.pes_without_marker_byte, 1);
    assert_eq!(s.resyncs, 0, "{:?}", events(&mut d));

    // A whole stream in that layout gives the frames of the standard one, in any chunking.
    let (frames, standard) = standard_ps();
    let (broken, rewritten) = to_gb28181_rs_layout(&standard);
    assert!(rewritten >= frames.len() as u64);
    assert_ne!(broken, standard);
    let (want, _) = demux_in_chunks(&standard, 1, 1400);
    for (seed, max) in [(1, 1), (2, 3), (3, 19), (4, 1400), (5, 65_536)] {
        let (got, d) = demux_in_chunks(&broken, seed, max);
        assert_eq!(video(&got), video(&want), "chunks of at most {max}");
        assert_eq!(video(&got).len(), frames.len());
        let s = d.stats();
        assert_eq!(s.pes_without_marker_byte, rewritten);
        assert_eq!(s.resyncs, 0);
    }

    // Without the policy the stream is not read right (headers with PTS and DTS fail the
    // marker check; PTS-only ones, whose first byte happens to be 0x80, are misread).
    let mut strict = PsDemuxer::new(PsDemuxConfig {
        accept_pes_without_marker_byte: false,
        max_consecutive_bad_chunks: u32::MAX,
        ..PsDemuxConfig::default()
    });
    for c in broken.chunks(1400) {
        strict.push(c).unwrap();
    }
    strict.flush();
    let strict_events = events(&mut strict);
    assert_ne!(video(&strict_events), video(&want));
    let mut strict = PsDemuxer::new(PsDemuxConfig {
        accept_pes_without_marker_byte: false,
        ..PsDemuxConfig::default()
    });
    strict.push(GB28181_RS_KEY_FRAME_HEAD).unwrap();
    assert_eq!(strict.stats().resyncs, 1, "the captured header is refused");
}

#[test]
fn standard_streams_pass_untouched() {
    let (frames, standard) = standard_ps();
    let (ev, d) = demux_in_chunks(&standard, 7, 1400);
    assert_eq!(video(&ev).len(), frames.len());
    assert_eq!(d.stats().pes_without_marker_byte, 0);
    assert_eq!(d.stats().resyncs, 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Chunking never changes what comes out of a gb28181-rs layout stream, also with bytes
    /// overwritten (the policy must not make the demuxer depend on where a chunk ends).
    #[test]
    fn gb28181_rs_layout_is_chunking_independent(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        seed in any::<u64>(),
        max in 1usize..3000,
    ) {
        let (_, standard) = standard_ps();
        let (mut data, _) = to_gb28181_rs_layout(&standard[..standard.len().min(60_000)]);
        for (i, v) in edits {
            let at = i.index(data.len());
            data[at] = v;
        }
        let run = |seed: u64, max: usize| {
            let mut d = PsDemuxer::new(PsDemuxConfig {
                max_consecutive_bad_chunks: u32::MAX,
                ..PsDemuxConfig::default()
            });
            let mut ev = Vec::new();
            for c in common::chunks(&data, seed, max) {
                let _ = d.push(c);
                ev.extend(events(&mut d));
            }
            d.flush();
            ev.extend(events(&mut d));
            (video(&ev).into_iter().cloned().collect::<Vec<_>>(), d.stats().pes_without_marker_byte)
        };
        let whole = run(0, data.len().max(1));
        let chunked = run(seed, max);
        prop_assert_eq!(whole, chunked);
    }
}
