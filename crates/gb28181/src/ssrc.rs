//! GB/T 28181 SSRC values and their allocator.
//!
//! GB/T 28181-2016 (media stream SSRC, used in the SDP `y=` line and as the RTP SSRC): a
//! 10-digit decimal string; digit 1 is 0 for live video and 1 for history (playback/download);
//! digits 2-6 are the 4th-8th digits of the 10-digit SIP domain ID; digits 7-10 are a serial
//! unique within the domain. Example from the vectors: domain `3402000000` gives `20000`, and the
//! Hikvision IPC session of vectors 61/63 uses `0200007585` (= RTP SSRC 0x0BEBDFA1).

use std::fmt;

use thiserror::Error;

use crate::gbid::DomainCode;

/// Live or history stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// Real-time video (`s=Play`), first digit 0.
    Live,
    /// Playback or download (`s=Playback|Download`), first digit 1.
    History,
}

/// SSRC errors.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SsrcError {
    /// Not 1-10 decimal digits fitting 32 bits.
    #[error("SSRC {value:?} is not a decimal number of at most 10 digits fitting 32 bits")]
    Invalid {
        /// The text (truncated).
        value: String,
    },
    /// All 10 000 serials of this kind are in use.
    #[error("all 10000 {kind:?} SSRCs of domain part {domain} are in use")]
    Exhausted {
        /// Live or history.
        kind: StreamKind,
        /// The 5 domain digits.
        domain: String,
    },
    /// `reserve` of an SSRC already allocated.
    #[error("SSRC {0} is already in use")]
    InUse(Ssrc),
}

/// A GB SSRC: a decimal number written with 10 digits; its value is the RTP SSRC.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ssrc(u32);

impl Ssrc {
    /// Parses a `y=` value. Leading zeros may be missing (some devices write `y=200007585`).
    pub fn parse(s: &str) -> Result<Ssrc, SsrcError> {
        let t = s.trim();
        if t.is_empty() || t.len() > 10 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SsrcError::Invalid {
                value: t.chars().take(20).collect(),
            });
        }
        t.parse::<u32>().map(Ssrc).map_err(|_| SsrcError::Invalid {
            value: t.to_owned(),
        })
    }

    /// From an RTP SSRC.
    pub fn from_rtp(v: u32) -> Ssrc {
        Ssrc(v)
    }

    /// The RTP SSRC.
    pub fn rtp(self) -> u32 {
        self.0
    }

    /// The decimal value (same as [`rtp`](Self::rtp)).
    pub fn value(self) -> u32 {
        self.0
    }

    /// Whether digit 1 marks history.
    pub fn is_history(self) -> bool {
        self.0 / 1_000_000_000 == 1
    }

    /// Digits 2-6 (the domain part).
    pub fn domain_part(self) -> u32 {
        self.0 / 10_000 % 100_000
    }

    /// Digits 7-10.
    pub fn serial(self) -> u16 {
        (self.0 % 10_000) as u16
    }
}

impl fmt::Display for Ssrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:010}", self.0)
    }
}

impl fmt::Debug for Ssrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ssrc({:010})", self.0)
    }
}

const SERIALS: usize = 10_000;

#[derive(Debug, Clone)]
struct Pool {
    used: Vec<u64>,
    count: usize,
    cursor: usize,
}

impl Pool {
    fn new() -> Self {
        Pool {
            used: vec![0; SERIALS.div_ceil(64)],
            count: 0,
            cursor: 0,
        }
    }

    fn is_used(&self, i: usize) -> bool {
        self.used[i / 64] & (1 << (i % 64)) != 0
    }

    fn set(&mut self, i: usize, v: bool) {
        if v {
            self.used[i / 64] |= 1 << (i % 64);
        } else {
            self.used[i / 64] &= !(1 << (i % 64));
        }
    }
}

/// Hands out SSRCs for one SIP domain, never one that is in use. Serials rotate, so a released
/// SSRC is not handed out again until the other 9 999 have been — late packets of a finished
/// stream cannot be mistaken for a new one.
#[derive(Debug, Clone)]
pub struct SsrcAllocator {
    domain_part: u32,
    live: Pool,
    history: Pool,
}

impl SsrcAllocator {
    /// An allocator for `domain` (digits 4-8 become SSRC digits 2-6).
    pub fn new(domain: &DomainCode) -> Self {
        let part = domain.as_str()[3..8].parse().unwrap_or(0);
        SsrcAllocator {
            domain_part: part,
            live: Pool::new(),
            history: Pool::new(),
        }
    }

    /// The five domain digits.
    pub fn domain_part(&self) -> u32 {
        self.domain_part
    }

    fn pool(&mut self, kind: StreamKind) -> &mut Pool {
        match kind {
            StreamKind::Live => &mut self.live,
            StreamKind::History => &mut self.history,
        }
    }

    fn make(&self, kind: StreamKind, serial: usize) -> Ssrc {
        let first = match kind {
            StreamKind::Live => 0,
            StreamKind::History => 1_000_000_000,
        };
        Ssrc(first + self.domain_part * 10_000 + serial as u32)
    }

    /// A fresh SSRC.
    pub fn allocate(&mut self, kind: StreamKind) -> Result<Ssrc, SsrcError> {
        let domain = format!("{:05}", self.domain_part);
        let pool = self.pool(kind);
        if pool.count >= SERIALS {
            return Err(SsrcError::Exhausted { kind, domain });
        }
        let mut i = pool.cursor;
        while pool.is_used(i) {
            i = (i + 1) % SERIALS;
        }
        pool.set(i, true);
        pool.count += 1;
        pool.cursor = (i + 1) % SERIALS;
        Ok(self.make(kind, i))
    }

    fn locate(&self, ssrc: Ssrc) -> Option<(StreamKind, usize)> {
        if ssrc.domain_part() != self.domain_part || ssrc.0 >= 2_000_000_000 {
            return None;
        }
        let kind = if ssrc.is_history() {
            StreamKind::History
        } else {
            StreamKind::Live
        };
        Some((kind, ssrc.serial() as usize))
    }

    /// Marks an SSRC chosen elsewhere (a device's answer) as in use. SSRCs outside our domain
    /// cannot collide with ours and are accepted without tracking.
    pub fn reserve(&mut self, ssrc: Ssrc) -> Result<(), SsrcError> {
        let Some((kind, i)) = self.locate(ssrc) else {
            return Ok(());
        };
        let pool = self.pool(kind);
        if pool.is_used(i) {
            return Err(SsrcError::InUse(ssrc));
        }
        pool.set(i, true);
        pool.count += 1;
        Ok(())
    }

    /// Releases an SSRC (on BYE). Returns whether it was in use.
    pub fn release(&mut self, ssrc: Ssrc) -> bool {
        let Some((kind, i)) = self.locate(ssrc) else {
            return false;
        };
        let pool = self.pool(kind);
        if !pool.is_used(i) {
            return false;
        }
        pool.set(i, false);
        pool.count -= 1;
        true
    }

    /// SSRCs of this kind in use.
    pub fn in_use(&self, kind: StreamKind) -> usize {
        match kind {
            StreamKind::Live => self.live.count,
            StreamKind::History => self.history.count,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn alloc() -> SsrcAllocator {
        SsrcAllocator::new(&DomainCode::parse("3402000000").unwrap())
    }

    #[test]
    fn layout_matches_the_real_hikvision_session() {
        // Vectors 61/63: domain 3402000000, live, y=0200007585, RTP SSRC 0x0BEBDFA1.
        let s = Ssrc::parse("0200007585").unwrap();
        assert_eq!(s.rtp(), 0x0BEB_DFA1);
        assert!(!s.is_history());
        assert_eq!(s.domain_part(), alloc().domain_part());
        assert_eq!(s.serial(), 7585);
        assert_eq!(s.to_string(), "0200007585");
        let mut a = alloc();
        let live = a.allocate(StreamKind::Live).unwrap();
        let hist = a.allocate(StreamKind::History).unwrap();
        assert_eq!(live.to_string(), "0200000000");
        assert_eq!(hist.to_string(), "1200000000");
        assert!(hist.is_history());
    }

    #[test]
    fn never_reuses_in_use_and_rotates_after_release() {
        let mut a = alloc();
        let first = a.allocate(StreamKind::Live).unwrap();
        let second = a.allocate(StreamKind::Live).unwrap();
        assert!(a.release(first));
        assert!(!a.release(first));
        // The released serial is not handed out next.
        let third = a.allocate(StreamKind::Live).unwrap();
        assert_ne!(third, first);
        assert_ne!(third, second);
        assert_eq!(a.in_use(StreamKind::Live), 2);
    }

    #[test]
    fn exhaustion_and_wraparound() {
        let mut a = alloc();
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            assert!(seen.insert(a.allocate(StreamKind::History).unwrap()));
        }
        assert!(matches!(
            a.allocate(StreamKind::History),
            Err(SsrcError::Exhausted { .. })
        ));
        // Live is a separate pool.
        assert!(a.allocate(StreamKind::Live).is_ok());
        let some = *seen.iter().next().unwrap();
        assert!(a.release(some));
        assert_eq!(a.allocate(StreamKind::History).unwrap(), some);
    }

    #[test]
    fn reserve_device_chosen_ssrcs() {
        let mut a = alloc();
        let s = Ssrc::parse("0200000003").unwrap();
        a.reserve(s).unwrap();
        assert_eq!(a.reserve(s), Err(SsrcError::InUse(s)));
        for _ in 0..3 {
            assert_ne!(a.allocate(StreamKind::Live).unwrap(), s);
        }
        assert_eq!(a.allocate(StreamKind::Live).unwrap().serial(), 4);
        // eXosip's y=0000001002 (vector 19) is outside our domain: accepted, not tracked.
        a.reserve(Ssrc::parse("0000001002").unwrap()).unwrap();
        assert!(!a.release(Ssrc::parse("0000001002").unwrap()));
    }

    #[test]
    fn parse_rules() {
        assert_eq!(Ssrc::parse("200007585").unwrap().to_string(), "0200007585");
        assert!(Ssrc::parse("").is_err());
        assert!(Ssrc::parse("12345678901").is_err());
        assert!(Ssrc::parse("9999999999").is_err());
        assert!(Ssrc::parse("0x1").is_err());
    }
}
