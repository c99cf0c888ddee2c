//! Reading a segment file back: the init segment and every complete, verified fragment.
//!
//! `vigil_media::fmp4::Walker` finds the `moov` and the `moof`/`mdat` pairs; this module adds
//! the store's own rules around each fragment (see [`crate::boxes`]): a fragment counts only
//! if its `prft` sits exactly where the previous fragment (or the init segment) ended, its
//! trailer follows the `mdat`, and — for the part of the file that was never confirmed by the
//! index — the trailer's CRC matches the bytes. The first fragment that breaks a rule ends the
//! valid part of the file ([`ScannedSegment::valid_end`]); recovery truncates there.
//!
//! Reads go through a 64 KiB window, so a fragment usually costs one `pread` (its trailer, the
//! next `prft`, `moof` and `mdat` header are adjacent); media data is read only to verify a CRC.

use std::fs::File;
use std::io;
use std::ops::Range;

use bytes::Bytes;
use vigil_media::fmp4::{Tail, WalkOptions, Walker, WalkerStep};
use vigil_media::VideoParameters;

use crate::boxes::{self, PRFT_LEN, TRAILER_LEN};
use crate::fsutil::read_at_most;

const WINDOW: usize = 64 << 10;
const CRC_CHUNK: usize = 1 << 20;

/// One verified fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedFragment {
    /// Offset of the fragment's `prft` (its first byte in the file).
    pub start: u64,
    /// Offset of the `moof`.
    pub moof_offset: u64,
    /// Length of the `moof` box.
    pub moof_len: u64,
    /// End of the `mdat`.
    pub mdat_end: u64,
    /// End of the trailer (the next fragment's start).
    pub end: u64,
    /// Wall clock of the first sample (from the `prft`), 90 kHz ticks since the epoch.
    pub wall_90k: i64,
    /// `tfdt` of the fragment, ticks since the segment start.
    pub base_decode_time: u64,
    /// Sum of sample durations, ticks.
    pub duration: u64,
    /// Number of samples.
    pub samples: u32,
    /// Whether the first sample is a key frame.
    pub first_is_sync: bool,
    /// The CRC recorded in the trailer.
    pub crc: u32,
}

/// What a scan found.
#[derive(Debug, Clone)]
pub struct ScannedSegment {
    /// The init segment (`ftyp` + `moov`), if the file starts with one.
    pub init: Option<Range<u64>>,
    /// The video track's sample entry from that init segment.
    pub sample_entry: Option<Bytes>,
    /// Verified fragments in file order.
    pub fragments: Vec<ScannedFragment>,
    /// End of the last verified unit (fragment or init segment); 0 if there is no init
    /// segment at the start. Everything after it is to be discarded.
    pub valid_end: u64,
    /// Why the valid part ends before the scanned length, if it does.
    pub problem: Option<String>,
}

impl ScannedSegment {
    /// Wall-clock end of the last fragment, ticks.
    pub fn end_90k(&self) -> Option<i64> {
        self.fragments
            .last()
            .map(|f| f.wall_90k + f.duration as i64)
    }

    /// Number of frames in the verified fragments.
    pub fn frames(&self) -> u32 {
        self.fragments.iter().map(|f| f.samples).sum()
    }
}

/// A read window over a file.
struct Window<'f> {
    file: &'f File,
    len: u64,
    off: u64,
    buf: Vec<u8>,
}

impl<'f> Window<'f> {
    fn new(file: &'f File, len: u64) -> Self {
        Window {
            file,
            len,
            off: 0,
            buf: Vec::new(),
        }
    }

    /// `n` bytes at `offset` (fewer only if the file is shorter than `len` says).
    fn get(&mut self, offset: u64, n: usize) -> io::Result<&[u8]> {
        let have = offset >= self.off && offset + n as u64 <= self.off + self.buf.len() as u64;
        if !have {
            let want = n
                .max(WINDOW)
                .min(usize::try_from(self.len.saturating_sub(offset)).unwrap_or(usize::MAX));
            self.buf = read_at_most(self.file, offset, want)?;
            self.off = offset;
        }
        let start = (offset - self.off) as usize;
        let end = (start + n).min(self.buf.len());
        Ok(&self.buf[start..end])
    }
}

/// Scans the first `len` bytes of `file`. CRCs are checked for fragments whose `mdat` ends
/// after `verify_from` (pass 0 to check everything, `u64::MAX` to check nothing).
pub fn scan(file: &File, len: u64, verify_from: u64) -> io::Result<ScannedSegment> {
    let mut out = ScannedSegment {
        init: None,
        sample_entry: None,
        fragments: Vec::new(),
        valid_end: 0,
        problem: None,
    };
    let mut walker = Walker::new(len, WalkOptions::default());
    let mut win = Window::new(file, len);
    loop {
        let step = walker.step(win.off, &win.buf);
        match step {
            WalkerStep::Need { offset, len: n } => {
                let got = win.get(offset, n)?.len();
                if got < n {
                    out.problem = Some(format!(
                        "file ends at {} while {} bytes at {offset} were expected",
                        offset + got as u64,
                        n
                    ));
                    break;
                }
            }
            WalkerStep::Init(info) => {
                if out.init.is_some() || !out.fragments.is_empty() {
                    out.problem = Some(format!("second `moov` at {}", info.range.start));
                    break;
                }
                if info.range.start != 0 {
                    out.problem = Some(format!(
                        "init segment starts at {}, not at the start of the file",
                        info.range.start
                    ));
                    break;
                }
                out.valid_end = info.range.end;
                out.init = Some(info.range);
                out.sample_entry = info.sample_entry;
            }
            WalkerStep::Fragment(info) => {
                if out.init.is_none() {
                    out.problem = Some(format!("fragment at {} before any `moov`", info.offset));
                    break;
                }
                match check_fragment(&mut win, &info, out.valid_end, verify_from)? {
                    Ok(f) => {
                        out.valid_end = f.end;
                        out.fragments.push(f);
                    }
                    Err(reason) => {
                        out.problem = Some(reason);
                        break;
                    }
                }
            }
            WalkerStep::End { tail, .. } => {
                match tail {
                    Tail::Clean => {}
                    Tail::Truncated { offset } => {
                        out.problem = Some(format!("incomplete box at {offset}"));
                    }
                    Tail::Corrupt(e) => out.problem = Some(e.to_string()),
                }
                break;
            }
        }
    }
    if out.problem.is_none() && out.valid_end < len {
        out.problem = Some(format!(
            "{} bytes after the last complete fragment",
            len - out.valid_end
        ));
    }
    Ok(out)
}

fn check_fragment(
    win: &mut Window<'_>,
    info: &vigil_media::fmp4::FragmentInfo,
    expected_start: u64,
    verify_from: u64,
) -> io::Result<Result<ScannedFragment, String>> {
    let moof_offset = info.offset;
    let Some(start) = moof_offset.checked_sub(PRFT_LEN as u64) else {
        return Ok(Err(format!(
            "`moof` at {moof_offset} has no `prft` before it"
        )));
    };
    if start != expected_start {
        return Ok(Err(format!(
            "fragment `prft` expected at {expected_start}, `moof` found at {moof_offset}"
        )));
    }
    let Some((wall_90k, _media)) = boxes::parse_prft(win.get(start, PRFT_LEN)?) else {
        return Ok(Err(format!("no `prft` at {start}")));
    };
    let moof_len = {
        let h = win.get(moof_offset, 4)?;
        match <[u8; 4]>::try_from(h) {
            Ok(b) => u64::from(u32::from_be_bytes(b)),
            Err(_) => return Ok(Err(format!("`moof` at {moof_offset} is cut off"))),
        }
    };
    let mdat_end = moof_offset + info.len;
    let Some((crc, covered)) = boxes::parse_trailer(win.get(mdat_end, TRAILER_LEN)?) else {
        return Ok(Err(format!(
            "fragment at {start} has no trailer at {mdat_end}"
        )));
    };
    if u64::from(covered) != mdat_end - start {
        return Ok(Err(format!(
            "trailer at {mdat_end} covers {covered} bytes, the fragment has {}",
            mdat_end - start
        )));
    }
    if mdat_end > verify_from {
        let actual = crc_of(win.file, start..mdat_end)?;
        if actual != crc {
            return Ok(Err(format!(
                "fragment at {start}: CRC {actual:08x} does not match the trailer's {crc:08x}"
            )));
        }
    }
    let Some(base_decode_time) = info.base_decode_time else {
        return Ok(Err(format!("`moof` at {moof_offset} has no `tfdt`")));
    };
    Ok(Ok(ScannedFragment {
        start,
        moof_offset,
        moof_len,
        mdat_end,
        end: mdat_end + TRAILER_LEN as u64,
        wall_90k,
        base_decode_time,
        duration: info.duration,
        samples: info.sample_count,
        first_is_sync: info.first_is_sync,
        crc,
    }))
}

/// Checks the CRC of the last verified fragment (a scan with `verify_from = u64::MAX` checks
/// structure only). Every earlier fragment is followed by another one, so it was fsynced
/// before its successor was written; only the last can hold unsynced garbage after a power
/// loss. A bad last fragment is dropped from `seg`.
pub fn verify_last(file: &File, seg: &mut ScannedSegment) -> io::Result<()> {
    let Some(last) = seg.fragments.last() else {
        return Ok(());
    };
    let actual = crc_of(file, last.start..last.mdat_end)?;
    if actual != last.crc {
        seg.problem = Some(format!(
            "last fragment at {}: CRC {actual:08x} does not match the trailer's {:08x}",
            last.start, last.crc
        ));
        seg.valid_end = last.start;
        seg.fragments.pop();
    }
    Ok(())
}

/// CRC-32 of a byte range of a file.
pub fn crc_of(file: &File, range: Range<u64>) -> io::Result<u32> {
    let mut h = crc32fast::Hasher::new();
    let mut at = range.start;
    while at < range.end {
        let n = ((range.end - at) as usize).min(CRC_CHUNK);
        let buf = read_at_most(file, at, n)?;
        if buf.len() < n {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("file ends at {} inside a fragment", at + buf.len() as u64),
            ));
        }
        h.update(&buf);
        at += n as u64;
    }
    Ok(h.finalize())
}

/// The codec parameters recorded in the segment's init segment.
pub fn read_params(seg: &ScannedSegment) -> Result<VideoParameters, String> {
    let entry = seg
        .sample_entry
        .clone()
        .ok_or("no sample entry in the init segment")?;
    VideoParameters::from_sample_entry(entry).map_err(|e| e.to_string())
}
