//! Live status transitions, diagnoses and history reads.
//!
//! A transition is previewed on a copy of the history's last stored chunk (the only part an
//! open/close can change), that chunk is written, and then the same transition is applied to the
//! model. Transitions are not fsynced individually (see the crate docs on durability).

use vigil_core::id::GbId;
use vigil_core::model::{apply_transition_to, ModelError};
use vigil_core::status::{Diagnosis, StatusKind};
use vigil_core::time::{Interval, IntervalSet, Timestamp, Transition};

use crate::error::IndexError;
use crate::{keys, Index};

/// The last stored chunk of a history and the transition applied to it.
struct Preview {
    base: usize,
    old_len: usize,
    tail: IntervalSet,
    transition: Transition,
}

fn preview(
    set: &IntervalSet,
    at: Timestamp,
    up: bool,
) -> Result<Preview, vigil_core::time::TimeError> {
    let old_len = set.len();
    let base = keys::chunk_base(old_len.saturating_sub(1));
    // A suffix of a valid set is valid.
    let mut tail = IntervalSet::from_sorted(set.as_slice()[base..].to_vec())?;
    let transition = apply_transition_to(&mut tail, at, up)?;
    Ok(Preview {
        base,
        old_len,
        tail,
        transition,
    })
}

impl Index {
    /// Records that a camera status began (`up`) or ended (`!up`) at `at`. Going up while
    /// already up, or down while already down, changes nothing. `at` must not precede the
    /// latest recorded instant of that history.
    pub fn set_status(
        &self,
        camera: &GbId,
        kind: StatusKind,
        at: Timestamp,
        up: bool,
    ) -> Result<Transition, IndexError> {
        let _w = self.lock_writer()?;
        let p = {
            let reg = self.read()?;
            let entry = reg
                .camera(camera)
                .ok_or(ModelError::UnknownCamera { id: *camera })?;
            preview(entry.history(kind), at, up).map_err(|source| ModelError::History {
                subject: *camera,
                kind: kind.code(),
                source,
            })?
        };
        if p.transition == Transition::Unchanged {
            return Ok(p.transition);
        }
        let mut batch = sled::Batch::default();
        keys::write_chunks(
            &mut batch,
            p.tail.as_slice(),
            p.base,
            p.old_len,
            |k| keys::history_key(camera, kind, k),
            keys::encode_intervals,
        );
        self.commit(batch, false, || {
            format!("recording {kind} of camera {camera}")
        })?;
        Ok(self.write()?.apply_transition(camera, kind, at, up)?)
    }

    /// Records that the cascade registration to an upper platform became alive (`up`) or was
    /// lost (`!up`) at `at`.
    pub fn set_uplink(
        &self,
        platform: &GbId,
        at: Timestamp,
        up: bool,
    ) -> Result<Transition, IndexError> {
        let _w = self.lock_writer()?;
        let p = {
            let reg = self.read()?;
            let empty = IntervalSet::new();
            let set = reg.model().uplinks().get(platform).unwrap_or(&empty);
            preview(set, at, up).map_err(|source| ModelError::History {
                subject: *platform,
                kind: "uplink",
                source,
            })?
        };
        if p.transition == Transition::Unchanged {
            return Ok(p.transition);
        }
        let mut batch = sled::Batch::default();
        keys::write_chunks(
            &mut batch,
            p.tail.as_slice(),
            p.base,
            p.old_len,
            |k| keys::uplink_key(platform, k),
            keys::encode_intervals,
        );
        self.commit(batch, false, || {
            format!("recording uplink of platform {platform}")
        })?;
        Ok(self.write()?.apply_uplink_transition(platform, at, up)?)
    }

    /// Records one quality-diagnosis result.
    pub fn record_diagnosis(&self, camera: &GbId, d: Diagnosis) -> Result<(), IndexError> {
        let _w = self.lock_writer()?;
        let (base, old_len, tail) = {
            let reg = self.read()?;
            let entry = reg
                .camera(camera)
                .ok_or(ModelError::UnknownCamera { id: *camera })?;
            let items = entry.diagnoses.as_slice();
            let pos = items.partition_point(|x| x.at <= d.at);
            let base = keys::chunk_base(pos);
            let mut tail = items[base..].to_vec();
            tail.insert(pos - base, d);
            (base, items.len(), tail)
        };
        let mut batch = sled::Batch::default();
        keys::write_chunks(
            &mut batch,
            &tail,
            base,
            old_len,
            |k| keys::diagnosis_key(camera, k),
            keys::encode_diagnoses,
        );
        self.commit(batch, false, || {
            format!("recording a diagnosis of camera {camera}")
        })?;
        self.write()?.apply_diagnosis(camera, d)?;
        Ok(())
    }

    /// Closes every open interval (all cameras, all kinds, all uplinks) at `at`, or at its own
    /// start if that is later (such an interval is dropped as empty). For startup after a crash
    /// or an unclean stop: call with the last instant the service is known to have been alive.
    /// Fsynced. Returns how many intervals were closed or dropped.
    pub fn close_open_intervals(&self, at: Timestamp) -> Result<usize, IndexError> {
        let _w = self.lock_writer()?;
        let mut batch = sled::Batch::default();
        let mut cams: Vec<(GbId, StatusKind, Timestamp)> = Vec::new();
        let mut ups: Vec<(GbId, Timestamp)> = Vec::new();
        {
            let reg = self.read()?;
            let close = |set: &IntervalSet| -> Option<Result<(Preview, Timestamp), vigil_core::time::TimeError>> {
                let last = set.last().filter(|l| l.is_open())?;
                let when = at.max(last.start());
                Some(preview(set, when, false).map(|p| (p, when)))
            };
            for entry in reg.model().cameras() {
                for kind in StatusKind::ALL {
                    if let Some(r) = close(entry.history(kind)) {
                        let (p, when) = r.map_err(|source| ModelError::History {
                            subject: entry.id,
                            kind: kind.code(),
                            source,
                        })?;
                        let id = entry.id;
                        keys::write_chunks(
                            &mut batch,
                            p.tail.as_slice(),
                            p.base,
                            p.old_len,
                            |k| keys::history_key(&id, kind, k),
                            keys::encode_intervals,
                        );
                        cams.push((id, kind, when));
                    }
                }
            }
            for (platform, set) in reg.model().uplinks() {
                if let Some(r) = close(set) {
                    let (p, when) = r.map_err(|source| ModelError::History {
                        subject: *platform,
                        kind: "uplink",
                        source,
                    })?;
                    keys::write_chunks(
                        &mut batch,
                        p.tail.as_slice(),
                        p.base,
                        p.old_len,
                        |k| keys::uplink_key(platform, k),
                        keys::encode_intervals,
                    );
                    ups.push((*platform, when));
                }
            }
        }
        let n = cams.len() + ups.len();
        if n == 0 {
            return Ok(0);
        }
        self.commit(batch, true, || format!("closing {n} open intervals"))?;
        let mut reg = self.write()?;
        for (id, kind, when) in cams {
            reg.apply_transition(&id, kind, when, false)?;
        }
        for (platform, when) in ups {
            reg.apply_uplink_transition(&platform, when, false)?;
        }
        Ok(n)
    }

    /// A camera's intervals of one kind that overlap `range` (unclipped; an open interval has
    /// `end == Timestamp::MAX`).
    pub fn status_history(
        &self,
        camera: &GbId,
        kind: StatusKind,
        range: &Interval,
    ) -> Result<Vec<Interval>, IndexError> {
        let reg = self.read()?;
        let entry = reg
            .camera(camera)
            .ok_or(ModelError::UnknownCamera { id: *camera })?;
        Ok(entry.history(kind).overlapping(range).to_vec())
    }

    /// A camera's diagnoses with `range.start ≤ at < range.end`.
    pub fn diagnoses(&self, camera: &GbId, range: &Interval) -> Result<Vec<Diagnosis>, IndexError> {
        let reg = self.read()?;
        let entry = reg
            .camera(camera)
            .ok_or(ModelError::UnknownCamera { id: *camera })?;
        let items = entry.diagnoses.as_slice();
        let lo = items.partition_point(|d| d.at < range.start());
        let hi = items.partition_point(|d| d.at < range.end());
        Ok(items[lo..hi.max(lo)].to_vec())
    }

    /// An upper platform's uplink intervals overlapping `range` (empty for an unknown platform).
    pub fn uplink_history(
        &self,
        platform: &GbId,
        range: &Interval,
    ) -> Result<Vec<Interval>, IndexError> {
        let reg = self.read()?;
        Ok(reg
            .model()
            .uplinks()
            .get(platform)
            .map(|s| s.overlapping(range).to_vec())
            .unwrap_or_default())
    }

    /// Upper platforms with any uplink history.
    pub fn uplink_platforms(&self) -> Result<Vec<GbId>, IndexError> {
        Ok(self.read()?.model().uplinks().keys().copied().collect())
    }
}
