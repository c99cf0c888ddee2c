//! Grids (网格): the management tree.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vigil_core::grid::GridCode;
use vigil_core::import::GridRow;

use crate::audit::{self, Change};
use crate::auth::Caller;
use crate::error::record_problem;
use crate::extract::{keyed_record, JsonBody, PathParam, Query};
use crate::params;
use crate::policy::Permission;
use crate::problem::{ApiResult, Problem, Problems};
use crate::state::AppState;
use crate::views::GridList;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_grids, create_grid))
        .routes(routes!(get_grid, put_grid, delete_grid))
        .routes(routes!(grid_children))
        .routes(routes!(grid_ancestors))
}

/// Which grids to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GridListQuery {
    /// Depth in the tree (roots are 0). Without it, the roots (or the children of `within`).
    depth: Option<String>,
    /// Only grids inside this grid's subtree.
    within: Option<String>,
}

/// List grids: the roots, the children of `within`, or every grid at `depth`.
#[utoipa::path(get, path = "/grids", tag = "grids", params(GridListQuery),
    responses((status = 200, body = GridList), Problems), security(("bearer" = [])))]
async fn list_grids(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<GridListQuery>,
) -> ApiResult<Json<GridList>> {
    caller.require(Permission::ReadCatalog)?;
    let depth = params::opt_usize("depth", q.depth.as_deref())?;
    let depth = depth
        .map(|d| u32::try_from(d).map_err(|_| Problem::bad_param("depth", "too large")))
        .transpose()?;
    let within = params::opt_grid_code("within", q.within.as_deref())?;
    let grids = state
        .blocking(move |index| {
            Ok(match (depth, within) {
                (Some(d), w) => index.grids_at_depth(d, w.as_ref())?,
                (None, Some(w)) => index.grid_children(&w)?,
                (None, None) => index.grid_roots()?,
            })
        })
        .await?;
    Ok(Json(GridList {
        items: grids.iter().map(GridRow::from_grid).collect(),
    }))
}

/// Create a grid (409 if the code exists; use PUT to change one).
#[utoipa::path(post, path = "/grids", tag = "grids", request_body = GridRow,
    responses((status = 201, body = GridRow), Problems), security(("bearer" = [])))]
async fn create_grid(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(row): JsonBody<GridRow>,
) -> ApiResult<(StatusCode, Json<GridRow>)> {
    let caller = caller.require(Permission::WriteGrids)?;
    let grid = row.to_grid(0).map_err(record_problem)?;
    let _w = state.write_lock().await;
    let now = state.now();
    state
        .blocking(move |index| {
            if index.grid(&grid.code)?.is_some() {
                return Err(Problem::conflict(format!(
                    "grid {} already exists; PUT /grids/{} changes it",
                    grid.code, grid.code
                )));
            }
            index.put_grid(grid.clone())?;
            let row = GridRow::from_grid(&grid);
            audit::append(
                index,
                now,
                Change {
                    actor: caller.actor(),
                    action: "grid.create",
                    target: grid.code.to_string(),
                    before: None,
                    after: audit::json(&row),
                },
            )?;
            Ok((StatusCode::CREATED, Json(row)))
        })
        .await
}

fn path_code(text: &str) -> ApiResult<GridCode> {
    params::grid_code("code", Some(text))
}

/// One grid.
#[utoipa::path(get, path = "/grids/{code}", tag = "grids",
    params(("code" = String, Path, description = "Grid code")),
    responses((status = 200, body = GridRow), Problems), security(("bearer" = [])))]
async fn get_grid(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(code): PathParam,
) -> ApiResult<Json<GridRow>> {
    caller.require(Permission::ReadCatalog)?;
    let code = path_code(&code)?;
    let grid = state
        .blocking(move |index| index.grid(&code)?.ok_or_else(|| not_found(&code)))
        .await?;
    Ok(Json(GridRow::from_grid(&grid)))
}

fn not_found(code: &GridCode) -> Problem {
    Problem::not_found(format!("grid {code} does not exist"))
}

/// Create or change a grid (moving it if the parent changed); refuses unknown parents and
/// cycles. The body's `code` may be left out; if given it must match the path.
#[utoipa::path(put, path = "/grids/{code}", tag = "grids",
    params(("code" = String, Path, description = "Grid code")), request_body = GridRow,
    responses((status = 200, body = GridRow, description = "Changed"),
        (status = 201, body = GridRow, description = "Created"), Problems),
    security(("bearer" = [])))]
async fn put_grid(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(code): PathParam,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> ApiResult<(StatusCode, Json<GridRow>)> {
    let caller = caller.require(Permission::WriteGrids)?;
    let code = path_code(&code)?;
    let row: GridRow = keyed_record(body, "code", code.as_str())?;
    let grid = row.to_grid(0).map_err(record_problem)?;
    let _w = state.write_lock().await;
    let now = state.now();
    state
        .blocking(move |index| {
            let before = index.grid(&code)?.map(|g| GridRow::from_grid(&g));
            index.put_grid(grid.clone())?;
            let row = GridRow::from_grid(&grid);
            let created = audit::Upsert {
                actor: caller.actor(),
                create: "grid.create",
                update: "grid.update",
                target: code.to_string(),
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

/// Delete a grid that has no child grids, key sites or camera records (past or present).
#[utoipa::path(delete, path = "/grids/{code}", tag = "grids",
    params(("code" = String, Path, description = "Grid code")),
    responses((status = 204, description = "Deleted"), Problems), security(("bearer" = [])))]
async fn delete_grid(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(code): PathParam,
) -> ApiResult<StatusCode> {
    let caller = caller.require(Permission::WriteGrids)?;
    let code = path_code(&code)?;
    let _w = state.write_lock().await;
    let now = state.now();
    state
        .blocking(move |index| {
            let before = index.delete_grid(&code)?;
            audit::append(
                index,
                now,
                Change {
                    actor: caller.actor(),
                    action: "grid.delete",
                    target: code.to_string(),
                    before: audit::json(&GridRow::from_grid(&before)),
                    after: None,
                },
            )?;
            Ok(StatusCode::NO_CONTENT)
        })
        .await
}

/// The direct children of a grid.
#[utoipa::path(get, path = "/grids/{code}/children", tag = "grids",
    params(("code" = String, Path, description = "Grid code")),
    responses((status = 200, body = GridList), Problems), security(("bearer" = [])))]
async fn grid_children(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(code): PathParam,
) -> ApiResult<Json<GridList>> {
    caller.require(Permission::ReadCatalog)?;
    let code = path_code(&code)?;
    let grids = state
        .blocking(move |index| Ok(index.grid_children(&code)?))
        .await?;
    Ok(Json(GridList {
        items: grids.iter().map(GridRow::from_grid).collect(),
    }))
}

/// The ancestors of a grid, parent first.
#[utoipa::path(get, path = "/grids/{code}/ancestors", tag = "grids",
    params(("code" = String, Path, description = "Grid code")),
    responses((status = 200, body = GridList), Problems), security(("bearer" = [])))]
async fn grid_ancestors(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(code): PathParam,
) -> ApiResult<Json<GridList>> {
    caller.require(Permission::ReadCatalog)?;
    let code = path_code(&code)?;
    let grids = state
        .blocking(move |index| Ok(index.grid_ancestors(&code)?))
        .await?;
    Ok(Json(GridList {
        items: grids.iter().map(GridRow::from_grid).collect(),
    }))
}
