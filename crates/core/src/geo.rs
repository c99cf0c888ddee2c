//! Geographic points. Coordinates are stored exactly as supplied (WGS-84 or GCJ-02, whichever
//! the deployment uses); vigil never converts between datums, it only checks the ranges.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A point that is not a valid latitude/longitude pair.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("({lat}, {lon}) is not a valid coordinate: {reason}")]
pub struct GeoError {
    /// The latitude given.
    pub lat: f64,
    /// The longitude given.
    pub lon: f64,
    /// What is wrong.
    pub reason: &'static str,
}

/// A latitude/longitude pair in degrees.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawPoint")]
pub struct GeoPoint {
    lat: f64,
    lon: f64,
}

#[derive(Deserialize)]
struct RawPoint {
    lat: f64,
    lon: f64,
}

impl TryFrom<RawPoint> for GeoPoint {
    type Error = GeoError;
    fn try_from(raw: RawPoint) -> Result<Self, GeoError> {
        GeoPoint::new(raw.lat, raw.lon)
    }
}

impl GeoPoint {
    /// Checks that both are finite, latitude in [-90, 90] and longitude in [-180, 180].
    pub fn new(lat: f64, lon: f64) -> Result<GeoPoint, GeoError> {
        let err = |reason| Err(GeoError { lat, lon, reason });
        if !lat.is_finite() || !lon.is_finite() {
            return err("not a finite number");
        }
        if !(-90.0..=90.0).contains(&lat) {
            return err("latitude outside [-90, 90]");
        }
        if !(-180.0..=180.0).contains(&lon) {
            return err("longitude outside [-180, 180]");
        }
        Ok(GeoPoint { lat, lon })
    }

    /// Latitude in degrees.
    pub fn lat(&self) -> f64 {
        self.lat
    }

    /// Longitude in degrees.
    pub fn lon(&self) -> f64 {
        self.lon
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_ranges() {
        assert!(GeoPoint::new(31.2, 121.5).is_ok());
        assert!(GeoPoint::new(91.0, 0.0).is_err());
        assert!(GeoPoint::new(0.0, -181.0).is_err());
        assert!(GeoPoint::new(f64::NAN, 0.0).is_err());
        assert!(serde_json::from_str::<GeoPoint>(r#"{"lat":95,"lon":1}"#).is_err());
        let p: GeoPoint = serde_json::from_str(r#"{"lat":30.5,"lon":114.3}"#).unwrap();
        assert_eq!(p.lat(), 30.5);
    }
}
