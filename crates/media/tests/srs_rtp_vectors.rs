//! RTP packets of the SRS PS tests and the derived RFC 4571 stream (testdata/SOURCES.md).

mod common;

use bytes::Bytes;
use common::{events, testdata, video};
use vigil_media::ps::{PsDemuxer, PsEvent};
use vigil_media::rtp::{
    FrameAssembler, ReceiveError, ReceiverConfig, Reordered, Rfc4571Decoder, RtpError, RtpPacket,
    RtpReceiver,
};

#[test]
fn hikvision_rtp_headers() {
    let p = RtpPacket::parse(Bytes::from(testdata("srs/PsPacketDecodeNormal_seq00.bin"))).unwrap();
    let h = &p.header;
    assert_eq!(
        (h.payload_type, h.sequence_number, h.timestamp, h.marker),
        (96, 0, 0, false)
    );
    // 0x0BEBDFA1 = 200007585, the SDP `y=0200007585` of the same session.
    assert_eq!(h.ssrc, 0x0BEB_DFA1);
    assert_eq!(p.payload.len(), 1400);
    assert_eq!(&p.payload[..4], &[0, 0, 1, 0xBA]);

    let p = RtpPacket::parse(Bytes::from(testdata(
        "srs/PsPacketDecodeRegularMessage_seq31916.bin",
    )))
    .unwrap();
    let h = &p.header;
    assert_eq!(
        (h.sequence_number, h.timestamp, h.ssrc),
        (31916, 95_652_000, 0x0BEB_D135)
    );
    assert_eq!(p.payload.len(), 116);

    assert_eq!(
        RtpPacket::parse(Bytes::from(testdata("srs/PsPacketDecodeInvalidRtp_1.bin"))),
        Err(RtpError::TooShort { len: 2 })
    );
}

#[test]
fn repeated_sequence_numbers_of_the_srs_mock_are_duplicates() {
    // The SRS test sends its filler packet 8 times with seq=1; a receiver that drops duplicate
    // sequence numbers keeps one. (A property of the test vector, not of the camera.)
    let mut r = RtpReceiver::new(ReceiverConfig::gb28181(0x0BEB_DFA1));
    r.receive(Bytes::from(testdata("srs/PsPacketDecodeNormal_seq00.bin")))
        .unwrap();
    for _ in 0..8 {
        r.receive(Bytes::from(testdata(
            "srs/PsPacketDecodeNormal_seq01-08_mock.bin",
        )))
        .unwrap();
    }
    assert_eq!(r.reorder_stats().duplicates, 7);
    // The SSRC of the other camera is rejected and counted.
    assert!(matches!(
        r.receive(Bytes::from(testdata(
            "srs/PsPacketDecodeRegularMessage_seq31916.bin"
        ))),
        Err(ReceiveError::SsrcMismatch {
            found: 0x0BEB_D135,
            ..
        })
    ));
    assert_eq!(r.stats().ssrc_mismatches, 1);
}

/// RFC 4571 stream → RTP receiver → PS demuxer, with the RTP timestamp change passed on as an
/// end-of-access-unit hint.
fn run_tcp_session(stream: &[u8], seed: u64) -> (Vec<PsEvent>, usize) {
    let mut tcp = Rfc4571Decoder::new();
    let mut rtp = RtpReceiver::new(ReceiverConfig::gb28181(0x0BEB_DFA1));
    let mut ps = PsDemuxer::default();
    let mut frames = FrameAssembler::new(8 << 20);
    let mut last_ts = None;
    let mut out = Vec::new();
    let mut packets = 0;
    for chunk in common::chunks(stream, seed, 1500) {
        tcp.push(chunk);
        while let Some(pkt) = tcp.next_packet() {
            packets += 1;
            rtp.receive(pkt).unwrap();
            while let Some(item) = rtp.pop() {
                match &item {
                    Reordered::Packet(p) => {
                        if last_ts.is_some_and(|t| t != p.header.timestamp) {
                            ps.end_of_access_unit();
                        }
                        last_ts = Some(p.header.timestamp);
                        ps.push(&p.payload).unwrap();
                    }
                    Reordered::Lost { .. } => ps.discontinuity(),
                }
                frames.push(item);
                out.extend(events(&mut ps));
            }
        }
    }
    ps.flush();
    out.extend(events(&mut ps));
    frames.flush();
    let rtp_frames: Vec<_> = std::iter::from_fn(|| frames.pop()).collect();
    // Two RTP timestamps (0 and 3600) → two RTP frames, both complete.
    assert_eq!(rtp_frames.len(), 2);
    assert!(rtp_frames.iter().all(|f| f.complete));
    assert_eq!(rtp_frames.iter().map(|f| f.len()).sum::<usize>(), 15_160);
    (out, packets)
}

#[test]
fn rfc4571_stream_in_any_chunking() {
    let stream = testdata("srs/PsPacketDecodeNormal_rfc4571_DERIVED.bin");
    for seed in 0..20 {
        let (ev, packets) = run_tcp_session(&stream, seed);
        assert_eq!(packets, 14);
        let v = video(&ev);
        assert_eq!(v.len(), 2, "IDR and P frame");
        assert!(v[0].is_key && !v[1].is_key);
        assert_eq!((v[0].pts, v[1].pts), (109_496_722, 109_500_322));
        assert_eq!(v[0].data.len(), 13_706);
        // The timestamp change (seq 10 → 11) released the IDR frame before the audio.
        let order: Vec<&str> = ev
            .iter()
            .map(|e| match e {
                PsEvent::Parameters(_) => "params",
                PsEvent::Video(_) => "video",
                PsEvent::Audio(_) => "audio",
                _ => "other",
            })
            .collect();
        assert_eq!(order, ["params", "video", "audio", "audio", "video"]);
    }
}

#[test]
fn lost_packet_drops_the_partial_frame_and_resyncs() {
    let stream = testdata("srs/PsPacketDecodeNormal_rfc4571_DERIVED.bin");
    let mut tcp = Rfc4571Decoder::new();
    tcp.push(&stream);
    let mut rtp = RtpReceiver::new(ReceiverConfig::gb28181(0x0BEB_DFA1));
    let mut ps = PsDemuxer::default();
    while let Some(pkt) = tcp.next_packet() {
        let p = RtpPacket::parse(pkt.clone()).unwrap();
        if p.header.sequence_number == 5 {
            continue; // lost inside the IDR PES
        }
        rtp.receive(pkt).unwrap();
    }
    rtp.flush();
    while let Some(item) = rtp.pop() {
        match item {
            Reordered::Packet(p) => ps.push(&p.payload).unwrap(),
            Reordered::Lost { first, count } => {
                assert_eq!((first, count), (5, 1));
                ps.discontinuity();
            }
        }
    }
    ps.flush();
    let ev = events(&mut ps);
    let v = video(&ev);
    // The IDR frame is gone; the P frame after the next pack header survives. The audio PES
    // between them had no pack header before it and is skipped too.
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].pts, 109_500_322);
    let s = ps.stats();
    assert_eq!((s.discontinuities, s.partial_frames, s.resyncs), (1, 1, 0));
    assert_eq!(s.consecutive_bad_chunks, 0);
}
