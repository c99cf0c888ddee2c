//! Device quirks, by name.
//!
//! Every deviation from RFC 3261 / RFC 4566 / GB/T 28181 that this crate tolerates is listed here,
//! with the device it was seen on. Parsers record the quirks they had to apply in a [`QuirkSet`]
//! so that the server can log "device X needed quirk Y" once and operators can see which
//! integrations are off-standard. Each quirk has a unit test built from the real-device bytes in
//! `testdata/` (test names start with `quirk_`); the two media quirks are policies of
//! `vigil-media`, which owns RTP and PS, and are tested there (`quirk_rtp_over_tcp_dollar_framing_gb28181_rs`
//! in `rtp::rfc4571`, `quirk_pes_header_without_marker_byte_gb28181_rs` in
//! `tests/ps_gb28181_rs.rs`).

use std::fmt;

/// A named, tolerated deviation from the standards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Quirk {
    /// SIP header lines ended by a bare LF instead of CRLF.
    BareLfLineEndings = 0,
    /// A UDP datagram without `Content-Length`: the body is the rest of the datagram
    /// (RFC 3261 18.3 allows this on UDP only).
    MissingContentLengthUdp,
    /// A stream (TCP) message without `Content-Length`: framed as a zero-length body.
    MissingContentLengthStream,
    /// `Content-Length` larger than the bytes that follow in the datagram. Hikvision NVRs
    /// (`Embedded Net DVR/NVR/DVS`) announce one byte more than their MANSCDP body
    /// (vectors 36 and 70: 777 vs 776, 909 vs 908). Over UDP the short body is accepted.
    ShortBodyUdp,
    /// More bytes in the datagram than `Content-Length` announces; the excess is discarded
    /// (RFC 3261 18.3) and recorded.
    ExcessBytesUdp,
    /// A header line without a colon, or with an empty name; skipped instead of failing the
    /// whole message.
    MalformedHeaderLineSkipped,
    /// Provisional `101 Dialog Establishement` (sic) carrying a To tag, sent by Dahua devices
    /// before the 200 OK to INVITE (vector 21).
    DahuaDialogEstablishment101,
    /// Final response whose To header has no tag (Hikvision IPC in the SRS unit test,
    /// vector 63). Dialog matching falls back to Call-ID + From tag.
    FinalResponseWithoutToTag,
    /// MESSAGE whose To URI is the sending device itself, not the server (Hikvision NVR
    /// catalog, vector 70). The device is identified by the From user, never by To.
    ToIsSender,
    /// The MANSCDP body declares a non-UTF-8 encoding (usually GB2312) but its bytes are
    /// valid UTF-8 containing non-ASCII text; decoded as UTF-8.
    DeclaredEncodingWasUtf8,
    /// The MANSCDP body declares UTF-8 (or nothing) but is not valid UTF-8; decoded as
    /// GB18030 (a superset of GB2312 and GBK).
    Utf8InvalidDecodedAsGb,
    /// The XML declaration names an encoding that encoding_rs does not know; detected instead.
    UnknownDeclaredEncoding,
    /// NUL bytes, stray line ends or other bytes after the root element's end tag (the
    /// probable content of the Hikvision +1 `Content-Length`).
    TrailingBytesAfterRoot,
    /// An entity or character reference that does not resolve (`&` written unescaped in a
    /// device name); the raw text is kept.
    UnresolvedXmlEntity,
    /// MANSCDP element names in non-standard case, e.g. Dahua's `<Alarmstatus>` for
    /// `<AlarmStatus>` (vector 17). Element names are matched case-insensitively.
    ElementNameCase,
    /// A placeholder instead of a value, e.g. `<CivilCode>CivilCode</CivilCode>` from Hikvision
    /// NVRs (vector 70) and Uniview IPCs (vector 79). Treated as absent; the raw text is kept.
    PlaceholderValue,
    /// `<IPAddress>` holding an RTSP URL instead of an address (Dahua IVSS, vector 71). The host
    /// is extracted.
    UrlInIpAddress,
    /// `y=` and `f=` SDP lines placed after the `m=` section (every GB device). Treated as
    /// session-level fields wherever they appear.
    GbSdpLinesInMediaSection,
    /// An SDP answer whose `t=` is shifted by whole hours from the offer's playback range.
    /// Hikvision NVRs answer a Playback/Download offer with the range shifted by +8 h
    /// (vectors 38/39 and 49/50: 1714804996 → 1714833796), i.e. they treat the UTC seconds as
    /// local time. The offer's range is authoritative.
    PlaybackRangeShifted,
    /// An SDP answer whose `s=` is not one of Play/Playback/Download/Talk (Hikvision NVR:
    /// `s=Network Video Recorder`, vector 39). The offer's session kind is authoritative.
    NonGbSessionName,
    /// Credentials sent in SDP attributes (`a=username:`/`a=password:`, Hikvision NVR vectors
    /// 39/50). Kept for the caller but redacted from `Debug` output.
    CredentialsInSdp,
    /// A digest response without `qop` although the challenge offered `qop="auth"`
    /// (RFC 2069 style, as Dahua cameras send: vector 03). Accepted: it still proves
    /// knowledge of the password for our nonce.
    DigestWithoutQop,
    /// The digest `uri` parameter differs from the Request-URI; the digest is checked
    /// against the `uri` parameter the device used.
    DigestUriMismatch,
    /// A keepalive whose body `<DeviceID>` differs from the From user; the From user is used.
    BodyDeviceIdMismatch,
    /// RTP over TCP framed RTSP-interleaved style (`'$'`, channel, 16-bit length) instead of
    /// RFC 4571 (16-bit length only). Seen from the `gb28181-rs` 0.14 device library, which
    /// calls it "GB28181 Annex C `$`-framing"; detected per stream by
    /// [`vigil_media::rtp::Rfc4571Decoder`] (policy `DollarFraming`,
    /// [`vigil_media::rtp::TcpFraming::Interleaved`]).
    RtpOverTcpDollarFraming,
    /// MANSCDP `CmdType`/`SN`/`DeviceID` written as attributes of the root element
    /// (`<Notify CmdType="Keepalive" SN="1">`) instead of child elements — the older platform
    /// form, still emitted by the `gb28181-rs` 0.14 device library for keepalives and responses
    /// (`testdata/interop/`). Read from the attributes when the elements are absent.
    ManscdpHeaderAsAttributes,
    /// PES headers without their first flags byte (the `'10'` marker byte) and with a `0x00`
    /// filler after PTS/DTS instead (`gb28181-rs` 0.14 `build_pes_packet`). Read by the PS
    /// demuxer's policy `PesHeaderWithoutMarkerByte`
    /// ([`vigil_media::ps::PsDemuxConfig::accept_pes_without_marker_byte`]).
    PesHeaderWithoutMarkerByte,
}

impl Quirk {
    /// Every quirk, in declaration order.
    pub const ALL: [Quirk; 27] = [
        Quirk::BareLfLineEndings,
        Quirk::MissingContentLengthUdp,
        Quirk::MissingContentLengthStream,
        Quirk::ShortBodyUdp,
        Quirk::ExcessBytesUdp,
        Quirk::MalformedHeaderLineSkipped,
        Quirk::DahuaDialogEstablishment101,
        Quirk::FinalResponseWithoutToTag,
        Quirk::ToIsSender,
        Quirk::DeclaredEncodingWasUtf8,
        Quirk::Utf8InvalidDecodedAsGb,
        Quirk::UnknownDeclaredEncoding,
        Quirk::TrailingBytesAfterRoot,
        Quirk::UnresolvedXmlEntity,
        Quirk::ElementNameCase,
        Quirk::PlaceholderValue,
        Quirk::UrlInIpAddress,
        Quirk::GbSdpLinesInMediaSection,
        Quirk::PlaybackRangeShifted,
        Quirk::NonGbSessionName,
        Quirk::CredentialsInSdp,
        Quirk::DigestWithoutQop,
        Quirk::DigestUriMismatch,
        Quirk::BodyDeviceIdMismatch,
        Quirk::RtpOverTcpDollarFraming,
        Quirk::ManscdpHeaderAsAttributes,
        Quirk::PesHeaderWithoutMarkerByte,
    ];

    /// A stable name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Quirk::BareLfLineEndings => "bare_lf_line_endings",
            Quirk::MissingContentLengthUdp => "missing_content_length_udp",
            Quirk::MissingContentLengthStream => "missing_content_length_stream",
            Quirk::ShortBodyUdp => "short_body_udp",
            Quirk::ExcessBytesUdp => "excess_bytes_udp",
            Quirk::MalformedHeaderLineSkipped => "malformed_header_line_skipped",
            Quirk::DahuaDialogEstablishment101 => "dahua_dialog_establishment_101",
            Quirk::FinalResponseWithoutToTag => "final_response_without_to_tag",
            Quirk::ToIsSender => "to_is_sender",
            Quirk::DeclaredEncodingWasUtf8 => "declared_encoding_was_utf8",
            Quirk::Utf8InvalidDecodedAsGb => "utf8_invalid_decoded_as_gb",
            Quirk::UnknownDeclaredEncoding => "unknown_declared_encoding",
            Quirk::TrailingBytesAfterRoot => "trailing_bytes_after_root",
            Quirk::UnresolvedXmlEntity => "unresolved_xml_entity",
            Quirk::ElementNameCase => "element_name_case",
            Quirk::PlaceholderValue => "placeholder_value",
            Quirk::UrlInIpAddress => "url_in_ip_address",
            Quirk::GbSdpLinesInMediaSection => "gb_sdp_lines_in_media_section",
            Quirk::PlaybackRangeShifted => "playback_range_shifted",
            Quirk::NonGbSessionName => "non_gb_session_name",
            Quirk::CredentialsInSdp => "credentials_in_sdp",
            Quirk::DigestWithoutQop => "digest_without_qop",
            Quirk::DigestUriMismatch => "digest_uri_mismatch",
            Quirk::BodyDeviceIdMismatch => "body_device_id_mismatch",
            Quirk::RtpOverTcpDollarFraming => "rtp_over_tcp_dollar_framing",
            Quirk::ManscdpHeaderAsAttributes => "manscdp_header_as_attributes",
            Quirk::PesHeaderWithoutMarkerByte => "pes_header_without_marker_byte",
        }
    }
}

impl fmt::Display for Quirk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A small set of [`Quirk`]s applied while handling one message.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct QuirkSet(u32);

impl QuirkSet {
    /// The empty set.
    pub const fn new() -> Self {
        QuirkSet(0)
    }

    /// Adds a quirk.
    pub fn insert(&mut self, quirk: Quirk) {
        self.0 |= 1 << (quirk as u8);
    }

    /// Whether the quirk is in the set.
    pub fn contains(&self, quirk: Quirk) -> bool {
        self.0 & (1 << (quirk as u8)) != 0
    }

    /// Whether no quirk was needed.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// Adds every quirk of `other`.
    pub fn extend(&mut self, other: QuirkSet) {
        self.0 |= other.0;
    }

    /// The quirks in the set, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = Quirk> + '_ {
        Quirk::ALL.into_iter().filter(|q| self.contains(*q))
    }
}

impl fmt::Debug for QuirkSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter().map(Quirk::name)).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_quirks_fit_the_bitset_and_have_distinct_names() {
        assert!(Quirk::ALL.len() <= 32);
        let mut names: Vec<_> = Quirk::ALL.iter().map(|q| q.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Quirk::ALL.len());
        for (i, q) in Quirk::ALL.iter().enumerate() {
            assert_eq!(*q as usize, i, "ALL must list quirks in declaration order");
        }
    }

    #[test]
    fn set_operations() {
        let mut s = QuirkSet::new();
        assert!(s.is_empty());
        s.insert(Quirk::ShortBodyUdp);
        s.insert(Quirk::BodyDeviceIdMismatch);
        assert!(s.contains(Quirk::ShortBodyUdp));
        assert!(!s.contains(Quirk::BareLfLineEndings));
        let v: Vec<_> = s.iter().collect();
        assert_eq!(v, vec![Quirk::ShortBodyUdp, Quirk::BodyDeviceIdMismatch]);
        assert_eq!(
            format!("{s:?}"),
            "{\"short_body_udp\", \"body_device_id_mismatch\"}"
        );
    }
}
