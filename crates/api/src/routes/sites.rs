//! Key sites (重点部位): the places coverage is about.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vigil_core::import::SiteRow;
use vigil_core::site::{CategoryGroup, PointClass, SiteCategory, SiteId};
use vigil_index::SiteFilter;

use crate::audit::{self, Change};
use crate::auth::Caller;
use crate::error::record_problem;
use crate::extract::{keyed_record, JsonBody, PathParam, Query};
use crate::params;
use crate::policy::Permission;
use crate::problem::{ApiResult, Problem, Problems};
use crate::state::AppState;
use crate::views::SitePage;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_sites, create_site))
        .routes(routes!(get_site, put_site, delete_site))
}

/// Filters and page of the site list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SiteListQuery {
    /// Only sites inside this grid's subtree.
    grid: Option<String>,
    /// Category code (e.g. `school`, `residential_compound`).
    category: Option<String>,
    /// Category group 1–6 of seed 001 三.2, or its name (e.g. `key_units`).
    group: Option<String>,
    /// Point class `1`, `2` or `3`.
    point_class: Option<String>,
    /// Case-insensitive part of the name.
    q: Option<String>,
    /// Cursor: the `next` of the previous page.
    after: Option<String>,
    /// Page size (default 100).
    limit: Option<String>,
}

fn parse_group(text: &str) -> Result<CategoryGroup, String> {
    if let Ok(n) = text.parse::<usize>() {
        if let Some(g) = n.checked_sub(1).and_then(|i| CategoryGroup::ALL.get(i)) {
            return Ok(*g);
        }
    }
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|_| format!("{text:?} is not a category group (1-6 or e.g. key_units)"))
}

/// List key sites, filtered, by ID, a page at a time.
#[utoipa::path(get, path = "/sites", tag = "sites", params(SiteListQuery),
    responses((status = 200, body = SitePage), Problems), security(("bearer" = [])))]
async fn list_sites(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SiteListQuery>,
) -> ApiResult<Json<SitePage>> {
    caller.require(Permission::ReadCatalog)?;
    let filter = SiteFilter {
        grid: params::opt_grid_code("grid", q.grid.as_deref())?,
        category: params::opt_from_str::<SiteCategory>("category", q.category.as_deref())?,
        group: params::optional("group", q.group.as_deref(), parse_group)?,
        point_class: params::opt_from_str::<PointClass>("point_class", q.point_class.as_deref())?,
        name_contains: q.q.filter(|t| !t.trim().is_empty()),
    };
    let after = params::optional("after", q.after.as_deref(), SiteId::parse)?;
    let limit = state.page_size(params::opt_usize("limit", q.limit.as_deref())?);
    let page = state
        .blocking(move |index| Ok(index.list_sites(&filter, after.as_ref(), limit)?))
        .await?;
    Ok(Json(SitePage {
        items: page.items.iter().map(SiteRow::from_site).collect(),
        next: page.next.map(|id| id.to_string()),
        total: page.total,
    }))
}

/// Create a key site (409 if the ID exists); its grid must exist.
#[utoipa::path(post, path = "/sites", tag = "sites", request_body = SiteRow,
    responses((status = 201, body = SiteRow), Problems), security(("bearer" = [])))]
async fn create_site(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(row): JsonBody<SiteRow>,
) -> ApiResult<(StatusCode, Json<SiteRow>)> {
    let caller = caller.require(Permission::WriteSites)?;
    let site = row.to_site(0).map_err(record_problem)?;
    let _w = state.write_lock().await;
    let now = state.now();
    state
        .blocking(move |index| {
            if index.site(&site.id)?.is_some() {
                return Err(Problem::conflict(format!(
                    "key site {} already exists; PUT /sites/{} changes it",
                    site.id, site.id
                )));
            }
            index.put_site(site.clone())?;
            let row = SiteRow::from_site(&site);
            audit::append(
                index,
                now,
                Change {
                    actor: caller.actor(),
                    action: "site.create",
                    target: site.id.to_string(),
                    before: None,
                    after: audit::json(&row),
                },
            )?;
            Ok((StatusCode::CREATED, Json(row)))
        })
        .await
}

/// One key site.
#[utoipa::path(get, path = "/sites/{id}", tag = "sites",
    params(("id" = String, Path, description = "Site ID")),
    responses((status = 200, body = SiteRow), Problems), security(("bearer" = [])))]
async fn get_site(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam,
) -> ApiResult<Json<SiteRow>> {
    caller.require(Permission::ReadCatalog)?;
    let id = params::site_id("id", &id)?;
    let site = state
        .blocking(move |index| {
            index
                .site(&id)?
                .ok_or_else(|| Problem::not_found(format!("key site {id} does not exist")))
        })
        .await?;
    Ok(Json(SiteRow::from_site(&site)))
}

/// Create or change a key site. The body's `id` may be left out; if given it must match.
#[utoipa::path(put, path = "/sites/{id}", tag = "sites",
    params(("id" = String, Path, description = "Site ID")), request_body = SiteRow,
    responses((status = 200, body = SiteRow, description = "Changed"),
        (status = 201, body = SiteRow, description = "Created"), Problems),
    security(("bearer" = [])))]
async fn put_site(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> ApiResult<(StatusCode, Json<SiteRow>)> {
    let caller = caller.require(Permission::WriteSites)?;
    let id = params::site_id("id", &id)?;
    let row: SiteRow = keyed_record(body, "id", id.as_str())?;
    let site = row.to_site(0).map_err(record_problem)?;
    let _w = state.write_lock().await;
    let now = state.now();
    state
        .blocking(move |index| {
            let before = index.site(&id)?.map(|s| SiteRow::from_site(&s));
            index.put_site(site.clone())?;
            let row = SiteRow::from_site(&site);
            let created = audit::Upsert {
                actor: caller.actor(),
                create: "site.create",
                update: "site.update",
                target: id.to_string(),
                before: before.as_ref(),
                after: &row,
            }
            .append(index, now)?;
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok((status, Json(row)))
        })
        .await
}

/// Delete a key site no camera record (past or present) refers to.
#[utoipa::path(delete, path = "/sites/{id}", tag = "sites",
    params(("id" = String, Path, description = "Site ID")),
    responses((status = 204, description = "Deleted"), Problems), security(("bearer" = [])))]
async fn delete_site(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam,
) -> ApiResult<StatusCode> {
    let caller = caller.require(Permission::WriteSites)?;
    let id = params::site_id("id", &id)?;
    let _w = state.write_lock().await;
    let now = state.now();
    state
        .blocking(move |index| {
            let before = index.delete_site(&id)?;
            audit::append(
                index,
                now,
                Change {
                    actor: caller.actor(),
                    action: "site.delete",
                    target: id.to_string(),
                    before: audit::json(&SiteRow::from_site(&before)),
                    after: None,
                },
            )?;
            Ok(StatusCode::NO_CONTENT)
        })
        .await
}
