//! vigil-media throughput: PS demux, fMP4 fragment writing, fMP4 segment walking.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-media cargo bench -p vigil-media --bench media`
//!
//! The PS input imitates a Hikvision 1080p stream at ~4 Mbit/s: a pack header per frame,
//! system header + PSM before key frames, SPS/PPS/SEI in front of IDR frames, frames split
//! into ≤ 64 KiB PES, a 0xBD private PES after each video frame and an AAC PES every 40 ms,
//! fed in 1400-byte chunks (one RTP payload each). Slice data is pseudo-random with the
//! occasional zero byte (no start-code emulation), like CABAC output.

use std::hint::black_box;

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vigil_media::fmp4::{init_segment, walk, FragmentBuilder, WalkOptions};
use vigil_media::ps::{PsDemuxer, PsEvent, PsMuxConfig, PsMuxer};
use vigil_media::{AudioCodec, AudioPacket, VideoCodec, VideoFrame, VideoParameters};

/// SPS/PPS of a Hikvision IPC (2560x1440 Main), from the SRS vectors.
const SPS: &[u8] = &[
    0x67, 0x4d, 0x00, 0x32, 0x9d, 0xa8, 0x0a, 0x00, 0x2d, 0x69, 0xb8, 0x08, 0x08, 0x0a, 0x00, 0x00,
    0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x65, 0x08,
];
const PPS: &[u8] = &[0x68, 0xee, 0x3c, 0x80];
const SEI: &[u8] = &[0x06, 0xe5, 0x01, 0xfb, 0x80];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Slice payload: random bytes, a zero now and then but never two in a row.
    fn slice(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n);
        let mut prev_zero = false;
        while v.len() < n {
            let x = self.next();
            for b in x.to_le_bytes() {
                let b = if b == 0 && prev_zero { 0x55 } else { b };
                prev_zero = b == 0;
                v.push(b);
            }
        }
        v.truncate(n);
        v
    }
}

/// Two seconds of 25 fps video per GOP: a 160 KB IDR and 49 P frames of 16 KB (~4 Mbit/s).
fn frames(gops: usize) -> Vec<VideoFrame> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::new();
    for i in 0..gops * 50 {
        let key = i % 50 == 0;
        let mut d = BytesMut::new();
        if key {
            for nal in [SPS, PPS, SEI] {
                d.put_u32(nal.len() as u32);
                d.put_slice(nal);
            }
        }
        let size = if key { 160_000 } else { 16_000 };
        let mut slice = vec![if key { 0x65 } else { 0x41 }, 0x88];
        slice.extend(rng.slice(size));
        d.put_u32(slice.len() as u32);
        d.put_slice(&slice);
        out.push(VideoFrame::new(
            109_496_722 + 3600 * i as i64,
            key,
            d.freeze(),
        ));
    }
    out
}

fn ps_stream(frames: &[VideoFrame]) -> Bytes {
    let mut m = PsMuxer::new(PsMuxConfig {
        audio: Some(AudioCodec::Aac),
        ..PsMuxConfig::video(VideoCodec::H264)
    });
    let mut out = BytesMut::new();
    for f in frames {
        m.mux_video(f, &mut out).unwrap();
        // Hikvision private data (0xBD, 106 bytes) after the frame.
        out.put_slice(&[0, 0, 1, 0xBD, 0, 106]);
        out.put_bytes(0x02, 106);
        let audio = AudioPacket {
            codec: AudioCodec::Aac,
            stream_id: 0xC0,
            pts: Some(f.pts),
            data: Bytes::from([0xFF, 0xF1, 0x50, 0x40, 0x0F, 0xDF, 0xFC, 0x01].repeat(16)),
        };
        m.mux_audio(&audio, &mut out);
    }
    out.freeze()
}

fn bench_ps_demux(c: &mut Criterion) {
    let stream = ps_stream(&frames(2));
    let mut g = c.benchmark_group("ps_demux");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("hikvision_like_1400B_chunks", |b| {
        b.iter(|| {
            let mut d = PsDemuxer::default();
            let mut frames = 0;
            for chunk in stream.chunks(1400) {
                d.push(chunk).unwrap();
                while let Some(e) = d.next_event() {
                    if let PsEvent::Video(f) = e {
                        frames += 1;
                        black_box(f);
                    }
                }
            }
            d.flush();
            while d.next_event().is_some() {}
            assert_eq!(frames, 99);
            frames
        })
    });
    g.bench_function("hikvision_like_64KiB_chunks", |b| {
        b.iter(|| {
            let mut d = PsDemuxer::default();
            for chunk in stream.chunks(65_536) {
                d.push(chunk).unwrap();
                while let Some(e) = d.next_event() {
                    black_box(e);
                }
            }
            d.flush();
        })
    });
    g.finish();
}

fn params() -> VideoParameters {
    VideoParameters::from_h264(&[SPS], &[PPS]).unwrap()
}

fn bench_fmp4_write(c: &mut Criterion) {
    let gop = frames(1);
    let bytes: u64 = gop.iter().map(|f| f.data.len() as u64).sum();
    let mut g = c.benchmark_group("fmp4_write");
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("gop_fragment_zero_copy", |b| {
        let mut seq = 0;
        b.iter(|| {
            let mut fb = FragmentBuilder::default();
            for f in &gop {
                fb.push(f.clone());
            }
            seq += 1;
            let frag = fb.finish(seq, 0, None).unwrap();
            black_box(frag.chunks().count())
        })
    });
    g.bench_function("gop_fragment_contiguous_copy", |b| {
        let mut seq = 0;
        b.iter(|| {
            let mut fb = FragmentBuilder::default();
            for f in &gop {
                fb.push(f.clone());
            }
            seq += 1;
            black_box(fb.finish(seq, 0, None).unwrap().to_bytes())
        })
    });
    g.finish();
}

fn bench_fmp4_walk(c: &mut Criterion) {
    // A 60-second segment: 30 GOP fragments (~30 MB).
    let gop = frames(1);
    let params = params();
    let mut seg = init_segment(&params).to_vec();
    for k in 0..30u32 {
        let mut fb = FragmentBuilder::default();
        for f in &gop {
            fb.push(f.clone());
        }
        seg.extend_from_slice(
            &fb.finish(k + 1, 180_000 * u64::from(k), None)
                .unwrap()
                .to_bytes(),
        );
    }
    let mut g = c.benchmark_group("fmp4_walk");
    g.throughput(Throughput::Bytes(seg.len() as u64));
    g.bench_function("fragments_only", |b| {
        b.iter(|| {
            let idx = walk(&seg, WalkOptions::default());
            assert_eq!(idx.fragments.len(), 30);
            black_box(idx)
        })
    });
    g.bench_function("with_samples", |b| {
        b.iter(|| {
            black_box(walk(
                &seg,
                WalkOptions {
                    samples: true,
                    ..WalkOptions::default()
                },
            ))
        })
    });
    g.finish();
}

criterion_group!(benches, bench_ps_demux, bench_fmp4_write, bench_fmp4_walk);
criterion_main!(benches);
