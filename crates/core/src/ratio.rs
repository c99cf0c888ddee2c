//! Exact figures and exact targets.
//!
//! A figure is a count over a count (`numerator / denominator`); a target is a rational such as
//! 98/100. Pass/fail is `numerator × target.den ≥ target.num × denominator` in `u128`, so a grid
//! at exactly 98% passes a 98% target no matter how the percentage would round in floating point.
//! A zero denominator means the figure does not apply: it neither passes nor fails.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::time::truncate_for_error;

/// A target ratio that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{text:?} is not a target ratio between 0 and 1 (write 98%, 0.98 or 98/100): {reason}")]
pub struct RationalError {
    /// The text given.
    pub text: String,
    /// What is wrong.
    pub reason: &'static str,
}

/// A target ratio in [0, 1], kept exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Rational {
    num: u64,
    den: u64,
}

impl Rational {
    /// `num / den`; `den` must be positive and `num ≤ den`.
    pub fn new(num: u64, den: u64) -> Result<Rational, RationalError> {
        let err = |reason| RationalError {
            text: format!("{num}/{den}"),
            reason,
        };
        if den == 0 {
            return Err(err("denominator is zero"));
        }
        if num > den {
            return Err(err("above 100%"));
        }
        Ok(Rational { num, den })
    }

    /// A whole percentage; values above 100 are clamped to 100.
    pub const fn percent(p: u64) -> Rational {
        Rational {
            num: if p > 100 { 100 } else { p },
            den: 100,
        }
    }

    /// Numerator.
    pub fn num(&self) -> u64 {
        self.num
    }

    /// Denominator.
    pub fn den(&self) -> u64 {
        self.den
    }

    /// Approximate value for display and trend projection only (never for pass/fail).
    pub fn to_f64(&self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// Parses `98%`, `99.5%`, `0.98`, `1` or `98/100`.
    pub fn parse(text: &str) -> Result<Rational, RationalError> {
        let t = text.trim();
        let err = |reason| RationalError {
            text: truncate_for_error(text),
            reason,
        };
        if let Some((n, d)) = t.split_once('/') {
            let n = n.trim().parse::<u64>().map_err(|_| err("bad numerator"))?;
            let d = d
                .trim()
                .parse::<u64>()
                .map_err(|_| err("bad denominator"))?;
            return Rational::new(n, d).map_err(|e| err(e.reason));
        }
        let (body, scale) = match t.strip_suffix('%') {
            Some(b) => (b.trim(), 100u64),
            None => (t, 1u64),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        if int.is_empty() && frac.is_empty() {
            return Err(err("no digits"));
        }
        if frac.len() > 9 {
            return Err(err("more than 9 decimal places"));
        }
        if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("not a decimal number"));
        }
        let den = 10u64.pow(frac.len() as u32) * scale;
        let int_v: u64 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| err("number too large"))?
        };
        let frac_v: u64 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| err("bad fraction"))?
        };
        let num = int_v
            .checked_mul(10u64.pow(frac.len() as u32))
            .and_then(|v| v.checked_add(frac_v))
            .ok_or_else(|| err("number too large"))?;
        Rational::new(num, den).map_err(|e| err(e.reason))
    }
}

impl fmt::Display for Rational {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}

impl FromStr for Rational {
    type Err = RationalError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Rational::parse(s)
    }
}

impl TryFrom<String> for Rational {
    type Error = RationalError;
    fn try_from(s: String) -> Result<Self, RationalError> {
        Rational::parse(&s)
    }
}

impl From<Rational> for String {
    fn from(r: Rational) -> String {
        r.to_string()
    }
}

/// A figure's exact value.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ratio {
    /// Items (or milliseconds) that meet the definition.
    pub numerator: u64,
    /// Items (or milliseconds) the definition is about.
    pub denominator: u64,
}

impl Ratio {
    /// A ratio.
    pub const fn new(numerator: u64, denominator: u64) -> Ratio {
        Ratio {
            numerator,
            denominator,
        }
    }

    /// Whether the figure applies (non-zero denominator).
    pub fn is_applicable(&self) -> bool {
        self.denominator > 0
    }

    /// Approximate value for display and ranking; `None` when not applicable.
    pub fn value(&self) -> Option<f64> {
        self.is_applicable()
            .then(|| self.numerator as f64 / self.denominator as f64)
    }

    /// Exact comparison `numerator / denominator ≥ target`; `None` when not applicable.
    pub fn meets(&self, target: Rational) -> Option<bool> {
        self.is_applicable().then(|| {
            u128::from(self.numerator) * u128::from(target.den)
                >= u128::from(target.num) * u128::from(self.denominator)
        })
    }

    /// Pass, fail, or not applicable with `reason` when the denominator is zero.
    pub fn verdict(&self, target: Rational, reason: &str) -> Verdict {
        match self.meets(target) {
            Some(true) => Verdict::Pass,
            Some(false) => Verdict::Fail,
            None => Verdict::NotApplicable {
                reason: reason.to_owned(),
            },
        }
    }

    /// Adds another ratio's counts (subtree roll-up sums counts, never averages percentages).
    pub fn add(&mut self, other: Ratio) {
        self.numerator += other.numerator;
        self.denominator += other.denominator;
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value() {
            Some(v) => write!(
                f,
                "{}/{} ({:.2}%)",
                self.numerator,
                self.denominator,
                v * 100.0
            ),
            None => write!(f, "{}/{} (n/a)", self.numerator, self.denominator),
        }
    }
}

/// The outcome of comparing a figure with its target.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// At or above target.
    Pass,
    /// Below target.
    Fail,
    /// Zero denominator: the figure is `null`, and the reason says why.
    NotApplicable {
        /// Why nothing is counted (e.g. "no key sites in scope").
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_boundary_passes() {
        let t = Rational::percent(98);
        assert_eq!(Ratio::new(98, 100).meets(t), Some(true));
        assert_eq!(Ratio::new(97, 100).meets(t), Some(false));
        // 49/50 = 98% exactly; 0.98 * 50 is 49.00000000000001 in f64.
        assert_eq!(Ratio::new(49, 50).meets(t), Some(true));
        assert_eq!(
            Ratio::new(u64::MAX - 1, u64::MAX).meets(Rational::percent(100)),
            Some(false)
        );
        assert_eq!(
            Ratio::new(u64::MAX, u64::MAX).meets(Rational::percent(100)),
            Some(true)
        );
        let third = Rational::new(1, 3).unwrap();
        assert_eq!(Ratio::new(1, 3).meets(third), Some(true));
        assert_eq!(Ratio::new(333_333, 1_000_000).meets(third), Some(false));
    }

    #[test]
    fn zero_denominator_is_not_applicable() {
        let r = Ratio::new(0, 0);
        assert_eq!(r.meets(Rational::percent(80)), None);
        assert_eq!(r.value(), None);
        assert_eq!(
            r.verdict(Rational::percent(80), "no cameras"),
            Verdict::NotApplicable {
                reason: "no cameras".into()
            }
        );
        assert_eq!(
            Ratio::new(0, 1).verdict(Rational::percent(0), "x"),
            Verdict::Pass
        );
    }

    #[test]
    fn parses_target_forms() {
        assert_eq!(
            Rational::parse("98%").unwrap(),
            Rational::new(98, 100).unwrap()
        );
        assert_eq!(
            Rational::parse("99.5%").unwrap(),
            Rational::new(995, 1000).unwrap()
        );
        assert_eq!(
            Rational::parse("0.98").unwrap(),
            Rational::new(98, 100).unwrap()
        );
        assert_eq!(Rational::parse("1").unwrap(), Rational::new(1, 1).unwrap());
        assert_eq!(
            Rational::parse("4/5").unwrap(),
            Rational::new(4, 5).unwrap()
        );
        for bad in ["101%", "1.5", "-1", "abc", "3/0", "", "%", "0.1234567891"] {
            assert!(Rational::parse(bad).is_err(), "{bad}");
        }
        let json = serde_json::to_string(&Rational::percent(95)).unwrap();
        assert_eq!(json, "\"95/100\"");
        assert_eq!(
            serde_json::from_str::<Rational>("\"95%\"").unwrap(),
            Rational::percent(95)
        );
    }
}
