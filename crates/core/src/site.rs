//! Key sites (重点部位 / 覆盖目标): the places the coverage figure is about.
//!
//! The categories are the coverage scope of seed 001 section 三.2, six groups with finer kinds.
//! Each kind also says which national intact-rate target applies to cameras watching it (see
//! [`IntactClass`]).

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::geo::GeoPoint;
use crate::grid::GridCode;
use crate::key::{key_problem, text_key_impls, KeyRules};
use crate::time::truncate_for_error;

/// Why a site or one of its fields was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SiteError {
    /// Bad site ID.
    #[error("site id {id:?} is invalid: {reason}")]
    InvalidId { id: String, reason: &'static str },
    /// Unknown category code.
    #[error("{text:?} is not a site category (expected one of: {expected})")]
    UnknownCategory { text: String, expected: String },
    /// Unknown point class.
    #[error("{text:?} is not a point class (expected 1, 2, 3, class1.., 一类..)")]
    UnknownPointClass { text: String },
    /// Empty or over-long name.
    #[error("site {id}: name must be 1-200 characters and not blank")]
    BadName { id: SiteId },
}

/// A site identifier: 1–64 characters from `A–Z a–z 0–9 - _ . :`.
///
/// The character set keeps IDs usable as list items in CSV cells (`;`-separated) and as keys.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SiteId(String);

impl SiteId {
    /// Validates an ID.
    pub fn parse(text: &str) -> Result<SiteId, SiteError> {
        const RULES: KeyRules = KeyRules {
            punctuation: b"-_.:",
            described: "only A-Z, a-z, 0-9, '-', '_', '.' and ':' are allowed",
        };
        match key_problem(text, &RULES) {
            Some(reason) => Err(SiteError::InvalidId {
                id: truncate_for_error(text),
                reason,
            }),
            None => Ok(SiteId(text.to_owned())),
        }
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

text_key_impls!(SiteId, SiteError);

/// The six groups of the coverage scope in seed 001 section 三.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CategoryGroup {
    /// (1) party and government offices, utilities, broadcasting/telecom, key enterprises, schools.
    KeyUnits,
    /// (2) banks, hospitals, malls, internet cafés, car parks, hotels.
    PublicServicePlaces,
    /// (3) provincial roads, residential compounds, village main roads, main streets.
    RoadsAndCompounds,
    /// (4) squares, sports grounds, busy areas.
    PublicSpaces,
    /// (5) areas with complex public order or many cases.
    ComplexAreas,
    /// (6) other targets named by the police station.
    PoliceDesignated,
}

impl CategoryGroup {
    /// All groups in seed order.
    pub const ALL: [CategoryGroup; 6] = [
        CategoryGroup::KeyUnits,
        CategoryGroup::PublicServicePlaces,
        CategoryGroup::RoadsAndCompounds,
        CategoryGroup::PublicSpaces,
        CategoryGroup::ComplexAreas,
        CategoryGroup::PoliceDesignated,
    ];

    /// The group's number in the seed, 1–6.
    pub fn number(self) -> u8 {
        self as u8 + 1
    }

    /// Chinese label.
    pub fn label_zh(self) -> &'static str {
        match self {
            CategoryGroup::KeyUnits => "重点单位",
            CategoryGroup::PublicServicePlaces => "公共服务场所",
            CategoryGroup::RoadsAndCompounds => "道路与居民小区",
            CategoryGroup::PublicSpaces => "公共活动场所",
            CategoryGroup::ComplexAreas => "治安复杂区域",
            CategoryGroup::PoliceDesignated => "派出所确定的其它目标",
        }
    }

    /// English label.
    pub fn label_en(self) -> &'static str {
        match self {
            CategoryGroup::KeyUnits => "Key units and institutions",
            CategoryGroup::PublicServicePlaces => "Public service and commercial places",
            CategoryGroup::RoadsAndCompounds => "Roads and residential compounds",
            CategoryGroup::PublicSpaces => "Squares, sports grounds and busy areas",
            CategoryGroup::ComplexAreas => "Complex public-order and high-case areas",
            CategoryGroup::PoliceDesignated => "Other targets named by the police station",
        }
    }
}

/// Which national intact-rate target (发改高技〔2015〕996号) applies to cameras at a site.
///
/// Decision: groups (1) and (2) are units and trades — "key industries and fields" (重点行业、
/// 领域), target 95%; groups (3)–(6) are streets, compounds and open spaces — "key public areas"
/// (重点公共区域), target 98%. A camera watching sites of both classes counts in both figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntactClass {
    /// 重点公共区域.
    KeyPublicArea,
    /// 重点行业、领域.
    KeyIndustry,
}

macro_rules! categories {
    ($( $variant:ident, $code:literal, $group:ident, $zh:literal, $en:literal; )*) => {
        /// A key-site kind from seed 001 section 三.2.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum SiteCategory {
            $( #[doc = $zh] $variant, )*
        }

        impl SiteCategory {
            /// Every kind, in seed order.
            pub const ALL: &'static [SiteCategory] = &[$(SiteCategory::$variant),*];

            /// Stable code used in files and APIs (snake_case).
            pub fn code(self) -> &'static str {
                match self { $(SiteCategory::$variant => $code,)* }
            }

            /// The seed group.
            pub fn group(self) -> CategoryGroup {
                match self { $(SiteCategory::$variant => CategoryGroup::$group,)* }
            }

            /// Chinese label.
            pub fn label_zh(self) -> &'static str {
                match self { $(SiteCategory::$variant => $zh,)* }
            }

            /// English label.
            pub fn label_en(self) -> &'static str {
                match self { $(SiteCategory::$variant => $en,)* }
            }
        }

        impl FromStr for SiteCategory {
            type Err = SiteError;
            /// Accepts the code or the Chinese label.
            fn from_str(s: &str) -> Result<Self, SiteError> {
                let t = s.trim();
                match t {
                    $($code | $zh => Ok(SiteCategory::$variant),)*
                    _ => Err(SiteError::UnknownCategory {
                        text: truncate_for_error(s),
                        expected: [$($code),*].join(", "),
                    }),
                }
            }
        }
    };
}

categories! {
    PartyGovernment, "party_government", KeyUnits, "党政机关", "Party and government offices";
    Utility, "utility", KeyUnits, "水电气热", "Water, power, gas and heating utilities";
    BroadcastTelecom, "broadcast_telecom", KeyUnits, "广播电信", "Broadcasting and telecom";
    KeyEnterprise, "key_enterprise", KeyUnits, "重点企事业单位", "Key enterprises and institutions";
    School, "school", KeyUnits, "中小学、幼儿园", "Schools and kindergartens";
    Finance, "finance", PublicServicePlaces, "金融系统", "Banks and financial institutions";
    Hospital, "hospital", PublicServicePlaces, "医院", "Hospitals";
    MallSupermarket, "mall_supermarket", PublicServicePlaces, "商场超市", "Malls and supermarkets";
    InternetCafe, "internet_cafe", PublicServicePlaces, "网吧", "Internet cafés";
    CarPark, "car_park", PublicServicePlaces, "停车场", "Car parks";
    Hotel, "hotel", PublicServicePlaces, "酒店", "Hotels";
    ProvincialRoad, "provincial_road", RoadsAndCompounds, "省道", "Provincial roads";
    ResidentialCompound, "residential_compound", RoadsAndCompounds, "居民小区", "Residential compounds";
    VillageMainRoad, "village_main_road", RoadsAndCompounds, "村庄主要干道", "Village main roads";
    MainStreet, "main_street", RoadsAndCompounds, "主要街道", "Main streets";
    Square, "square", PublicSpaces, "广场", "Squares";
    SportsGround, "sports_ground", PublicSpaces, "运动场", "Sports grounds";
    BusyArea, "busy_area", PublicSpaces, "繁华地段", "Busy commercial areas";
    ComplexPublicOrder, "complex_public_order", ComplexAreas, "治安复杂区域", "Areas with complex public order";
    HighCaseArea, "high_case_area", ComplexAreas, "案件高发区域", "Areas with many cases";
    PoliceDesignated, "police_designated", PoliceDesignated, "派出所确定的其它覆盖目标", "Other targets named by the police station";
}

impl SiteCategory {
    /// Which intact-rate target applies to cameras watching this kind of site.
    pub fn intact_class(self) -> IntactClass {
        match self.group() {
            CategoryGroup::KeyUnits | CategoryGroup::PublicServicePlaces => {
                IntactClass::KeyIndustry
            }
            _ => IntactClass::KeyPublicArea,
        }
    }
}

/// Point class (一类/二类/三类点) of a site or camera.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PointClass {
    /// 一类点.
    #[serde(rename = "class1")]
    Class1,
    /// 二类点.
    #[serde(rename = "class2")]
    Class2,
    /// 三类点.
    #[serde(rename = "class3")]
    Class3,
}

impl PointClass {
    /// All classes.
    pub const ALL: [PointClass; 3] = [PointClass::Class1, PointClass::Class2, PointClass::Class3];

    /// 0-based index (class 1 → 0).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Chinese label.
    pub fn label_zh(self) -> &'static str {
        ["一类点", "二类点", "三类点"][self.index()]
    }

    /// Stable code (`class1`…).
    pub fn code(self) -> &'static str {
        ["class1", "class2", "class3"][self.index()]
    }
}

impl FromStr for PointClass {
    type Err = SiteError;
    /// Accepts `1`, `class1`, `一类`, `一类点` (and likewise for 2 and 3).
    fn from_str(s: &str) -> Result<Self, SiteError> {
        match s.trim() {
            "1" | "class1" | "一类" | "一类点" => Ok(PointClass::Class1),
            "2" | "class2" | "二类" | "二类点" => Ok(PointClass::Class2),
            "3" | "class3" | "三类" | "三类点" => Ok(PointClass::Class3),
            _ => Err(SiteError::UnknownPointClass {
                text: truncate_for_error(s),
            }),
        }
    }
}

/// A key site.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeySite {
    /// Unique ID.
    pub id: SiteId,
    /// Display name.
    pub name: String,
    /// Kind of site.
    pub category: SiteCategory,
    /// Point class; per-class coverage targets use it.
    pub point_class: PointClass,
    /// The grid the site lies in. Sites carry no history: a site moved to another grid counts
    /// in the new grid for every report, past or present.
    pub grid: GridCode,
    /// Where it is, if known.
    pub location: Option<GeoPoint>,
    /// Street address, if known.
    pub address: Option<String>,
    /// Whether the site is in the coverage scope (counts in the coverage denominator). Sites
    /// recorded for reference only set this to false.
    pub required_coverage: bool,
}

impl KeySite {
    /// Checks the fields that do not depend on other records.
    pub fn validate(&self) -> Result<(), SiteError> {
        if self.name.trim().is_empty() || self.name.chars().count() > 200 {
            return Err(SiteError::BadName {
                id: self.id.clone(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_cover_the_six_seed_groups() {
        for g in CategoryGroup::ALL {
            assert!(SiteCategory::ALL.iter().any(|c| c.group() == g), "{g:?}");
        }
        assert_eq!(SiteCategory::ALL.len(), 21);
        for c in SiteCategory::ALL {
            assert_eq!(c.code().parse::<SiteCategory>().unwrap(), *c);
            assert_eq!(c.label_zh().parse::<SiteCategory>().unwrap(), *c);
            let json = serde_json::to_string(c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.code()));
        }
        assert_eq!(
            SiteCategory::School.intact_class(),
            IntactClass::KeyIndustry
        );
        assert_eq!(
            SiteCategory::Square.intact_class(),
            IntactClass::KeyPublicArea
        );
        assert!("bakery".parse::<SiteCategory>().is_err());
    }

    #[test]
    fn point_classes_parse_labels() {
        assert_eq!("一类".parse::<PointClass>().unwrap(), PointClass::Class1);
        assert_eq!("3".parse::<PointClass>().unwrap(), PointClass::Class3);
        assert_eq!(
            serde_json::to_string(&PointClass::Class2).unwrap(),
            "\"class2\""
        );
        assert!("4".parse::<PointClass>().is_err());
    }

    #[test]
    fn site_ids_are_restricted() {
        assert!(SiteId::parse("S-0001:gate").is_ok());
        assert!(SiteId::parse("a;b").is_err());
        assert!(SiteId::parse("").is_err());
    }
}
