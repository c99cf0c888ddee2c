//! Property tests: nothing that parses bytes from the network or disk panics, whatever the
//! bytes; and PS mux → demux is lossless for any frames and any chunking.

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;
use vigil_media::fmp4::{retime, walk, FragmentBuilder, WalkOptions, Walker, WalkerStep};
use vigil_media::nal::{annexb_to_avcc, AnnexBNals, AvccNals};
use vigil_media::ps::{PsDemuxConfig, PsDemuxer, PsEvent, PsMuxConfig, PsMuxer};
use vigil_media::rtp::{
    FrameAssembler, ReceiverConfig, ReorderBuffer, ReorderConfig, Rfc4571Decoder, RtpPacket,
    RtpReceiver, SsrcPolicy,
};
use vigil_media::{h264, h265, AccessUnitSplitter, VideoCodec, VideoFrame, VideoParameters};

/// Bytes biased towards the values that matter to these parsers (start codes, box sizes).
fn nasty_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => any::<u8>(),
            2 => Just(0u8),
            1 => Just(1u8),
            1 => Just(0xBAu8),
            1 => Just(0xE0u8),
            1 => Just(0xC0u8),
            1 => Just(0xBCu8),
            1 => Just(0xFFu8),
        ],
        0..max,
    )
}

/// Real PS bytes with a few bytes overwritten.
fn mutated_ps() -> impl Strategy<Value = Vec<u8>> {
    let base = common::testdata("srs/PsPacketDecodeNormal_stream.bin");
    prop::collection::vec((0..base.len(), any::<u8>()), 0..12).prop_map(move |edits| {
        let mut b = base.clone();
        for (i, v) in edits {
            b[i] = v;
        }
        b
    })
}

fn feed_demuxer(data: &[u8], chunk: usize) {
    let mut d = PsDemuxer::new(PsDemuxConfig {
        max_frame_size: 1 << 16,
        ..PsDemuxConfig::default()
    });
    for c in data.chunks(chunk.max(1)) {
        let _ = d.push(c);
        while d.next_event().is_some() {}
        if c.first() == Some(&0x42) {
            d.discontinuity();
        }
        if c.first() == Some(&0x43) {
            d.end_of_access_unit();
        }
    }
    d.flush();
    while d.next_event().is_some() {}
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn sps_parsers_never_panic(mut data in nasty_bytes(64), h264_header in any::<bool>()) {
        if let Some(b) = data.first_mut() {
            *b = if h264_header { 0x67 } else { 0x42 };
        }
        if !h264_header && data.len() > 1 {
            data[1] = 0x01;
        }
        let _ = h264::parse_sps(&data);
        let _ = h265::parse_sps(&data);
        let _ = VideoParameters::from_h264(&[&data], &[&data]);
        let _ = VideoParameters::from_h265(&[&data], &[&data], &[&data]);
    }

    #[test]
    fn sample_entry_parser_never_panics(data in nasty_bytes(200), kind in 0..4usize) {
        let mut b = BytesMut::new();
        b.put_u32((data.len() + 8) as u32);
        b.put_slice([b"avc1", b"hvc1", b"hev1", b"mp4v"][kind]);
        b.put_slice(&data);
        let _ = VideoParameters::from_sample_entry(b.freeze());
        let _ = VideoParameters::from_sample_entry(Bytes::from(data));
    }

    #[test]
    fn nal_walkers_never_panic(data in nasty_bytes(300)) {
        let _ = AnnexBNals::new(&data).count();
        let _ = AvccNals::new(&data).count();
        let mut out = BytesMut::new();
        annexb_to_avcc(&data, &mut out);
        for codec in [VideoCodec::H264, VideoCodec::H265] {
            let _ = codec.is_key_frame(&data);
            let _ = VideoParameters::from_access_unit(codec, &data);
            let mut s = AccessUnitSplitter::new(Some(codec), 3600);
            s.push(&data);
            s.flush();
            while s.next_frame().is_some() {}
        }
        let f = VideoFrame::new(0, true, Bytes::from(data));
        let _ = f.to_annexb();
    }

    #[test]
    fn ps_demuxer_never_panics_on_random_bytes(data in nasty_bytes(2000), chunk in 1..300usize) {
        feed_demuxer(&data, chunk);
    }

    #[test]
    fn ps_demuxer_never_panics_on_mutated_camera_bytes(data in mutated_ps(), chunk in 1..1500usize) {
        feed_demuxer(&data, chunk);
    }

    /// RFC 4571 and the interleaved `$` framing (policy `DollarFraming`), with garbage in
    /// front: packets come out whatever the chunking, and only RTP version-2 packets.
    #[test]
    fn tcp_rtp_framing_never_panics_and_ignores_chunking(
        sizes in prop::collection::vec(12usize..2000, 1..20),
        dollar in any::<bool>(),
        garbage in prop::collection::vec(any::<u8>(), 0..64),
        chunk in 1usize..3000,
    ) {
        let mut stream = Vec::new();
        let mut pkts = Vec::new();
        for (i, n) in sizes.iter().enumerate() {
            let mut p = vec![0x80, 96, 0, i as u8];
            p.resize(*n, 0x5a);
            if dollar {
                stream.extend_from_slice(&[b'$', 0]);
            }
            stream.extend_from_slice(&(*n as u16).to_be_bytes());
            stream.extend_from_slice(&p);
            pkts.push(p);
        }
        let run = |data: &[u8], chunk: usize| {
            let mut d = Rfc4571Decoder::new();
            let mut out = Vec::new();
            for c in data.chunks(chunk) {
                d.push(c);
                while let Some(p) = d.next_packet() {
                    out.push(p.to_vec());
                }
            }
            out
        };
        prop_assert_eq!(run(&stream, chunk), pkts);
        let mut dirty = garbage.clone();
        dirty.extend_from_slice(&stream);
        for p in run(&dirty, chunk) {
            prop_assert!(p.len() >= 12 && p[0] >> 6 == 2);
        }
    }

    #[test]
    fn rtp_parsers_never_panic(data in nasty_bytes(200), chunk in 1..50usize) {
        let _ = RtpPacket::parse(Bytes::from(data.clone()));
        let mut tcp = Rfc4571Decoder::new();
        let mut rx = RtpReceiver::new(ReceiverConfig {
            ssrc: SsrcPolicy::LearnFirst,
            ..ReceiverConfig::gb28181(0)
        });
        let mut asm = FrameAssembler::new(1000);
        for c in data.chunks(chunk) {
            tcp.push(c);
            while let Some(p) = tcp.next_packet() {
                let _ = rx.receive(p);
                while let Some(item) = rx.pop() {
                    asm.push(item);
                }
            }
        }
        rx.skip_gap();
        rx.flush();
        while let Some(item) = rx.pop() {
            asm.push(item);
        }
        asm.flush();
        while asm.pop().is_some() {}
    }

    #[test]
    fn reorder_buffer_accounts_for_every_packet(
        seqs in prop::collection::vec(any::<u16>(), 0..300),
        window in 1..100u16,
    ) {
        let mut b = ReorderBuffer::new(ReorderConfig { window, ..ReorderConfig::default() });
        let mut out = 0u64;
        let mut check = |b: &mut ReorderBuffer| {
            while let Some(item) = b.pop() {
                if let vigil_media::rtp::Reordered::Packet(_) = item {
                    out += 1;
                }
            }
        };
        for s in seqs {
            let mut h = BytesMut::new();
            vigil_media::rtp::write_header(&mut h, false, 96, s, 0, 1);
            b.push(RtpPacket::parse(h.freeze()).unwrap());
            check(&mut b);
        }
        b.flush();
        check(&mut b);
        let st = b.stats();
        prop_assert_eq!(st.delivered, out);
        prop_assert_eq!(st.received, st.delivered + st.duplicates + st.late + st.strays);
    }

    #[test]
    fn fmp4_reader_never_panics(data in nasty_bytes(600)) {
        let _ = walk(&data, WalkOptions { samples: true, ..WalkOptions::default() });
        let mut w = Walker::new(data.len() as u64 + 10, WalkOptions::default());
        for _ in 0..100 {
            if let WalkerStep::End { .. } = w.step(0, &data) {
                break;
            }
        }
        let mut d = data.clone();
        let _ = retime(&mut d, 1, 2);
    }

    #[test]
    fn fmp4_reader_never_panics_on_mutated_fragments(
        edits in prop::collection::vec((0..400usize, any::<u8>()), 1..8),
    ) {
        let mut b = FragmentBuilder::default();
        for i in 0..5 {
            b.push(VideoFrame::new(i * 3600, i == 0, Bytes::from(vec![0u8; 30 + i as usize])));
        }
        let mut bytes = b.finish(1, 0, None).unwrap().to_bytes().to_vec();
        for (i, v) in edits {
            let n = bytes.len();
            bytes[i % n] = v;
        }
        let _ = walk(&bytes, WalkOptions { samples: true, ..WalkOptions::default() });
        let _ = retime(&mut bytes, 9, u64::MAX);
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn ps_mux_demux_round_trip(
        sizes in prop::collection::vec(1..70_000usize, 1..6),
        seed in any::<u64>(),
        max_chunk in 1..5000usize,
        codec_h265 in any::<bool>(),
    ) {
        let codec = if codec_h265 { VideoCodec::H265 } else { VideoCodec::H264 };
        // Frames of one slice NAL each: first-slice flag set, payload without start codes.
        let frames: Vec<VideoFrame> = sizes.iter().enumerate().map(|(i, &n)| {
            let mut d = BytesMut::new();
            let key = i == 0;
            let header: &[u8] = match (codec, key) {
                (VideoCodec::H264, true) => &[0x65, 0x88],
                (VideoCodec::H264, false) => &[0x41, 0x9a],
                (VideoCodec::H265, true) => &[0x26, 0x01, 0xaf],
                (VideoCodec::H265, false) => &[0x02, 0x01, 0xd0],
            };
            d.put_u32((header.len() + n) as u32);
            d.put_slice(header);
            d.extend((0..n).map(|j| ((j * 7 + i) % 251) as u8 | 0x04));
            VideoFrame::new(i as i64 * 3600, key, d.freeze())
        }).collect();
        let mut m = PsMuxer::new(PsMuxConfig::video(codec));
        let mut ps = BytesMut::new();
        for f in &frames {
            m.mux_video(f, &mut ps).unwrap();
        }
        let mut d = PsDemuxer::default();
        let mut got = Vec::new();
        for c in common::chunks(&ps, seed, max_chunk) {
            d.push(c).unwrap();
            while let Some(e) = d.next_event() {
                if let PsEvent::Video(f) = e { got.push(f) }
            }
        }
        d.flush();
        while let Some(e) = d.next_event() {
            if let PsEvent::Video(f) = e { got.push(f) }
        }
        prop_assert_eq!(got, frames);
    }
}
