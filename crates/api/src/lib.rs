//! The HTTP API (axum) under /api/v1: resources, imports, reports, auth and the OpenAPI document.

pub mod problem;
pub mod text;
pub mod token;
