//! H.264 (ISO/IEC 14496-10): NAL unit types, sequence parameter set parsing, key frames and
//! access unit boundaries.

use crate::bits::{parse_vui_prefix, plausible_frame_rate, to_rbsp, FieldReader, SpsError};
use crate::nal::AvccNals;

const CODEC: &str = "H.264";

/// NAL unit types used here (table 7-1).
pub mod nal_type {
    /// Coded slice of a non-IDR picture.
    pub const SLICE: u8 = 1;
    /// Coded slice data partition A.
    pub const PARTITION_A: u8 = 2;
    /// Coded slice of an IDR picture.
    pub const IDR: u8 = 5;
    /// Supplemental enhancement information.
    pub const SEI: u8 = 6;
    /// Sequence parameter set.
    pub const SPS: u8 = 7;
    /// Picture parameter set.
    pub const PPS: u8 = 8;
    /// Access unit delimiter.
    pub const AUD: u8 = 9;
}

/// The NAL unit type of a NAL unit (its first byte), or `None` for an empty NAL unit.
pub fn nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|h| h & 0x1f)
}

/// Whether the NAL unit carries slice data of a primary coded picture (types 1..=5).
pub fn is_vcl(nal_type: u8) -> bool {
    (1..=5).contains(&nal_type)
}

/// Whether this NAL unit, when it follows the last VCL NAL unit of a picture, begins a new
/// access unit (7.4.1.2.3: AUD, SPS, PPS, SEI, types 14..=18), or is the first slice of a new
/// picture.
///
/// "First slice" is detected by `first_mb_in_slice == 0`, i.e. the first bit after the NAL
/// header is 1. That is exact for streams without arbitrary slice order, which cameras do not
/// use.
pub fn begins_access_unit(nal: &[u8]) -> bool {
    match nal_type(nal) {
        Some(nal_type::AUD | nal_type::SPS | nal_type::PPS | nal_type::SEI) => true,
        Some(14..=18) => true,
        Some(t) if is_vcl(t) => is_first_slice(nal),
        _ => false,
    }
}

/// Whether a VCL NAL unit has `first_mb_in_slice == 0`.
pub fn is_first_slice(nal: &[u8]) -> bool {
    nal.get(1).is_some_and(|b| b & 0x80 != 0)
}

/// Key-frame policy `IdrOnly`: an access unit is a key frame when it contains an IDR slice.
///
/// Non-IDR I pictures with a recovery point SEI ("open GOP") are not treated as key frames,
/// because decoding from them is not guaranteed to be clean; cameras in the field send IDR
/// pictures at every GOP start.
pub fn is_key_frame(avcc: &[u8]) -> bool {
    AvccNals::new(avcc)
        .map_while(Result::ok)
        .any(|nal| nal_type(nal) == Some(nal_type::IDR))
}

/// Fields of a sequence parameter set that the store and the MP4 sample entry need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sps {
    /// `profile_idc` (66 Baseline, 77 Main, 100 High, ...).
    pub profile_idc: u8,
    /// The byte holding `constraint_set0_flag`..`constraint_set5_flag` and the reserved bits.
    pub constraint_flags: u8,
    /// `level_idc` (level × 10, e.g. 30 for level 3.0).
    pub level_idc: u8,
    /// `seq_parameter_set_id`.
    pub seq_parameter_set_id: u32,
    /// `chroma_format_idc` (1 = 4:2:0; 1 when absent).
    pub chroma_format_idc: u32,
    /// Luma bit depth (8 when absent).
    pub bit_depth_luma: u8,
    /// Chroma bit depth (8 when absent).
    pub bit_depth_chroma: u8,
    /// `frame_mbs_only_flag` (false means the stream may contain fields).
    pub frame_mbs_only: bool,
    /// Width in luma samples after the cropping rectangle.
    pub width: u32,
    /// Height in luma samples after the cropping rectangle.
    pub height: u32,
    /// Pixel aspect ratio from the VUI, when signalled.
    pub sample_aspect_ratio: Option<(u16, u16)>,
    /// Frames per second as a reduced fraction, from VUI timing (`time_scale / (2 ×
    /// num_units_in_tick)`), when signalled and plausible.
    pub frame_rate: Option<(u32, u32)>,
}

/// Profiles whose SPS carries chroma format, bit depth and scaling matrices (7.3.2.1.1).
fn has_chroma_info(profile_idc: u8) -> bool {
    matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    )
}

/// Largest picture dimension accepted, in luma samples (level 6.2 allows 8192 × 4320).
const MAX_DIMENSION: u32 = 16384;

/// Parses an SPS NAL unit (starting with its NAL header byte, emulation prevention bytes
/// included).
///
/// Errors in the VUI are not fatal: the picture size is known before the VUI, so a malformed
/// VUI only leaves the aspect ratio and frame rate unknown (policy `LenientVui`).
pub fn parse_sps(nal: &[u8]) -> Result<Sps, SpsError> {
    let header = nal.first().copied().unwrap_or(0);
    if header & 0x1f != nal_type::SPS || header & 0x80 != 0 {
        return Err(SpsError::NotSps {
            codec: CODEC,
            header: u16::from(header),
        });
    }
    let rbsp = to_rbsp(&nal[1..]);
    let mut r = FieldReader::new(&rbsp, CODEC);
    let profile_idc = r.bits("profile_idc", 8)? as u8;
    let constraint_flags = r.bits("constraint_set_flags", 8)? as u8;
    let level_idc = r.bits("level_idc", 8)? as u8;
    let seq_parameter_set_id = r.ue_max("seq_parameter_set_id", 31)?;

    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    let mut bit_depth_luma = 8;
    let mut bit_depth_chroma = 8;
    if has_chroma_info(profile_idc) {
        chroma_format_idc = r.ue_max("chroma_format_idc", 3)?;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.flag("separate_colour_plane_flag")?;
        }
        bit_depth_luma = 8 + r.ue_max("bit_depth_luma_minus8", 6)? as u8;
        bit_depth_chroma = 8 + r.ue_max("bit_depth_chroma_minus8", 6)? as u8;
        r.flag("qpprime_y_zero_transform_bypass_flag")?;
        if r.flag("seq_scaling_matrix_present_flag")? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.flag("seq_scaling_list_present_flag")? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }

    r.ue_max("log2_max_frame_num_minus4", 12)?;
    match r.ue_max("pic_order_cnt_type", 2)? {
        0 => {
            r.ue_max("log2_max_pic_order_cnt_lsb_minus4", 12)?;
        }
        1 => {
            r.flag("delta_pic_order_always_zero_flag")?;
            r.se("offset_for_non_ref_pic")?;
            r.se("offset_for_top_to_bottom_field")?;
            let n = r.ue_max("num_ref_frames_in_pic_order_cnt_cycle", 255)?;
            for _ in 0..n {
                r.se("offset_for_ref_frame")?;
            }
        }
        _ => {}
    }
    r.ue("max_num_ref_frames")?;
    r.flag("gaps_in_frame_num_value_allowed_flag")?;
    let width_mbs = r.ue_max("pic_width_in_mbs_minus1", MAX_DIMENSION / 16 - 1)? + 1;
    let height_map_units = r.ue_max("pic_height_in_map_units_minus1", MAX_DIMENSION / 16 - 1)? + 1;
    let frame_mbs_only = r.flag("frame_mbs_only_flag")?;
    if !frame_mbs_only {
        r.flag("mb_adaptive_frame_field_flag")?;
    }
    r.flag("direct_8x8_inference_flag")?;

    let width = width_mbs * 16;
    let height = height_map_units * 16 * if frame_mbs_only { 1 } else { 2 };
    let (mut crop_w, mut crop_h) = (0u64, 0u64);
    if r.flag("frame_cropping_flag")? {
        // Crop units (7-19 .. 7-22): ChromaArrayType 0 counts in luma samples.
        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let (unit_x, sub_h): (u64, u64) = match chroma_array_type {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        let unit_y = sub_h * if frame_mbs_only { 1 } else { 2 };
        let left = u64::from(r.ue("frame_crop_left_offset")?);
        let right = u64::from(r.ue("frame_crop_right_offset")?);
        let top = u64::from(r.ue("frame_crop_top_offset")?);
        let bottom = u64::from(r.ue("frame_crop_bottom_offset")?);
        crop_w = (left + right) * unit_x;
        crop_h = (top + bottom) * unit_y;
    }
    if crop_w >= u64::from(width) {
        return Err(r.invalid(
            "frame_crop_left/right_offset",
            crop_w,
            "crops the whole width",
        ));
    }
    if crop_h >= u64::from(height) {
        return Err(r.invalid(
            "frame_crop_top/bottom_offset",
            crop_h,
            "crops the whole height",
        ));
    }
    // Both crops are below the dimension (≤ 32768), so these fit in u32.
    let width = width - crop_w as u32;
    let height = height - crop_h as u32;

    let mut sps = Sps {
        profile_idc,
        constraint_flags,
        level_idc,
        seq_parameter_set_id,
        chroma_format_idc,
        bit_depth_luma,
        bit_depth_chroma,
        frame_mbs_only,
        width,
        height,
        sample_aspect_ratio: None,
        frame_rate: None,
    };
    if r.flag("vui_parameters_present_flag").unwrap_or(false) {
        // Policy `LenientVui`: keep whatever was read before an error.
        let _ = parse_vui(&mut r, &mut sps);
    }
    Ok(sps)
}

/// `scaling_list()` (7.3.2.1.1.1), read only to get past it.
fn skip_scaling_list(r: &mut FieldReader<'_>, size: usize) -> Result<(), SpsError> {
    let mut last: i64 = 8;
    let mut next: i64 = 8;
    for _ in 0..size {
        if next != 0 {
            let delta = i64::from(r.se("delta_scale")?);
            next = (last + delta).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

/// `vui_parameters()` up to the timing information (E.1.1).
fn parse_vui(r: &mut FieldReader<'_>, sps: &mut Sps) -> Result<(), SpsError> {
    sps.sample_aspect_ratio = parse_vui_prefix(r)?;
    if r.flag("timing_info_present_flag")? {
        let num_units_in_tick = r.bits("num_units_in_tick", 32)?;
        let time_scale = r.bits("time_scale", 32)?;
        // A frame is two ticks (one per field) in H.264 (E.2.1, equation E-2 context).
        sps.frame_rate =
            plausible_frame_rate(u64::from(time_scale), 2 * u64::from(num_units_in_tick));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SPS of a Hikvision IPC (ps/PsPacketDecodeNormal_1.bin @0xa4): Main, level 3.0, 640x480.
    const HIK_SPS_640: &[u8] = &[
        0x67, 0x4d, 0x00, 0x1e, 0x9d, 0xa8, 0x28, 0x0f, 0x69, 0xb8, 0x08, 0x08, 0x0a, 0x00, 0x00,
        0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x65, 0x08,
    ];
    /// SPS of a Hikvision IPC (ps/PsPacketDecodeInvalidStartCode_1.bin): Main 5.0, 2560x1440.
    const HIK_SPS_2560: &[u8] = &[
        0x67, 0x4d, 0x00, 0x32, 0x9d, 0xa8, 0x0a, 0x00, 0x2d, 0x69, 0xb8, 0x08, 0x08, 0x0a, 0x00,
        0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x65, 0x08,
    ];

    #[test]
    fn hikvision_sps_640x480() {
        let sps = parse_sps(HIK_SPS_640).unwrap();
        assert_eq!((sps.profile_idc, sps.level_idc), (77, 30));
        assert_eq!((sps.width, sps.height), (640, 480));
        assert_eq!(sps.chroma_format_idc, 1);
        // time_scale 50, num_units_in_tick 1 → 25 fps (ffprobe: r_frame_rate 25/1).
        assert_eq!(sps.frame_rate, Some((25, 1)));
        assert_eq!(sps.sample_aspect_ratio, None);
    }

    #[test]
    fn hikvision_sps_2560x1440() {
        let sps = parse_sps(HIK_SPS_2560).unwrap();
        assert_eq!((sps.profile_idc, sps.level_idc), (77, 50));
        assert_eq!((sps.width, sps.height), (2560, 1440));
        assert_eq!(sps.frame_rate, Some((25, 1)));
    }

    /// x264 High with scaling matrices (`-x264-params cqm=jvt`), 1280x720 at 30000/1001
    /// (testdata/SOURCES.md, "SPS samples").
    const X264_HIGH_CQM: &[u8] = &[
        0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x3e,
        0x90, 0x00, 0x0e, 0xa6, 0x00, 0xf1, 0x83, 0x19, 0x60,
    ];
    /// x264 High 4:2:2 interlaced (`-flags +ildct`), 720x576 at 25 fps.
    const X264_HIGH422_INTERLACED: &[u8] = &[
        0x67, 0x7a, 0x00, 0x1e, 0xbc, 0xd9, 0x40, 0xb4, 0x24, 0xd8, 0x08, 0x80, 0x00, 0x00, 0x03,
        0x00, 0x80, 0x00, 0x00, 0x19, 0x0f, 0x8a, 0x14, 0xcb,
    ];

    #[test]
    fn x264_high_with_scaling_matrices() {
        let sps = parse_sps(X264_HIGH_CQM).unwrap();
        assert_eq!((sps.profile_idc, sps.level_idc), (100, 31));
        assert_eq!((sps.width, sps.height), (1280, 720));
        assert_eq!(sps.frame_rate, Some((30000, 1001)));
        assert_eq!((sps.chroma_format_idc, sps.bit_depth_luma), (1, 8));
    }

    #[test]
    fn x264_high422_interlaced() {
        let sps = parse_sps(X264_HIGH422_INTERLACED).unwrap();
        assert_eq!(sps.profile_idc, 122);
        assert_eq!(sps.chroma_format_idc, 2);
        assert!(!sps.frame_mbs_only);
        assert_eq!((sps.width, sps.height), (720, 576));
        assert_eq!(sps.frame_rate, Some((25, 1)));
    }

    /// Minimal MSB-first bit writer for building synthetic SPS in tests.
    #[derive(Default)]
    struct Bits(Vec<bool>);

    impl Bits {
        fn u(&mut self, n: u32, v: u32) -> &mut Self {
            for i in (0..n).rev() {
                self.0.push(v >> i & 1 == 1);
            }
            self
        }
        fn ue(&mut self, v: u32) -> &mut Self {
            let x = v + 1;
            let len = 32 - x.leading_zeros();
            self.u(len - 1, 0).u(len, x)
        }
        fn se(&mut self, v: i32) -> &mut Self {
            let k = if v > 0 {
                2 * v as u32 - 1
            } else {
                (-2 * v) as u32
            };
            self.ue(k)
        }
        fn bytes(&self) -> Vec<u8> {
            let mut out = vec![0u8; self.0.len().div_ceil(8)];
            for (i, b) in self.0.iter().enumerate() {
                if *b {
                    out[i / 8] |= 0x80 >> (i % 8);
                }
            }
            out
        }
    }

    #[test]
    fn high_profile_with_scaling_lists_and_cropping() {
        // High 4:4:4 with sequence scaling lists (12 lists, some with deltas that wrap), POC
        // type 1 and 4:4:4 cropping in luma units.
        let mut b = Bits::default();
        b.u(8, 0x67).u(8, 244).u(8, 0).u(8, 40).ue(0);
        b.ue(3).u(1, 0).ue(2).ue(2).u(1, 0); // chroma 4:4:4, 10-bit, qpprime
        b.u(1, 1); // seq_scaling_matrix_present_flag
        for i in 0..12 {
            b.u(1, 1); // list present
            let size = if i < 6 { 16 } else { 64 };
            for j in 0..size {
                // Some lists end early through nextScale = 0 ("use default").
                b.se(if i % 3 == 0 && j == 3 { -8 - 3 * 7 } else { 7 });
                if i % 3 == 0 && j == 3 {
                    break;
                }
            }
        }
        b.ue(0).ue(1); // log2_max_frame_num_minus4, pic_order_cnt_type 1
        b.u(1, 0).se(-2).se(1).ue(2).se(1).se(-1);
        b.ue(4).u(1, 0); // max_num_ref_frames, gaps
        b.ue(119).ue(67); // 1920 x 1088
        b.u(1, 1).u(1, 1); // frame_mbs_only, direct_8x8
        b.u(1, 1).ue(2).ue(6).ue(0).ue(8); // crop 8 px wide, 8 px high (4:4:4 units)
        b.u(1, 0); // no VUI
        b.u(1, 1); // rbsp stop bit
        let sps = parse_sps(&b.bytes()).unwrap();
        assert_eq!((sps.profile_idc, sps.chroma_format_idc), (244, 3));
        assert_eq!((sps.bit_depth_luma, sps.bit_depth_chroma), (10, 10));
        assert_eq!((sps.width, sps.height), (1912, 1080));
        assert_eq!(sps.frame_rate, None);
    }

    #[test]
    fn truncated_sps_names_the_field() {
        let err = parse_sps(&HIK_SPS_640[..6]).unwrap_err();
        assert!(
            matches!(err, SpsError::Read { field, .. } if field.starts_with("pic_")
                || field.starts_with("log2") || field.starts_with("max_num")
                || field.starts_with("frame")),
            "{err}"
        );
        assert!(matches!(
            parse_sps(&[0x68, 1, 2]),
            Err(SpsError::NotSps { header: 0x68, .. })
        ));
        assert!(matches!(parse_sps(&[]), Err(SpsError::NotSps { .. })));
    }

    #[test]
    fn access_unit_boundaries() {
        assert!(begins_access_unit(&[0x09, 0xf0]));
        assert!(begins_access_unit(&[0x67, 0x4d]));
        assert!(begins_access_unit(&[0x06, 0xe5]));
        // P slice with first_mb_in_slice = 0 (Hikvision, ps/PsPacketDecodeNormal_6.bin).
        assert!(begins_access_unit(&[0x61, 0xe0, 0x08]));
        // IDR slice with first_mb_in_slice = 2 (SRS filler 'x' after the header).
        assert!(!begins_access_unit(&[0x65, 0x78]));
        assert!(!begins_access_unit(&[0x65]));
        assert!(!begins_access_unit(&[]));
    }

    #[test]
    fn key_frames() {
        assert!(is_key_frame(&[0, 0, 0, 2, 0x67, 0, 0, 0, 0, 2, 0x65, 0x88]));
        assert!(!is_key_frame(&[0, 0, 0, 2, 0x41, 0x9a]));
        // A broken length prefix ends the search without panicking.
        assert!(!is_key_frame(&[0, 0, 0, 9, 0x65]));
    }
}
