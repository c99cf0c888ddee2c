//! Test helpers: a self-deleting temporary directory and small fixtures.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use vigil_core::camera::{
    AcceptanceState, Builder, Camera, CameraSource, RegistrationState, RtspUrl,
};
use vigil_core::geo::GeoPoint;
use vigil_core::grid::{Grid, GridCode};
use vigil_core::id::GbId;
use vigil_core::import::CameraImport;
use vigil_core::model::CameraVersionInput;
use vigil_core::site::{KeySite, PointClass, SiteCategory, SiteId};
use vigil_core::time::Timestamp;

/// A directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new() -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!(
            "vigil-index-test-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn code(s: &str) -> GridCode {
    GridCode::parse(s).unwrap()
}

pub(crate) fn grid(c: &str, parent: Option<&str>) -> Grid {
    Grid {
        code: code(c),
        name: format!("网格 {c}"),
        level_label: "基础网格".into(),
        parent: parent.map(code),
        polygon: None,
    }
}

pub(crate) fn site(id: &str, grid: &str) -> KeySite {
    KeySite {
        id: SiteId::parse(id).unwrap(),
        name: format!("site {id}"),
        category: SiteCategory::School,
        point_class: PointClass::Class1,
        grid: code(grid),
        location: Some(GeoPoint::new(36.0, 117.0).unwrap()),
        address: None,
        required_coverage: true,
    }
}

pub(crate) fn cam_id(n: u32) -> GbId {
    GbId::parse(&format!("370100000013200{n:05}")).unwrap()
}

pub(crate) fn camera(n: u32, grid: &str) -> Camera {
    Camera {
        id: cam_id(n),
        name: format!("Camera {n} 东门"),
        source: CameraSource::Rtsp {
            url: RtspUrl::parse(&format!("rtsp://10.0.{}.{}/live", n / 250, n % 250))
                .unwrap()
                .0,
        },
        location: Some(GeoPoint::new(36.0, 117.0).unwrap()),
        address: Some("经十路".into()),
        grid: code(grid),
        sites: vec![],
        builder: Some(Builder::GovernmentPublic),
        point_class: Some(PointClass::Class2),
        install_date: None,
        registration: RegistrationState::Filed,
        acceptance: AcceptanceState::Accepted,
        hd: None,
        shared_upward: true,
        decommissioned_at: None,
    }
}

pub(crate) fn import(from: Timestamp, camera: Camera) -> CameraImport {
    CameraImport {
        version: CameraVersionInput { from, camera },
        credentials: None,
    }
}
