//! The real-camera PS vectors from SRS's unit tests (Hikvision IPCs), see testdata/SOURCES.md.
//!
//! SRS counts PES-level messages; we emit access units. Each test checks both: the PES counters
//! in `PsStats` reproduce SRS's per-chunk numbers exactly, and the access-unit events are what
//! a recorder needs (SPS + PPS + SEI + IDR slices in one key frame).

mod common;

use common::{events, testdata, video};
use vigil_media::ps::{PackHeader, PsDemuxConfig, PsDemuxer, PsError, PsEvent, PsmCrc, StreamType};
use vigil_media::{AudioCodec, VideoCodec};

fn srs_config() -> PsDemuxConfig {
    PsDemuxConfig {
        max_consecutive_bad_chunks: 16,
        ..PsDemuxConfig::default()
    }
}

/// The 14 RTP payloads of TEST(KernelPSTest, PsPacketDecodeNormal), in test order.
fn normal_chunks() -> Vec<Vec<u8>> {
    let mut v = vec![testdata("srs/PsPacketDecodeNormal_seq00.bin")[12..].to_vec()];
    let mock = testdata("srs/PsPacketDecodeNormal_seq01-08_mock.bin")[12..].to_vec();
    v.extend(std::iter::repeat_n(mock, 8));
    for n in 9..=13 {
        v.push(testdata(&format!("srs/PsPacketDecodeNormal_seq{n:02}.bin"))[12..].to_vec());
    }
    v
}

#[test]
fn normal_stream_chunks_match_srs_message_counts() {
    let chunks = normal_chunks();
    assert_eq!(
        chunks.concat(),
        testdata("srs/PsPacketDecodeNormal_stream.bin"),
        "payloads concatenate to the stream file"
    );
    let mut d = PsDemuxer::new(srs_config());
    // SRS's cumulative message count after each RTP packet (seq 0..13).
    let srs = [3, 3, 3, 3, 3, 3, 3, 3, 3, 4, 4, 5, 6, 7];
    let mut frames = Vec::new();
    let mut audio = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        d.push(chunk).unwrap();
        let s = d.stats();
        assert_eq!(
            s.video_pes + s.audio_pes,
            srs[i],
            "PES messages after seq {i}"
        );
        for e in events(&mut d) {
            match e {
                PsEvent::Video(f) => frames.push((i, f)),
                PsEvent::Audio(a) => audio.push((i, a)),
                PsEvent::Parameters(p) => {
                    assert_eq!(i, 13);
                    assert_eq!(
                        (p.codec(), p.width(), p.height()),
                        (VideoCodec::H264, 640, 480)
                    );
                    assert_eq!(p.rfc6381_codec(), "avc1.4D001E");
                    assert_eq!(p.frame_rate(), Some((25, 1)));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    let s = d.stats();
    assert_eq!(s.private_pes, 1, "the 0xBD PES is dropped");
    assert_eq!((s.resyncs, s.packs, s.psms), (0, 2, 1));

    // Audio: one AAC packet after seq 11 and one after seq 12 (codec from the PSM).
    let a: Vec<_> = audio
        .iter()
        .map(|(i, a)| (*i, a.codec, a.pts, a.data.len(), a.stream_id))
        .collect();
    assert_eq!(
        a,
        [
            (11, AudioCodec::Aac, Some(109_498_792), 118, 0xC0),
            (12, AudioCodec::Aac, Some(109_500_862), 126, 0xC0)
        ]
    );

    // The IDR access unit is complete once the next picture begins (seq 13).
    assert_eq!(frames.len(), 1);
    let (at, idr) = &frames[0];
    assert_eq!(*at, 13);
    assert!(idr.is_key);
    assert_eq!(idr.pts, 109_496_722);
    assert_eq!(common::h264_types(idr), [7, 8, 6, 5]);
    let lens: Vec<usize> = idr.nal_units().map(|n| n.unwrap().len()).collect();
    assert_eq!(lens, [24, 4, 5, 13_657]);
    assert_eq!(idr.data.len(), 13_706);

    d.flush();
    let ev = events(&mut d);
    let p = video(&ev);
    assert_eq!(p.len(), 1);
    assert!(!p[0].is_key);
    assert_eq!(p[0].pts, 109_500_322);
    assert_eq!(common::h264_types(p[0]), [1]);
    assert_eq!(p[0].data.len(), 831);
}

#[test]
fn hikvision_psm_is_read_despite_its_byte_swapped_crc() {
    for (file, version) in [
        ("srs/PsPacketDecodeNormal_stream.bin", 28),
        ("srs/PsPacketDecodeInvalidStartCode_stream.bin", 0),
    ] {
        let mut d = PsDemuxer::default();
        d.push(&testdata(file)[..200]).unwrap();
        let psm = d.psm().expect("PSM parsed");
        assert_eq!(psm.version, version, "{file}");
        assert_eq!(psm.crc, PsmCrc::LittleEndian, "{file}");
        assert_eq!(psm.stream_type(0xE0), Some(StreamType::H264));
        assert_eq!(psm.stream_type(0xC0), Some(StreamType::AAC));
        assert_eq!(d.stats().psm_crc_little_endian, 1);
        assert_eq!(d.video_codec(), Some(VideoCodec::H264));
    }
}

#[test]
fn frame_split_over_max_size_pes_without_pts() {
    // TEST(KernelPSTest, PsPacketDecodeInvalidStartCode): 1400-byte chunks, a 2560x1440 IDR
    // frame in three PES (65478 + 65478 + 10178), then a 0xBD PES whose payload starts
    // `00 02 00` (which fooled SRS's start-code scan).
    let stream = testdata("srs/PsPacketDecodeInvalidStartCode_stream.bin");
    let mut d = PsDemuxer::new(srs_config());
    let mut changes = Vec::new();
    let mut last = 0;
    for (i, chunk) in stream.chunks(1400).enumerate() {
        d.push(chunk).unwrap();
        let n = d.stats().video_pes;
        if n != last {
            changes.push((i, n));
            last = n;
        }
        assert!(
            video(&events(&mut d)).is_empty(),
            "frame still open at chunk {i}"
        );
    }
    // SRS: 3 messages after the first chunk, then 4, 5, 6.
    assert_eq!(changes, [(0, 3), (46, 4), (93, 5), (100, 6)]);
    let s = d.stats();
    assert_eq!(
        (s.private_pes, s.resyncs, s.consecutive_bad_chunks),
        (1, 0, 0)
    );

    d.flush();
    let ev = events(&mut d);
    let mut params = None;
    let mut frames = Vec::new();
    for e in &ev {
        match e {
            PsEvent::Parameters(p) => params = Some(p.clone()),
            PsEvent::Video(f) => frames.push(f.clone()),
            other => panic!("unexpected {other:?}"),
        }
    }
    let params = params.expect("parameters from the in-band SPS/PPS");
    assert_eq!((params.width(), params.height()), (2560, 1440));
    assert_eq!(params.rfc6381_codec(), "avc1.4D0032");
    assert_eq!(frames.len(), 1);
    let f = &frames[0];
    assert!(f.is_key);
    assert_eq!(f.pts, 2_728_083_610);
    let lens: Vec<(u8, usize)> = f
        .nal_units()
        .map(|n| n.unwrap())
        .map(|n| (n[0] & 0x1f, n.len()))
        .collect();
    assert_eq!(lens, [(7, 25), (8, 4), (6, 5), (5, 141_112)]);
}

#[test]
fn any_chunking_gives_the_same_result() {
    let stream = testdata("srs/PsPacketDecodeNormal_stream.bin");
    let reference = {
        let mut d = PsDemuxer::default();
        d.push(&stream).unwrap();
        d.flush();
        events(&mut d)
    };
    assert_eq!(video(&reference).len(), 2);
    for seed in 0..40 {
        let mut d = PsDemuxer::default();
        for c in common::chunks(&stream, seed, if seed % 2 == 0 { 7 } else { 700 }) {
            d.push(c).unwrap();
        }
        d.flush();
        assert_eq!(events(&mut d), reference, "seed {seed}");
    }
}

#[test]
fn recovery_resumes_at_the_next_pack_header() {
    // TEST(KernelPSTest, PsPacketDecodeRecover): chunks of 8, 128, 136 and 156 bytes. The first
    // two form an audio PES whose header was completed by 'x' filler (PTS without marker bits),
    // the third is another such PES, the fourth a pack header and a valid audio PES.
    let stream = testdata("srs/PsPacketDecodeRecover_stream.bin");
    let sizes = [8, 128, 136, 156];
    let mut d = PsDemuxer::new(srs_config());
    let mut pos = 0;
    let mut bad = Vec::new();
    let mut got = Vec::new();
    for n in sizes {
        d.push(&stream[pos..pos + n]).unwrap();
        pos += n;
        bad.push(d.stats().consecutive_bad_chunks);
        got.push(events(&mut d));
    }
    // SRS reports recover_ = 1, 2, 3, 0: it cannot keep a partial PES header across packets,
    // so its first chunk already fails; we keep the 8 bytes and fail when the header is
    // complete (chunk 2).
    assert_eq!(bad, [0, 1, 2, 0]);
    assert!(got[0].is_empty());
    assert!(matches!(
        got[1].as_slice(),
        [PsEvent::Corrupt(PsError::BadPesHeader { offset: 0, stream_id: 0xC0, reason })]
            if reason.contains("marker")
    ));
    assert!(got[2].is_empty());
    match got[3].as_slice() {
        [PsEvent::Audio(a)] => {
            assert_eq!(a.pts, Some(109_498_792));
            assert_eq!(a.data.len(), 118);
            // No PSM and no ADTS header (the payload is SRS filler).
            assert_eq!(a.codec, AudioCodec::Unknown);
        }
        other => panic!("expected one audio packet, got {other:?}"),
    }
    assert_eq!(d.stats().packs, 1);
    assert_eq!(d.stats().resyncs, 1);
}

#[test]
fn partial_pes_header_is_kept_for_the_next_chunk() {
    // TEST(KernelPSTest, PsPacketDecodePartialPesHeader): SRS's "integrity detection" leaves
    // the buffer untouched; we stash the 8 bytes and consume nothing.
    let mut d = PsDemuxer::new(srs_config());
    d.push(&testdata("srs/PsPacketDecodePartialPesHeader_1.bin"))
        .unwrap();
    assert!(events(&mut d).is_empty());
    assert_eq!((d.offset(), d.stats().resyncs), (0, 0));
}

#[test]
fn seventeenth_consecutive_bad_chunk_fails() {
    // TEST(KernelPSTest, PsRecoverLimit2): `00 02 00 17 00 01 80 01` (Hikvision 0xBD payload,
    // no start code) seventeen times; SRS tolerates 16.
    let bad = testdata("srs/PsPacketDecodeInvalidPesHeader_1.bin");
    let mut d = PsDemuxer::new(srs_config());
    for i in 1..=16 {
        d.push(&bad).unwrap_or_else(|e| panic!("chunk {i}: {e}"));
    }
    assert_eq!(
        d.push(&bad),
        Err(PsError::TooManyBadChunks {
            count: 17,
            limit: 16
        })
    );
    let ev = events(&mut d);
    assert_eq!(
        ev.first(),
        Some(&PsEvent::Corrupt(PsError::BadStartCode {
            offset: 0,
            found: "00020017".into()
        }))
    );
    assert_eq!(ev.len(), 1, "one resync, then skipping");
    // A pack header ends it.
    d.push(&testdata("srs/PsPacketDecodeRecover_stream.bin")[272..])
        .unwrap();
    assert_eq!(d.stats().consecutive_bad_chunks, 0);
    assert_eq!(events(&mut d).len(), 1);
}

#[test]
fn private_stream_is_dropped_whole_or_split() {
    // TEST(KernelPSTest, PsPacketDecodePrivateStream) and PartialPayload (16 + 96).
    let pes = testdata("srs/PsPacketDecodePrivateStream_1.bin");
    for split in [pes.len(), 16, 1, 111] {
        let mut d = PsDemuxer::default();
        d.push(&pes[..split]).unwrap();
        d.push(&pes[split..]).unwrap();
        d.flush();
        assert!(events(&mut d).is_empty());
        let s = d.stats();
        assert_eq!((s.private_pes, s.resyncs), (1, 0), "split {split}");
    }
}

#[test]
fn audio_pes_without_psm_is_identified_by_its_adts_header() {
    // TEST(KernelPSTest, PsPacketDecodeRegularMessage): one AAC PES alone (no pack header, no
    // PSM). SRS asserts a 100-byte payload.
    let mut d = PsDemuxer::default();
    d.push(&testdata("srs/PsPacketDecodeRegularMessage_1.bin"))
        .unwrap();
    match events(&mut d).as_slice() {
        [PsEvent::Audio(a)] => {
            assert_eq!(a.stream_id, 0xC0);
            assert_eq!(a.codec, AudioCodec::Aac);
            assert_eq!(a.pts, Some(2_728_088_830));
            assert_eq!(a.data.len(), 100);
            assert_eq!(&a.data[..4], &[0xff, 0xf9, 0x50, 0x40]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn scr_decode_cases() {
    // TEST(KernelPSTest, PsPacketHeaderClockDecode): bit-flipped real SCRs.
    let json: serde_json::Value =
        serde_json::from_slice(&testdata("srs/PsPacketHeaderClockDecode_cases.json")).unwrap();
    let cases = json["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 15);
    for c in cases {
        let hex = c["pack_header_hex"].as_str().unwrap();
        let bytes = hex_decode(hex);
        let p = PackHeader::parse(&bytes).unwrap().unwrap();
        assert_eq!(p.scr_base, c["scr_base"].as_u64().unwrap(), "{hex}");
        assert_eq!(
            u64::from(p.scr_ext),
            c["scr_ext"].as_u64().unwrap(),
            "{hex}"
        );
    }
}

#[test]
fn pack_start_is_found_after_junk_in_any_chunking() {
    // TEST(KernelPSTest, PsSkipUtilPack): after junk, a `00 00 01 BA` must be found; in the
    // other buffers it must not. The junk sends the demuxer into resync; we then complete the
    // pack header and check that it was parsed.
    let json: serde_json::Value =
        serde_json::from_slice(&testdata("srs/PsSkipUtilPack_cases.json")).unwrap();
    let rest_of_pack = hex_decode("44686e4c9401013013f8");
    for (key, found) in [("expect_found", true), ("expect_not_found", false)] {
        for case in json[key].as_array().unwrap() {
            let bytes = hex_decode(case.as_str().unwrap());
            for split in 0..=bytes.len() {
                let mut d = PsDemuxer::default();
                d.push(&bytes[..split]).unwrap();
                d.push(&bytes[split..]).unwrap();
                d.push(&rest_of_pack).unwrap();
                assert_eq!(
                    d.stats().packs,
                    u64::from(found),
                    "{key} {} split at {split}",
                    case.as_str().unwrap()
                );
            }
        }
    }
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
