//! Multi-packet Catalog assembly.
//!
//! A device answers one Catalog query with as many MESSAGEs as it likes (Dahua IVSS: one item
//! per packet, vectors 71-74; Hikvision NVR: two, vector 70), each repeating `SumNum` (the total)
//! and `DeviceList Num` (this packet). Packets carry no index, may be lost, duplicated or
//! reordered over UDP, and `SumNum` is sometimes wrong. The assembler collects items per
//! (device, SN), de-duplicating by item DeviceID, and completes a catalog:
//! - as soon as the distinct items reach the (largest) announced `SumNum`, or
//! - when no packet arrived for `quiet_timeout` (reporting how many were missing), or
//! - when nothing at all arrived within `no_response_timeout` after [`CatalogAssembler::expect`].
//!
//! Items are kept in arrival order with every tree field (`ParentID`, `BusinessGroupID`,
//! `Parental`) intact, so business groups (type 215), virtual organisations (216) and channels
//! can be put into a tree by the caller. Packets for a catalog that already completed are
//! reported as [`AssemblerEvent::LateItems`] for a grace period rather than starting a new
//! catalog.
//!
//! Timers: [`CatalogAssembler::next_deadline`] and [`CatalogAssembler::handle_timeout`]. Each
//! session keeps one heap entry that is re-armed lazily, so a 10 000-packet catalog costs no heap
//! churn.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::manscdp::{CatalogItem, CatalogList, Manscdp, Payload};

/// Assembler settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssemblerConfig {
    /// Complete after this long without a packet. Default 10 s.
    pub quiet_timeout: Duration,
    /// After [`CatalogAssembler::expect`], give up if no packet arrives. Default 30 s.
    pub no_response_timeout: Duration,
    /// How long a completed (device, SN) is remembered to recognise late packets. Default 60 s.
    pub late_grace: Duration,
    /// Items per catalog at most; beyond it the catalog completes as overflowed. Default 200 000.
    pub max_items: usize,
    /// Catalogs assembled at the same time at most. Default 20 000.
    pub max_sessions: usize,
}

impl Default for AssemblerConfig {
    fn default() -> Self {
        AssemblerConfig {
            quiet_timeout: Duration::from_secs(10),
            no_response_timeout: Duration::from_secs(30),
            late_grace: Duration::from_secs(60),
            max_items: 200_000,
            max_sessions: 20_000,
        }
    }
}

/// Why a catalog completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// The distinct items reached `SumNum`.
    Complete,
    /// No packet for `quiet_timeout`; fewer items than announced (or no `SumNum`).
    QuietTimeout,
    /// [`CatalogAssembler::expect`] was called and no packet ever arrived.
    NoResponse,
    /// More than `max_items` items.
    Overflow,
}

/// Something off about a catalog, reported with the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inconsistency {
    /// No packet carried `SumNum`.
    MissingSumNum,
    /// Packets announced different `SumNum` values.
    SumNumChanged {
        /// First announced.
        first: u32,
        /// A later, different value.
        later: u32,
    },
    /// A packet's `DeviceList Num` differed from the items it carried.
    PacketNumMismatch {
        /// `Num` attribute.
        declared: u32,
        /// Items found.
        actual: usize,
    },
    /// Fewer distinct items than announced (at timeout).
    FewerItemsThanAnnounced {
        /// `SumNum`.
        announced: u32,
        /// Distinct items received.
        received: usize,
    },
    /// More distinct items than announced.
    MoreItemsThanAnnounced {
        /// `SumNum`.
        announced: u32,
        /// Distinct items received.
        received: usize,
    },
    /// Items received more than once (same DeviceID and same content): retransmissions.
    DuplicateItems {
        /// How many duplicates were dropped.
        count: u32,
    },
    /// Items received more than once with different content; the last one is kept.
    ConflictingDuplicates {
        /// The item IDs (first 16).
        device_ids: Vec<String>,
        /// How many conflicts in total.
        count: u32,
    },
}

/// A completed catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogResult {
    /// The device that answered.
    pub device: String,
    /// The query SN.
    pub sn: u64,
    /// Why it completed.
    pub completion: Completion,
    /// `SumNum` used for completion (the largest announced).
    pub announced: Option<u32>,
    /// Distinct items in arrival order.
    pub items: Vec<CatalogItem>,
    /// Packets received (including duplicates).
    pub packets: u32,
    /// Everything that did not add up.
    pub inconsistencies: Vec<Inconsistency>,
}

/// Assembler output.
#[derive(Debug, Clone, PartialEq)]
pub enum AssemblerEvent {
    /// A catalog completed.
    Completed(CatalogResult),
    /// Items arrived for a catalog that already completed (a device whose `SumNum` was too
    /// small, or a late retransmission); merge them.
    LateItems {
        /// Device.
        device: String,
        /// SN.
        sn: u64,
        /// The packet's items.
        items: Vec<CatalogItem>,
    },
    /// A packet was dropped because `max_sessions` catalogs are already in progress.
    Dropped {
        /// Device.
        device: String,
        /// SN.
        sn: u64,
    },
}

/// What a catalog item is, by its DeviceID (classified by `vigil_core::id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// An administrative region node: a 2/4/6/8-digit CivilCode as DeviceID (platform
    /// catalogs).
    Region,
    /// Type 215: business group (a root of a virtual tree).
    BusinessGroup,
    /// Type 216: virtual organisation (child of a business group or another organisation,
    /// named by `BusinessGroupID`/`ParentID`).
    VirtualOrganisation,
    /// A camera / IPC channel (types 131, 132).
    VideoChannel,
    /// Any other 20-digit ID (NVR, alarm input, platform...).
    Device(crate::gbid::DeviceType),
    /// Not a GB ID nor a CivilCode; kept, but cannot be placed in the tree by ID.
    InvalidId,
}

/// Classifies a catalog item for tree building. Trees are built from `ParentID` (several,
/// `/`-separated in 2022) and `BusinessGroupID`, never from `Parental`, which devices set
/// carelessly (Uniview vector 79 marks a camera as a parent).
pub fn item_kind(item: &CatalogItem) -> ItemKind {
    use crate::gbid::{CivilCode, DeviceType, GbId};
    if let Ok(id) = GbId::parse(&item.device_id) {
        return match id.device_type() {
            DeviceType::BusinessGroup => ItemKind::BusinessGroup,
            DeviceType::VirtualOrganisation => ItemKind::VirtualOrganisation,
            t if t.is_video_channel() => ItemKind::VideoChannel,
            t => ItemKind::Device(t),
        };
    }
    if CivilCode::parse(&item.device_id).is_ok() {
        return ItemKind::Region;
    }
    ItemKind::InvalidId
}

type Key = (String, u64);

#[derive(Debug)]
struct Session {
    started: Instant,
    last_packet: Option<Instant>,
    first_sum: Option<u32>,
    max_sum: Option<u32>,
    items: Vec<CatalogItem>,
    index: HashMap<String, usize>,
    packets: u32,
    duplicates: u32,
    conflicts: u32,
    conflict_ids: Vec<String>,
    inconsistencies: Vec<Inconsistency>,
}

impl Session {
    fn new(now: Instant) -> Self {
        Session {
            started: now,
            last_packet: None,
            first_sum: None,
            max_sum: None,
            items: Vec::new(),
            index: HashMap::new(),
            packets: 0,
            duplicates: 0,
            conflicts: 0,
            conflict_ids: Vec::new(),
            inconsistencies: Vec::new(),
        }
    }

    fn deadline(&self, cfg: &AssemblerConfig) -> Instant {
        match self.last_packet {
            Some(t) => t + cfg.quiet_timeout,
            None => self.started + cfg.no_response_timeout,
        }
    }
}

/// Collects multi-packet catalogs. See the module documentation.
#[derive(Debug, Default)]
pub struct CatalogAssembler {
    config: AssemblerConfig,
    sessions: HashMap<Key, Session>,
    heap: BinaryHeap<Reverse<(Instant, Key)>>,
    completed: HashMap<Key, Instant>,
    completed_order: VecDeque<(Instant, Key)>,
}

impl CatalogAssembler {
    /// An assembler with `config`.
    pub fn new(config: AssemblerConfig) -> Self {
        CatalogAssembler {
            config,
            ..Default::default()
        }
    }

    /// Catalogs in progress.
    pub fn in_progress(&self) -> usize {
        self.sessions.len()
    }

    /// Registers that we queried `device` with `sn`, so that silence is reported
    /// ([`Completion::NoResponse`]). Optional: packets for unknown (device, SN) start a catalog.
    pub fn expect(&mut self, device: &str, sn: u64, now: Instant) {
        let key = (device.to_owned(), sn);
        if self.sessions.contains_key(&key) || self.sessions.len() >= self.config.max_sessions {
            return;
        }
        let s = Session::new(now);
        self.heap
            .push(Reverse((s.deadline(&self.config), key.clone())));
        self.sessions.insert(key, s);
    }

    /// Feeds a parsed MANSCDP message; only Catalog responses are consumed (others return
    /// `None`). The document's DeviceID names the catalog.
    pub fn push_message(&mut self, msg: Manscdp, now: Instant) -> Option<AssemblerEvent> {
        match msg.payload {
            Payload::CatalogResponse(list) => {
                self.push(&msg.device_id, msg.sn.unwrap_or(0), list, now)
            }
            _ => None,
        }
    }

    /// Feeds one catalog packet of `device` for query `sn`.
    pub fn push(
        &mut self,
        device: &str,
        sn: u64,
        list: CatalogList,
        now: Instant,
    ) -> Option<AssemblerEvent> {
        self.expire_completed(now);
        let key = (device.to_owned(), sn);
        if self.completed.contains_key(&key) {
            return Some(AssemblerEvent::LateItems {
                device: key.0,
                sn,
                items: list.items,
            });
        }
        if !self.sessions.contains_key(&key) {
            if self.sessions.len() >= self.config.max_sessions {
                return Some(AssemblerEvent::Dropped { device: key.0, sn });
            }
            let s = Session::new(now);
            self.heap
                .push(Reverse((now + self.config.quiet_timeout, key.clone())));
            self.sessions.insert(key.clone(), s);
        }
        let cfg = self.config;
        let s = self.sessions.get_mut(&key)?;
        s.packets += 1;
        s.last_packet = Some(now);
        if let Some(sum) = list.sum_num {
            match s.first_sum {
                None => s.first_sum = Some(sum),
                Some(first) if first != sum => {
                    if !s.inconsistencies.iter().any(|i| matches!(i, Inconsistency::SumNumChanged { later, .. } if *later == sum)) {
                        s.inconsistencies.push(Inconsistency::SumNumChanged { first, later: sum });
                    }
                }
                Some(_) => {}
            }
            s.max_sum = Some(s.max_sum.map_or(sum, |m| m.max(sum)));
        }
        if let Some(declared) = list.list_num {
            if declared as usize != list.items.len() {
                s.inconsistencies.push(Inconsistency::PacketNumMismatch {
                    declared,
                    actual: list.items.len(),
                });
            }
        }
        for item in list.items {
            match s.index.get(&item.device_id) {
                Some(&i) => {
                    if s.items[i] == item {
                        s.duplicates += 1;
                    } else {
                        s.conflicts += 1;
                        if s.conflict_ids.len() < 16 {
                            s.conflict_ids.push(item.device_id.clone());
                        }
                        s.items[i] = item;
                    }
                }
                None => {
                    s.index.insert(item.device_id.clone(), s.items.len());
                    s.items.push(item);
                }
            }
        }
        let received = s.items.len();
        if received > cfg.max_items {
            return Some(self.complete(key, Completion::Overflow, now));
        }
        match s.max_sum {
            Some(sum) if received >= sum as usize => {
                Some(self.complete(key, Completion::Complete, now))
            }
            _ => None,
        }
    }

    fn complete(&mut self, key: Key, completion: Completion, now: Instant) -> AssemblerEvent {
        let s = self
            .sessions
            .remove(&key)
            .unwrap_or_else(|| Session::new(now));
        let mut inc = s.inconsistencies;
        let received = s.items.len();
        match s.max_sum {
            None if s.packets > 0 => inc.push(Inconsistency::MissingSumNum),
            Some(sum) if received < sum as usize => {
                inc.push(Inconsistency::FewerItemsThanAnnounced {
                    announced: sum,
                    received,
                })
            }
            Some(sum) if received > sum as usize => {
                inc.push(Inconsistency::MoreItemsThanAnnounced {
                    announced: sum,
                    received,
                })
            }
            _ => {}
        }
        if s.duplicates > 0 {
            inc.push(Inconsistency::DuplicateItems {
                count: s.duplicates,
            });
        }
        if s.conflicts > 0 {
            inc.push(Inconsistency::ConflictingDuplicates {
                device_ids: s.conflict_ids,
                count: s.conflicts,
            });
        }
        let until = now + self.config.late_grace;
        self.completed.insert(key.clone(), until);
        self.completed_order.push_back((until, key.clone()));
        AssemblerEvent::Completed(CatalogResult {
            device: key.0,
            sn: key.1,
            completion,
            announced: s.max_sum,
            items: s.items,
            packets: s.packets,
            inconsistencies: inc,
        })
    }

    fn expire_completed(&mut self, now: Instant) {
        while let Some((until, _)) = self.completed_order.front() {
            if *until > now {
                break;
            }
            if let Some((until, key)) = self.completed_order.pop_front() {
                if self.completed.get(&key) == Some(&until) {
                    self.completed.remove(&key);
                }
            }
        }
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) may complete a
    /// catalog. May be earlier than necessary (entries are re-armed lazily).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((t, _))| *t)
    }

    /// Completes every catalog whose quiet or no-response timeout has passed.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<AssemblerEvent> {
        self.expire_completed(now);
        let mut out = Vec::new();
        while let Some(Reverse((when, _))) = self.heap.peek() {
            if *when > now {
                break;
            }
            let Some(Reverse((_, key))) = self.heap.pop() else {
                break;
            };
            let Some(s) = self.sessions.get(&key) else {
                continue;
            };
            let due = s.deadline(&self.config);
            if due > now {
                self.heap.push(Reverse((due, key)));
                continue;
            }
            let completion = if s.packets == 0 {
                Completion::NoResponse
            } else {
                Completion::QuietTimeout
            };
            out.push(self.complete(key, completion, now));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manscdp::Payload;
    use crate::manscdp::{parse_body, CatalogItem, ChannelStatus};
    use crate::testdata::vector;

    fn msg(name: &str) -> Manscdp {
        let body = if name.ends_with(".xml") {
            vector(name).to_vec()
        } else {
            crate::sip::parse_datagram(vector(name))
                .unwrap()
                .body
                .to_vec()
        };
        parse_body(&body, None).unwrap()
    }

    fn item(id: usize) -> CatalogItem {
        CatalogItem {
            device_id: format!("340200000013{id:08}"),
            status: Some(ChannelStatus::On),
            ..CatalogItem::default()
        }
    }

    fn list(sum: u32, ids: &[usize]) -> CatalogList {
        CatalogList {
            sum_num: Some(sum),
            list_num: Some(ids.len() as u32),
            items: ids.iter().map(|&i| item(i)).collect(),
        }
    }

    #[test]
    fn dahua_ivss_one_item_per_packet_out_of_order() {
        // Vectors 73, 71, 72: SN 4, SumNum 4, one channel each, in the order the source shows
        // (ch4, ch2, ch3); the packet for ch1 was never published, so the catalog completes on
        // the quiet timeout reporting one missing item.
        let mut a = CatalogAssembler::new(AssemblerConfig::default());
        let t0 = Instant::now();
        for (i, f) in [
            "73_dahua_ivss_catalog_sumnum4_sn4_ch4_gb2312_body.xml",
            "71_dahua_ivss_catalog_sumnum4_sn4_ch2_body.xml",
            "72_dahua_ivss_catalog_sumnum4_sn4_ch3_gb2312_body.xml",
        ]
        .iter()
        .enumerate()
        {
            assert_eq!(
                a.push_message(msg(f), t0 + Duration::from_millis(i as u64 * 100)),
                None
            );
        }
        // Vector 74 is SN 1 from an earlier query: a separate catalog.
        assert_eq!(
            a.push_message(
                msg("74_dahua_ivss_catalog_sumnum4_sn1_ch1_gb2312_body.xml"),
                t0
            ),
            None
        );
        assert_eq!(a.in_progress(), 2);
        assert!(a.handle_timeout(t0 + Duration::from_secs(9)).is_empty());
        let ev = a.handle_timeout(t0 + Duration::from_secs(11));
        let sn4 = ev
            .iter()
            .find_map(|e| match e {
                AssemblerEvent::Completed(r) if r.sn == 4 => Some(r),
                _ => None,
            })
            .unwrap();
        assert_eq!(sn4.completion, Completion::QuietTimeout);
        assert_eq!(sn4.device, "34020000001180000001");
        let ids: Vec<_> = sn4.items.iter().map(|i| &i.device_id[16..]).collect();
        assert_eq!(ids, vec!["0004", "0002", "0003"]);
        assert_eq!(
            sn4.inconsistencies,
            vec![Inconsistency::FewerItemsThanAnnounced {
                announced: 4,
                received: 3
            }]
        );
        assert_eq!(sn4.items[2].name.as_deref(), Some("1.64 海康摄像机"));
        assert_eq!(ev.len(), 2);
    }

    #[test]
    fn hikvision_nvr_first_of_four_packets() {
        let mut a = CatalogAssembler::new(AssemblerConfig::default());
        let t0 = Instant::now();
        let m = msg("70_hik_nvr_catalog_response_sumnum8_num2.sip");
        assert_eq!(a.push_message(m, t0), None);
        // Three more packets of two (synthetic, same device and SN) complete it at SumNum 8.
        let mut done = None;
        for p in 0..3 {
            done = a.push(
                "34020000001110000001",
                419_315_752,
                list(8, &[10 + 2 * p, 11 + 2 * p]),
                t0,
            );
        }
        let Some(AssemblerEvent::Completed(r)) = done else {
            panic!("{done:?}")
        };
        assert_eq!(
            (r.completion, r.items.len(), r.packets),
            (Completion::Complete, 8, 4)
        );
        assert!(r.inconsistencies.is_empty(), "{:?}", r.inconsistencies);
    }

    #[test]
    fn single_packet_catalog_completes_immediately() {
        let mut a = CatalogAssembler::new(AssemblerConfig::default());
        let ev = a.push_message(msg("09_dahua_catalog_response.sip"), Instant::now());
        let Some(AssemblerEvent::Completed(r)) = ev else {
            panic!()
        };
        assert_eq!(
            (r.completion, r.items.len(), r.sn),
            (Completion::Complete, 1, 7)
        );
        assert_eq!(
            r.items[0].parent_id.as_deref(),
            Some("34020000001320000002")
        );
    }

    #[test]
    fn duplicates_conflicts_and_num_mismatch_are_reported() {
        let mut a = CatalogAssembler::new(AssemblerConfig::default());
        let t0 = Instant::now();
        assert_eq!(a.push("d", 1, list(3, &[1, 2]), t0), None);
        assert_eq!(a.push("d", 1, list(3, &[1, 2]), t0), None); // retransmission
        let mut changed = list(3, &[2]);
        changed.items[0].name = Some("renamed".into());
        changed.list_num = Some(5);
        assert_eq!(a.push("d", 1, changed, t0), None);
        let Some(AssemblerEvent::Completed(r)) = a.push("d", 1, list(3, &[3]), t0) else {
            panic!()
        };
        assert_eq!(r.items.len(), 3);
        assert_eq!(r.items[1].name.as_deref(), Some("renamed"));
        assert!(r
            .inconsistencies
            .contains(&Inconsistency::DuplicateItems { count: 2 }));
        assert!(r
            .inconsistencies
            .contains(&Inconsistency::PacketNumMismatch {
                declared: 5,
                actual: 1
            }));
        assert!(matches!(
            r.inconsistencies
                .iter()
                .find(|i| matches!(i, Inconsistency::ConflictingDuplicates { .. })),
            Some(Inconsistency::ConflictingDuplicates { count: 1, .. })
        ));
    }

    #[test]
    fn sum_num_too_small_reports_late_items() {
        let mut a = CatalogAssembler::new(AssemblerConfig::default());
        let t0 = Instant::now();
        // The device announces 2 but has 3: completes at 2, the third is late.
        let Some(AssemblerEvent::Completed(r)) = a.push("d", 5, list(2, &[1, 2]), t0) else {
            panic!()
        };
        assert_eq!(r.completion, Completion::Complete);
        match a.push("d", 5, list(2, &[3]), t0 + Duration::from_secs(1)) {
            Some(AssemblerEvent::LateItems { items, sn: 5, .. }) => assert_eq!(items.len(), 1),
            other => panic!("{other:?}"),
        }
        // After the grace period the same SN starts a new catalog.
        assert_eq!(
            a.push("d", 5, list(9, &[4]), t0 + Duration::from_secs(61)),
            None
        );
        assert_eq!(a.in_progress(), 1);
    }

    #[test]
    fn sum_num_changes_use_the_largest_and_more_items_in_one_packet() {
        let mut a = CatalogAssembler::new(AssemblerConfig::default());
        let t0 = Instant::now();
        assert_eq!(a.push("d", 1, list(2, &[1]), t0), None);
        assert_eq!(a.push("d", 1, list(3, &[2]), t0), None);
        let Some(AssemblerEvent::Completed(r)) = a.push("d", 1, list(3, &[3, 4]), t0) else {
            panic!()
        };
        assert_eq!(r.announced, Some(3));
        assert!(r
            .inconsistencies
            .contains(&Inconsistency::SumNumChanged { first: 2, later: 3 }));
        assert!(r
            .inconsistencies
            .contains(&Inconsistency::MoreItemsThanAnnounced {
                announced: 3,
                received: 4
            }));
    }

    #[test]
    fn empty_catalog_missing_sum_and_no_response() {
        let mut a = CatalogAssembler::new(AssemblerConfig::default());
        let t0 = Instant::now();
        let Some(AssemblerEvent::Completed(r)) = a.push("d", 1, list(0, &[]), t0) else {
            panic!()
        };
        assert_eq!((r.completion, r.items.len()), (Completion::Complete, 0));
        let mut l = list(0, &[1]);
        l.sum_num = None;
        assert_eq!(a.push("d", 2, l, t0), None);
        a.expect("e", 3, t0);
        let ev = a.handle_timeout(t0 + Duration::from_secs(31));
        assert_eq!(ev.len(), 2);
        for e in ev {
            let AssemblerEvent::Completed(r) = e else {
                panic!()
            };
            match r.sn {
                2 => assert_eq!(r.inconsistencies, vec![Inconsistency::MissingSumNum]),
                3 => assert_eq!(r.completion, Completion::NoResponse),
                other => panic!("{other}"),
            }
        }
        assert_eq!(a.next_deadline(), None);
    }

    #[test]
    fn quiet_timeout_is_rearmed_by_later_packets() {
        let mut a = CatalogAssembler::new(AssemblerConfig::default());
        let t0 = Instant::now();
        a.push("d", 1, list(3, &[1]), t0);
        a.push("d", 1, list(3, &[2]), t0 + Duration::from_secs(8));
        assert!(a.handle_timeout(t0 + Duration::from_secs(10)).is_empty());
        assert_eq!(a.in_progress(), 1);
        assert_eq!(a.handle_timeout(t0 + Duration::from_secs(18)).len(), 1);
    }

    #[test]
    fn limits_overflow_and_dropped() {
        let cfg = AssemblerConfig {
            max_items: 3,
            max_sessions: 1,
            ..AssemblerConfig::default()
        };
        let mut a = CatalogAssembler::new(cfg);
        let t0 = Instant::now();
        assert_eq!(a.push("d", 1, list(100, &[1, 2]), t0), None);
        assert!(matches!(
            a.push("x", 1, list(1, &[1]), t0),
            Some(AssemblerEvent::Dropped { .. })
        ));
        let Some(AssemblerEvent::Completed(r)) = a.push("d", 1, list(100, &[3, 4]), t0) else {
            panic!()
        };
        assert_eq!(r.completion, Completion::Overflow);
    }

    #[test]
    fn tree_fields_and_kinds_survive_assembly() {
        // A platform-style catalog: region, business group, virtual organisation, the IVSS NVR
        // and its channel from vector 71, plus the Uniview channel of vector 79 (Parental=1).
        let t0 = Instant::now();
        let mut a = CatalogAssembler::new(AssemblerConfig::default());
        let node = |id: &str, parent: Option<&str>, group: Option<&str>| CatalogItem {
            device_id: id.into(),
            parent_id: parent.map(Into::into),
            business_group_id: group.map(Into::into),
            ..CatalogItem::default()
        };
        let mut items = vec![
            node("340200", None, None),
            node("34020000002150000001", None, None),
            node(
                "34020000002160000001",
                Some("34020000002150000001"),
                Some("34020000002150000001"),
            ),
            node(
                "34020000001180000001",
                Some("34020000002160000001"),
                Some("34020000002150000001"),
            ),
            node("NOT-AN-ID", None, None),
        ];
        let Payload::CatalogResponse(l) =
            msg("71_dahua_ivss_catalog_sumnum4_sn4_ch2_body.xml").payload
        else {
            panic!()
        };
        items.extend(l.items);
        let list = CatalogList {
            sum_num: Some(6),
            list_num: Some(6),
            items,
        };
        let Some(AssemblerEvent::Completed(r)) = a.push("34020000002000000001", 1, list, t0) else {
            panic!()
        };
        let kinds: Vec<ItemKind> = r.items.iter().map(item_kind).collect();
        assert_eq!(
            kinds,
            vec![
                ItemKind::Region,
                ItemKind::BusinessGroup,
                ItemKind::VirtualOrganisation,
                ItemKind::Device(crate::gbid::DeviceType::Nvr),
                ItemKind::InvalidId,
                ItemKind::VideoChannel,
            ]
        );
        assert_eq!(r.items[2].parent_ids(), vec!["34020000002150000001"]);
        assert_eq!(
            r.items[3].business_group_id.as_deref(),
            Some("34020000002150000001")
        );
        assert_eq!(
            r.items[5].parent_id.as_deref(),
            Some("34020000001180000001")
        );
    }

    #[test]
    fn ten_thousand_items_in_shuffled_packets_with_duplicates() {
        let mut a = CatalogAssembler::new(AssemblerConfig::default());
        let t0 = Instant::now();
        // 2 500 packets of 4 in a scrambled order, every 10th packet sent twice.
        let mut order: Vec<usize> = (0..2500).collect();
        for i in 0..order.len() {
            let j = (i * 7919 + 13) % order.len();
            order.swap(i, j);
        }
        let mut result = None;
        for (n, p) in order.iter().enumerate() {
            let ids: Vec<usize> = (p * 4..p * 4 + 4).collect();
            if n % 10 == 0 {
                assert_eq!(a.push("nvr", 77, list(10_000, &ids), t0), None);
            }
            if let Some(ev) = a.push("nvr", 77, list(10_000, &ids), t0) {
                result = Some(ev);
            }
        }
        let Some(AssemblerEvent::Completed(r)) = result else {
            panic!()
        };
        assert_eq!(r.items.len(), 10_000);
        assert_eq!(r.packets, 2750);
        assert_eq!(
            r.inconsistencies,
            vec![Inconsistency::DuplicateItems { count: 1000 }]
        );
    }
}
