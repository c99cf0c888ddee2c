//! Who may do what: the role → permission policy, as one table.
//!
//! Every handler names the one [`Permission`] it needs (first line of the handler); this module
//! is the only place that says which roles hold it. The README's table is rendered from
//! [`POLICY`] and a test keeps the two equal.
//!
//! Reading of the roles (from `domain.md`):
//! - **admin** configures everything: grids, key sites, targets, tokens; may delete a camera
//!   together with its history.
//! - **operator** (监控中心值守人员) watches status and reports and brings status history over
//!   from another platform (history and diagnosis imports); does not edit the register.
//! - **integrator** (集成商) files and updates camera records (备案, 接入检测, 验收) and
//!   decommissions cameras; cannot change targets, grids or sites, cannot delete history (no
//!   camera deletion, no history import), and does not see compliance reports or the audit log.
//! - **auditor** (考核/督查) is read-only: the register, status history, every report and the
//!   audit log; may export recorded video (evidence they keep), but does not watch live video.
//! - Video: operators watch live video and snapshots, export recordings, accept new cameras
//!   (审核验收, the centre's decision after the integrator's access test) and mark cameras as
//!   anti-terror key targets (90-day retention); integrators run the access test (part of
//!   `register_cameras`) but neither watch nor export video.
//! - GB/T 28181: operators start and stop the recording of a device's channels and re-query a
//!   device's catalog (`control_devices`); everyone who reads the register sees devices,
//!   channels and the CivilCode table.

use std::fmt;

use serde::Serialize;
use utoipa::ToSchema;
use vigil_core::role::Role;

/// One thing an API call can need.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Read grids, key sites, camera records and their versions.
    ReadCatalog,
    /// Read status history (online, recording, upload, uplink) and quality diagnoses.
    ReadStatus,
    /// Read compliance reports, rankings, blind spots, deadline progress and targets.
    ReadReports,
    /// Read the audit log.
    ReadAudit,
    /// Create, change and delete grids (single and bulk import).
    WriteGrids,
    /// Create, change and delete key sites (single and bulk import).
    WriteSites,
    /// File camera records and new record versions, decommission cameras (single and bulk).
    RegisterCameras,
    /// Delete a camera with every record version and all its history.
    DeleteCameras,
    /// Import status history intervals and quality diagnoses.
    ImportHistory,
    /// Change the targets.
    SetTargets,
    /// Create, list and revoke API tokens.
    ManageTokens,
    /// Watch live video and take snapshots.
    ViewVideo,
    /// Export recorded video as MP4.
    ExportVideo,
    /// Accept or reject a camera (审核验收) after its access test.
    AcceptCameras,
    /// Set a camera's retention policy (anti-terror key target, longer retention).
    SetRetention,
    /// Start and stop recording GB/T 28181 channels and re-query device catalogs.
    ControlDevices,
}

impl Permission {
    /// Stable code (as in JSON).
    pub fn code(self) -> &'static str {
        match self {
            Permission::ReadCatalog => "read_catalog",
            Permission::ReadStatus => "read_status",
            Permission::ReadReports => "read_reports",
            Permission::ReadAudit => "read_audit",
            Permission::WriteGrids => "write_grids",
            Permission::WriteSites => "write_sites",
            Permission::RegisterCameras => "register_cameras",
            Permission::DeleteCameras => "delete_cameras",
            Permission::ImportHistory => "import_history",
            Permission::SetTargets => "set_targets",
            Permission::ManageTokens => "manage_tokens",
            Permission::ViewVideo => "view_video",
            Permission::ExportVideo => "export_video",
            Permission::AcceptCameras => "accept_cameras",
            Permission::SetRetention => "set_retention",
            Permission::ControlDevices => "control_devices",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The roles in the column order of [`POLICY`].
pub const COLUMNS: [Role; 4] = [Role::Admin, Role::Operator, Role::Integrator, Role::Auditor];

const Y: bool = true;
const N: bool = false;

/// THE policy. Columns: admin, operator, integrator, auditor.
#[rustfmt::skip]
pub const POLICY: &[(Permission, [bool; 4])] = &[
    //                              admin operator integrator auditor
    (Permission::ReadCatalog,      [Y,    Y,       Y,         Y]),
    (Permission::ReadStatus,       [Y,    Y,       Y,         Y]),
    (Permission::ReadReports,      [Y,    Y,       N,         Y]),
    (Permission::ReadAudit,        [Y,    N,       N,         Y]),
    (Permission::WriteGrids,       [Y,    N,       N,         N]),
    (Permission::WriteSites,       [Y,    N,       N,         N]),
    (Permission::RegisterCameras,  [Y,    N,       Y,         N]),
    (Permission::DeleteCameras,    [Y,    N,       N,         N]),
    (Permission::ImportHistory,    [Y,    Y,       N,         N]),
    (Permission::SetTargets,       [Y,    N,       N,         N]),
    (Permission::ManageTokens,     [Y,    N,       N,         N]),
    (Permission::ViewVideo,        [Y,    Y,       N,         N]),
    (Permission::ExportVideo,      [Y,    Y,       N,         Y]),
    (Permission::AcceptCameras,    [Y,    Y,       N,         N]),
    (Permission::SetRetention,     [Y,    Y,       N,         N]),
    (Permission::ControlDevices,   [Y,    Y,       N,         N]),
];

fn column(role: Role) -> usize {
    match role {
        Role::Admin => 0,
        Role::Operator => 1,
        Role::Integrator => 2,
        Role::Auditor => 3,
    }
}

/// Whether `role` holds `permission`. A permission missing from the table is held by no one.
pub fn allows(role: Role, permission: Permission) -> bool {
    POLICY
        .iter()
        .find(|(p, _)| *p == permission)
        .is_some_and(|(_, roles)| roles[column(role)])
}

/// Every permission `role` holds, in table order.
pub fn permissions(role: Role) -> Vec<Permission> {
    POLICY
        .iter()
        .filter(|(_, roles)| roles[column(role)])
        .map(|(p, _)| *p)
        .collect()
}

/// The policy as a Markdown table (for the README).
pub fn markdown_table() -> String {
    let mut out = String::from("| permission |");
    for role in COLUMNS {
        out.push_str(&format!(" {role} |"));
    }
    out.push_str("\n|---|");
    for _ in COLUMNS {
        out.push_str("---|");
    }
    for (p, roles) in POLICY {
        out.push_str(&format!("\n| `{p}` |"));
        for &held in roles {
            out.push_str(if held { " yes |" } else { " — |" });
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use Permission::*;

    const ALL: [Permission; 16] = [
        ReadCatalog,
        ReadStatus,
        ReadReports,
        ReadAudit,
        WriteGrids,
        WriteSites,
        RegisterCameras,
        DeleteCameras,
        ImportHistory,
        SetTargets,
        ManageTokens,
        ViewVideo,
        ExportVideo,
        AcceptCameras,
        SetRetention,
        ControlDevices,
    ];

    #[test]
    fn every_permission_has_exactly_one_row() {
        for p in ALL {
            assert_eq!(POLICY.iter().filter(|(q, _)| *q == p).count(), 1, "{p}");
        }
        assert_eq!(POLICY.len(), ALL.len());
    }

    #[test]
    fn admin_holds_everything() {
        assert_eq!(permissions(Role::Admin), ALL.to_vec());
    }

    #[test]
    fn auditor_is_read_only_and_reads_everything() {
        assert_eq!(
            permissions(Role::Auditor),
            [ReadCatalog, ReadStatus, ReadReports, ReadAudit, ExportVideo]
        );
    }

    #[test]
    fn integrator_registers_cameras_but_cannot_change_targets_or_delete_history() {
        assert!(allows(Role::Integrator, RegisterCameras));
        for denied in [
            SetTargets,
            DeleteCameras,
            ImportHistory,
            WriteGrids,
            WriteSites,
            ReadAudit,
            ReadReports,
            ManageTokens,
            ViewVideo,
            ExportVideo,
            AcceptCameras,
            SetRetention,
            ControlDevices,
        ] {
            assert!(!allows(Role::Integrator, denied), "{denied}");
        }
    }

    #[test]
    fn operator_reads_imports_history_and_handles_video_and_acceptance() {
        assert_eq!(
            permissions(Role::Operator),
            [
                ReadCatalog,
                ReadStatus,
                ReadReports,
                ImportHistory,
                ViewVideo,
                ExportVideo,
                AcceptCameras,
                SetRetention,
                ControlDevices
            ]
        );
    }

    #[test]
    fn readme_shows_this_table() {
        let readme = include_str!("../../../README.md");
        assert!(
            readme.contains(&markdown_table()),
            "README.md must contain the policy table:\n{}",
            markdown_table()
        );
    }
}
