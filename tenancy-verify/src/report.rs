//! The outcome of a proof: one entry per table, command and phase, and every failure with a
//! counterexample, as text for people and JSON for pipelines.

use std::collections::BTreeMap;

use serde::Serialize;
use tenancy_core::access::{CommandAccess, RoleAccess};
use tenancy_core::model::Command;

/// Which rows a check is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The rows a command reads, changes or removes (`USING`).
    Existing,
    /// The rows a command writes (`WITH CHECK`).
    New,
}

impl Phase {
    /// The phases of `command`: select and delete read rows, insert writes them, update does
    /// both.
    pub fn of(command: Command) -> Vec<Phase> {
        match command {
            Command::Select | Command::Delete => vec![Phase::Existing],
            Command::Insert => vec![Phase::New],
            Command::Update => vec![Phase::Existing, Phase::New],
        }
    }

    /// In words, after the command (`update (existing rows)`).
    pub fn words(self) -> &'static str {
        match self {
            Phase::Existing => "existing rows",
            Phase::New => "new rows",
        }
    }
}

/// What kind of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// A table of the model is not deployed.
    MissingTable,
    /// A row of another tenant is admitted: the tenant boundary is not a conjunct.
    Boundary,
    /// A caller and row the model refuses are admitted.
    Widened,
    /// A caller and row the model grants are refused.
    Narrowed,
    /// A permissive policy the generator does not write.
    ExtraPolicy,
    /// An expression the proof cannot evaluate (or too many combinations).
    Unprovable,
}

/// A caller and a row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Witness {
    /// The caller's role in project P of tenant T (`None`: no role there).
    pub role: Option<String>,
    /// The row's tenant: `T` (the caller's) or `T2` (another tenant).
    pub tenant: String,
    /// The row's project: `P` (where the caller holds its role) or `Q` (where it holds none);
    /// `None` on the tenants table.
    pub project: Option<String>,
    /// The other columns the policies and conditions read, in words.
    pub row: BTreeMap<String, String>,
}

impl Witness {
    /// `a caller holding `editor` in project P of tenant T may delete, in `t`, a row of ...`.
    pub fn describe(&self, table: &str, command: Command) -> String {
        self.describe_as(table, command, "may")
    }

    /// The same for a caller the deployed policies refuse.
    pub fn describe_refused(&self, table: &str, command: Command) -> String {
        self.describe_as(table, command, "may not")
    }

    fn describe_as(&self, table: &str, command: Command, may: &str) -> String {
        let who = match &self.role {
            Some(role) => format!("a caller holding `{role}` in project P of tenant T"),
            None => "a caller of tenant T with no role in project P".to_owned(),
        };
        let tenant = if self.tenant == "T" {
            "tenant T"
        } else {
            "another tenant T2"
        };
        let place = match self.project.as_deref() {
            None => format!("the row of {tenant}"),
            Some("P") => format!("a row of {tenant} in project P"),
            Some(_) => format!("a row of {tenant} in a project Q where the caller holds no role"),
        };
        let columns = if self.row.is_empty() {
            String::new()
        } else {
            format!(
                " where {}",
                self.row
                    .iter()
                    .map(|(c, v)| format!("`{c}` is {v}"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            )
        };
        format!("{who} {may} {command}, in `{table}`, {place}{columns}")
    }
}

/// One failure of the proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The table.
    pub table: String,
    /// The command (none for a missing table).
    pub command: Option<Command>,
    /// The rows concerned.
    pub phase: Option<Phase>,
    /// What failed.
    pub kind: FailureKind,
    /// In one sentence, with the counterexample.
    pub message: String,
    /// The caller and row that show it.
    pub counterexample: Option<Witness>,
}

/// One proven (or not) table, command and phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandProof {
    /// The table.
    pub table: String,
    /// The command.
    pub command: Command,
    /// The rows concerned.
    pub phase: Phase,
    /// True when no world contradicts the model.
    pub proven: bool,
    /// The model's rights, in words (`viewer+`, `editor+ where ...`).
    pub rights: String,
    /// True when the model's answer depends on a raw SQL condition (`sql "..."`) for some
    /// caller and row: there only the tenant boundary is proven, not the rights.
    pub raw_sql_unchecked: bool,
}

/// The outcome of `verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Where the deployed policies were read.
    pub source: String,
    /// Every table, command and phase checked.
    pub proofs: Vec<CommandProof>,
    /// Every failure.
    pub failures: Vec<Failure>,
}

impl Report {
    /// True when every check holds.
    pub fn is_proven(&self) -> bool {
        self.failures.is_empty()
    }

    /// One line per table (its commands and who the model lets run them), then every failure
    /// and a summary.
    pub fn to_text(&self) -> String {
        let mut out = format!("verify: the policies deployed by {}\n", self.source);
        let mut tables: Vec<&str> = Vec::new();
        for p in &self.proofs {
            if !tables.contains(&p.table.as_str()) {
                tables.push(&p.table);
            }
        }
        for table in &tables {
            let failed = self.failures.iter().any(|f| f.table == *table);
            let mut commands: Vec<String> = Vec::new();
            for p in self.proofs.iter().filter(|p| p.table == *table) {
                if p.phase == Phase::New && p.command == Command::Update {
                    continue;
                }
                let raw = if p.raw_sql_unchecked {
                    " [rights under raw SQL unchecked]"
                } else {
                    ""
                };
                commands.push(format!("{} {}{raw}", p.command, p.rights));
            }
            out.push_str(&format!(
                "{} {table}: {}\n",
                if failed { "FAIL" } else { "ok  " },
                commands.join("; ")
            ));
        }
        for f in self
            .failures
            .iter()
            .filter(|f| !tables.contains(&f.table.as_str()))
        {
            out.push_str(&format!("FAIL {}\n", f.table));
        }
        for f in &self.failures {
            let what = match (f.command, f.phase) {
                (Some(c), Some(Phase::New)) if c == Command::Update => {
                    format!("{} {c} (new rows)", f.table)
                }
                (Some(c), _) => format!("{} {c}", f.table),
                (None, _) => f.table.clone(),
            };
            out.push_str(&format!(
                "error[{}] {what}: {}\n",
                kind_code(f.kind),
                f.message
            ));
        }
        let checked = self.proofs.len();
        if self.is_proven() {
            out.push_str(&format!(
                "proven: {checked} checks over {} tables; the deployed policies admit exactly what the model grants, always inside the caller's tenant\n",
                tables.len()
            ));
        } else {
            out.push_str(&format!(
                "not proven: {} failure(s) in {checked} checks over {} tables\n",
                self.failures.len(),
                tables.len()
            ));
        }
        out
    }

    /// `{"proven", "source", "proofs": [...], "failures": [...]}`.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Json<'a> {
            proven: bool,
            #[serde(flatten)]
            report: &'a Report,
        }
        serde_json::to_string_pretty(&Json {
            proven: self.is_proven(),
            report: self,
        })
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// The kind as the text output names it (`boundary`, `widened`, ...).
fn kind_code(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::MissingTable => "missing-table",
        FailureKind::Boundary => "boundary",
        FailureKind::Widened => "widened",
        FailureKind::Narrowed => "narrowed",
        FailureKind::ExtraPolicy => "extra-policy",
        FailureKind::Unprovable => "unprovable",
    }
}

/// The model's rights to one command in words: the least role that reaches each way of
/// admitting rows (`viewer+`, `editor+ where created_by = current_user`, `nobody`).
pub fn rights_summary(access: &CommandAccess) -> String {
    if !access.granted {
        return "nobody".to_owned();
    }
    let mut parts: Vec<String> = Vec::new();
    let mut seen: Vec<RoleAccess> = Vec::new();
    for entry in &access.roles {
        if entry.access == RoleAccess::Denied || seen.contains(&entry.access) {
            continue;
        }
        seen.push(entry.access.clone());
        match &entry.access {
            RoleAccess::AllRows => {
                parts.push(format!("{}+", entry.role));
                break;
            }
            RoleAccess::Rows(conditions) => parts.push(format!(
                "{}+ where {}",
                entry.role,
                conditions
                    .iter()
                    .map(|c| c.to_dsl())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )),
            RoleAccess::Denied => {}
        }
    }
    if access.own_memberships {
        parts.push("own memberships".to_owned());
    }
    if parts.is_empty() {
        "nobody".to_owned()
    } else {
        parts.join(", ")
    }
}
