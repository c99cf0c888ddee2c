//! The OpenAPI document: metadata, the bearer-token scheme and the shared error schemas. The
//! paths come from the route registrations (`crate::routes`), never from a separate list.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::problem::{FieldError, Problem};

/// Metadata and shared components of the document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "vigil",
        description = "Metadata index and compliance reports for public-security video \
            monitoring centres: grids, key sites, cameras and their status history, how far \
            each grid is from its targets, and the cameras' recorded and live video. \
            Authenticate with `Authorization: Bearer <token>`; errors are RFC 9457 problem \
            documents (`application/problem+json`) naming the row/field and the reason."
    ),
    modifiers(&BearerToken),
    components(schemas(Problem, FieldError)),
    tags(
        (name = "system", description = "Health, identity, this document"),
        (name = "grids", description = "The management tree (网格)"),
        (name = "sites", description = "Key sites (重点部位)"),
        (name = "cameras", description = "Camera records (一机一档)"),
        (name = "status", description = "Status history, diagnoses, uplinks"),
        (name = "imports", description = "Bulk CSV/JSON imports in UTF-8 or GB18030"),
        (name = "reports", description = "Compliance figures, ranking, blind spots, deadlines, targets"),
        (name = "audit", description = "The append-only audit log"),
        (name = "tokens", description = "API tokens"),
        (name = "recordings", description = "Recorded and live video: recorder states, recordings, MP4 export, live view, snapshots, retention"),
        (name = "gb28181", description = "GB/T 28181 devices and channels: registration, keepalive, catalogs, recording control, CivilCode mapping, counters"),
    )
)]
pub struct ApiDoc;

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("vigil_<12 hex id>_<64 hex secret>")
                    .build(),
            ),
        );
    }
}
