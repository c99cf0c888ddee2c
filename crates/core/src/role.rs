//! API roles. The API crate decides what each role may do; core only names them so that the
//! index (token store) and the API agree on one spelling.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::status::UnknownName;
use crate::time::truncate_for_error;

/// Who a token acts as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Configures everything, manages tokens.
    Admin,
    /// Monitoring-centre operator (值守人员): watches status, plays back, exports.
    Operator,
    /// Integrator (集成商): files cameras, runs access tests.
    Integrator,
    /// Auditor (考核/督查): read-only reports and audit trail.
    Auditor,
}

impl Role {
    /// All roles.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Operator, Role::Integrator, Role::Auditor];

    /// Stable code.
    pub fn code(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Integrator => "integrator",
            Role::Auditor => "auditor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Role {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        Role::ALL
            .iter()
            .copied()
            .find(|r| r.code() == s.trim())
            .ok_or_else(|| UnknownName {
                field: "role",
                text: truncate_for_error(s),
                expected: "admin, operator, integrator, auditor",
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for r in Role::ALL {
            assert_eq!(r.code().parse::<Role>().unwrap(), r);
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{r}\""));
        }
        assert!("root".parse::<Role>().is_err());
    }
}
