//! GB/T 28181 identifiers as SIP handling uses them.
//!
//! The project's only GB-ID parser is `vigil_core::id`; this module re-exports the types this
//! crate needs so that every use goes through one import path. Device IDs from SIP (the From
//! user of REGISTER/MESSAGE) are parsed with [`GbId::parse`]; catalog item IDs stay strings in
//! [`crate::manscdp::CatalogItem`] (devices send malformed ones, and the catalog must still be
//! reported) and are classified with [`GbId::parse`] + [`GbId::device_type`] on demand.

pub use vigil_core::id::{CivilCode, DeviceType, DomainCode, GbId, IdError};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ids_of_the_vectors_parse_and_classify() {
        let dahua = GbId::parse("34020000001320000002").unwrap();
        assert_eq!(dahua.device_type(), DeviceType::Ipc);
        assert_eq!(dahua.domain().as_str(), "3402000000");
        assert_eq!(
            GbId::parse("34020000001110000001").unwrap().device_type(),
            DeviceType::Dvr
        );
        assert_eq!(
            GbId::parse("34020000001180000001").unwrap().device_type(),
            DeviceType::Nvr
        );
        assert_eq!(
            GbId::parse("34020000002000000010").unwrap().device_type(),
            DeviceType::Platform
        );
        assert!(GbId::parse("3402000000132000000").is_err());
        assert!(GbId::parse("340200000013200000大").is_err());
        assert!(DomainCode::parse("3402000000").is_ok());
    }
}
