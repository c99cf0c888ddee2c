//! fMP4 written from real clips is accepted by ffprobe, and our reader walks it back.

mod common;

use bytes::BytesMut;
use common::{clip_frames, events, ffprobe, testdata, video, write};
use vigil_media::fmp4::{
    init_segment, retime, walk, FragmentBuilder, Tail, WalkError, WalkOptions, Walker, WalkerStep,
};
use vigil_media::ps::{PsDemuxer, PsEvent};
use vigil_media::{VideoCodec, VideoFrame, VideoParameters};

const H264_CLIP: &str = "gen/h264_main_320x180_25fps.h264";
const H265_CLIP: &str = "gen/h265_main_340x190_25fps.h265";

/// Writes a segment: init segment, then one fragment per GOP; decode times start at `base`.
fn segment(frames: &[VideoFrame], params: &VideoParameters, first_seq: u32, base: u64) -> Vec<u8> {
    let mut out = init_segment(params).to_vec();
    let mut b = FragmentBuilder::for_params(params);
    let mut seq = first_seq;
    let origin = frames[0].pts;
    let mut finish = |b: &mut FragmentBuilder, next: Option<i64>, out: &mut Vec<u8>| {
        let bdt = base + (b.first_pts().unwrap() - origin) as u64;
        let frag = b.finish(seq, bdt, next).unwrap();
        seq += 1;
        // Write the way a store would with writev: header, then each sample's bytes.
        for c in frag.chunks() {
            out.extend_from_slice(c);
        }
    };
    for f in frames {
        if b.starts_new_gop(f) {
            finish(&mut b, Some(f.pts), &mut out);
        }
        b.push(f.clone());
    }
    finish(&mut b, None, &mut out);
    out
}

fn clip(name: &str, codec: VideoCodec) -> (Vec<VideoFrame>, VideoParameters) {
    let frames = clip_frames(name, codec);
    let params = VideoParameters::from_access_unit(codec, &frames[0].data)
        .unwrap()
        .unwrap();
    (frames, params)
}

#[test]
fn ffprobe_reads_our_fragmented_mp4() {
    let dir = tempfile::tempdir().unwrap();
    for (name, codec, ff_name, w, h) in [
        (H264_CLIP, VideoCodec::H264, "h264", 320, 180),
        (H265_CLIP, VideoCodec::H265, "hevc", 340, 190),
    ] {
        let (frames, params) = clip(name, codec);
        let seg = segment(&frames, &params, 1, 0);
        let path = write(dir.path(), &format!("{ff_name}.mp4"), &seg);
        let j = ffprobe(&path, &["-count_frames", "-show_streams", "-show_format"]);
        let s = &j["streams"][0];
        assert_eq!(s["codec_name"], ff_name);
        assert_eq!(
            (s["width"].as_u64(), s["height"].as_u64()),
            (Some(w), Some(h))
        );
        assert_eq!(s["nb_read_frames"], "50");
        assert_eq!(s["r_frame_rate"], "25/1");
        assert_eq!(s["time_base"], "1/90000");
        let codec_tag = s["codec_tag_string"].as_str().unwrap();
        assert_eq!(
            codec_tag,
            if codec == VideoCodec::H264 {
                "avc1"
            } else {
                "hvc1"
            }
        );
        let duration: f64 = j["format"]["duration"].as_str().unwrap().parse().unwrap();
        assert!(
            (duration - 2.0).abs() < 1e-6,
            "{ff_name}: duration {duration}"
        );

        let idx = walk(&seg, WalkOptions::default());
        assert_eq!(idx.tail, Tail::Clean);
        let counts: Vec<u32> = idx.fragments.iter().map(|f| f.sample_count).collect();
        assert_eq!(counts, [25, 25], "{ff_name}");

        let pk = ffprobe(&path, &["-show_entries", "packet=pts,flags"]);
        let packets = pk["packets"].as_array().unwrap();
        assert_eq!(packets.len(), 50);
        for (i, p) in packets.iter().enumerate() {
            assert_eq!(
                p["pts"].as_i64(),
                Some(3600 * i as i64),
                "{ff_name} packet {i}"
            );
            let key = p["flags"].as_str().unwrap().starts_with('K');
            assert_eq!(key, i % 25 == 0, "{ff_name} packet {i} flags");
        }
    }
}

#[test]
fn non_square_pixels_are_signalled() {
    // A D1 camera: 704x576 with 12:11 pixels displays as 4:3.
    let dir = tempfile::tempdir().unwrap();
    let (frames, params) = clip("gen/h264_main_704x576_sar12-11.h264", VideoCodec::H264);
    assert_eq!(params.sample_aspect_ratio(), Some((12, 11)));
    assert_eq!(params.display_size(), (768, 576));
    let path = write(dir.path(), "d1.mp4", &segment(&frames, &params, 1, 0));
    let j = ffprobe(&path, &["-show_streams"]);
    let s = &j["streams"][0];
    assert_eq!(
        (s["width"].as_u64(), s["height"].as_u64()),
        (Some(704), Some(576))
    );
    assert_eq!(s["sample_aspect_ratio"], "12:11");
    assert_eq!(s["display_aspect_ratio"], "4:3");
}

#[test]
fn reader_walks_our_segment_back() {
    let (frames, params) = clip(H264_CLIP, VideoCodec::H264);
    let seg = segment(&frames, &params, 7, 180_000);
    let init_len = init_segment(&params).len() as u64;
    let idx = walk(
        &seg,
        WalkOptions {
            samples: true,
            ..WalkOptions::default()
        },
    );
    assert_eq!(idx.tail, Tail::Clean);
    assert_eq!(idx.complete_end, seg.len() as u64);
    let init = idx.init.as_ref().unwrap();
    assert_eq!(init.range, 0..init_len);
    assert_eq!((init.track_id, init.timescale), (Some(1), Some(90_000)));
    assert_eq!(init.sample_entry.as_ref(), Some(params.sample_entry()));
    assert_eq!(idx.fragments.len(), 2);
    for (k, f) in idx.fragments.iter().enumerate() {
        assert_eq!(f.sequence_number, 7 + k as u32);
        assert_eq!(f.base_decode_time, Some(180_000 + 90_000 * k as u64));
        assert_eq!(
            (f.sample_count, f.duration, f.first_is_sync),
            (25, 90_000, true)
        );
        for (s, frame) in f.samples.iter().zip(&frames[25 * k..]) {
            let data = &seg[s.offset as usize..(s.offset + u64::from(s.size)) as usize];
            assert_eq!(data, &frame.data[..]);
            assert_eq!(s.is_sync, frame.is_key);
            assert_eq!(s.duration, 3600);
        }
    }
    assert_eq!(idx.fragments[0].offset, init_len);
    assert_eq!(
        idx.fragments[1].offset,
        idx.fragments[0].offset + idx.fragments[0].len
    );
}

#[test]
fn truncated_segments_report_the_last_complete_fragment() {
    let (frames, params) = clip(H264_CLIP, VideoCodec::H264);
    let seg = segment(&frames, &params, 1, 0);
    let full = walk(&seg, WalkOptions::default());
    let init_end = full.init.as_ref().unwrap().range.end;
    let f1 = &full.fragments[1];
    let f1_mdat = f1.data_range.start - 8;
    for (cut, fragments, end, tail) in [
        (
            seg.len() - 1,
            1,
            f1.offset,
            Tail::Truncated { offset: f1.offset },
        ),
        (
            f1_mdat as usize + 3,
            1,
            f1.offset,
            Tail::Truncated { offset: f1.offset },
        ),
        (
            f1_mdat as usize,
            1,
            f1.offset,
            Tail::Truncated { offset: f1.offset },
        ),
        (
            f1.offset as usize + 20,
            1,
            f1.offset,
            Tail::Truncated { offset: f1.offset },
        ),
        (
            f1.offset as usize + 5,
            1,
            f1.offset,
            Tail::Truncated { offset: f1.offset },
        ),
        (f1.offset as usize, 1, f1.offset, Tail::Clean),
        (init_end as usize - 1, 0, 32, Tail::Truncated { offset: 32 }),
        (3, 0, 0, Tail::Truncated { offset: 0 }),
    ] {
        let idx = walk(&seg[..cut], WalkOptions::default());
        assert_eq!(idx.fragments.len(), fragments, "cut {cut}");
        assert_eq!(idx.complete_end, end, "cut {cut}");
        assert_eq!(idx.tail, tail, "cut {cut}");
    }

    // A corrupt box size after the first fragment: reading stops there.
    let mut bad = seg.clone();
    let at = f1.offset as usize;
    bad[at..at + 4].copy_from_slice(&3u32.to_be_bytes());
    let idx = walk(&bad, WalkOptions::default());
    assert_eq!(idx.fragments.len(), 1);
    assert_eq!(idx.complete_end, f1.offset);
    assert_eq!(
        idx.tail,
        Tail::Corrupt(WalkError::BadBoxSize {
            offset: f1.offset,
            size: 3
        })
    );
}

#[test]
fn a_zero_filled_tail_is_truncated_not_clean() {
    // What a file looks like after a crash when the file system extended it but the data
    // never reached the disk: the last fragment's bytes read back as zeros.
    let (frames, params) = clip(H264_CLIP, VideoCodec::H264);
    let mut seg = segment(&frames, &params, 1, 0);
    let clean = walk(&seg, WalkOptions::default());
    let last = clean.fragments.last().unwrap().clone();
    for b in &mut seg[last.offset as usize..] {
        *b = 0;
    }
    let idx = walk(&seg, WalkOptions::default());
    assert_eq!(
        idx.tail,
        Tail::Truncated {
            offset: last.offset
        }
    );
    assert_eq!(idx.complete_end, last.offset);
    assert_eq!(idx.fragments.len(), clean.fragments.len() - 1);
}

#[test]
fn walker_reads_only_headers_and_moofs() {
    let (frames, params) = clip(H264_CLIP, VideoCodec::H264);
    let seg = segment(&frames, &params, 1, 0);
    let mut w = Walker::new(seg.len() as u64, WalkOptions::default());
    let mut window: (u64, Vec<u8>) = (0, Vec::new());
    let mut read = 0usize;
    let mut fragments = 0;
    loop {
        match w.step(window.0, &window.1) {
            WalkerStep::Need { offset, len } => {
                // Emulates a positioned read of exactly what was asked.
                let end = (offset as usize + len).min(seg.len());
                window = (offset, seg[offset as usize..end].to_vec());
                read += end - offset as usize;
            }
            WalkerStep::Init(_) => {}
            WalkerStep::Fragment(_) => fragments += 1,
            WalkerStep::End { complete_end, tail } => {
                assert_eq!((complete_end, tail), (seg.len() as u64, Tail::Clean));
                break;
            }
        }
    }
    assert_eq!(fragments, 2);
    assert!(read < 2_000, "read {read} of {} bytes", seg.len());
}

#[test]
fn retimed_fragments_splice_into_one_playable_file() {
    let dir = tempfile::tempdir().unwrap();
    let (frames, params) = clip(H264_CLIP, VideoCodec::H264);
    // Two recorded segments with unrelated numbering and timelines.
    let a = segment(&frames, &params, 1, 0);
    let b = segment(&frames, &params, 40, 5_000_000);
    let mut export = init_segment(&params).to_vec();
    let mut seq = 1;
    let mut next_time = 0u64;
    for seg in [&a, &b] {
        for f in walk(seg, WalkOptions::default()).fragments {
            let mut bytes = seg[f.offset as usize..(f.offset + f.len) as usize].to_vec();
            retime(&mut bytes, seq, next_time).unwrap();
            seq += 1;
            next_time += f.duration;
            export.extend_from_slice(&bytes);
        }
    }
    let idx = walk(&export, WalkOptions::default());
    let seqs: Vec<u32> = idx.fragments.iter().map(|f| f.sequence_number).collect();
    let times: Vec<Option<u64>> = idx.fragments.iter().map(|f| f.base_decode_time).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(times, [Some(0), Some(90_000), Some(180_000), Some(270_000)]);

    let path = write(dir.path(), "export.mp4", &export);
    let j = ffprobe(&path, &["-count_frames", "-show_streams", "-show_format"]);
    assert_eq!(j["streams"][0]["nb_read_frames"], "100");
    let duration: f64 = j["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!((duration - 4.0).abs() < 1e-6, "duration {duration}");
    let pk = ffprobe(&path, &["-show_entries", "packet=pts"]);
    let pts: Vec<i64> = pk["packets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pts"].as_i64().unwrap())
        .collect();
    assert_eq!(pts, (0..100).map(|i| i * 3600).collect::<Vec<_>>());
}

#[test]
fn retime_rejects_non_fragments() {
    let mut junk = vec![0u8; 16];
    assert!(matches!(
        retime(&mut junk, 1, 0),
        Err(WalkError::BadMoof { offset: 0, .. })
    ));
}

#[test]
fn gb28181_pipeline_ps_to_fmp4() {
    // GStreamer PS → our demuxer → fMP4 → ffprobe: the path a GB/T 28181 camera takes.
    let dir = tempfile::tempdir().unwrap();
    let mut d = PsDemuxer::default();
    d.push(&testdata("gen/gst_mpegpsmux_h264_aac.ps")).unwrap();
    d.flush();
    let ev = events(&mut d);
    let params = ev
        .iter()
        .find_map(|e| match e {
            PsEvent::Parameters(p) => Some(p.clone()),
            _ => None,
        })
        .unwrap();
    let frames: Vec<VideoFrame> = video(&ev).into_iter().cloned().collect();
    let seg = segment(&frames, &params, 1, 0);
    let path = write(dir.path(), "gb.mp4", &seg);
    let j = ffprobe(&path, &["-count_frames", "-show_streams"]);
    let s = &j["streams"][0];
    assert_eq!(s["codec_name"], "h264");
    assert_eq!(s["nb_read_frames"], "50");
    assert_eq!(
        (s["width"].as_u64(), s["height"].as_u64()),
        (Some(320), Some(180))
    );
}

#[test]
fn rtsp_supplied_sample_entry_gives_the_same_init_segment() {
    for (name, codec) in [(H264_CLIP, VideoCodec::H264), (H265_CLIP, VideoCodec::H265)] {
        let (_, params) = clip(name, codec);
        let external = VideoParameters::from_sample_entry(params.sample_entry().clone()).unwrap();
        assert_eq!(external, params);
        assert_eq!(init_segment(&external), init_segment(&params));
        // A different entry (e.g. `avc3` from another client) is kept byte for byte.
        let mut other = BytesMut::from(&params.sample_entry()[..]);
        other[4..8].copy_from_slice(if codec == VideoCodec::H264 {
            b"avc3"
        } else {
            b"hev1"
        });
        let other = other.freeze();
        let ext = VideoParameters::from_sample_entry(other.clone()).unwrap();
        assert_eq!(ext.sample_entry(), &other);
        assert_eq!(
            ext, params,
            "the same parameter sets in another entry type need no decoder reconfiguration"
        );
        assert_eq!(ext.rfc6381_codec(), params.rfc6381_codec());
        assert_eq!(
            (ext.width(), ext.height()),
            (params.width(), params.height())
        );
    }
}
