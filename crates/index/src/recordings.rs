//! The recording catalogue kept for `vigil-store`: one record per segment file, the store's
//! identity and per-camera retention policies.
//!
//! # What lives here and what does not
//! The segment files are the source of truth (see `vigil-store`'s crate docs): every fact in a
//! [`SegmentRecord`] can be recomputed from the file it names, and the store can rebuild this
//! whole catalogue from its files. The catalogue exists so that listing, export planning and
//! retention never have to open thousands of files.
//!
//! # Keys (see `keys.rs`)
//! - `v:` camera ID (20 B) + segment start (ordered i64, 90 kHz ticks since the epoch) →
//!   binary [`SegmentRecord`] (version byte first).
//! - `q:` state byte (`w` writing, `d` deleting) + camera ID + start → empty. A small side
//!   table naming the segments that recovery must look at, written in the same batch as the
//!   record, so that startup never scans the whole catalogue.
//! - `y:` camera ID → JSON [`RetentionPolicy`].
//! - `m:store` → the store identity string.
//!
//! # Durability
//! These functions do not take the index's writer lock: they never touch the in-memory model,
//! and each change is one sled batch (atomic). Segment upserts are **not** fsynced per call (the
//! store calls them for every fragment; a crash loses at most the last periodic flush, and the
//! store's recovery re-derives lost records from the files). Functions documented as
//! "fsynced" flush before returning: deletion marks, policy changes, the store identity and
//! clearing the catalogue.

use serde::{Deserialize, Serialize};
use vigil_core::camera::{HdCapability, VideoCodec};
use vigil_core::id::GbId;
use vigil_core::time::Timestamp;

use crate::error::IndexError;
use crate::keys::{self, ord_i64, unord_i64};
use crate::{encode_json, Index};

/// Where a segment is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SegmentState {
    /// The recorder is appending to it; `len` is the fsynced, indexed prefix.
    Writing,
    /// Closed; the file is exactly `len` bytes of complete fragments.
    Complete,
    /// Retention decided to delete it: the file may or may not still exist. Readers must not
    /// start reading it; recovery finishes the deletion.
    Deleting,
}

impl SegmentState {
    fn to_u8(self) -> u8 {
        match self {
            SegmentState::Writing => 0,
            SegmentState::Complete => 1,
            SegmentState::Deleting => 2,
        }
    }

    fn from_u8(b: u8) -> Option<Self> {
        match b {
            0 => Some(SegmentState::Writing),
            1 => Some(SegmentState::Complete),
            2 => Some(SegmentState::Deleting),
            _ => None,
        }
    }

    /// The `q:` marker byte of the states recovery must visit.
    fn marker(self) -> Option<u8> {
        match self {
            SegmentState::Writing => Some(b'w'),
            SegmentState::Deleting => Some(b'd'),
            SegmentState::Complete => None,
        }
    }
}

/// What the camera actually sent in a segment (for the HD check and for export: a change of
/// `params_id` means a change of codec parameters).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StreamInfo {
    /// RFC 6381 codec string, e.g. `avc1.64001f`.
    pub codec: String,
    /// Coded width in pixels.
    pub width: u32,
    /// Coded height in pixels.
    pub height: u32,
    /// Frame rate as (numerator, denominator) when the stream signals it.
    pub frame_rate: Option<(u32, u32)>,
    /// A stable hash of the complete MP4 sample entry: equal ids mean identical parameters.
    pub params_id: u64,
}

impl StreamInfo {
    /// Frames per second, when signalled.
    pub fn fps(&self) -> Option<f64> {
        self.frame_rate
            .filter(|&(_, d)| d > 0)
            .map(|(n, d)| f64::from(n) / f64::from(d))
    }

    /// What the camera actually delivered, in the camera record's terms (for the HD check).
    /// `None` when the stream does not signal its frame rate.
    pub fn hd_capability(&self) -> Option<HdCapability> {
        let codec = match self.codec.get(..4) {
            Some("avc1" | "avc3") => VideoCodec::H264,
            Some("hvc1" | "hev1") => VideoCodec::H265,
            _ => VideoCodec::Other,
        };
        Some(HdCapability {
            width: self.width,
            height: self.height,
            codec,
            fps: self.fps()?,
        })
    }
}

/// One segment file of one camera.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentRecord {
    /// The camera.
    pub camera: GbId,
    /// Wall-clock start of the first fragment, 90 kHz ticks since the Unix epoch.
    pub start_90k: i64,
    /// Wall-clock end of the last indexed fragment (exclusive), 90 kHz ticks.
    pub end_90k: i64,
    /// File path relative to the camera's directory (`YYYYMMDD/….mp4`).
    pub file: String,
    /// Bytes of the file that are fsynced and indexed (init segment + complete fragments).
    pub len: u64,
    /// Number of indexed fragments.
    pub fragments: u32,
    /// Number of indexed frames.
    pub frames: u32,
    /// The stream's parameters in this segment.
    pub stream: StreamInfo,
    /// Life-cycle state.
    pub state: SegmentState,
}

impl SegmentRecord {
    /// Start as a [`Timestamp`] (rounded down to the millisecond).
    pub fn start(&self) -> Timestamp {
        Timestamp::from_millis(self.start_90k.div_euclid(90))
    }

    /// End as a [`Timestamp`] (rounded down to the millisecond).
    pub fn end(&self) -> Timestamp {
        Timestamp::from_millis(self.end_90k.div_euclid(90))
    }

    /// The key identifying this record.
    pub fn key(&self) -> SegmentKey {
        SegmentKey {
            camera: self.camera,
            start_90k: self.start_90k,
        }
    }
}

/// Identifies a segment: camera and start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentKey {
    /// The camera.
    pub camera: GbId,
    /// Start, 90 kHz ticks since the epoch.
    pub start_90k: i64,
}

/// How long a camera's footage must be kept.
///
/// Decision: a camera is an anti-terror key target (反恐怖主义法 art. 32, ≥ 90 days) only when
/// an operator marks it so with [`Index::set_retention_policy`]; nothing is inferred from site
/// categories, because the law's designation is made by the authorities per target, not per
/// category. `days` overrides the store's defaults for this camera (it can lengthen retention
/// but the store refuses to go below the legal minimum of its class).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicy {
    /// The camera watches an anti-terror key target.
    #[serde(default)]
    pub key_target: bool,
    /// Explicit retention in days, if set.
    #[serde(default)]
    pub days: Option<u32>,
}

const RECORD_VERSION: u8 = 1;

fn segment_key(camera: &GbId, start_90k: i64) -> Vec<u8> {
    let mut k = Vec::with_capacity(30);
    k.extend_from_slice(keys::SEGMENT);
    k.extend_from_slice(camera.as_bytes());
    k.extend_from_slice(&ord_i64(start_90k));
    k
}

fn segment_prefix(camera: &GbId) -> Vec<u8> {
    let mut k = Vec::with_capacity(22);
    k.extend_from_slice(keys::SEGMENT);
    k.extend_from_slice(camera.as_bytes());
    k
}

fn marker_key(marker: u8, camera: &GbId, start_90k: i64) -> Vec<u8> {
    let mut k = Vec::with_capacity(31);
    k.extend_from_slice(keys::SEGMENT_MARKER);
    k.push(marker);
    k.extend_from_slice(camera.as_bytes());
    k.extend_from_slice(&ord_i64(start_90k));
    k
}

fn policy_key(camera: &GbId) -> Vec<u8> {
    let mut k = Vec::with_capacity(22);
    k.extend_from_slice(keys::RETENTION);
    k.extend_from_slice(camera.as_bytes());
    k
}

fn encode_record(r: &SegmentRecord) -> Vec<u8> {
    let codec = r.stream.codec.as_bytes();
    let codec = &codec[..codec.len().min(255)];
    let file = r.file.as_bytes();
    let file = &file[..file.len().min(usize::from(u16::MAX))];
    let mut v = Vec::with_capacity(64 + codec.len() + file.len());
    v.push(RECORD_VERSION);
    v.push(r.state.to_u8());
    v.extend_from_slice(&r.end_90k.to_be_bytes());
    v.extend_from_slice(&r.len.to_be_bytes());
    v.extend_from_slice(&r.fragments.to_be_bytes());
    v.extend_from_slice(&r.frames.to_be_bytes());
    v.extend_from_slice(&r.stream.params_id.to_be_bytes());
    v.extend_from_slice(&r.stream.width.to_be_bytes());
    v.extend_from_slice(&r.stream.height.to_be_bytes());
    let (n, d) = r.stream.frame_rate.unwrap_or((0, 0));
    v.extend_from_slice(&n.to_be_bytes());
    v.extend_from_slice(&d.to_be_bytes());
    v.push(codec.len() as u8);
    v.extend_from_slice(codec);
    v.extend_from_slice(&(file.len() as u16).to_be_bytes());
    v.extend_from_slice(file);
    v
}

/// A cursor over a record value; every read names what was missing.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let s = self
            .b
            .get(self.at..self.at + n)
            .ok_or_else(|| format!("value ends before {what} at byte {}", self.at))?;
        self.at += n;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, String> {
        let s = self.take(2, what)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32, String> {
        let s = self.take(4, what)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self, what: &str) -> Result<u64, String> {
        let s = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_be_bytes(a))
    }
    fn text(&mut self, n: usize, what: &str) -> Result<String, String> {
        let s = self.take(n, what)?;
        String::from_utf8(s.to_vec()).map_err(|_| format!("{what} is not UTF-8"))
    }
}

fn decode_record(k: &[u8], v: &[u8]) -> Result<SegmentRecord, IndexError> {
    let camera = keys::id_after_prefix(k)
        .ok_or_else(|| IndexError::corrupt(k, "segment key has no camera ID"))?;
    let start_90k = k
        .get(22..30)
        .and_then(unord_i64)
        .ok_or_else(|| IndexError::corrupt(k, "segment key has no start time"))?;
    let mut r = Reader { b: v, at: 0 };
    let decode = |r: &mut Reader<'_>| -> Result<SegmentRecord, String> {
        let version = r.u8("version")?;
        if version != RECORD_VERSION {
            return Err(format!(
                "segment record version {version}, expected {RECORD_VERSION}"
            ));
        }
        let state_byte = r.u8("state")?;
        let state = SegmentState::from_u8(state_byte)
            .ok_or_else(|| format!("unknown segment state {state_byte}"))?;
        let end_90k = r.u64("end")? as i64;
        let len = r.u64("length")?;
        let fragments = r.u32("fragment count")?;
        let frames = r.u32("frame count")?;
        let params_id = r.u64("parameters id")?;
        let width = r.u32("width")?;
        let height = r.u32("height")?;
        let num = r.u32("frame rate")?;
        let den = r.u32("frame rate")?;
        let codec_len = usize::from(r.u8("codec length")?);
        let codec = r.text(codec_len, "codec")?;
        let file_len = usize::from(r.u16("file name length")?);
        let file = r.text(file_len, "file name")?;
        if end_90k < start_90k {
            return Err(format!("end {end_90k} precedes start {start_90k}"));
        }
        Ok(SegmentRecord {
            camera,
            start_90k,
            end_90k,
            file,
            len,
            fragments,
            frames,
            stream: StreamInfo {
                codec,
                width,
                height,
                frame_rate: (num > 0 && den > 0).then_some((num, den)),
                params_id,
            },
            state,
        })
    };
    decode(&mut r).map_err(|reason| IndexError::corrupt(k, reason))
}

/// Records and their recovery markers (a marker exists only for `Writing`/`Deleting`).
fn segment_batch(records: &[SegmentRecord]) -> sled::Batch {
    let mut batch = sled::Batch::default();
    for r in records {
        batch.insert(segment_key(&r.camera, r.start_90k), encode_record(r));
        for state in [SegmentState::Writing, SegmentState::Deleting] {
            if let Some(m) = state.marker() {
                let k = marker_key(m, &r.camera, r.start_90k);
                if state == r.state {
                    batch.insert(k, &[][..]);
                } else {
                    batch.remove(k);
                }
            }
        }
    }
    batch
}

impl Index {
    /// Inserts or replaces a segment record (and its recovery marker) in one atomic batch.
    /// Not fsynced (see the module docs).
    pub fn put_segment(&self, record: &SegmentRecord) -> Result<(), IndexError> {
        let batch = segment_batch(std::slice::from_ref(record));
        self.commit(batch, false, || {
            format!(
                "recording segment {} of camera {}",
                record.file, record.camera
            )
        })
    }

    /// Inserts or replaces several segment records atomically and fsyncs (used to mark
    /// segments [`SegmentState::Deleting`] before their files are unlinked).
    pub fn put_segments_durable(&self, records: &[SegmentRecord]) -> Result<(), IndexError> {
        if records.is_empty() {
            return Ok(());
        }
        let batch = segment_batch(records);
        self.commit(batch, true, || {
            format!("recording {} segment state changes", records.len())
        })
    }

    /// Forgets segments (records and markers) atomically. Not fsynced: a crash before the
    /// next flush brings back `Deleting` records, and recovery finishes them again.
    pub fn remove_segments(&self, keys_: &[SegmentKey]) -> Result<(), IndexError> {
        if keys_.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for k in keys_ {
            batch.remove(segment_key(&k.camera, k.start_90k));
            batch.remove(marker_key(b'w', &k.camera, k.start_90k));
            batch.remove(marker_key(b'd', &k.camera, k.start_90k));
        }
        self.commit(batch, false, || {
            format!("forgetting {} segments", keys_.len())
        })
    }

    /// One segment record.
    pub fn segment(&self, key: &SegmentKey) -> Result<Option<SegmentRecord>, IndexError> {
        let k = segment_key(&key.camera, key.start_90k);
        match self
            .db
            .get(&k)
            .map_err(|e| IndexError::storage(format!("reading segment of {}", key.camera), e))?
        {
            Some(v) => Ok(Some(decode_record(&k, &v)?)),
            None => Ok(None),
        }
    }

    /// A camera's segments that overlap `[from_90k, to_90k)` (a segment overlaps when it
    /// starts before `to_90k` and ends after `from_90k`), oldest first, at most `limit`.
    pub fn segments(
        &self,
        camera: &GbId,
        from_90k: i64,
        to_90k: i64,
        limit: usize,
    ) -> Result<Vec<SegmentRecord>, IndexError> {
        let ctx = || format!("listing segments of camera {camera}");
        let mut out = Vec::new();
        if from_90k >= to_90k || limit == 0 {
            return Ok(out);
        }
        let lo = segment_key(camera, from_90k);
        let hi = segment_key(camera, to_90k);
        // The segment that starts before `from` may still reach into the range.
        if let Some(kv) = self
            .db
            .range(segment_prefix(camera)..lo.clone())
            .next_back()
        {
            let (k, v) = kv.map_err(|e| IndexError::storage(ctx(), e))?;
            let r = decode_record(&k, &v)?;
            if r.end_90k > from_90k {
                out.push(r);
            }
        }
        for kv in self.db.range(lo..hi) {
            if out.len() >= limit {
                break;
            }
            let (k, v) = kv.map_err(|e| IndexError::storage(ctx(), e))?;
            out.push(decode_record(&k, &v)?);
        }
        Ok(out)
    }

    /// A camera's oldest segments, at most `limit`.
    pub fn first_segments(
        &self,
        camera: &GbId,
        limit: usize,
    ) -> Result<Vec<SegmentRecord>, IndexError> {
        let mut out = Vec::new();
        for kv in self.db.scan_prefix(segment_prefix(camera)).take(limit) {
            let (k, v) = kv.map_err(|e| {
                IndexError::storage(format!("listing segments of camera {camera}"), e)
            })?;
            out.push(decode_record(&k, &v)?);
        }
        Ok(out)
    }

    /// A camera's newest segment.
    pub fn last_segment(&self, camera: &GbId) -> Result<Option<SegmentRecord>, IndexError> {
        match self.db.scan_prefix(segment_prefix(camera)).next_back() {
            Some(kv) => {
                let (k, v) = kv.map_err(|e| {
                    IndexError::storage(format!("reading the last segment of camera {camera}"), e)
                })?;
                Ok(Some(decode_record(&k, &v)?))
            }
            None => Ok(None),
        }
    }

    /// Every segment in state `Writing` or `Deleting` (from the marker table; `Complete`
    /// returns an empty list — use [`Index::segments`]).
    pub fn segments_in_state(&self, state: SegmentState) -> Result<Vec<SegmentRecord>, IndexError> {
        let Some(m) = state.marker() else {
            return Ok(Vec::new());
        };
        let mut prefix = keys::SEGMENT_MARKER.to_vec();
        prefix.push(m);
        let mut out = Vec::new();
        for kv in self.db.scan_prefix(&prefix) {
            let (k, _) = kv.map_err(|e| IndexError::storage("listing segments to recover", e))?;
            let camera = k
                .get(3..23)
                .and_then(|b| GbId::from_bytes(b).ok())
                .ok_or_else(|| IndexError::corrupt(&k, "marker key has no camera ID"))?;
            let start = k
                .get(23..31)
                .and_then(unord_i64)
                .ok_or_else(|| IndexError::corrupt(&k, "marker key has no start time"))?;
            let key = SegmentKey {
                camera,
                start_90k: start,
            };
            match self.segment(&key)? {
                Some(r) => out.push(r),
                None => tracing::warn!(
                    key = %keys::printable(&k),
                    "segment marker without a segment record; ignoring it"
                ),
            }
        }
        Ok(out)
    }

    /// Cameras that have at least one segment, in ID order (one seek per camera).
    pub fn recorded_cameras(&self) -> Result<Vec<GbId>, IndexError> {
        let mut out = Vec::new();
        let mut from = keys::SEGMENT.to_vec();
        loop {
            let next = self
                .db
                .range(from.clone()..)
                .next()
                .transpose()
                .map_err(|e| IndexError::storage("listing recorded cameras", e))?;
            let Some((k, _)) = next else { break };
            if !k.starts_with(keys::SEGMENT) {
                break;
            }
            let id = keys::id_after_prefix(&k)
                .ok_or_else(|| IndexError::corrupt(&k, "segment key has no camera ID"))?;
            out.push(id);
            // Skip past every key of this camera (its keys are the prefix + 8 bytes).
            from = segment_prefix(&id);
            from.extend_from_slice(&[0xff; 9]);
        }
        Ok(out)
    }

    /// Removes every segment record and marker (for rebuilding the catalogue from the
    /// files). Fsynced. Returns how many records were removed.
    pub fn clear_segments(&self) -> Result<usize, IndexError> {
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for prefix in [keys::SEGMENT, keys::SEGMENT_MARKER] {
            for kv in self.db.scan_prefix(prefix) {
                let (k, _) =
                    kv.map_err(|e| IndexError::storage("clearing the recording catalogue", e))?;
                if prefix == keys::SEGMENT {
                    n += 1;
                }
                batch.remove(k);
            }
        }
        self.commit(batch, true, || {
            "clearing the recording catalogue".to_owned()
        })?;
        Ok(n)
    }

    /// A camera's retention policy (the default policy when none was set).
    pub fn retention_policy(&self, camera: &GbId) -> Result<RetentionPolicy, IndexError> {
        let k = policy_key(camera);
        match self.db.get(&k).map_err(|e| {
            IndexError::storage(format!("reading the retention policy of {camera}"), e)
        })? {
            Some(v) => serde_json::from_slice(&v).map_err(|e| IndexError::corrupt(&k, e)),
            None => Ok(RetentionPolicy::default()),
        }
    }

    /// Sets a camera's retention policy (fsynced). The default policy removes the entry.
    pub fn set_retention_policy(
        &self,
        camera: &GbId,
        policy: RetentionPolicy,
    ) -> Result<(), IndexError> {
        let mut batch = sled::Batch::default();
        if policy == RetentionPolicy::default() {
            batch.remove(policy_key(camera));
        } else {
            batch.insert(
                policy_key(camera),
                encode_json(&format!("retention policy of {camera}"), &policy)?,
            );
        }
        self.commit(batch, true, || {
            format!("saving the retention policy of camera {camera}")
        })
    }

    /// Every camera with a non-default retention policy.
    pub fn retention_policies(&self) -> Result<Vec<(GbId, RetentionPolicy)>, IndexError> {
        let mut out = Vec::new();
        for kv in self.db.scan_prefix(keys::RETENTION) {
            let (k, v) = kv.map_err(|e| IndexError::storage("listing retention policies", e))?;
            let id = keys::id_after_prefix(&k)
                .ok_or_else(|| IndexError::corrupt(&k, "policy key has no camera ID"))?;
            out.push((
                id,
                serde_json::from_slice(&v).map_err(|e| IndexError::corrupt(&k, e))?,
            ));
        }
        Ok(out)
    }

    /// The identity of the segment store this index describes, if one was recorded.
    pub fn store_id(&self) -> Result<Option<String>, IndexError> {
        match self
            .db
            .get(keys::STORE_ID_KEY)
            .map_err(|e| IndexError::storage("reading the store identity", e))?
        {
            Some(v) => String::from_utf8(v.to_vec())
                .map(Some)
                .map_err(|_| IndexError::corrupt(keys::STORE_ID_KEY, "not UTF-8")),
            None => Ok(None),
        }
    }

    /// Records the identity of the segment store (fsynced).
    pub fn set_store_id(&self, id: &str) -> Result<(), IndexError> {
        let mut batch = sled::Batch::default();
        batch.insert(keys::STORE_ID_KEY, id.as_bytes());
        self.commit(batch, true, || "saving the store identity".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    fn cam(n: u32) -> GbId {
        GbId::parse(&format!("3401000000132{:07}", n)).unwrap()
    }

    fn rec(camera: GbId, start: i64, end: i64, state: SegmentState) -> SegmentRecord {
        SegmentRecord {
            camera,
            start_90k: start,
            end_90k: end,
            file: format!("20240101/{start}.mp4"),
            len: 1000 + start.unsigned_abs(),
            fragments: 3,
            frames: 75,
            stream: StreamInfo {
                codec: "avc1.64001f".into(),
                width: 1280,
                height: 720,
                frame_rate: Some((25, 1)),
                params_id: 0xdead_beef,
            },
            state,
        }
    }

    #[test]
    fn records_round_trip_and_persist() {
        let dir = TempDir::new();
        let r = rec(cam(1), 900_000, 1_800_000, SegmentState::Writing);
        {
            let index = Index::open(dir.path()).unwrap();
            index.put_segment(&r).unwrap();
            index.flush().unwrap();
        }
        let index = Index::open(dir.path()).unwrap();
        assert_eq!(index.segment(&r.key()).unwrap(), Some(r.clone()));
        assert_eq!(r.start(), Timestamp::from_millis(10_000));
        assert_eq!(r.stream.fps(), Some(25.0));
        let hd = r.stream.hd_capability().unwrap();
        assert_eq!(
            (hd.codec, hd.width, hd.height),
            (VideoCodec::H264, 1280, 720)
        );
        assert!(hd.meets_hd());
        let unknown_rate = StreamInfo {
            frame_rate: None,
            ..r.stream.clone()
        };
        assert_eq!(unknown_rate.hd_capability(), None);
    }

    #[test]
    fn range_queries_include_the_segment_reaching_into_the_range() {
        let index = Index::temporary().unwrap();
        let (a, b) = (cam(1), cam(2));
        for i in 0..5 {
            index
                .put_segment(&rec(a, i * 100, i * 100 + 90, SegmentState::Complete))
                .unwrap();
        }
        index
            .put_segment(&rec(b, 50, 60, SegmentState::Complete))
            .unwrap();
        let starts = |v: Vec<SegmentRecord>| v.iter().map(|r| r.start_90k).collect::<Vec<_>>();
        assert_eq!(
            starts(index.segments(&a, 150, 310, 100).unwrap()),
            vec![100, 200, 300]
        );
        assert_eq!(
            starts(index.segments(&a, 190, 310, 100).unwrap()),
            vec![200, 300]
        );
        assert_eq!(starts(index.segments(&a, 95, 105, 100).unwrap()), vec![100]);
        assert_eq!(
            starts(index.segments(&a, 85, 105, 100).unwrap()),
            vec![0, 100]
        );
        assert_eq!(
            starts(index.segments(&a, 0, 1000, 2).unwrap()),
            vec![0, 100]
        );
        assert!(index.segments(&a, 491, 1000, 10).unwrap().is_empty());
        assert_eq!(starts(index.first_segments(&a, 2).unwrap()), vec![0, 100]);
        assert_eq!(index.last_segment(&a).unwrap().unwrap().start_90k, 400);
        assert_eq!(index.last_segment(&cam(3)).unwrap(), None);
        assert_eq!(index.recorded_cameras().unwrap(), vec![a, b]);
    }

    #[test]
    fn markers_follow_the_state() {
        let index = Index::temporary().unwrap();
        let mut r = rec(cam(1), 0, 10, SegmentState::Writing);
        index.put_segment(&r).unwrap();
        let other = rec(cam(2), 5, 10, SegmentState::Deleting);
        index
            .put_segments_durable(std::slice::from_ref(&other))
            .unwrap();
        assert_eq!(
            index.segments_in_state(SegmentState::Writing).unwrap(),
            vec![r.clone()]
        );
        assert_eq!(
            index.segments_in_state(SegmentState::Deleting).unwrap(),
            vec![other.clone()]
        );
        r.state = SegmentState::Complete;
        index.put_segment(&r).unwrap();
        assert!(index
            .segments_in_state(SegmentState::Writing)
            .unwrap()
            .is_empty());
        index.remove_segments(&[other.key()]).unwrap();
        assert!(index
            .segments_in_state(SegmentState::Deleting)
            .unwrap()
            .is_empty());
        assert_eq!(index.segment(&other.key()).unwrap(), None);
        assert_eq!(index.clear_segments().unwrap(), 1);
        assert!(index.recorded_cameras().unwrap().is_empty());
        // Listing cameras skips over every key of a camera, whatever its times.
        for r in [
            rec(cam(5), i64::MAX - 100, i64::MAX - 1, SegmentState::Complete),
            rec(cam(5), -5, 0, SegmentState::Complete),
            rec(cam(6), 0, 1, SegmentState::Complete),
        ] {
            index.put_segment(&r).unwrap();
        }
        assert_eq!(index.recorded_cameras().unwrap(), vec![cam(5), cam(6)]);
    }

    #[test]
    fn corrupt_values_are_reported_with_their_key() {
        let index = Index::temporary().unwrap();
        let r = rec(cam(1), 0, 10, SegmentState::Complete);
        let k = segment_key(&r.camera, 0);
        let mut v = encode_record(&r);
        v.truncate(v.len() - 3);
        index.db.insert(&k, v).unwrap();
        let err = index.segment(&r.key()).unwrap_err().to_string();
        assert!(err.contains("file name"), "{err}");
        let mut bad_state = encode_record(&r);
        bad_state[1] = 9;
        index.db.insert(&k, bad_state).unwrap();
        let err = index.segment(&r.key()).unwrap_err().to_string();
        assert!(err.contains("unknown segment state 9"), "{err}");
    }

    #[test]
    fn retention_policies_and_store_id() {
        let index = Index::temporary().unwrap();
        assert_eq!(
            index.retention_policy(&cam(1)).unwrap(),
            RetentionPolicy::default()
        );
        let p = RetentionPolicy {
            key_target: true,
            days: Some(120),
        };
        index.set_retention_policy(&cam(1), p).unwrap();
        assert_eq!(index.retention_policy(&cam(1)).unwrap(), p);
        assert_eq!(index.retention_policies().unwrap(), vec![(cam(1), p)]);
        index
            .set_retention_policy(&cam(1), RetentionPolicy::default())
            .unwrap();
        assert!(index.retention_policies().unwrap().is_empty());
        assert_eq!(index.store_id().unwrap(), None);
        index.set_store_id("abc").unwrap();
        assert_eq!(index.store_id().unwrap().as_deref(), Some("abc"));
    }
}
