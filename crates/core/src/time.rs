//! Wall-clock instants, half-open intervals and sorted interval sequences.
//!
//! Every status history in vigil (online, recording, upload, uplink) is a sorted sequence of
//! non-overlapping half-open intervals `[start, end)`. Figures are computed "as of" an instant and
//! over a window, so the two hot queries are "does the history contain this instant?" and "how
//! many milliseconds of the history fall inside this window?"; both are binary searches here.
//!
//! Timestamps are milliseconds since the Unix epoch in UTC; RFC 3339 text is parsed and formatted
//! by hand (civil-from-days arithmetic) so that the core crate stays dependency-free.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// Milliseconds in one second, minute, hour and day.
pub const SECOND_MS: i64 = 1_000;
/// One minute in milliseconds.
pub const MINUTE_MS: i64 = 60 * SECOND_MS;
/// One hour in milliseconds.
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
/// One day in milliseconds.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Errors from parsing times or building intervals; each names the offending text or values.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TimeError {
    /// The text is not an RFC 3339 date-time.
    #[error("{text:?} is not an RFC 3339 timestamp: {reason}")]
    BadTimestamp { text: String, reason: &'static str },
    /// The text is not a `YYYY-MM-DD` date.
    #[error("{text:?} is not a YYYY-MM-DD date: {reason}")]
    BadDate { text: String, reason: &'static str },
    /// `end` is not after `start`.
    #[error("interval end {end} is not after its start {start}")]
    Reversed { start: Timestamp, end: Timestamp },
    /// A new interval overlaps one already in the sequence.
    #[error("interval [{new_start}, {new_end}) overlaps existing [{old_start}, {old_end})")]
    Overlap {
        new_start: Timestamp,
        new_end: Timestamp,
        old_start: Timestamp,
        old_end: Timestamp,
    },
    /// Only the last interval of a sequence may be open (still running).
    #[error("open interval starting {start} is not the last one in the sequence")]
    OpenNotLast { start: Timestamp },
    /// A transition is earlier than the history it would extend.
    #[error("transition at {at} is earlier than the latest recorded instant {latest}")]
    OutOfOrder { at: Timestamp, latest: Timestamp },
}

/// An instant: milliseconds since 1970-01-01T00:00:00Z.
///
/// Serialised as RFC 3339 text (`2024-03-01T08:00:00.000Z`) so JSON stays readable for auditors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The earliest representable instant.
    pub const MIN: Timestamp = Timestamp(i64::MIN);
    /// The latest representable instant; the end of an open (still running) interval.
    pub const MAX: Timestamp = Timestamp(i64::MAX);
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// Builds a timestamp from milliseconds since the epoch.
    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// This instant plus `ms` milliseconds, saturating at the representable range.
    pub const fn add_ms(self, ms: i64) -> Self {
        Timestamp(self.0.saturating_add(ms))
    }

    /// This instant minus `ms` milliseconds, saturating at the representable range.
    pub const fn sub_ms(self, ms: i64) -> Self {
        Timestamp(self.0.saturating_sub(ms))
    }

    /// Milliseconds from `earlier` to `self` (negative if `earlier` is later), saturating.
    pub const fn ms_since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// Converts a wall-clock reading (the caller reads the clock; core never does), saturating
    /// far outside the representable range.
    pub fn from_system_time(t: std::time::SystemTime) -> Self {
        match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => Timestamp(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Err(e) => Timestamp(-i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX)),
        }
    }

    /// Parses RFC 3339 (`2024-03-01T08:00:00Z`, `2024-03-01T16:00:00.5+08:00`). A space or
    /// lower-case `t` is accepted as the date/time separator; fractions finer than a millisecond
    /// are truncated; leap seconds (`:60`) are rejected because the epoch count has no slot for
    /// them.
    pub fn parse_rfc3339(text: &str) -> Result<Self, TimeError> {
        let bad = |reason| TimeError::BadTimestamp {
            text: truncate_for_error(text),
            reason,
        };
        let b = text.as_bytes();
        if b.len() < 20 {
            return Err(bad("too short"));
        }
        let (y, m, d) = parse_date_bytes(&b[..10]).map_err(bad)?;
        if !matches!(b[10], b'T' | b't' | b' ') {
            return Err(bad("expected 'T' between date and time"));
        }
        if b[13] != b':' || b[16] != b':' {
            return Err(bad("expected HH:MM:SS"));
        }
        let hh = digits(&b[11..13]).ok_or_else(|| bad("hour is not two digits"))?;
        let mm = digits(&b[14..16]).ok_or_else(|| bad("minute is not two digits"))?;
        let ss = digits(&b[17..19]).ok_or_else(|| bad("second is not two digits"))?;
        if hh > 23 {
            return Err(bad("hour out of range"));
        }
        if mm > 59 {
            return Err(bad("minute out of range"));
        }
        if ss > 59 {
            return Err(bad("second out of range (leap seconds are not supported)"));
        }
        let mut i = 19;
        let mut millis = 0i64;
        if b[i] == b'.' {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                if i - start < 3 {
                    millis = millis * 10 + i64::from(b[i] - b'0');
                }
                i += 1;
            }
            if i == start {
                return Err(bad("empty fraction"));
            }
            for _ in (i - start)..3 {
                millis *= 10;
            }
        }
        let offset_min: i64 = match b.get(i) {
            Some(b'Z' | b'z') if i + 1 == b.len() => 0,
            Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
                let oh = digits(&b[i + 1..i + 3]).ok_or_else(|| bad("offset hour"))?;
                let om = digits(&b[i + 4..i + 6]).ok_or_else(|| bad("offset minute"))?;
                if oh > 23 || om > 59 {
                    return Err(bad("offset out of range"));
                }
                let v = i64::from(oh) * 60 + i64::from(om);
                if sign == b'-' {
                    -v
                } else {
                    v
                }
            }
            _ => return Err(bad("expected 'Z' or a ±HH:MM offset at the end")),
        };
        let days = days_from_civil(y, m, d);
        let secs = days * 86_400 + i64::from(hh) * 3600 + i64::from(mm) * 60 + i64::from(ss)
            - offset_min * 60;
        Ok(Timestamp(secs * 1000 + millis))
    }

    /// The calendar date (UTC) containing this instant.
    pub fn date(self) -> Date {
        let days = self.0.div_euclid(DAY_MS);
        let (year, month, day) = civil_from_days(days);
        Date { year, month, day }
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with millisecond precision. Years outside 0000–9999 (only the sentinels
    /// `MIN`/`MAX` in practice) are written with a sign and more digits, which RFC 3339 cannot
    /// express; they never appear in stored or exported data because open intervals are written
    /// as a missing end.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(DAY_MS);
        let ms_of_day = self.0.rem_euclid(DAY_MS);
        let (y, m, d) = civil_from_days(days);
        let secs = ms_of_day / 1000;
        let (hh, mm, ss, ms) = (secs / 3600, (secs / 60) % 60, secs % 60, ms_of_day % 1000);
        if (0..=9999).contains(&y) {
            write!(f, "{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{ms:03}Z")
        } else {
            write!(f, "{y:+}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{ms:03}Z")
        }
    }
}

impl FromStr for Timestamp {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timestamp::parse_rfc3339(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

/// A calendar date (no time zone), e.g. an installation date on a camera's paperwork.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: i64,
    month: u8,
    day: u8,
}

impl Date {
    /// Builds a date, checking the month and the day within the month.
    pub fn new(year: i64, month: u8, day: u8) -> Option<Date> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Date { year, month, day })
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Result<Date, TimeError> {
        let (year, month, day) =
            parse_date_bytes(text.as_bytes()).map_err(|reason| TimeError::BadDate {
                text: truncate_for_error(text),
                reason,
            })?;
        Ok(Date { year, month, day })
    }

    /// The year.
    pub fn year(self) -> i64 {
        self.year
    }
    /// The month, 1–12.
    pub fn month(self) -> u8 {
        self.month
    }
    /// The day of the month, 1–31.
    pub fn day(self) -> u8 {
        self.day
    }

    /// Midnight UTC at the start of this date.
    pub fn start_utc(self) -> Timestamp {
        Timestamp(days_from_civil(self.year, self.month, self.day) * DAY_MS)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl FromStr for Date {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Date::parse(s)
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Date::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A half-open interval `[start, end)`; `end == Timestamp::MAX` means "still open".
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Interval {
    start: Timestamp,
    end: Timestamp,
}

impl Interval {
    /// A closed interval; `end` must be after `start` (an empty interval carries no history).
    pub fn new(start: Timestamp, end: Timestamp) -> Result<Interval, TimeError> {
        if end <= start {
            return Err(TimeError::Reversed { start, end });
        }
        Ok(Interval { start, end })
    }

    /// An interval that started at `start` and has not ended yet.
    pub const fn open(start: Timestamp) -> Interval {
        Interval {
            start,
            end: Timestamp::MAX,
        }
    }

    /// The window of length `len_ms` ending (exclusive) at `at`: `[at − len, at)`.
    pub fn window_ending(at: Timestamp, len_ms: i64) -> Result<Interval, TimeError> {
        Interval::new(at.sub_ms(len_ms), at)
    }

    /// The first instant inside the interval.
    pub const fn start(&self) -> Timestamp {
        self.start
    }

    /// The first instant after the interval (`Timestamp::MAX` if open).
    pub const fn end(&self) -> Timestamp {
        self.end
    }

    /// The end, or `None` while the interval is still open.
    pub fn end_if_closed(&self) -> Option<Timestamp> {
        (!self.is_open()).then_some(self.end)
    }

    /// Whether the interval has not ended yet.
    pub const fn is_open(&self) -> bool {
        self.end.0 == i64::MAX
    }

    /// Whether `t` lies in `[start, end)`.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }

    /// Length in milliseconds (saturating for open intervals).
    pub fn len_ms(&self) -> i64 {
        self.end.ms_since(self.start)
    }

    /// The intersection with `other`, if not empty.
    pub fn intersect(&self, other: &Interval) -> Option<Interval> {
        let start = self.start.max(other.start);
        let end = self.end.min(other.end);
        (start < end).then_some(Interval { start, end })
    }

    /// Milliseconds shared with `other`.
    pub fn overlap_ms(&self, other: &Interval) -> i64 {
        self.intersect(other).map_or(0, |i| i.len_ms())
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_open() {
            write!(f, "[{}, open)", self.start)
        } else {
            write!(f, "[{}, {})", self.start, self.end)
        }
    }
}

/// What a live transition did to an [`IntervalSet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    /// A new open interval was started.
    Opened,
    /// The open interval was closed.
    Closed,
    /// The state was already as requested (up while open, down while closed).
    Unchanged,
    /// The open interval was closed at its own start, so it held no time and was removed.
    Discarded,
}

/// A sorted sequence of non-overlapping half-open intervals; only the last may be open.
///
/// Adjacent intervals (`[a, b)`, `[b, c)`) are kept apart rather than merged so that an imported
/// history reads back exactly as it was given.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Interval>", into = "Vec<Interval>")]
pub struct IntervalSet {
    items: Vec<Interval>,
}

impl TryFrom<Vec<Interval>> for IntervalSet {
    type Error = TimeError;
    fn try_from(items: Vec<Interval>) -> Result<Self, TimeError> {
        IntervalSet::from_sorted(items)
    }
}

impl From<IntervalSet> for Vec<Interval> {
    fn from(set: IntervalSet) -> Self {
        set.items
    }
}

impl IntervalSet {
    /// An empty history.
    pub const fn new() -> Self {
        IntervalSet { items: Vec::new() }
    }

    /// Checks that `items` are sorted, non-overlapping and only the last is open.
    pub fn from_sorted(items: Vec<Interval>) -> Result<Self, TimeError> {
        for pair in items.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if a.is_open() {
                return Err(TimeError::OpenNotLast { start: a.start });
            }
            if b.start < a.end {
                return Err(TimeError::Overlap {
                    new_start: b.start,
                    new_end: b.end,
                    old_start: a.start,
                    old_end: a.end,
                });
            }
        }
        Ok(IntervalSet { items })
    }

    /// The intervals in time order.
    pub fn as_slice(&self) -> &[Interval] {
        &self.items
    }

    /// Number of intervals.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there is no history at all.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The latest interval.
    pub fn last(&self) -> Option<&Interval> {
        self.items.last()
    }

    /// Whether the last interval is still open.
    pub fn is_open(&self) -> bool {
        self.items.last().is_some_and(Interval::is_open)
    }

    /// Whether some interval contains `t` (binary search).
    pub fn contains(&self, t: Timestamp) -> bool {
        let idx = self.items.partition_point(|iv| iv.start <= t);
        idx > 0 && self.items[idx - 1].end > t
    }

    /// Index of the first interval that ends after `t` (the first that can overlap `[t, ..)`).
    fn first_ending_after(&self, t: Timestamp) -> usize {
        self.items.partition_point(|iv| iv.end <= t)
    }

    /// Intervals overlapping `window`, unclipped, in time order.
    pub fn overlapping(&self, window: &Interval) -> &[Interval] {
        let lo = self.first_ending_after(window.start);
        let hi = self.items.partition_point(|iv| iv.start < window.end);
        if lo >= hi {
            &[]
        } else {
            &self.items[lo..hi]
        }
    }

    /// Milliseconds of history inside `window` (binary search, then a walk over the overlap).
    pub fn overlap_ms(&self, window: &Interval) -> i64 {
        self.overlapping(window)
            .iter()
            .map(|iv| iv.overlap_ms(window))
            .sum()
    }

    /// Whether any interval shares at least one millisecond with `window`.
    pub fn overlaps(&self, window: &Interval) -> bool {
        let lo = self.first_ending_after(window.start);
        self.items
            .get(lo)
            .is_some_and(|iv| iv.start < window.end && iv.end > window.start)
    }

    /// Inserts one interval at its place in time; it must not overlap a neighbour, and an open
    /// interval may only go last. Returns the position it was inserted at.
    pub fn insert(&mut self, iv: Interval) -> Result<usize, TimeError> {
        let pos = self.items.partition_point(|x| x.start < iv.start);
        if let Some(prev) = pos.checked_sub(1).map(|p| self.items[p]) {
            if prev.end > iv.start {
                return Err(overlap(iv, prev));
            }
        }
        if let Some(next) = self.items.get(pos).copied() {
            if iv.is_open() {
                return Err(TimeError::OpenNotLast { start: iv.start });
            }
            if next.start < iv.end {
                return Err(overlap(iv, next));
            }
        }
        self.items.insert(pos, iv);
        Ok(pos)
    }

    /// Records "went up at `at`": opens a new interval unless one is already open.
    /// `at` must not precede the end of the latest closed interval.
    pub fn open_at(&mut self, at: Timestamp) -> Result<Transition, TimeError> {
        match self.items.last() {
            Some(last) if last.is_open() => Ok(Transition::Unchanged),
            Some(last) if at < last.end => Err(TimeError::OutOfOrder {
                at,
                latest: last.end,
            }),
            _ => {
                self.items.push(Interval::open(at));
                Ok(Transition::Opened)
            }
        }
    }

    /// Records "went down at `at`": closes the open interval, if any. Closing exactly at the
    /// start leaves no time in the interval, so it is removed.
    pub fn close_at(&mut self, at: Timestamp) -> Result<Transition, TimeError> {
        let Some(last) = self.items.last_mut() else {
            return Ok(Transition::Unchanged);
        };
        if !last.is_open() {
            return Ok(Transition::Unchanged);
        }
        if at < last.start {
            return Err(TimeError::OutOfOrder {
                at,
                latest: last.start,
            });
        }
        if at == last.start {
            self.items.pop();
            return Ok(Transition::Discarded);
        }
        last.end = at;
        Ok(Transition::Closed)
    }
}

fn overlap(new: Interval, old: Interval) -> TimeError {
    TimeError::Overlap {
        new_start: new.start,
        new_end: new.end,
        old_start: old.start,
        old_end: old.end,
    }
}

/// Shortens user text quoted in an error so a malicious or corrupt input cannot bloat logs.
pub(crate) fn truncate_for_error(text: &str) -> String {
    const MAX: usize = 64;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn parse_date_bytes(b: &[u8]) -> Result<(i64, u8, u8), &'static str> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err("expected YYYY-MM-DD");
    }
    let y = digits(&b[0..4]).ok_or("year is not four digits")?;
    let m = digits(&b[5..7]).ok_or("month is not two digits")?;
    let d = digits(&b[8..10]).ok_or("day is not two digits")?;
    let (y, m, d) = (i64::from(y), m as u8, d as u8);
    if !(1..=12).contains(&m) {
        return Err("month out of range");
    }
    if d == 0 || d > days_in_month(y, m) {
        return Err("day out of range for the month");
    }
    Ok((y, m, d))
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u8) -> u8 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u8, d: u8) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    fn iv(a: i64, b: i64) -> Interval {
        Interval::new(Timestamp(a), Timestamp(b)).unwrap()
    }

    #[test]
    fn rfc3339_round_trip_and_offsets() {
        assert_eq!(ts("1970-01-01T00:00:00Z").as_millis(), 0);
        assert_eq!(
            ts("2024-03-01T08:00:00.123Z").to_string(),
            "2024-03-01T08:00:00.123Z"
        );
        assert_eq!(ts("2024-03-01T16:00:00+08:00"), ts("2024-03-01T08:00:00Z"));
        assert_eq!(ts("2024-03-01 00:00:00-01:30"), ts("2024-03-01T01:30:00Z"));
        assert_eq!(ts("2024-03-01T00:00:00.5Z").as_millis() % 1000, 500);
        assert_eq!(ts("2024-03-01T00:00:00.123999Z").as_millis() % 1000, 123);
        assert_eq!(ts("1969-12-31T23:59:59.999Z").as_millis(), -1);
        assert_eq!(Timestamp(-1).to_string(), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            ts("2000-02-29T12:00:00Z").date(),
            Date::new(2000, 2, 29).unwrap()
        );
    }

    #[test]
    fn rfc3339_rejects_with_reason() {
        for bad in [
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T23:59:60Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00+0800",
            "2024-01-01T00:00:00.Z",
            "2024-01-01",
            "２０２４-01-01T00:00:00Z",
        ] {
            let err = Timestamp::parse_rfc3339(bad).unwrap_err();
            assert!(
                matches!(err, TimeError::BadTimestamp { .. }),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn serde_uses_rfc3339_text() {
        let t = ts("2024-05-06T07:08:09.010Z");
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"2024-05-06T07:08:09.010Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
    }

    #[test]
    fn dates_parse_and_check_month_length() {
        assert_eq!(Date::parse("2013-10-31").unwrap().to_string(), "2013-10-31");
        assert!(Date::parse("2013-11-31").is_err());
        assert_eq!(
            Date::parse("1970-01-02").unwrap().start_utc().as_millis(),
            DAY_MS
        );
    }

    #[test]
    fn interval_rejects_reversed_and_empty() {
        assert!(matches!(
            Interval::new(Timestamp(5), Timestamp(5)),
            Err(TimeError::Reversed { .. })
        ));
        assert!(Interval::new(Timestamp(5), Timestamp(4)).is_err());
        assert_eq!(iv(0, 10).overlap_ms(&iv(5, 20)), 5);
        assert_eq!(iv(0, 10).overlap_ms(&iv(10, 20)), 0);
        assert_eq!(Interval::open(Timestamp(3)).overlap_ms(&iv(0, 10)), 7);
    }

    #[test]
    fn set_contains_and_overlap_use_half_open_bounds() {
        let set = IntervalSet::from_sorted(vec![iv(0, 10), iv(10, 20), iv(30, 40)]).unwrap();
        assert!(set.contains(Timestamp(0)));
        assert!(set.contains(Timestamp(10)));
        assert!(!set.contains(Timestamp(20)));
        assert!(!set.contains(Timestamp(25)));
        assert!(!set.contains(Timestamp(-1)));
        assert!(!set.contains(Timestamp(40)));
        assert_eq!(set.overlap_ms(&iv(5, 35)), 5 + 10 + 5);
        assert_eq!(set.overlap_ms(&iv(20, 30)), 0);
        assert!(!set.overlaps(&iv(20, 30)));
        assert!(set.overlaps(&iv(39, 50)));
        assert_eq!(set.overlapping(&iv(15, 31)).len(), 2);
    }

    #[test]
    fn open_interval_counts_until_the_window_end() {
        let mut set = IntervalSet::new();
        assert_eq!(set.open_at(Timestamp(100)).unwrap(), Transition::Opened);
        assert_eq!(set.open_at(Timestamp(150)).unwrap(), Transition::Unchanged);
        assert!(set.contains(Timestamp(1_000_000)));
        assert_eq!(set.overlap_ms(&iv(0, 200)), 100);
        assert_eq!(set.close_at(Timestamp(180)).unwrap(), Transition::Closed);
        assert_eq!(set.close_at(Timestamp(190)).unwrap(), Transition::Unchanged);
        assert!(matches!(
            set.open_at(Timestamp(170)),
            Err(TimeError::OutOfOrder { .. })
        ));
        assert_eq!(set.open_at(Timestamp(200)).unwrap(), Transition::Opened);
        assert_eq!(set.close_at(Timestamp(200)).unwrap(), Transition::Discarded);
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn insert_rejects_overlap_and_open_in_the_middle() {
        let mut set = IntervalSet::from_sorted(vec![iv(0, 10), iv(20, 30)]).unwrap();
        assert_eq!(set.insert(iv(10, 20)).unwrap(), 1);
        assert!(matches!(
            set.insert(iv(25, 35)),
            Err(TimeError::Overlap { .. })
        ));
        assert!(matches!(
            set.insert(iv(-5, 1)),
            Err(TimeError::Overlap { .. })
        ));
        assert!(matches!(
            set.insert(Interval::open(Timestamp(-20))),
            Err(TimeError::OpenNotLast { .. })
        ));
        assert_eq!(set.insert(Interval::open(Timestamp(30))).unwrap(), 3);
        assert!(IntervalSet::from_sorted(vec![iv(0, 10), iv(5, 20)]).is_err());
        assert!(IntervalSet::from_sorted(vec![Interval::open(Timestamp(0)), iv(5, 20)]).is_err());
    }
}
