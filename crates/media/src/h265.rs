//! H.265 / HEVC (ISO/IEC 23008-2): NAL unit types, sequence parameter set parsing, key frames
//! (IRAP pictures) and access unit boundaries.

use crate::bits::{parse_vui_prefix, plausible_frame_rate, to_rbsp, FieldReader, SpsError};
use crate::nal::AvccNals;

const CODEC: &str = "H.265";

/// NAL unit types used here (table 7-1).
pub mod nal_type {
    /// First IRAP type (BLA_W_LP).
    pub const BLA_W_LP: u8 = 16;
    /// IDR_W_RADL.
    pub const IDR_W_RADL: u8 = 19;
    /// IDR_N_LP.
    pub const IDR_N_LP: u8 = 20;
    /// CRA_NUT.
    pub const CRA: u8 = 21;
    /// Last type reserved for IRAP pictures.
    pub const RSV_IRAP_23: u8 = 23;
    /// Video parameter set.
    pub const VPS: u8 = 32;
    /// Sequence parameter set.
    pub const SPS: u8 = 33;
    /// Picture parameter set.
    pub const PPS: u8 = 34;
    /// Access unit delimiter.
    pub const AUD: u8 = 35;
    /// Prefix SEI.
    pub const PREFIX_SEI: u8 = 39;
    /// Suffix SEI.
    pub const SUFFIX_SEI: u8 = 40;
}

/// The NAL unit type (from the two-byte header), or `None` for a NAL unit shorter than its
/// header.
pub fn nal_type(nal: &[u8]) -> Option<u8> {
    match nal {
        [b0, _, ..] => Some((b0 >> 1) & 0x3f),
        _ => None,
    }
}

/// Whether the type is a VCL (slice segment) NAL unit type.
pub fn is_vcl(nal_type: u8) -> bool {
    nal_type < 32
}

/// Whether the type is an IRAP picture (BLA, IDR, CRA and the reserved IRAP types).
pub fn is_irap(nal_type: u8) -> bool {
    (nal_type::BLA_W_LP..=nal_type::RSV_IRAP_23).contains(&nal_type)
}

/// Whether this NAL unit, after the last VCL NAL unit of a picture, begins a new access unit
/// (7.4.2.4.4: AUD, VPS, SPS, PPS, prefix SEI, 41..=44, 48..=55), or is the first slice
/// segment of a new picture (`first_slice_segment_in_pic_flag`).
pub fn begins_access_unit(nal: &[u8]) -> bool {
    match nal_type(nal) {
        Some(
            nal_type::VPS
            | nal_type::SPS
            | nal_type::PPS
            | nal_type::AUD
            | nal_type::PREFIX_SEI
            | 41..=44
            | 48..=55,
        ) => true,
        Some(t) if is_vcl(t) => is_first_slice(nal),
        _ => false,
    }
}

/// Whether a VCL NAL unit has `first_slice_segment_in_pic_flag` set.
pub fn is_first_slice(nal: &[u8]) -> bool {
    nal.get(2).is_some_and(|b| b & 0x80 != 0)
}

/// Key-frame policy `Irap`: an access unit is a key frame when it contains an IRAP picture
/// (IDR, CRA or BLA). A CRA may be followed by RASL pictures that cannot be decoded when
/// playback starts at it; decoders skip those, so a CRA is a valid random access point.
pub fn is_key_frame(avcc: &[u8]) -> bool {
    AvccNals::new(avcc)
        .map_while(Result::ok)
        .any(|nal| nal_type(nal).is_some_and(is_irap))
}

/// `profile_tier_level()` general fields, as copied into the `hvcC` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileTierLevel {
    /// `general_profile_space`.
    pub profile_space: u8,
    /// `general_tier_flag` (true = High tier).
    pub tier_flag: bool,
    /// `general_profile_idc` (1 Main, 2 Main 10, ...).
    pub profile_idc: u8,
    /// `general_profile_compatibility_flag[0..32]`, flag 0 in the most significant bit.
    pub compatibility_flags: u32,
    /// The 48 bits from `general_progressive_source_flag` to the end of the constraint flags.
    pub constraint_flags: u64,
    /// `general_level_idc` (level × 30, e.g. 93 for level 3.1).
    pub level_idc: u8,
}

/// Fields of a sequence parameter set that the store and the MP4 sample entry need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sps {
    /// `sps_video_parameter_set_id`.
    pub video_parameter_set_id: u8,
    /// `sps_max_sub_layers_minus1 + 1`.
    pub max_sub_layers: u8,
    /// `sps_temporal_id_nesting_flag`.
    pub temporal_id_nesting: bool,
    /// General profile, tier and level.
    pub profile_tier_level: ProfileTierLevel,
    /// `sps_seq_parameter_set_id`.
    pub seq_parameter_set_id: u32,
    /// `chroma_format_idc` (1 = 4:2:0).
    pub chroma_format_idc: u32,
    /// Luma bit depth.
    pub bit_depth_luma: u8,
    /// Chroma bit depth.
    pub bit_depth_chroma: u8,
    /// Width in luma samples after the conformance window.
    pub width: u32,
    /// Height in luma samples after the conformance window.
    pub height: u32,
    /// Pixel aspect ratio from the VUI, when signalled.
    pub sample_aspect_ratio: Option<(u16, u16)>,
    /// Frames per second as a reduced fraction, from VUI timing (`vui_time_scale /
    /// vui_num_units_in_tick`), when signalled and plausible.
    pub frame_rate: Option<(u32, u32)>,
}

/// Largest picture dimension accepted, in luma samples.
const MAX_DIMENSION: u32 = 16384;

/// Parses an SPS NAL unit (starting with its two-byte NAL header, emulation prevention bytes
/// included).
///
/// As for H.264, errors after the picture size (in the reference picture sets or the VUI) only
/// leave the aspect ratio and frame rate unknown (policy `LenientVui`).
pub fn parse_sps(nal: &[u8]) -> Result<Sps, SpsError> {
    let header = match nal {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        [a] => u16::from(*a) << 8,
        [] => 0,
    };
    if nal.len() < 2 || nal_type(nal) != Some(nal_type::SPS) || header & 0x8000 != 0 {
        return Err(SpsError::NotSps {
            codec: CODEC,
            header,
        });
    }
    let rbsp = to_rbsp(&nal[2..]);
    let mut r = FieldReader::new(&rbsp, CODEC);
    let video_parameter_set_id = r.bits("sps_video_parameter_set_id", 4)? as u8;
    let max_sub_layers_minus1 = r.bits("sps_max_sub_layers_minus1", 3)? as u8;
    if max_sub_layers_minus1 > 6 {
        return Err(r.invalid(
            "sps_max_sub_layers_minus1",
            u64::from(max_sub_layers_minus1),
            "must be at most 6",
        ));
    }
    let temporal_id_nesting = r.flag("sps_temporal_id_nesting_flag")?;
    let profile_tier_level = parse_profile_tier_level(&mut r, max_sub_layers_minus1)?;
    let seq_parameter_set_id = r.ue_max("sps_seq_parameter_set_id", 15)?;
    let chroma_format_idc = r.ue_max("chroma_format_idc", 3)?;
    let separate_colour_plane = chroma_format_idc == 3 && r.flag("separate_colour_plane_flag")?;
    let width = r.ue("pic_width_in_luma_samples")?;
    let height = r.ue("pic_height_in_luma_samples")?;
    if width == 0 || width > MAX_DIMENSION {
        return Err(r.invalid(
            "pic_width_in_luma_samples",
            u64::from(width),
            "must be 1..=16384",
        ));
    }
    if height == 0 || height > MAX_DIMENSION {
        return Err(r.invalid(
            "pic_height_in_luma_samples",
            u64::from(height),
            "must be 1..=16384",
        ));
    }
    let (mut crop_w, mut crop_h) = (0u64, 0u64);
    if r.flag("conformance_window_flag")? {
        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let (sub_w, sub_h): (u64, u64) = match chroma_array_type {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        let left = u64::from(r.ue("conf_win_left_offset")?);
        let right = u64::from(r.ue("conf_win_right_offset")?);
        let top = u64::from(r.ue("conf_win_top_offset")?);
        let bottom = u64::from(r.ue("conf_win_bottom_offset")?);
        crop_w = (left + right) * sub_w;
        crop_h = (top + bottom) * sub_h;
    }
    if crop_w >= u64::from(width) {
        return Err(r.invalid(
            "conf_win_left/right_offset",
            crop_w,
            "crops the whole width",
        ));
    }
    if crop_h >= u64::from(height) {
        return Err(r.invalid(
            "conf_win_top/bottom_offset",
            crop_h,
            "crops the whole height",
        ));
    }
    let bit_depth_luma = 8 + r.ue_max("bit_depth_luma_minus8", 8)? as u8;
    let bit_depth_chroma = 8 + r.ue_max("bit_depth_chroma_minus8", 8)? as u8;

    let mut sps = Sps {
        video_parameter_set_id,
        max_sub_layers: max_sub_layers_minus1 + 1,
        temporal_id_nesting,
        profile_tier_level,
        seq_parameter_set_id,
        chroma_format_idc,
        bit_depth_luma,
        bit_depth_chroma,
        width: width - crop_w as u32,
        height: height - crop_h as u32,
        sample_aspect_ratio: None,
        frame_rate: None,
    };
    // Policy `LenientVui`: the rest only serves the aspect ratio and frame rate.
    let _ = parse_rest(&mut r, max_sub_layers_minus1, &mut sps);
    Ok(sps)
}

fn parse_profile_tier_level(
    r: &mut FieldReader<'_>,
    max_sub_layers_minus1: u8,
) -> Result<ProfileTierLevel, SpsError> {
    let profile_space = r.bits("general_profile_space", 2)? as u8;
    let tier_flag = r.flag("general_tier_flag")?;
    let profile_idc = r.bits("general_profile_idc", 5)? as u8;
    let compatibility_flags = r.bits("general_profile_compatibility_flag", 32)?;
    let constraint_flags = r.bits64("general_constraint_flags", 48)?;
    let level_idc = r.bits("general_level_idc", 8)? as u8;
    let mut profile_present = [false; 8];
    let mut level_present = [false; 8];
    for i in 0..usize::from(max_sub_layers_minus1) {
        profile_present[i] = r.flag("sub_layer_profile_present_flag")?;
        level_present[i] = r.flag("sub_layer_level_present_flag")?;
    }
    if max_sub_layers_minus1 > 0 {
        r.skip(
            "reserved_zero_2bits",
            2 * (8 - usize::from(max_sub_layers_minus1)),
        )?;
    }
    for i in 0..usize::from(max_sub_layers_minus1) {
        if profile_present[i] {
            r.skip("sub_layer_profile", 88)?;
        }
        if level_present[i] {
            r.skip("sub_layer_level_idc", 8)?;
        }
    }
    Ok(ProfileTierLevel {
        profile_space,
        tier_flag,
        profile_idc,
        compatibility_flags,
        constraint_flags,
        level_idc,
    })
}

/// Everything between the bit depths and the VUI timing information.
fn parse_rest(
    r: &mut FieldReader<'_>,
    max_sub_layers_minus1: u8,
    sps: &mut Sps,
) -> Result<(), SpsError> {
    let log2_max_poc_lsb = r.ue_max("log2_max_pic_order_cnt_lsb_minus4", 12)? + 4;
    let ordering_info_present = r.flag("sps_sub_layer_ordering_info_present_flag")?;
    let first = if ordering_info_present {
        0
    } else {
        max_sub_layers_minus1
    };
    for _ in first..=max_sub_layers_minus1 {
        r.ue("sps_max_dec_pic_buffering_minus1")?;
        r.ue("sps_max_num_reorder_pics")?;
        r.ue("sps_max_latency_increase_plus1")?;
    }
    r.ue("log2_min_luma_coding_block_size_minus3")?;
    r.ue("log2_diff_max_min_luma_coding_block_size")?;
    r.ue("log2_min_luma_transform_block_size_minus2")?;
    r.ue("log2_diff_max_min_luma_transform_block_size")?;
    r.ue("max_transform_hierarchy_depth_inter")?;
    r.ue("max_transform_hierarchy_depth_intra")?;
    if r.flag("scaling_list_enabled_flag")? && r.flag("sps_scaling_list_data_present_flag")? {
        skip_scaling_list_data(r)?;
    }
    r.flag("amp_enabled_flag")?;
    r.flag("sample_adaptive_offset_enabled_flag")?;
    if r.flag("pcm_enabled_flag")? {
        r.bits("pcm_sample_bit_depths", 8)?;
        r.ue("log2_min_pcm_luma_coding_block_size_minus3")?;
        r.ue("log2_diff_max_min_pcm_luma_coding_block_size")?;
        r.flag("pcm_loop_filter_disabled_flag")?;
    }
    let num_sets = r.ue_max("num_short_term_ref_pic_sets", 64)? as usize;
    let mut num_delta_pocs = [0u32; 64];
    for idx in 0..num_sets {
        num_delta_pocs[idx] = skip_st_ref_pic_set(r, idx, &num_delta_pocs)?;
    }
    if r.flag("long_term_ref_pics_present_flag")? {
        let n = r.ue_max("num_long_term_ref_pics_sps", 32)?;
        for _ in 0..n {
            r.bits("lt_ref_pic_poc_lsb_sps", log2_max_poc_lsb)?;
            r.flag("used_by_curr_pic_lt_sps_flag")?;
        }
    }
    r.flag("sps_temporal_mvp_enabled_flag")?;
    r.flag("strong_intra_smoothing_enabled_flag")?;
    if r.flag("vui_parameters_present_flag")? {
        parse_vui(r, sps)?;
    }
    Ok(())
}

/// `scaling_list_data()` (7.3.4), read only to get past it.
fn skip_scaling_list_data(r: &mut FieldReader<'_>) -> Result<(), SpsError> {
    for size_id in 0..4u32 {
        let step = if size_id == 3 { 3 } else { 1 };
        for _matrix_id in (0..6).step_by(step) {
            if !r.flag("scaling_list_pred_mode_flag")? {
                r.ue("scaling_list_pred_matrix_id_delta")?;
            } else {
                let coefs = 64.min(1 << (4 + (size_id << 1)));
                if size_id > 1 {
                    r.se("scaling_list_dc_coef_minus8")?;
                }
                for _ in 0..coefs {
                    r.se("scaling_list_delta_coef")?;
                }
            }
        }
    }
    Ok(())
}

/// `st_ref_pic_set(idx)` as it appears in the SPS (7.3.7); returns `NumDeltaPocs[idx]`.
fn skip_st_ref_pic_set(
    r: &mut FieldReader<'_>,
    idx: usize,
    num_delta_pocs: &[u32; 64],
) -> Result<u32, SpsError> {
    let inter = idx != 0 && r.flag("inter_ref_pic_set_prediction_flag")?;
    if inter {
        // In the SPS delta_idx_minus1 is absent, so the reference set is the previous one.
        r.flag("delta_rps_sign")?;
        r.ue("abs_delta_rps_minus1")?;
        let reference = num_delta_pocs[idx - 1];
        let mut count = 0;
        for _ in 0..=reference {
            let used = r.flag("used_by_curr_pic_flag")?;
            let use_delta = used || r.flag("use_delta_flag")?;
            if use_delta {
                count += 1;
            }
        }
        Ok(count)
    } else {
        let negative = r.ue_max("num_negative_pics", 16)?;
        let positive = r.ue_max("num_positive_pics", 16)?;
        for _ in 0..negative + positive {
            r.ue("delta_poc_minus1")?;
            r.flag("used_by_curr_pic_flag")?;
        }
        Ok(negative + positive)
    }
}

/// `vui_parameters()` up to the timing information (E.2.1).
fn parse_vui(r: &mut FieldReader<'_>, sps: &mut Sps) -> Result<(), SpsError> {
    sps.sample_aspect_ratio = parse_vui_prefix(r)?;
    r.flag("neutral_chroma_indication_flag")?;
    r.flag("field_seq_flag")?;
    r.flag("frame_field_info_present_flag")?;
    if r.flag("default_display_window_flag")? {
        for _ in 0..4 {
            r.ue("def_disp_win_offset")?;
        }
    }
    if r.flag("vui_timing_info_present_flag")? {
        let num_units_in_tick = r.bits("vui_num_units_in_tick", 32)?;
        let time_scale = r.bits("vui_time_scale", 32)?;
        sps.frame_rate = plausible_frame_rate(u64::from(time_scale), u64::from(num_units_in_tick));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nal_header_fields() {
        assert_eq!(nal_type(&[0x40, 0x01]), Some(nal_type::VPS));
        assert_eq!(nal_type(&[0x42, 0x01]), Some(nal_type::SPS));
        assert_eq!(nal_type(&[0x26, 0x01]), Some(nal_type::IDR_W_RADL));
        assert_eq!(nal_type(&[0x26]), None);
        assert!(is_irap(nal_type::CRA));
        assert!(!is_irap(1));
    }

    #[test]
    fn access_unit_boundaries() {
        assert!(begins_access_unit(&[0x46, 0x01, 0x50])); // AUD
        assert!(begins_access_unit(&[0x4e, 0x01, 0x05])); // prefix SEI
        assert!(!begins_access_unit(&[0x50, 0x01, 0x05])); // suffix SEI
        assert!(begins_access_unit(&[0x02, 0x01, 0xd0])); // TRAIL_R, first slice
        assert!(!begins_access_unit(&[0x02, 0x01, 0x50])); // TRAIL_R, later slice segment
        assert!(!begins_access_unit(&[0x02, 0x01]));
    }

    /// x265 Main 10, 1920x1080 (coded 1088, conformance window) at 30000/1001
    /// (testdata/SOURCES.md, "SPS samples").
    const X265_MAIN10_1080: &[u8] = &[
        0x42, 0x01, 0x01, 0x02, 0x20, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00,
        0x03, 0x00, 0x78, 0xa0, 0x03, 0xc0, 0x80, 0x10, 0xe4, 0xd9, 0x65, 0x66, 0x92, 0x4c, 0xaf,
        0x01, 0x68, 0x08, 0x00, 0x00, 0x1f, 0x48, 0x00, 0x03, 0xa9, 0x80, 0x40,
    ];

    #[test]
    fn x265_main10_1080p() {
        let sps = parse_sps(X265_MAIN10_1080).unwrap();
        let ptl = sps.profile_tier_level;
        assert_eq!(
            (ptl.profile_idc, ptl.level_idc, ptl.tier_flag),
            (2, 120, false)
        );
        assert_eq!((sps.width, sps.height), (1920, 1080));
        assert_eq!((sps.bit_depth_luma, sps.bit_depth_chroma), (10, 10));
        assert_eq!(sps.chroma_format_idc, 1);
        assert_eq!(sps.frame_rate, Some((30000, 1001)));
    }

    #[test]
    fn not_an_sps() {
        assert!(matches!(
            parse_sps(&[0x40, 0x01, 0x0c]),
            Err(SpsError::NotSps { header: 0x4001, .. })
        ));
        assert!(matches!(parse_sps(&[0x42]), Err(SpsError::NotSps { .. })));
        assert!(matches!(
            parse_sps(&[0x42, 0x01, 0x01]),
            Err(SpsError::Read { .. })
        ));
    }
}
