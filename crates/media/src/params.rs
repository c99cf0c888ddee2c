//! Codec parameters of a video stream and the MP4 sample entry (`avc1` + `avcC`, `hvc1` +
//! `hvcC`, ISO/IEC 14496-15) that carries them.
//!
//! Two sources build [`VideoParameters`]: in-band parameter sets (GB/T 28181 PS streams, see
//! [`VideoParameters::from_h264`], [`VideoParameters::from_h265`],
//! [`VideoParameters::from_access_unit`]) and a sample entry supplied by the RTSP client
//! ([`VideoParameters::from_sample_entry`]). Both derive width, height, frame rate and the RFC
//! 6381 codec string with the same SPS parser, so the store sees uniform values.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::bits::SpsError;
use crate::mp4box::{begin_box, children, end_box, fourcc, BoxHeader};
use crate::nal::AvccNals;
use crate::{h264, h265};

/// Video codecs the store records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// H.264 / AVC.
    H264,
    /// H.265 / HEVC.
    H265,
}

impl VideoCodec {
    /// Whether an access unit (4-byte length-prefixed NAL units) is a key frame (IDR for H.264,
    /// IRAP for H.265; see [`h264::is_key_frame`], [`h265::is_key_frame`]).
    pub fn is_key_frame(self, avcc: &[u8]) -> bool {
        match self {
            Self::H264 => h264::is_key_frame(avcc),
            Self::H265 => h265::is_key_frame(avcc),
        }
    }

    /// Guesses the codec from one NAL unit (header first) when the container does not say, e.g.
    /// a PS stream without a program stream map. Only answers for headers that are
    /// unambiguous in practice:
    /// - H.264 slices, IDR slices and SPS (types 1, 5, 7) have an odd first byte, which in
    ///   H.265 would mean `nuh_layer_id` ≥ 32, never seen in camera streams;
    /// - H.265 VPS/SPS/PPS, IDR_W_RADL, CRA and TRAIL_R with `nuh_layer_id` 0 and
    ///   `TemporalId` 0 (`xx 01`), which in H.264 would be types 0, 2, 4, 6, 10 with
    ///   impossible or unused `nal_ref_idc` combinations.
    pub fn sniff(nal: &[u8]) -> Option<Self> {
        let b0 = *nal.first()?;
        if b0 & 0x80 != 0 {
            return None;
        }
        if b0 & 1 == 1 {
            let ref_idc = b0 >> 5;
            return match b0 & 0x1f {
                1 => Some(Self::H264),
                5 | 7 if ref_idc != 0 => Some(Self::H264),
                _ => None,
            };
        }
        match (b0, nal.get(1)) {
            (0x40 | 0x42 | 0x44 | 0x26 | 0x2a | 0x02, Some(0x01)) => Some(Self::H265),
            _ => None,
        }
    }

    /// Whether `nal` (header first) is a VCL NAL unit that begins a new picture, or a non-VCL
    /// NAL unit that begins a new access unit when it follows a picture.
    pub fn begins_access_unit(self, nal: &[u8]) -> bool {
        match self {
            Self::H264 => h264::begins_access_unit(nal),
            Self::H265 => h265::begins_access_unit(nal),
        }
    }

    /// Whether `nal` (header first) is a VCL (slice) NAL unit.
    pub fn is_vcl(self, nal: &[u8]) -> bool {
        match self {
            Self::H264 => h264::nal_type(nal).is_some_and(h264::is_vcl),
            Self::H265 => h265::nal_type(nal).is_some_and(h265::is_vcl),
        }
    }

    /// Whether `nal` (header first) is a parameter set (SPS, PPS and for H.265 VPS).
    pub fn is_parameter_set(self, nal: &[u8]) -> bool {
        match self {
            Self::H264 => matches!(
                h264::nal_type(nal),
                Some(h264::nal_type::SPS | h264::nal_type::PPS)
            ),
            Self::H265 => matches!(
                h265::nal_type(nal),
                Some(h265::nal_type::VPS | h265::nal_type::SPS | h265::nal_type::PPS)
            ),
        }
    }
}

impl fmt::Display for VideoCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::H264 => "H.264",
            Self::H265 => "H.265",
        })
    }
}

/// Why codec parameters could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// The SPS could not be parsed.
    #[error(transparent)]
    Sps(#[from] SpsError),
    /// A required parameter set is missing.
    #[error("{codec} parameters need a {kind} NAL unit, none was found")]
    Missing {
        /// The codec.
        codec: VideoCodec,
        /// "VPS", "SPS" or "PPS".
        kind: &'static str,
    },
    /// A parameter set does not fit the 16-bit length of the decoder configuration record.
    #[error("{kind} of {len} bytes does not fit the decoder configuration record")]
    TooLarge {
        /// "VPS", "SPS" or "PPS".
        kind: &'static str,
        /// Its length.
        len: usize,
    },
    /// A supplied sample entry is malformed.
    #[error("sample entry at offset {offset}: {reason}")]
    SampleEntry {
        /// Byte offset in the sample entry.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
}

/// The codec parameters of a video stream. Cheap to clone (the sample entry is a [`Bytes`]).
///
/// Equality means "a decoder configured for one can decode the other without reconfiguring":
/// same codec and the same parameter sets, byte for byte. The sample entry itself is not
/// compared: the same stream reaches us with differently built entries (retina's `avcC` omits
/// the optional High-profile chroma/bit-depth fields ours writes), and those must not cut a
/// segment. The store starts a new segment when the parameters of a stream change.
#[derive(Debug, Clone)]
pub struct VideoParameters {
    codec: VideoCodec,
    width: u32,
    height: u32,
    frame_rate: Option<(u32, u32)>,
    sample_aspect_ratio: Option<(u16, u16)>,
    rfc6381_codec: String,
    sample_entry: Bytes,
}

/// Common SPS facts of both codecs.
struct SpsFacts {
    width: u32,
    height: u32,
    frame_rate: Option<(u32, u32)>,
    sample_aspect_ratio: Option<(u16, u16)>,
}

impl VideoParameters {
    /// Builds H.264 parameters from SPS and PPS NAL units (header byte first, as in the
    /// bitstream). Further SPS/PPS (other ids) may follow in the slices; they are all put in
    /// the `avcC` record.
    pub fn from_h264(sps: &[&[u8]], pps: &[&[u8]]) -> Result<Self, ParamsError> {
        let missing = |kind| ParamsError::Missing {
            codec: VideoCodec::H264,
            kind,
        };
        let first = sps.first().ok_or_else(|| missing("SPS"))?;
        if pps.is_empty() {
            return Err(missing("PPS"));
        }
        let parsed = h264::parse_sps(first)?;
        let avcc = avc_decoder_configuration(&parsed, sps, pps)?;
        let facts = SpsFacts {
            width: parsed.width,
            height: parsed.height,
            frame_rate: parsed.frame_rate,
            sample_aspect_ratio: parsed.sample_aspect_ratio,
        };
        Ok(Self::assemble(
            VideoCodec::H264,
            facts,
            h264_codec_string(&parsed),
            visual_sample_entry(
                b"avc1",
                (parsed.width, parsed.height),
                parsed.sample_aspect_ratio,
                b"avcC",
                &avcc,
            ),
        ))
    }

    /// Builds H.265 parameters from VPS, SPS and PPS NAL units (two-byte header first).
    pub fn from_h265(vps: &[&[u8]], sps: &[&[u8]], pps: &[&[u8]]) -> Result<Self, ParamsError> {
        let missing = |kind| ParamsError::Missing {
            codec: VideoCodec::H265,
            kind,
        };
        if vps.is_empty() {
            return Err(missing("VPS"));
        }
        let first = sps.first().ok_or_else(|| missing("SPS"))?;
        if pps.is_empty() {
            return Err(missing("PPS"));
        }
        let parsed = h265::parse_sps(first)?;
        let hvcc = hevc_decoder_configuration(&parsed, vps, sps, pps)?;
        let facts = SpsFacts {
            width: parsed.width,
            height: parsed.height,
            frame_rate: parsed.frame_rate,
            sample_aspect_ratio: parsed.sample_aspect_ratio,
        };
        Ok(Self::assemble(
            VideoCodec::H265,
            facts,
            h265_codec_string(&parsed.profile_tier_level),
            visual_sample_entry(
                b"hvc1",
                (parsed.width, parsed.height),
                parsed.sample_aspect_ratio,
                b"hvcC",
                &hvcc,
            ),
        ))
    }

    /// Builds parameters from the parameter sets found in one access unit (4-byte
    /// length-prefixed NAL units), typically a key frame. Returns `Ok(None)` when the access
    /// unit carries no SPS at all (a frame without in-band parameters).
    pub fn from_access_unit(codec: VideoCodec, avcc: &[u8]) -> Result<Option<Self>, ParamsError> {
        let sets = ParameterSets::from_access_unit(codec, avcc);
        if sets.sps.is_empty() {
            return Ok(None);
        }
        sets.build(codec).map(Some)
    }

    /// Wraps a complete sample entry box supplied by the RTSP client (for example retina's
    /// `VideoParameters::mp4_sample_entry()`): `avc1`/`avc3` with `avcC`, or `hvc1`/`hev1`
    /// with `hvcC`. The entry is kept byte for byte; width, height, frame rate and codec string
    /// come from the SPS inside it, parsed by our own parser.
    pub fn from_sample_entry(sample_entry: Bytes) -> Result<Self, ParamsError> {
        let bad = |offset: usize, reason: String| ParamsError::SampleEntry { offset, reason };
        let header = BoxHeader::parse(&sample_entry)
            .map_err(|p| bad(0, format!("unusable box header ({p:?})")))?;
        let size = header.size.unwrap_or(sample_entry.len() as u64);
        if size != sample_entry.len() as u64 {
            return Err(bad(
                0,
                format!("box size {size} but {} bytes supplied", sample_entry.len()),
            ));
        }
        let (codec, config_type) = match &header.box_type {
            b"avc1" | b"avc3" => (VideoCodec::H264, b"avcC"),
            b"hvc1" | b"hev1" => (VideoCodec::H265, b"hvcC"),
            other => {
                return Err(bad(
                    4,
                    format!(
                        "box type `{}` is not an H.264/H.265 sample entry",
                        fourcc(other)
                    ),
                ))
            }
        };
        // VisualSampleEntry fields (ISO/IEC 14496-12 12.1.3) take 78 bytes after the header.
        let fields_end = header.header_len + 78;
        let Some(child_bytes) = sample_entry.get(fields_end..) else {
            return Err(bad(
                header.header_len,
                "shorter than the 78 bytes of VisualSampleEntry fields".into(),
            ));
        };
        let mut config = None;
        for child in children(child_bytes) {
            let child = child.map_err(|off| {
                bad(
                    fields_end + off,
                    "child box overruns the sample entry".into(),
                )
            })?;
            if &child.box_type == config_type {
                config = Some((fields_end + child.offset, child.payload));
            }
        }
        let Some((config_offset, config)) = config else {
            return Err(bad(fields_end, format!("no `{}` box", fourcc(config_type))));
        };
        let sets = ParameterSets::from_config_record(codec, config)
            .map_err(|(off, reason)| bad(config_offset + 8 + off, reason.into()))?;
        let built = sets.build(codec)?;
        Ok(Self {
            sample_entry,
            ..built
        })
    }

    fn assemble(codec: VideoCodec, facts: SpsFacts, rfc6381_codec: String, entry: Bytes) -> Self {
        Self {
            codec,
            width: facts.width,
            height: facts.height,
            frame_rate: facts.frame_rate,
            sample_aspect_ratio: facts.sample_aspect_ratio,
            rfc6381_codec,
            sample_entry: entry,
        }
    }

    /// The codec.
    pub fn codec(&self) -> VideoCodec {
        self.codec
    }

    /// Width in pixels (after cropping).
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels (after cropping).
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Frames per second as `(numerator, denominator)`, from the SPS VUI timing, if signalled.
    pub fn frame_rate(&self) -> Option<(u32, u32)> {
        self.frame_rate
    }

    /// Pixel aspect ratio from the SPS VUI, if signalled.
    pub fn sample_aspect_ratio(&self) -> Option<(u16, u16)> {
        self.sample_aspect_ratio
    }

    /// Display size: the width stretched by the pixel aspect ratio (e.g. 704x576 with 12:11
    /// pixels displays as 768x576).
    pub fn display_size(&self) -> (u32, u32) {
        match self.sample_aspect_ratio {
            Some((h, v)) if h != 0 && v != 0 => {
                let w = u64::from(self.width) * u64::from(h) / u64::from(v);
                (u32::try_from(w).unwrap_or(self.width), self.height)
            }
            _ => (self.width, self.height),
        }
    }

    /// RFC 6381 codec string, e.g. `avc1.4D001E` or `hvc1.1.6.L93.B0`.
    pub fn rfc6381_codec(&self) -> &str {
        &self.rfc6381_codec
    }

    /// The complete MP4 sample entry box (`avc1` + `avcC` or `hvc1` + `hvcC`).
    pub fn sample_entry(&self) -> &Bytes {
        &self.sample_entry
    }

    /// Nominal frame duration in 90 kHz ticks from the frame rate, when known.
    pub fn nominal_frame_duration(&self) -> Option<u32> {
        let (num, den) = self.frame_rate?;
        let ticks = u64::from(den) * 90_000 / u64::from(num);
        u32::try_from(ticks).ok().filter(|&t| t > 0)
    }

    /// What equality and hashing compare (see the type's documentation).
    fn identity(&self) -> (VideoCodec, Vec<Bytes>) {
        (self.codec, self.parameter_sets())
    }

    /// The parameter sets (VPS, SPS, PPS in that order) from the sample entry, each without
    /// start code or length prefix. The PS muxer uses them to put parameter sets in front of
    /// key frames that lack them (RTSP cameras often send them only out of band).
    pub fn parameter_sets(&self) -> Vec<Bytes> {
        // The entry was validated at construction; an unparsable entry yields no sets.
        let Ok(header) = BoxHeader::parse(&self.sample_entry) else {
            return Vec::new();
        };
        let config_type: &[u8; 4] = match self.codec {
            VideoCodec::H264 => b"avcC",
            VideoCodec::H265 => b"hvcC",
        };
        let start = header.header_len + 78;
        let Some(rest) = self.sample_entry.get(start..) else {
            return Vec::new();
        };
        for child in children(rest).map_while(Result::ok) {
            if &child.box_type == config_type {
                if let Ok(sets) = ParameterSets::from_config_record(self.codec, child.payload) {
                    return sets
                        .vps
                        .iter()
                        .chain(&sets.sps)
                        .chain(&sets.pps)
                        .map(|s| self.sample_entry.slice_ref(s))
                        .collect();
                }
            }
        }
        Vec::new()
    }
}

impl PartialEq for VideoParameters {
    fn eq(&self, other: &Self) -> bool {
        self.sample_entry == other.sample_entry || self.identity() == other.identity()
    }
}

impl Eq for VideoParameters {}

impl std::hash::Hash for VideoParameters {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.identity().hash(state);
    }
}

/// The parameter sets of an access unit or a decoder configuration record (NAL units with
/// their header, without start code or length prefix; repeated ones kept once).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParameterSets<'a> {
    /// Video parameter sets (H.265 only).
    pub vps: Vec<&'a [u8]>,
    /// Sequence parameter sets.
    pub sps: Vec<&'a [u8]>,
    /// Picture parameter sets.
    pub pps: Vec<&'a [u8]>,
}

impl<'a> ParameterSets<'a> {
    /// Extracts the parameter sets of an access unit (4-byte length-prefixed NAL units). A
    /// malformed length prefix ends the walk.
    pub fn from_access_unit(codec: VideoCodec, avcc: &'a [u8]) -> Self {
        let mut sets = Self::default();
        for nal in AvccNals::new(avcc).map_while(Result::ok) {
            sets.add(codec, nal);
        }
        sets
    }

    /// Whether no parameter set was found.
    pub fn is_empty(&self) -> bool {
        self.vps.is_empty() && self.sps.is_empty() && self.pps.is_empty()
    }

    fn add(&mut self, codec: VideoCodec, nal: &'a [u8]) {
        let list = match codec {
            VideoCodec::H264 => match h264::nal_type(nal) {
                Some(h264::nal_type::SPS) => &mut self.sps,
                Some(h264::nal_type::PPS) => &mut self.pps,
                _ => return,
            },
            VideoCodec::H265 => match h265::nal_type(nal) {
                Some(h265::nal_type::VPS) => &mut self.vps,
                Some(h265::nal_type::SPS) => &mut self.sps,
                Some(h265::nal_type::PPS) => &mut self.pps,
                _ => return,
            },
        };
        // Cameras repeat parameter sets; keep one copy of each distinct one.
        if !list.contains(&nal) {
            list.push(nal);
        }
    }

    fn build(&self, codec: VideoCodec) -> Result<VideoParameters, ParamsError> {
        match codec {
            VideoCodec::H264 => VideoParameters::from_h264(&self.sps, &self.pps),
            VideoCodec::H265 => VideoParameters::from_h265(&self.vps, &self.sps, &self.pps),
        }
    }

    /// Reads the NAL units of an `avcC` or `hvcC` payload. Errors carry the offset within the
    /// payload.
    fn from_config_record(codec: VideoCodec, rec: &'a [u8]) -> Result<Self, (usize, &'static str)> {
        let mut sets = Self::default();
        let mut r = ByteCursor { data: rec, pos: 0 };
        match codec {
            VideoCodec::H264 => {
                r.skip(5, "avcC header shorter than 5 bytes")?;
                let n_sps = r.u8("avcC ends before numOfSequenceParameterSets")? & 0x1f;
                for _ in 0..n_sps {
                    sets.add(codec, r.sized("avcC SPS overruns the record")?);
                }
                let n_pps = r.u8("avcC ends before numOfPictureParameterSets")?;
                for _ in 0..n_pps {
                    sets.add(codec, r.sized("avcC PPS overruns the record")?);
                }
            }
            VideoCodec::H265 => {
                r.skip(22, "hvcC header shorter than 22 bytes")?;
                let arrays = r.u8("hvcC ends before numOfArrays")?;
                for _ in 0..arrays {
                    r.u8("hvcC array header truncated")?;
                    let hi = r.u8("hvcC array header truncated")?;
                    let lo = r.u8("hvcC array header truncated")?;
                    for _ in 0..u16::from_be_bytes([hi, lo]) {
                        sets.add(codec, r.sized("hvcC NAL unit overruns the record")?);
                    }
                }
            }
        }
        Ok(sets)
    }
}

struct ByteCursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> ByteCursor<'a> {
    fn skip(&mut self, n: usize, why: &'static str) -> Result<(), (usize, &'static str)> {
        if self.data.len() < self.pos + n {
            return Err((self.pos, why));
        }
        self.pos += n;
        Ok(())
    }

    fn u8(&mut self, why: &'static str) -> Result<u8, (usize, &'static str)> {
        let v = *self.data.get(self.pos).ok_or((self.pos, why))?;
        self.pos += 1;
        Ok(v)
    }

    /// A 16-bit length followed by that many bytes.
    fn sized(&mut self, why: &'static str) -> Result<&'a [u8], (usize, &'static str)> {
        let at = self.pos;
        let hi = self.u8(why)?;
        let lo = self.u8(why)?;
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        let v = self.data.get(self.pos..self.pos + len).ok_or((at, why))?;
        self.pos += len;
        Ok(v)
    }
}

fn put_sized(out: &mut BytesMut, kind: &'static str, nal: &[u8]) -> Result<(), ParamsError> {
    let len = u16::try_from(nal.len()).map_err(|_| ParamsError::TooLarge {
        kind,
        len: nal.len(),
    })?;
    out.put_u16(len);
    out.put_slice(nal);
    Ok(())
}

fn count_u8(kind: &'static str, n: usize, max: usize) -> Result<u8, ParamsError> {
    if n > max {
        return Err(ParamsError::TooLarge { kind, len: n });
    }
    Ok(n as u8)
}

/// `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 5.3.3.1).
fn avc_decoder_configuration(
    sps: &h264::Sps,
    sps_nals: &[&[u8]],
    pps_nals: &[&[u8]],
) -> Result<BytesMut, ParamsError> {
    let mut c = BytesMut::with_capacity(64);
    c.put_u8(1); // configurationVersion
    c.put_u8(sps.profile_idc);
    c.put_u8(sps.constraint_flags);
    c.put_u8(sps.level_idc);
    c.put_u8(0xfc | 3); // lengthSizeMinusOne = 3: 4-byte length prefixes
    c.put_u8(0xe0 | count_u8("SPS count", sps_nals.len(), 31)?);
    for s in sps_nals {
        put_sized(&mut c, "SPS", s)?;
    }
    c.put_u8(count_u8("PPS count", pps_nals.len(), 255)?);
    for p in pps_nals {
        put_sized(&mut c, "PPS", p)?;
    }
    if matches!(sps.profile_idc, 100 | 110 | 122 | 144) {
        // High profiles carry chroma format and bit depths (5.3.3.1.1).
        c.put_u8(0xfc | (sps.chroma_format_idc as u8 & 3));
        c.put_u8(0xf8 | (sps.bit_depth_luma - 8));
        c.put_u8(0xf8 | (sps.bit_depth_chroma - 8));
        c.put_u8(0); // numOfSequenceParameterSetExt
    }
    Ok(c)
}

/// `HEVCDecoderConfigurationRecord` (ISO/IEC 14496-15 8.3.3.1).
fn hevc_decoder_configuration(
    sps: &h265::Sps,
    vps_nals: &[&[u8]],
    sps_nals: &[&[u8]],
    pps_nals: &[&[u8]],
) -> Result<BytesMut, ParamsError> {
    let ptl = &sps.profile_tier_level;
    let mut c = BytesMut::with_capacity(128);
    c.put_u8(1); // configurationVersion
    c.put_u8((ptl.profile_space << 6) | (u8::from(ptl.tier_flag) << 5) | ptl.profile_idc);
    c.put_u32(ptl.compatibility_flags);
    c.put_slice(&ptl.constraint_flags.to_be_bytes()[2..]);
    c.put_u8(ptl.level_idc);
    c.put_u16(0xf000); // min_spatial_segmentation_idc = 0 (not signalled)
    c.put_u8(0xfc); // parallelismType = 0 (unknown)
    c.put_u8(0xfc | (sps.chroma_format_idc as u8 & 3));
    c.put_u8(0xf8 | (sps.bit_depth_luma - 8));
    c.put_u8(0xf8 | (sps.bit_depth_chroma - 8));
    c.put_u16(0); // avgFrameRate: unspecified
                  // constantFrameRate 0, numTemporalLayers, temporalIdNested, lengthSizeMinusOne = 3.
    c.put_u8(((sps.max_sub_layers & 7) << 3) | (u8::from(sps.temporal_id_nesting) << 2) | 3);
    c.put_u8(3); // numOfArrays
    for (nal_type, kind, nals) in [
        (h265::nal_type::VPS, "VPS", vps_nals),
        (h265::nal_type::SPS, "SPS", sps_nals),
        (h265::nal_type::PPS, "PPS", pps_nals),
    ] {
        // array_completeness = 1: all parameter sets of the type are in the record, as `hvc1`
        // requires.
        c.put_u8(0x80 | nal_type);
        let n = u16::try_from(nals.len()).map_err(|_| ParamsError::TooLarge {
            kind,
            len: nals.len(),
        })?;
        c.put_u16(n);
        for nal in nals {
            put_sized(&mut c, kind, nal)?;
        }
    }
    Ok(c)
}

/// A `VisualSampleEntry` (ISO/IEC 14496-12 12.1.3) with the configuration box and, for
/// non-square pixels, a `pasp` box (D1 cameras, 704x576 with 12:11 pixels, are common in
/// older GB/T 28181 installations).
fn visual_sample_entry(
    entry_type: &[u8; 4],
    (width, height): (u32, u32),
    sar: Option<(u16, u16)>,
    config_type: &[u8; 4],
    config: &[u8],
) -> Bytes {
    let mut b = BytesMut::with_capacity(86 + 8 + config.len());
    let entry = begin_box(&mut b, entry_type);
    b.put_bytes(0, 6); // reserved
    b.put_u16(1); // data_reference_index
    b.put_u16(0); // pre_defined
    b.put_u16(0); // reserved
    b.put_bytes(0, 12); // pre_defined
                        // Dimensions are at most 16384 (SPS parser limit), so they fit in 16 bits.
    b.put_u16(width as u16);
    b.put_u16(height as u16);
    b.put_u32(0x0048_0000); // horizresolution 72 dpi
    b.put_u32(0x0048_0000); // vertresolution 72 dpi
    b.put_u32(0); // reserved
    b.put_u16(1); // frame_count
    b.put_bytes(0, 32); // compressorname (empty)
    b.put_u16(0x0018); // depth
    b.put_i16(-1); // pre_defined
    let cfg = begin_box(&mut b, config_type);
    b.put_slice(config);
    end_box(&mut b, cfg);
    if let Some((h, v)) = sar.filter(|(h, v)| h != v) {
        let pasp = begin_box(&mut b, b"pasp");
        b.put_u32(u32::from(h));
        b.put_u32(u32::from(v));
        end_box(&mut b, pasp);
    }
    end_box(&mut b, entry);
    b.freeze()
}

/// `avc1.PPCCLL` (RFC 6381 3.3).
fn h264_codec_string(sps: &h264::Sps) -> String {
    format!(
        "avc1.{:02X}{:02X}{:02X}",
        sps.profile_idc, sps.constraint_flags, sps.level_idc
    )
}

/// `hvc1.[A-C]P.C.TL.B1.B2...` (ISO/IEC 14496-15 annex E.3).
fn h265_codec_string(ptl: &h265::ProfileTierLevel) -> String {
    let space = match ptl.profile_space {
        1 => "A",
        2 => "B",
        3 => "C",
        _ => "",
    };
    // The compatibility flags are written in reverse bit order, hex, no leading zeros.
    let compat = ptl.compatibility_flags.reverse_bits();
    let tier = if ptl.tier_flag { 'H' } else { 'L' };
    let mut s = format!(
        "hvc1.{space}{}.{compat:X}.{tier}{}",
        ptl.profile_idc, ptl.level_idc
    );
    let bytes = ptl.constraint_flags.to_be_bytes();
    let constraint = &bytes[2..];
    // Trailing zero bytes are omitted.
    let keep = constraint
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |p| p + 1);
    for b in &constraint[..keep] {
        s.push_str(&format!(".{b:X}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const HIK_SPS: &[u8] = &[
        0x67, 0x4d, 0x00, 0x1e, 0x9d, 0xa8, 0x28, 0x0f, 0x69, 0xb8, 0x08, 0x08, 0x0a, 0x00, 0x00,
        0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x65, 0x08,
    ];
    const HIK_PPS: &[u8] = &[0x68, 0xee, 0x3c, 0x80];

    #[test]
    fn h264_from_hikvision_parameter_sets() {
        let p = VideoParameters::from_h264(&[HIK_SPS], &[HIK_PPS]).unwrap();
        assert_eq!(p.codec(), VideoCodec::H264);
        assert_eq!((p.width(), p.height()), (640, 480));
        assert_eq!(p.rfc6381_codec(), "avc1.4D001E");
        assert_eq!(p.frame_rate(), Some((25, 1)));
        assert_eq!(p.nominal_frame_duration(), Some(3600));
        let entry = p.sample_entry();
        assert_eq!(&entry[4..8], b"avc1");
        assert_eq!(
            u32::from_be_bytes([entry[0], entry[1], entry[2], entry[3]]) as usize,
            entry.len()
        );
        // width/height fields of the VisualSampleEntry
        assert_eq!(&entry[32..36], &[0x02, 0x80, 0x01, 0xe0]);
        assert_eq!(&entry[90..94], b"avcC");
        assert_eq!(
            p.parameter_sets(),
            vec![Bytes::from_static(HIK_SPS), Bytes::from_static(HIK_PPS)]
        );

        // The entry round-trips through from_sample_entry to equal parameters.
        let again = VideoParameters::from_sample_entry(entry.clone()).unwrap();
        assert_eq!(again, p);
    }

    #[test]
    fn equality_compares_parameter_sets_not_entry_bytes() {
        let ours = VideoParameters::from_h264(&[HIK_SPS], &[HIK_PPS]).unwrap();
        // The same parameter sets in an entry built differently (here: another compressor
        // name, as another muxer would write) are the same stream configuration.
        let mut entry = ours.sample_entry().to_vec();
        entry[50..58].copy_from_slice(b"retina\0\0");
        let theirs = VideoParameters::from_sample_entry(Bytes::from(entry)).unwrap();
        assert_ne!(theirs.sample_entry(), ours.sample_entry());
        assert_eq!(theirs, ours);
        let hash = |p: &VideoParameters| {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            p.hash(&mut h);
            h.finish()
        };
        assert_eq!(hash(&theirs), hash(&ours));
        // A different PPS is a different configuration.
        let other = VideoParameters::from_h264(&[HIK_SPS], &[&[0x68, 0xee, 0x3c, 0x81]]).unwrap();
        assert_ne!(other, ours);
    }

    #[test]
    fn missing_parameter_sets() {
        assert_eq!(
            VideoParameters::from_h264(&[HIK_SPS], &[]),
            Err(ParamsError::Missing {
                codec: VideoCodec::H264,
                kind: "PPS"
            })
        );
        assert!(matches!(
            VideoParameters::from_h265(&[], &[], &[]),
            Err(ParamsError::Missing { kind: "VPS", .. })
        ));
    }

    #[test]
    fn malformed_sample_entries_name_the_offset() {
        let p = VideoParameters::from_h264(&[HIK_SPS], &[HIK_PPS]).unwrap();
        let entry = p.sample_entry().clone();
        let e = VideoParameters::from_sample_entry(entry.slice(..50)).unwrap_err();
        assert!(
            matches!(e, ParamsError::SampleEntry { offset: 0, .. }),
            "{e}"
        );
        let mut wrong = BytesMut::from(&entry[..]);
        wrong[4..8].copy_from_slice(b"mp4v");
        let e = VideoParameters::from_sample_entry(wrong.freeze()).unwrap_err();
        assert!(
            matches!(e, ParamsError::SampleEntry { offset: 4, .. }),
            "{e}"
        );
        // avcC claiming an SPS longer than the record.
        let mut cut = BytesMut::from(&entry[..]);
        cut[94 + 6] = 0x7f;
        let e = VideoParameters::from_sample_entry(cut.freeze()).unwrap_err();
        assert!(
            matches!(e, ParamsError::SampleEntry { offset: 100, .. }),
            "{e}"
        );
    }

    #[test]
    fn sniffing() {
        assert_eq!(VideoCodec::sniff(HIK_SPS), Some(VideoCodec::H264));
        assert_eq!(VideoCodec::sniff(&[0x65, 0xb8]), Some(VideoCodec::H264));
        assert_eq!(VideoCodec::sniff(&[0x41, 0x9a]), Some(VideoCodec::H264));
        assert_eq!(
            VideoCodec::sniff(&[0x40, 0x01, 0x0c]),
            Some(VideoCodec::H265)
        );
        assert_eq!(
            VideoCodec::sniff(&[0x26, 0x01, 0xaf]),
            Some(VideoCodec::H265)
        );
        // PPS and SEI are ambiguous.
        assert_eq!(VideoCodec::sniff(HIK_PPS), None);
        assert_eq!(VideoCodec::sniff(&[0x06, 0xe5]), None);
        assert_eq!(VideoCodec::sniff(&[0x78]), None);
        assert_eq!(VideoCodec::sniff(&[]), None);
    }

    #[test]
    fn hevc_codec_string() {
        let ptl = h265::ProfileTierLevel {
            profile_space: 0,
            tier_flag: false,
            profile_idc: 1,
            compatibility_flags: 0x6000_0000,
            constraint_flags: 0xb000_0000_0000,
            level_idc: 93,
        };
        assert_eq!(h265_codec_string(&ptl), "hvc1.1.6.L93.B0");
        let ptl = h265::ProfileTierLevel {
            tier_flag: true,
            profile_idc: 2,
            compatibility_flags: 0x2000_0000,
            constraint_flags: 0,
            level_idc: 120,
            ..ptl
        };
        assert_eq!(h265_codec_string(&ptl), "hvc1.2.4.H120");
    }
}
