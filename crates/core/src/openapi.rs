//! OpenAPI schemas (feature `openapi`) for the types that serialise as text: IDs, codes,
//! instants and target ratios. The other public shapes derive theirs next to their definition.

use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use crate::grid::GridCode;
use crate::id::GbId;
use crate::ratio::Rational;
use crate::site::SiteId;
use crate::target::FigureKind;
use crate::time::Timestamp;

fn text(description: &str, pattern: Option<&str>, example: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(pattern)
        .examples([example])
        .into()
}

macro_rules! text_schema {
    ($ty:ty, $description:expr, $pattern:expr, $example:expr) => {
        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                text($description, $pattern, $example)
            }
        }
        impl ToSchema for $ty {}
    };
}

text_schema!(
    GbId,
    "GB/T 28181 ID: 20 digits (centre code 8, industry 2, type 3, network 1, serial 6)",
    Some("^[0-9]{20}$"),
    "37010000001320000001"
);
text_schema!(
    GridCode,
    "Grid code",
    Some("^[A-Za-z0-9._-]{1,64}$"),
    "370112001"
);
text_schema!(
    SiteId,
    "Key-site ID",
    Some("^[A-Za-z0-9._:-]{1,64}$"),
    "S000001"
);
text_schema!(
    Rational,
    "Exact ratio numerator/denominator (input also accepts 98%, 0.98)",
    Some("^[0-9]+/[0-9]+$"),
    "98/100"
);

impl PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some("RFC 3339 instant, UTC, millisecond precision"))
            .examples(["2024-06-01T00:00:00.000Z"])
            .into()
    }
}

impl ToSchema for Timestamp {}

/// The codes, as serialised (the variants are renamed inside a macro, which the derive does not
/// see).
impl PartialSchema for FigureKind {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("A figure code"))
            .enum_values(Some(FigureKind::ALL.iter().map(|k| k.code())))
            .into()
    }
}

impl ToSchema for FigureKind {}
