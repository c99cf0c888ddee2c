//! `vigil token`: API tokens, stored hashed in the index. The token text is printed once, on
//! stdout (so it can be captured: `TOKEN=$(vigil token create --role admin --name ops)`).

use std::path::PathBuf;

use anyhow::anyhow;
use vigil_api::audit::{self, Change};
use vigil_api::auth;
use vigil_api::routes::tokens::TokenView;
use vigil_core::role::Role;

use crate::commands::{cli_actor, data_dir, open};
use crate::config::Config;
use crate::service::now;

/// `vigil token …`
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it on stdout (it is shown this once; only a hash is kept).
    Create {
        /// `admin`, `operator`, `integrator` or `auditor`.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Who will hold it (shown in `token list`).
        #[arg(long)]
        name: String,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token (it is kept, marked revoked, for the audit trail).
    Revoke {
        /// The token ID (the 12 hex digits after `vigil_`).
        id: String,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse::<Role>().map_err(|e| e.to_string())
}

/// Runs a token command.
pub fn run(config: &Config, dir: Option<PathBuf>, cmd: TokenCommand) -> anyhow::Result<()> {
    let dir = data_dir(config, dir);
    let (_data, index) = open(config, &dir, "vigil token")?;
    match cmd {
        TokenCommand::Create { role, name } => {
            let at = now();
            let (record, token) = auth::issue(&index, role, &name, at)?;
            audit::append(
                &index,
                at,
                Change {
                    actor: cli_actor(),
                    action: "token.create",
                    target: record.id.clone(),
                    before: None,
                    after: audit::json(&TokenView::from(&record)),
                },
            )?;
            eprintln!(
                "created {} token {} for {:?}; it is shown once:",
                record.role, record.id, record.name
            );
            println!("{token}");
        }
        TokenCommand::List => {
            println!(
                "{:<12}  {:<10}  {:<24}  {:<24}  name",
                "id", "role", "created", "revoked"
            );
            for t in index.tokens()? {
                println!(
                    "{:<12}  {:<10}  {:<24}  {:<24}  {}",
                    t.id,
                    t.role.code(),
                    t.created_at,
                    t.revoked_at
                        .map(|r| r.to_string())
                        .unwrap_or_else(|| "-".into()),
                    t.name
                );
            }
        }
        TokenCommand::Revoke { id } => {
            let before = index
                .token(&id)?
                .ok_or_else(|| anyhow!("API token {id} does not exist"))?;
            let at = now();
            let after = index.revoke_token(&id, at)?;
            audit::append(
                &index,
                at,
                Change {
                    actor: cli_actor(),
                    action: "token.revoke",
                    target: id.clone(),
                    before: audit::json(&TokenView::from(&before)),
                    after: audit::json(&TokenView::from(&after)),
                },
            )?;
            eprintln!("revoked token {id}");
        }
    }
    index.flush()?;
    Ok(())
}
