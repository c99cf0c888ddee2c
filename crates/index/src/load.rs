//! Rebuilding the in-memory model from the store at open.
//!
//! Camera records, histories and diagnoses are keyed by camera ID first, so three ID-ordered
//! scans are merged camera by camera; nothing is buffered beyond one camera. Every stored record
//! goes through the same core validation as a live write; a record that fails it is reported as
//! corrupt with its key rather than silently dropped. History or diagnosis chunks whose camera
//! has no record (impossible unless the store was edited by hand) are skipped with a warning.

use std::iter::Peekable;

use serde::de::DeserializeOwned;
use vigil_core::camera::Camera;
use vigil_core::grid::Grid;
use vigil_core::id::GbId;
use vigil_core::model::{CameraVersionInput, Registry};
use vigil_core::site::KeySite;
use vigil_core::status::{Diagnosis, DiagnosisLog};
use vigil_core::time::{Interval, IntervalSet, Timestamp};

use crate::error::IndexError;
use crate::keys::{self, id_after_prefix};

type Item = Result<(sled::IVec, sled::IVec), sled::Error>;

fn next_kv(
    it: &mut impl Iterator<Item = Item>,
    what: &str,
) -> Result<Option<(sled::IVec, sled::IVec)>, IndexError> {
    it.next()
        .transpose()
        .map_err(|e| IndexError::storage(format!("loading {what}"), e))
}

fn scan_json<T: DeserializeOwned>(
    db: &sled::Db,
    prefix: &[u8],
    what: &str,
) -> Result<Vec<T>, IndexError> {
    let mut out = Vec::new();
    let mut it = db.scan_prefix(prefix);
    while let Some((k, v)) = next_kv(&mut it, what)? {
        out.push(serde_json::from_slice(&v).map_err(|e| IndexError::corrupt(&k, e))?);
    }
    Ok(out)
}

/// Loads everything into a fresh registry.
pub(crate) fn load(db: &sled::Db) -> Result<Registry, IndexError> {
    let mut reg = Registry::new();
    if let Some(v) = db
        .get(keys::TARGETS_KEY)
        .map_err(|e| IndexError::storage("loading targets", e))?
    {
        let targets =
            serde_json::from_slice(&v).map_err(|e| IndexError::corrupt(keys::TARGETS_KEY, e))?;
        reg.set_targets(targets);
    }

    let grids: Vec<Grid> = scan_json(db, keys::GRID, "grids")?;
    let merged = reg.plan_grids(&grids);
    if let Some((i, e)) = merged.rejected.first() {
        return Err(IndexError::corrupt(
            &keys::grid_key(grids[*i].code.as_str()),
            e,
        ));
    }
    reg.apply_grids(merged.tree);

    let sites: Vec<KeySite> = scan_json(db, keys::SITE, "sites")?;
    let plan = reg.plan_sites(&sites);
    if let Some((i, e)) = plan.rejected.first() {
        return Err(IndexError::corrupt(
            &keys::site_key(sites[*i].id.as_str()),
            e,
        ));
    }
    reg.apply_sites(sites);

    load_cameras(db, &mut reg)?;
    load_uplinks(db, &mut reg)?;
    Ok(reg)
}

fn load_cameras(db: &sled::Db, reg: &mut Registry) -> Result<(), IndexError> {
    let mut cams = db.scan_prefix(keys::CAMERA).peekable();
    let mut hist = db.scan_prefix(keys::HISTORY).peekable();
    let mut diag = db.scan_prefix(keys::DIAGNOSIS).peekable();
    loop {
        let Some((first_key, first_val)) = next_kv(&mut cams, "cameras")? else {
            break;
        };
        let id = id_after_prefix(&first_key)
            .ok_or_else(|| IndexError::corrupt(&first_key, "key has no camera ID"))?;
        let mut versions = vec![decode_version(&first_key, &first_val, &id)?];
        while let Some(Ok((k, _))) = cams.peek() {
            if id_after_prefix(k) != Some(id) {
                break;
            }
            if let Some((k, v)) = next_kv(&mut cams, "cameras")? {
                versions.push(decode_version(&k, &v, &id)?);
            }
        }
        let histories = take_histories(&mut hist, &id)?;
        let diagnoses = take_diagnoses(&mut diag, &id)?;
        reg.load_camera(versions, histories, diagnoses)
            .map_err(|e| IndexError::corrupt(&keys::camera_prefix(&id), e))?;
    }
    for (what, rest) in [("history", &mut hist), ("diagnosis", &mut diag)] {
        let orphans = rest.filter(|r| r.is_ok()).count();
        if orphans > 0 {
            tracing::warn!(orphans, "skipped {what} chunks of cameras without a record");
        }
    }
    Ok(())
}

fn decode_version(k: &[u8], v: &[u8], id: &GbId) -> Result<CameraVersionInput, IndexError> {
    let from = k
        .get(22..30)
        .and_then(keys::unord_i64)
        .ok_or_else(|| IndexError::corrupt(k, "key has no effective time"))?;
    let camera: Camera = serde_json::from_slice(v).map_err(|e| IndexError::corrupt(k, e))?;
    if camera.id != *id {
        return Err(IndexError::corrupt(
            k,
            format!("record is for camera {}", camera.id),
        ));
    }
    Ok(CameraVersionInput {
        from: Timestamp::from_millis(from),
        camera,
    })
}

/// Skips entries of cameras before `id` (orphans) and collects the entries of `id`.
fn take_for<I: Iterator<Item = Item>>(
    it: &mut Peekable<I>,
    id: &GbId,
    what: &str,
    mut each: impl FnMut(&[u8], &[u8]) -> Result<(), IndexError>,
) -> Result<(), IndexError> {
    loop {
        let key_id = match it.peek() {
            None => return Ok(()),
            Some(Err(_)) => {
                return next_kv(it, what).map(|_| ());
            }
            Some(Ok((k, _))) => id_after_prefix(k),
        };
        match key_id {
            Some(k) if k > *id => return Ok(()),
            Some(k) if k == *id => {
                if let Some((k, v)) = next_kv(it, what)? {
                    each(&k, &v)?;
                }
            }
            _ => {
                if let Some((k, _)) = next_kv(it, what)? {
                    tracing::warn!(key = %keys::printable(&k), "skipping {what} chunk without a camera record");
                }
            }
        }
    }
}

fn take_histories<I: Iterator<Item = Item>>(
    it: &mut Peekable<I>,
    id: &GbId,
) -> Result<[IntervalSet; 3], IndexError> {
    let mut lists: [Vec<Interval>; 3] = Default::default();
    take_for(it, id, "history", |k, v| {
        let kind = k
            .get(22)
            .copied()
            .and_then(keys::kind_from_byte)
            .ok_or_else(|| IndexError::corrupt(k, "unknown history kind"))?;
        keys::decode_intervals(v, &mut lists[kind as usize]).map_err(|e| IndexError::corrupt(k, e))
    })?;
    let [a, b, c] = lists;
    // Lists grew by pushing; drop the spare capacity (tens of MB over a city).
    let set = |mut l: Vec<Interval>| {
        l.shrink_to_fit();
        IntervalSet::from_sorted(l).map_err(|e| IndexError::corrupt(&keys::history_prefix(id), e))
    };
    Ok([set(a)?, set(b)?, set(c)?])
}

fn take_diagnoses<I: Iterator<Item = Item>>(
    it: &mut Peekable<I>,
    id: &GbId,
) -> Result<DiagnosisLog, IndexError> {
    let mut list: Vec<Diagnosis> = Vec::new();
    take_for(it, id, "diagnosis", |k, v| {
        keys::decode_diagnoses(v, &mut list).map_err(|e| IndexError::corrupt(k, e))
    })?;
    list.shrink_to_fit();
    Ok(DiagnosisLog::from_unsorted(list))
}

fn load_uplinks(db: &sled::Db, reg: &mut Registry) -> Result<(), IndexError> {
    let mut it = db.scan_prefix(keys::UPLINK);
    let mut current: Option<(GbId, Vec<Interval>)> = None;
    let finish =
        |reg: &mut Registry, cur: Option<(GbId, Vec<Interval>)>| -> Result<(), IndexError> {
            if let Some((id, list)) = cur {
                let set = IntervalSet::from_sorted(list)
                    .map_err(|e| IndexError::corrupt(&keys::uplink_key(&id, 0), e))?;
                reg.load_uplink(id, set);
            }
            Ok(())
        };
    while let Some((k, v)) = next_kv(&mut it, "uplinks")? {
        let id =
            id_after_prefix(&k).ok_or_else(|| IndexError::corrupt(&k, "key has no platform ID"))?;
        if current.as_ref().map(|c| c.0) != Some(id) {
            finish(reg, current.take())?;
            current = Some((id, Vec::new()));
        }
        if let Some((_, list)) = current.as_mut() {
            keys::decode_intervals(&v, list).map_err(|e| IndexError::corrupt(&k, e))?;
        }
    }
    finish(reg, current)
}
