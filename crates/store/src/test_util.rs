//! Unit-test harness: a store on a temporary directory with a real (on-disk) index.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use vigil_core::camera::{
    AcceptanceState, Builder, Camera, CameraSource, RegistrationState, RtspUrl,
};
use vigil_core::grid::{Grid, GridCode};
use vigil_core::id::GbId;
use vigil_core::import::CameraImport;
use vigil_core::model::CameraVersionInput;
use vigil_core::status::StatusKind;
use vigil_core::time::{Interval, Timestamp};
use vigil_index::{Index, SegmentRecord};

use crate::{RecorderState, RecoveryReport, SourceEvent, Store, StoreConfig};

/// 2023-11-14T22:13:20Z: a round instant for test feeds.
pub(crate) const T0: Timestamp = Timestamp::from_millis(1_700_000_000_000);

pub(crate) fn cam(n: u32) -> GbId {
    GbId::parse(&format!("3401000000132{n:07}")).unwrap()
}

pub(crate) struct Harness {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) store: Store,
    pub(crate) config: StoreConfig,
}

impl Harness {
    /// A store with 4 s segments (the demo clips have 1 s GOPs).
    pub(crate) fn new() -> Harness {
        Harness::with(|_| {})
    }

    pub(crate) fn with(f: impl FnOnce(&mut StoreConfig)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut config = StoreConfig::new(dir.path().join("store"));
        config.segment_duration = Duration::from_secs(4);
        f(&mut config);
        let index = Arc::new(Index::open(dir.path().join("index")).unwrap());
        let (store, report) = Store::open(config.clone(), index).unwrap();
        assert_eq!(report.segments_closed, 0);
        Harness { dir, store, config }
    }

    pub(crate) fn index(&self) -> &Arc<Index> {
        self.store.index()
    }

    pub(crate) fn root(&self) -> &Path {
        &self.config.root
    }

    pub(crate) fn path_of(&self, r: &SegmentRecord) -> PathBuf {
        self.root().join(r.camera.as_str()).join(&r.file)
    }

    /// Closes the store and index, then opens both again (running recovery).
    pub(crate) fn reopen(self) -> (Harness, RecoveryReport) {
        let Harness { dir, store, config } = self;
        drop(store);
        let index = Arc::new(Index::open(dir.path().join("index")).unwrap());
        let (store, report) = Store::open(config.clone(), index).unwrap();
        (Harness { dir, store, config }, report)
    }

    /// Records `events` for `camera` and waits until the recorder has finished (the source
    /// closes after the last event).
    pub(crate) async fn record(&self, camera: GbId, events: Vec<SourceEvent>) -> RecorderState {
        let (tx, handle) = self.store.recorder_channel(camera, 16).unwrap();
        for ev in events {
            tx.send(ev).await.unwrap();
        }
        drop(tx);
        handle.join().await;
        self.store.recorder_state(&camera)
    }

    /// All segments of a camera, oldest first.
    pub(crate) fn segments(&self, camera: &GbId) -> Vec<SegmentRecord> {
        self.index()
            .segments(camera, i64::MIN, i64::MAX, usize::MAX)
            .unwrap()
    }

    pub(crate) fn history(&self, camera: &GbId, kind: StatusKind) -> Vec<Interval> {
        self.index()
            .status_history(camera, kind, &Interval::open(Timestamp::MIN))
            .unwrap()
    }
}

/// Registers a camera (and its grid) so that status history can be recorded for it.
pub(crate) fn register(index: &Index, camera: GbId) {
    let grid = GridCode::parse("g1").unwrap();
    if index.grid(&grid).unwrap().is_none() {
        index
            .put_grid(Grid {
                code: grid.clone(),
                name: "网格".into(),
                level_label: "基础网格".into(),
                parent: None,
                polygon: None,
            })
            .unwrap();
    }
    let record = Camera {
        id: camera,
        name: format!("camera {camera}"),
        source: CameraSource::Rtsp {
            url: RtspUrl::parse("rtsp://10.0.0.1/live").unwrap().0,
        },
        location: None,
        address: None,
        grid,
        sites: vec![],
        builder: Some(Builder::GovernmentPublic),
        point_class: None,
        install_date: None,
        registration: RegistrationState::Filed,
        acceptance: AcceptanceState::Accepted,
        hd: None,
        shared_upward: false,
        decommissioned_at: None,
    };
    index
        .put_camera(CameraImport {
            version: CameraVersionInput {
                from: Timestamp::from_millis(0),
                camera: record,
            },
            credentials: None,
        })
        .unwrap();
}

/// `n` events of a feed.
pub(crate) fn take(feed: &mut crate::testing::ClipFeed, n: usize) -> Vec<SourceEvent> {
    (0..n).map(|_| feed.next_event()).collect()
}
