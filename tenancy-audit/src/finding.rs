//! Findings, the report that collects them, and the stable finding codes.

use std::fmt;

use serde::Serialize;

/// The stable finding codes (documented in `docs/audit.md`). A code never changes meaning.
pub mod codes {
    /// A table of the model does not exist in the `public` schema.
    pub const TABLE_MISSING: &str = "TA001";
    /// A tenant-owned table does not have row-level security enabled.
    pub const RLS_DISABLED: &str = "TA002";
    /// A tenant-owned table does not have row-level security forced (its owner bypasses it).
    pub const RLS_NOT_FORCED: &str = "TA003";
    /// A generated policy is missing.
    pub const POLICY_MISSING: &str = "TA010";
    /// A policy exists on a model table that the generator does not create.
    pub const POLICY_EXTRA: &str = "TA011";
    /// A policy exists but its kind, command, roles, USING or WITH CHECK differ.
    pub const POLICY_DIFFERS: &str = "TA012";
    /// The app role does not exist.
    pub const APP_ROLE_MISSING: &str = "TA020";
    /// The app role is a superuser.
    pub const APP_ROLE_SUPERUSER: &str = "TA021";
    /// The app role has BYPASSRLS.
    pub const APP_ROLE_BYPASSRLS: &str = "TA022";
    /// The app role owns an object of the database (or the database itself).
    pub const APP_ROLE_OWNS: &str = "TA023";
    /// The app role is a member (directly or not) of the owner role.
    pub const APP_ROLE_MEMBER_OF_OWNER: &str = "TA024";
    /// The app role holds TRUNCATE, REFERENCES or TRIGGER on a table.
    pub const APP_ROLE_PRIVILEGE: &str = "TA025";
    /// A role-level setting (`ALTER ROLE ... [IN DATABASE ...] SET`) applies to the app role
    /// or to a role it is a member of, in this database or in every database.
    pub const APP_ROLE_SETTING: &str = "TA026";
    /// The app role has a password expiry (`VALID UNTIL`, other than `infinity`).
    pub const APP_ROLE_VALID_UNTIL: &str = "TA027";
    /// The app role (directly, through a role or through PUBLIC) can create temporary tables
    /// in the database.
    pub const APP_ROLE_TEMPORARY: &str = "TA028";
    /// The app role can create objects in a schema.
    pub const APP_ROLE_CREATE_IN_SCHEMA: &str = "TA029";
    /// A foreign key between tenant-owned tables does not pair the tenant columns.
    pub const FOREIGN_KEY_WITHOUT_TENANT: &str = "TA030";
    /// A primary key or unique key/index of a scoped table does not contain `tenant_id`.
    pub const UNIQUE_WITHOUT_TENANT: &str = "TA031";
    /// A trigger the generator creates (the memberships table's keep-top-role rule) is
    /// missing or disabled.
    pub const TRIGGER_MISSING: &str = "TA032";
    /// The app role can execute the large-object functions (an unscoped store shared by every
    /// tenant).
    pub const APP_ROLE_LARGE_OBJECTS: &str = "TA033";
    /// A context helper the generator creates is missing.
    pub const HELPER_MISSING: &str = "TA040";
    /// A context helper is not STABLE.
    pub const HELPER_NOT_STABLE: &str = "TA041";
    /// A context helper has a `SET` clause (e.g. `SET search_path`), so it is not inlined.
    pub const HELPER_SET_CLAUSE: &str = "TA042";
    /// A SECURITY DEFINER function is not on the generated allowlist.
    pub const SECURITY_DEFINER_NOT_ALLOWED: &str = "TA043";
    /// A SECURITY DEFINER function is executable by PUBLIC.
    pub const SECURITY_DEFINER_PUBLIC: &str = "TA044";
    /// The database does not speak the context contract the generator writes
    /// (`context_contract()` or the key table is missing, or the contract differs).
    pub const CONTEXT_CONTRACT_OUTDATED: &str = "TA045";
    /// The context key table has no active key (`retired_at IS NULL`).
    pub const CONTEXT_KEY_MISSING: &str = "TA046";
    /// The audit could not check the context contract or the key table (the auditing role
    /// cannot execute `context_contract()` or read the key table), so TA045/TA046 are unknown.
    pub const CONTEXT_UNCHECKED: &str = "TA047";
    /// A view over tenant-owned tables runs with its owner's rights (no `security_invoker`),
    /// or a materialized view copies their rows outside row-level security.
    pub const VIEW_NOT_INVOKER: &str = "TA050";
    /// A scope column (`tenant_id`, `project_id`) is missing from a scoped table.
    pub const SCOPE_COLUMN_MISSING: &str = "TA060";
    /// A scope column accepts NULL.
    pub const SCOPE_COLUMN_NULLABLE: &str = "TA061";
    /// A scope column has a default (or is an identity/generated column).
    pub const SCOPE_COLUMN_DEFAULT: &str = "TA062";
    /// A table, view or foreign table that the policies do not declare, in a schema the app
    /// role can use, that the app role can read or write.
    pub const UNDECLARED_RELATION: &str = "TA080";
    /// The app role holds a table or column privilege on a generated table that the generated
    /// SQL does not grant.
    pub const UNGENERATED_GRANT: &str = "TA081";
    /// A column of a tenant-owned table (or of the audit table) collects planner statistics:
    /// its statistics target is not 0.
    pub const STATISTICS_COLLECTED: &str = "TA090";
    /// Planner statistics are stored for a column of a tenant-owned table (checked when the
    /// auditing role can read `pg_statistic`).
    pub const STATISTICS_STORED: &str = "TA091";
    /// An extended statistics object (`CREATE STATISTICS`) on a tenant-owned table.
    pub const EXTENDED_STATISTICS: &str = "TA092";
    /// Raw SQL in Rust sources touches a tenant-owned table outside the generated
    /// repositories (`tenancy audit --static`).
    pub const RAW_SQL_SCOPED_TABLE: &str = "TA070";
    /// Audited for the Citus target, but the database has no citus extension.
    pub const CITUS_MISSING: &str = "TA100";
    /// Citus: a table the generator distributes by `tenant_id` is local, a reference table, or
    /// distributed by another column.
    pub const CITUS_NOT_DISTRIBUTED: &str = "TA101";
    /// Citus: the tenants table or a global table is not a reference table.
    pub const CITUS_NOT_REFERENCE: &str = "TA102";
    /// Citus: a table distributed by `tenant_id` is outside the projects table's colocation
    /// group.
    pub const CITUS_NOT_COLOCATED: &str = "TA103";
    /// Citus: a shard's row-level security or policies differ from its table's on the
    /// coordinator.
    pub const CITUS_SHARD_POLICY: &str = "TA104";
    /// Citus: the shards' policies could not be read on the workers.
    pub const CITUS_UNCHECKED: &str = "TA105";
    /// Citus: a policy of a tenant-owned Citus table is restrictive or has no tenant check
    /// (Citus creates every policy on the shards as permissive).
    pub const CITUS_POLICY_NOT_FOLDED: &str = "TA106";
    /// Citus: the app role can choose its distributed transaction number on the coordinator
    /// (`assign_distributed_transaction_id`), to which the context seal is bound.
    pub const CITUS_TRANSACTION_NUMBER: &str = "TA107";
}

/// One thing wrong with the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable code, e.g. `TA002` (see [`codes`]).
    pub code: &'static str,
    /// The object concerned, e.g. `table tickets`, `policy tickets_select`.
    pub object: String,
    /// What is wrong, in one sentence.
    pub message: String,
}

impl Finding {
    /// A finding with the given code, object and message.
    pub fn new(code: &'static str, object: impl Into<String>, message: impl Into<String>) -> Self {
        Finding {
            code,
            object: object.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.code, self.object, self.message)
    }
}

/// The result of one audit: every finding, sorted by code then object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The findings (empty when the database matches the policies).
    pub findings: Vec<Finding>,
}

impl Report {
    /// True when there is no finding.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    /// True when at least one finding has `code`.
    pub fn has(&self, code: &str) -> bool {
        self.findings.iter().any(|f| f.code == code)
    }

    /// The findings with `code`.
    pub fn with_code<'r>(&'r self, code: &'r str) -> impl Iterator<Item = &'r Finding> + 'r {
        self.findings.iter().filter(move |f| f.code == code)
    }

    /// The distinct codes found, sorted.
    pub fn codes(&self) -> Vec<&'static str> {
        let mut codes: Vec<&'static str> = self.findings.iter().map(|f| f.code).collect();
        codes.sort_unstable();
        codes.dedup();
        codes
    }

    /// Human text: one line per finding, then a summary line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for finding in &self.findings {
            out.push_str(&finding.to_string());
            out.push('\n');
        }
        if self.is_clean() {
            out.push_str("audit clean: the database matches the policies\n");
        } else {
            out.push_str(&format!(
                "{} finding(s) ({})\n",
                self.findings.len(),
                self.codes().join(", ")
            ));
        }
        out
    }

    /// JSON for pipelines: `{"clean": bool, "findings": [{"code", "object", "message"}]}`.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "clean": self.is_clean(),
            "findings": self.findings,
        })
        .to_string()
    }

    /// Sorts the findings by code, then object, then message, and drops duplicates.
    pub(crate) fn normalise(&mut self) {
        self.findings
            .sort_by(|a, b| (a.code, &a.object, &a.message).cmp(&(b.code, &b.object, &b.message)));
        self.findings.dedup();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_json_name_every_finding() {
        let mut report = Report {
            findings: vec![
                Finding::new(codes::RLS_NOT_FORCED, "table b", "not forced"),
                Finding::new(codes::RLS_DISABLED, "table a", "not enabled"),
                Finding::new(codes::RLS_NOT_FORCED, "table a", "not forced"),
            ],
        };
        report.normalise();
        assert_eq!(
            report.to_text(),
            "TA002 table a: not enabled\nTA003 table a: not forced\nTA003 table b: not forced\n\
             3 finding(s) (TA002, TA003)\n"
        );
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("json");
        assert_eq!(json["clean"], false);
        assert_eq!(json["findings"][1]["code"], "TA003");
        assert_eq!(json["findings"][1]["object"], "table a");
        assert_eq!(json["findings"][1]["message"], "not forced");
    }
}
