//! Single-record changes to grids, sites and cameras (CRUD) and RTSP credentials. Bulk imports
//! live in `import.rs` and share the same core validation.

use serde::{Deserialize, Serialize};
use vigil_core::camera::RtspCredentials;
use vigil_core::grid::{Grid, GridCode};
use vigil_core::id::GbId;
use vigil_core::import::CameraImport;
use vigil_core::model::{CameraVersionInput, ModelError};
use vigil_core::site::{KeySite, SiteId};
use vigil_core::time::Timestamp;

use crate::error::IndexError;
use crate::import::RtspIdPolicy;
use crate::{encode_json, keys, Index};

/// Stored form of RTSP credentials (never part of a camera record or report).
#[derive(Serialize, Deserialize)]
struct StoredCredentials {
    username: String,
    password: String,
}

fn first_rejection(rejected: Vec<(usize, ModelError)>) -> Result<(), IndexError> {
    match rejected.into_iter().next() {
        Some((_, e)) => Err(IndexError::Invalid(e)),
        None => Ok(()),
    }
}

impl Index {
    /// Inserts or updates a grid (moving it if the parent changed); refuses unknown parents
    /// and cycles.
    pub fn put_grid(&self, grid: Grid) -> Result<(), IndexError> {
        let _w = self.lock_writer()?;
        let merged = self.read()?.plan_grids(std::slice::from_ref(&grid));
        first_rejection(
            merged
                .rejected
                .into_iter()
                .map(|(i, e)| (i, ModelError::Grid(e)))
                .collect(),
        )?;
        let mut batch = sled::Batch::default();
        batch.insert(
            keys::grid_key(grid.code.as_str()),
            encode_json(&format!("grid {}", grid.code), &grid)?,
        );
        self.commit(batch, true, || format!("saving grid {}", grid.code))?;
        self.write()?.apply_grids(merged.tree);
        Ok(())
    }

    /// Removes a grid that has no children, sites or camera records (past or present).
    pub fn delete_grid(&self, code: &GridCode) -> Result<Grid, IndexError> {
        let _w = self.lock_writer()?;
        let (tree, grid) = {
            let reg = self.read()?;
            let grid = reg.model().grids().get(code).cloned();
            (reg.check_remove_grid(code)?, grid)
        };
        let mut batch = sled::Batch::default();
        batch.remove(keys::grid_key(code.as_str()));
        self.commit(batch, true, || format!("deleting grid {code}"))?;
        self.write()?.apply_grids(tree);
        grid.ok_or_else(|| {
            IndexError::Invalid(ModelError::Grid(vigil_core::grid::GridError::NotFound {
                code: code.clone(),
            }))
        })
    }

    /// Inserts or updates a key site; its grid must exist.
    pub fn put_site(&self, site: KeySite) -> Result<(), IndexError> {
        let _w = self.lock_writer()?;
        let plan = self.read()?.plan_sites(std::slice::from_ref(&site));
        first_rejection(plan.rejected)?;
        let mut batch = sled::Batch::default();
        batch.insert(
            keys::site_key(site.id.as_str()),
            encode_json(&format!("site {}", site.id), &site)?,
        );
        self.commit(batch, true, || format!("saving site {}", site.id))?;
        self.write()?.apply_sites(vec![site]);
        Ok(())
    }

    /// Removes a key site no camera record (past or present) refers to.
    pub fn delete_site(&self, id: &SiteId) -> Result<KeySite, IndexError> {
        let _w = self.lock_writer()?;
        self.read()?.check_remove_site(id)?;
        let mut batch = sled::Batch::default();
        batch.remove(keys::site_key(id.as_str()));
        self.commit(batch, true, || format!("deleting site {id}"))?;
        self.write()?
            .remove_site(id)
            .ok_or_else(|| IndexError::Invalid(ModelError::SiteNotFound { id: id.clone() }))
    }

    /// Inserts a camera record version (creating the camera if new; a version at an existing
    /// effective time replaces it), with credentials if the URL carried them.
    pub fn put_camera(&self, item: CameraImport) -> Result<(), IndexError> {
        let _w = self.lock_writer()?;
        let CameraImport {
            version,
            credentials,
        } = item;
        let plan = self.read()?.plan_cameras(std::slice::from_ref(&version));
        first_rejection(plan.rejected)?;
        let id = version.camera.id;
        let mut batch = sled::Batch::default();
        batch.insert(
            keys::camera_key(&id, version.from),
            encode_json(&format!("camera {id}"), &version.camera)?,
        );
        if let Some(c) = &credentials {
            batch.insert(keys::credentials_key(&id), encode_credentials(&id, c)?);
        }
        self.commit(batch, true, || format!("saving camera {id}"))?;
        self.write()?.apply_cameras(vec![version]);
        self.cameras_changed();
        Ok(())
    }

    /// Takes a camera out of service from `at`: a new record version effective at `at`, copied
    /// from the version in effect then, with `decommissioned_at = at`.
    pub fn decommission_camera(&self, id: &GbId, at: Timestamp) -> Result<(), IndexError> {
        let camera = {
            let reg = self.read()?;
            let entry = reg
                .camera(id)
                .ok_or(ModelError::UnknownCamera { id: *id })?;
            let v = entry
                .version_at(at)
                .ok_or_else(|| ModelError::BeforeRegistration {
                    camera: *id,
                    at,
                    registered: entry.registered_at().unwrap_or(at),
                })?;
            let mut camera = v.camera.clone();
            camera.decommissioned_at = Some(at);
            camera
        };
        self.put_camera(CameraImport {
            version: CameraVersionInput { from: at, camera },
            credentials: None,
        })
    }

    /// Deletes a camera with every version, history, diagnosis and its credentials. Use
    /// [`Index::decommission_camera`] for cameras taken out of service: deletion rewrites the past.
    pub fn delete_camera(&self, id: &GbId) -> Result<(), IndexError> {
        let _w = self.lock_writer()?;
        if self.read()?.camera(id).is_none() {
            return Err(ModelError::UnknownCamera { id: *id }.into());
        }
        let mut batch = sled::Batch::default();
        for prefix in [
            keys::camera_prefix(id),
            keys::history_prefix(id),
            keys::diagnosis_prefix(id),
            keys::credentials_key(id),
            keys::access_test_key(id),
        ] {
            for kv in self.db.scan_prefix(prefix) {
                let (k, _) =
                    kv.map_err(|e| IndexError::storage(format!("deleting camera {id}"), e))?;
                batch.remove(k);
            }
        }
        self.commit(batch, true, || format!("deleting camera {id}"))?;
        self.write()?.remove_camera(id);
        self.cameras_changed();
        Ok(())
    }

    /// Stores (or with `None` removes) the RTSP credentials of a camera.
    pub fn set_rtsp_credentials(
        &self,
        id: &GbId,
        credentials: Option<&RtspCredentials>,
    ) -> Result<(), IndexError> {
        let _w = self.lock_writer()?;
        if self.read()?.camera(id).is_none() {
            return Err(ModelError::UnknownCamera { id: *id }.into());
        }
        let mut batch = sled::Batch::default();
        match credentials {
            Some(c) => batch.insert(keys::credentials_key(id), encode_credentials(id, c)?),
            None => batch.remove(keys::credentials_key(id)),
        }
        self.commit(batch, true, || format!("saving credentials of camera {id}"))?;
        self.cameras_changed();
        Ok(())
    }

    /// Stores the report of a camera's latest RTSP access test (接入检测), replacing the
    /// previous one (fsynced). The index keeps it as opaque JSON: its shape belongs to the RTSP
    /// side. It must not contain credentials.
    pub fn set_access_test(&self, id: &GbId, report: &serde_json::Value) -> Result<(), IndexError> {
        let _w = self.lock_writer()?;
        if self.read()?.camera(id).is_none() {
            return Err(ModelError::UnknownCamera { id: *id }.into());
        }
        let mut batch = sled::Batch::default();
        batch.insert(
            keys::access_test_key(id),
            encode_json(&format!("access test of camera {id}"), report)?,
        );
        self.commit(batch, true, || {
            format!("saving the access test of camera {id}")
        })
    }

    /// The report of a camera's latest access test, if it had one.
    pub fn access_test(&self, id: &GbId) -> Result<Option<serde_json::Value>, IndexError> {
        let key = keys::access_test_key(id);
        let Some(v) = self.db.get(&key).map_err(|e| {
            IndexError::storage(format!("reading the access test of camera {id}"), e)
        })?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&v)
            .map(Some)
            .map_err(|e| IndexError::corrupt(&key, e))
    }

    /// The RTSP credentials of a camera, if any (for the puller; never for reports).
    pub fn rtsp_credentials(&self, id: &GbId) -> Result<Option<RtspCredentials>, IndexError> {
        let key = keys::credentials_key(id);
        let Some(v) = self
            .db
            .get(&key)
            .map_err(|e| IndexError::storage(format!("reading credentials of camera {id}"), e))?
        else {
            return Ok(None);
        };
        let c: StoredCredentials =
            serde_json::from_slice(&v).map_err(|e| IndexError::corrupt(&key, e))?;
        Ok(Some(RtspCredentials {
            username: c.username,
            password: c.password,
        }))
    }

    /// The lowest free RTSP camera ID under the policy's domain (deterministic for a given set
    /// of existing cameras).
    pub fn next_rtsp_id(&self, policy: &RtspIdPolicy) -> Result<GbId, IndexError> {
        let reg = self.read()?;
        GbId::next_free_rtsp_id(&policy.domain, policy.network, 1, |id| {
            reg.camera(id).is_some()
        })
        .map_err(|e| IndexError::Encode {
            item: "RTSP camera ID".to_owned(),
            reason: e.to_string(),
        })
    }
}

pub(crate) fn encode_credentials(id: &GbId, c: &RtspCredentials) -> Result<Vec<u8>, IndexError> {
    encode_json(
        &format!("credentials of camera {id}"),
        &StoredCredentials {
            username: c.username.clone(),
            password: c.password.clone(),
        },
    )
}
