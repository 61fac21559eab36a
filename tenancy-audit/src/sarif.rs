//! `tenancy audit --format sarif`: the findings as a SARIF 2.1.0 log (OASIS Static Analysis
//! Results Interchange Format), the format code-scanning dashboards read. One rule per `TA0xx`
//! code, with the meaning and the fix from docs/audit.md as help; a finding on a model table
//! points at the table's declaration in the policy files, a `--static` finding (TA070) at its
//! Rust source line.

use serde_json::{json, Value};

use crate::finding::{Finding, Report};

/// One `TA0xx` code as a SARIF rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The code (`TA002`).
    pub code: &'static str,
    /// A name in PascalCase (`RlsDisabled`).
    pub name: &'static str,
    /// One sentence.
    pub short: &'static str,
    /// What it means and how to fix it (Markdown, from docs/audit.md).
    pub help: &'static str,
}

/// Where a finding is, in a file of the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLocation {
    /// Path relative to the repository root (or as given), `/`-separated.
    pub uri: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, when known.
    pub column: Option<u32>,
}

/// The policy files of a model, to point findings at the declaration of their table.
#[derive(Debug, Clone, Default)]
pub struct PolicyIndex {
    tables: Vec<(String, SourceLocation)>,
}

impl PolicyIndex {
    /// Indexes `files` (path as it should appear in the log, text): every `table NAME` line.
    pub fn new(files: &[(String, String)]) -> PolicyIndex {
        let mut tables = Vec::new();
        for (uri, text) in files {
            for (index, line) in text.lines().enumerate() {
                let words: Vec<&str> = line
                    .split(|c: char| c.is_whitespace() || c == '{')
                    .filter(|w| !w.is_empty())
                    .collect();
                let Some(position) = words.iter().position(|w| *w == "table") else {
                    continue;
                };
                if line.trim_start().starts_with("//") || position > 1 {
                    continue;
                }
                if let Some(name) = words.get(position + 1) {
                    let column = line.find(name).map(|c| c as u32 + 1);
                    tables.push((
                        (*name).to_owned(),
                        SourceLocation {
                            uri: uri.replace('\\', "/"),
                            line: index as u32 + 1,
                            column,
                        },
                    ));
                }
            }
        }
        PolicyIndex { tables }
    }

    /// Where `finding` is: its table's declaration, or the `file:line:col` of a TA070 object.
    pub fn locate(&self, finding: &Finding) -> Option<SourceLocation> {
        if finding.code == crate::finding::codes::RAW_SQL_SCOPED_TABLE {
            return file_line_col(&finding.object);
        }
        let rest = finding
            .object
            .split_once(" on ")
            .map(|(_, table)| table)
            .or_else(|| finding.object.split_once(' ').map(|(_, rest)| rest))?;
        let name = rest.split_whitespace().next()?;
        let name = name.strip_prefix("public.").unwrap_or(name);
        let table = name.split('.').next()?;
        self.tables
            .iter()
            .find(|(t, _)| t == table)
            .map(|(_, location)| location.clone())
    }
}

/// `src/report.rs:41:17` -> the location.
fn file_line_col(object: &str) -> Option<SourceLocation> {
    let mut parts = object.rsplitn(3, ':');
    let column = parts.next()?.trim().parse().ok()?;
    let line = parts.next()?.trim().parse().ok()?;
    let uri = parts.next()?.trim().replace('\\', "/");
    Some(SourceLocation {
        uri,
        line,
        column: Some(column),
    })
}

/// The SARIF log of `report` (pretty-printed JSON).
pub fn to_sarif(report: &Report, index: &PolicyIndex) -> String {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|rule| {
            json!({
                "id": rule.code,
                "name": rule.name,
                "shortDescription": { "text": rule.short },
                "fullDescription": { "text": rule.help },
                "help": {
                    "text": format!("{} See docs/audit.md, {}.", rule.help, rule.code),
                    "markdown": format!("{}\n\nSee `docs/audit.md`, {}.", rule.help, rule.code),
                },
                "defaultConfiguration": { "level": "error" },
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|finding| {
            let mut result = json!({
                "ruleId": finding.code,
                "level": "error",
                "message": { "text": format!("{}: {}", finding.object, finding.message) },
            });
            if let Some(index) = RULES.iter().position(|r| r.code == finding.code) {
                result["ruleIndex"] = json!(index);
            }
            let logical = json!([{ "fullyQualifiedName": finding.object }]);
            let location = match index.locate(finding) {
                Some(at) => {
                    let mut region = json!({ "startLine": at.line });
                    if let Some(column) = at.column {
                        region["startColumn"] = json!(column);
                    }
                    json!({
                        "physicalLocation": {
                            "artifactLocation": { "uri": at.uri },
                            "region": region,
                        },
                        "logicalLocations": logical,
                    })
                }
                None => json!({ "logicalLocations": logical }),
            };
            result["locations"] = json!([location]);
            result
        })
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "tenancy audit",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }
            },
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&log).unwrap_or_default()
}

/// Every `TAxxx` code, in code order (generated from `finding::codes` and the table of
/// docs/audit.md; `tests/sarif.rs` checks that every code has its rule).
pub const RULES: &[Rule] = &[
    Rule {
        code: "TA001",
        name: "TableMissing",
        short: "A table of the model does not exist in the `public` schema.",
        help: "A table of the model does not exist in schema `public` (its other checks are skipped).",
    },
    Rule {
        code: "TA002",
        name: "RlsDisabled",
        short: "A tenant-owned table does not have row-level security enabled.",
        help: "A tenant-owned table (core or scoped) does not have row-level security **enabled**.",
    },
    Rule {
        code: "TA003",
        name: "RlsNotForced",
        short: "A tenant-owned table does not have row-level security forced (its owner bypasses it).",
        help: "A tenant-owned table does not have row-level security **forced** (its owner bypasses it).",
    },
    Rule {
        code: "TA010",
        name: "PolicyMissing",
        short: "A generated policy is missing.",
        help: "A generated policy is missing.",
    },
    Rule {
        code: "TA011",
        name: "PolicyExtra",
        short: "A policy exists on a model table that the generator does not create.",
        help: "A policy on a model table that the generator does not create (an extra permissive policy widens access).",
    },
    Rule {
        code: "TA012",
        name: "PolicyDiffers",
        short: "A policy exists but its kind, command, roles, USING or WITH CHECK differ.",
        help: "Same name, different definition: kind (permissive/restrictive), command, roles, `USING` or `WITH CHECK`; the message shows expected and found.",
    },
    Rule {
        code: "TA020",
        name: "AppRoleMissing",
        short: "The app role does not exist.",
        help: "The app role does not exist (the other role checks are skipped).",
    },
    Rule {
        code: "TA021",
        name: "AppRoleSuperuser",
        short: "The app role is a superuser.",
        help: "The app role is a superuser. (TA025 is not reported then: a superuser holds everything.)",
    },
    Rule {
        code: "TA022",
        name: "AppRoleBypassrls",
        short: "The app role has BYPASSRLS.",
        help: "The app role has `BYPASSRLS`.",
    },
    Rule {
        code: "TA023",
        name: "AppRoleOwns",
        short: "The app role owns an object of the database (or the database itself).",
        help: "The app role owns an object of the database: table, view, sequence, function, schema, type, or the database itself.",
    },
    Rule {
        code: "TA024",
        name: "AppRoleMemberOfOwner",
        short: "The app role is a member (directly or not) of the owner role.",
        help: "The app role is a member of the owner role, directly or through other roles.",
    },
    Rule {
        code: "TA025",
        name: "AppRolePrivilege",
        short: "The app role holds TRUNCATE, REFERENCES or TRIGGER on a table.",
        help: "The app role holds `TRUNCATE`, `REFERENCES` or `TRIGGER` on a table or view of a user schema (directly, through a role or through PUBLIC).",
    },
    Rule {
        code: "TA026",
        name: "AppRoleSetting",
        short: "A role-level setting (`ALTER ROLE ... [IN DATABASE ...] SET`) applies to the app role or to a role it is a member of, in this database or in every database.",
        help: "A role-level setting applies to the app role or to a role it is a member of (directly or through other roles), in this database (`ALTER ROLE r IN DATABASE d SET ...`) or in every database (`ALTER ROLE r SET ...`): rows of `pg_db_role_setting`. The generator sets none, and the app role can plant them on itself (`statement_timeout = 1` or `default_transaction_read_only = on` stop the service at the next login; `search_path` redirects unqualified names). The message names the role, the setting and its scope. Fix: `ALTER ROLE r [IN DATABASE d] RESET name` (or `RESET ALL`); keep operational settings on a role the app role is not a member of, or set them per database with `ALTER DATABASE`.",
    },
    Rule {
        code: "TA027",
        name: "AppRoleValidUntil",
        short: "The app role has a password expiry (`VALID UNTIL`, other than `infinity`).",
        help: "The app role has a password expiry: `rolvaliduntil` is set and not `infinity` (the message shows it). Logins fail after that time; someone set or changed `VALID UNTIL`. Fix: `ALTER ROLE A VALID UNTIL 'infinity'` and rotate the password if you did not set it. (A changed *password* leaves no trace in the catalogs that could be compared without a baseline; the audit cannot detect it.)",
    },
    Rule {
        code: "TA028",
        name: "AppRoleTemporary",
        short: "The app role (directly, through a role or through PUBLIC) can create temporary tables in the database.",
        help: "The app role can create temporary tables in the audited database (`has_database_privilege(A, current_database(), 'TEMPORARY')`: directly, through a role, or through PUBLIC, which the message says). A temporary table named like a tenant table shadows it (`pg_temp` is searched first) for the rest of a pooled session. Fix: `REVOKE TEMPORARY ON DATABASE d FROM PUBLIC` (the generated migrations do) and from every role the app role inherits. Note that `CREATE DATABASE ... TEMPLATE t` does **not** copy the template's database ACL: a database copied from a migrated template needs the `REVOKE` again.",
    },
    Rule {
        code: "TA029",
        name: "AppRoleCreateInSchema",
        short: "The app role can create objects in a schema.",
        help: "The app role can create objects in schema `S` (`has_schema_privilege(A, S, 'CREATE')`, any user schema). Functions and operators it creates can shadow the names the policies and helpers resolve, and tables it creates are outside the model. Fix: `REVOKE CREATE ON SCHEMA S FROM PUBLIC` (the generated migrations do, for `public`) and from the app role and every role it inherits.",
    },
    Rule {
        code: "TA030",
        name: "ForeignKeyWithoutTenant",
        short: "A foreign key between tenant-owned tables does not pair the tenant columns.",
        help: "A foreign key between two tenant-owned tables does not pair the referencing table's tenant column with the referenced table's (`tenant_id`, or `id` on the tenants table): a row could point at another tenant's row, and FK checks ignore RLS.",
    },
    Rule {
        code: "TA031",
        name: "UniqueWithoutTenant",
        short: "A primary key or unique key/index of a scoped table does not contain `tenant_id`.",
        help: "A primary key, unique constraint or unique index of a projects, memberships or scoped table does not contain `tenant_id`: uniqueness is checked across tenants and leaks existence.",
    },
    Rule {
        code: "TA032",
        name: "TriggerMissing",
        short: "A trigger the generator creates (the memberships table's keep-top-role rule) is missing or disabled.",
        help: "A trigger the generated SQL creates is missing or disabled (`tgenabled = 'D'`). That is the memberships table's `<memberships>_keep_top_role` constraint trigger, which refuses a transaction that leaves a project without a member of the top role (docs/security.md, \"Authority inside the database\"), and each table's `<table>_stamp` trigger, which writes its stamped columns (docs/dsl.md, \"Stamped columns\"; without it the app role writes any author into `created_by`). Fix: apply the generated migrations (`0004_core_authority.sql` adds it to an older core), or `ALTER TABLE T ENABLE TRIGGER N`.",
    },
    Rule {
        code: "TA033",
        name: "AppRoleLargeObjects",
        short: "The app role can execute the large-object functions (an unscoped store shared by every tenant).",
        help: "The app role can execute large-object functions (`lo_*`, `loread`, `lowrite`; the server-side `lo_import`/`lo_export` are not counted), directly, through a role or through PUBLIC (PostgreSQL's default); the message lists them. Every tenant's requests run as the same login role, which owns every large object it creates: an unscoped store where one tenant lists, reads and overwrites another's objects. Fix: apply the generated migrations as a superuser (the core migration, or `0004_core_authority.sql` on an older core, revokes them from PUBLIC and grants them to the owner role; run by another role it only warns).",
    },
    Rule {
        code: "TA040",
        name: "HelperMissing",
        short: "A context helper the generator creates is missing.",
        help: "A function the generator creates in the helper schema is missing: a context helper (`current_tenant_id`, `current_user_id`, `project_ids`) or, on plain PostgreSQL, an object of the signed context (`context_claims`, `install_context`, `install_context_key`, `context_contract`).",
    },
    Rule {
        code: "TA041",
        name: "HelperNotStable",
        short: "A context helper is not STABLE.",
        help: "A generated function of the helper schema does not have the volatility the generator declares. For the helpers and `context_claims` that is `STABLE` (VOLATILE helpers are re-run per row; IMMUTABLE ones may be constant-folded across contexts); `install_context` and `install_context_key` are `VOLATILE`, `context_contract` is `IMMUTABLE`. The expected volatility is read from the generated `CREATE FUNCTION` text.",
    },
    Rule {
        code: "TA042",
        name: "HelperSetClause",
        short: "A context helper has a `SET` clause (e.g. `SET search_path`), so it is not inlined.",
        help: "A generated function of the helper schema has a `SET` clause (for example `SET search_path = ...`) that the generator does not write: PostgreSQL cannot inline such a function, so every statement pays a call with a configuration save and restore. The generated helpers and `context_claims` have none; their bodies are schema-qualified instead (see docs/context.md). `install_context_key` has one by design (an operator function, never called per statement) and is not reported.",
    },
    Rule {
        code: "TA043",
        name: "SecurityDefinerNotAllowed",
        short: "A SECURITY DEFINER function is not on the generated allowlist.",
        help: "A `SECURITY DEFINER` function (outside extensions) that is not on the generated allowlist. The allowlist is every function the generated SQL declares `SECURITY DEFINER`, by schema and name: on plain PostgreSQL `tenancy.context_claims` and `tenancy.install_context` (they read the owner-only key table); on Citus none.",
    },
    Rule {
        code: "TA044",
        name: "SecurityDefinerPublic",
        short: "A SECURITY DEFINER function is executable by PUBLIC.",
        help: "A `SECURITY DEFINER` function is executable by PUBLIC (also when allowlisted).",
    },
    Rule {
        code: "TA045",
        name: "ContextContractOutdated",
        short: "The database does not speak the context contract the generator writes (`context_contract()` or the key table is missing, or the contract differs).",
        help: "The database does not speak the context contract the generator writes for the target (`tenancy_core::sql::context_contract`, 3 on plain PostgreSQL): `context_contract()` is missing, cannot be called, or returns another number; or the key table is missing. The message says \"the database has not been upgraded to the signed context: apply the generated migrations\" (`tenancy migrate apply`; `0003_core_context_v3.sql` upgrades a contract-2 core in place). Only checked when the generator creates these objects (not on Citus).",
    },
    Rule {
        code: "TA046",
        name: "ContextKeyMissing",
        short: "The context key table has no active key (`retired_at IS NULL`).",
        help: "The key table has no active key (`retired_at IS NULL`): \"no active context key: run `tenancy key install`\". The runtime cannot install a context, so every scoped transaction is refused.",
    },
    Rule {
        code: "TA047",
        name: "ContextUnchecked",
        short: "The audit could not check the context contract or the key table (the auditing role cannot execute `context_contract()` or read the key table), so TA045/TA046 are unknown.",
        help: "The audit could not check TA045/TA046: the auditing role cannot read the key table or execute `context_contract()` (the key table is owner-only by design). Audit as the owner role or a superuser.",
    },
    Rule {
        code: "TA050",
        name: "ViewNotInvoker",
        short: "A view over tenant-owned tables runs with its owner's rights (no `security_invoker`), or a materialized view copies their rows outside row-level security.",
        help: "A view that reads tenant-owned tables, directly or through other views, without `security_invoker = true`; every materialized view over them (it stores rows outside RLS).",
    },
    Rule {
        code: "TA060",
        name: "ScopeColumnMissing",
        short: "A scope column (`tenant_id`, `project_id`) is missing from a scoped table.",
        help: "A scope column (`tenant_id`, `project_id`) is missing from a table that should have it.",
    },
    Rule {
        code: "TA061",
        name: "ScopeColumnNullable",
        short: "A scope column accepts NULL.",
        help: "A scope column accepts NULL.",
    },
    Rule {
        code: "TA062",
        name: "ScopeColumnDefault",
        short: "A scope column has a default (or is an identity/generated column).",
        help: "A scope column has a default, or is an identity or generated column (a row must name its scope).",
    },
    Rule {
        code: "TA070",
        name: "RawSqlScopedTable",
        short: "Raw SQL in Rust sources touches a tenant-owned table outside the generated repositories (`tenancy audit --static`).",
        help: "(`--static` only) Raw SQL passed to sqlx touches a tenant-owned table outside the generated repositories.",
    },
    Rule {
        code: "TA080",
        name: "UndeclaredRelation",
        short: "A table, view or foreign table that the policies do not declare, in a schema the app role can use, that the app role can read or write.",
        help: "A relation the policies do not declare (not a model table in `public`, not a table the generated SQL creates such as `tenancy.audit_log` and `tenancy.context_keys`), in a schema the app role has `USAGE` on (`pg_catalog`, `information_schema`, `pg_*` and members of extensions excluded), on which the app role holds `SELECT`, `INSERT`, `UPDATE` or `DELETE` (on the table or on any column; the message lists them). Rows there have no row-level security from the policies. Fix: drop it, move it to a schema the app role cannot use, or revoke the grants; if the application needs it, declare it in the policies.",
    },
    Rule {
        code: "TA081",
        name: "UngeneratedGrant",
        short: "The app role holds a table or column privilege on a generated table that the generated SQL does not grant.",
        help: "On a table the generated SQL creates (the model's tables and the helper schema's tables), the app role holds a privilege the generated `GRANT` statements do not give it (directly, through a role or through PUBLIC): `SELECT`/`INSERT`/`UPDATE`/`DELETE` on the whole table (object `table T`; the message says when the generator grants it on some columns only), or `SELECT`/`INSERT`/`UPDATE`/`REFERENCES` on a column (object `column T.C`, e.g. `UPDATE (tenant_id)`, which lets a row move to another tenant's scope if a policy ever allows it). The expected privileges are parsed from the generated SQL. Fix: `REVOKE priv [(column)] ON T FROM grantee`.",
    },
    Rule {
        code: "TA090",
        name: "StatisticsCollected",
        short: "A column of a tenant-owned table (or of the audit table) collects planner statistics: its statistics target is not 0.",
        help: "A column of a tenant-owned table (every model table but `global` ones) or of the audit table collects planner statistics: its statistics target is not 0. After the next ANALYZE the planner estimates leakproof operators from every tenant's values, and `EXPLAIN` prints the estimates to the app role (a binary search over `tenant_id <= X` recovers every tenant's UUID; docs/security.md, \"Planner statistics\"). Fix: `ALTER TABLE T ALTER COLUMN C SET STATISTICS 0`, then remove what was stored (TA091).",
    },
    Rule {
        code: "TA091",
        name: "StatisticsStored",
        short: "Planner statistics are stored for a column of a tenant-owned table (checked when the auditing role can read `pg_statistic`).",
        help: "Planner statistics are stored (`pg_statistic`) for a column of such a table. Checked only when the auditing role can read `pg_statistic` (a superuser); otherwise not reported. Fix: on PostgreSQL 18 `SELECT pg_clear_attribute_stats('schema', 'T', 'C', false)` as the owner; before 18 a superuser runs `DELETE FROM pg_catalog.pg_statistic WHERE starelid = 'T'::regclass`. The statistics upgrade `*_core_statistics.sql` does this when run as a superuser (or the owner on 18).",
    },
    Rule {
        code: "TA092",
        name: "ExtendedStatistics",
        short: "An extended statistics object (`CREATE STATISTICS`) on a tenant-owned table.",
        help: "An extended statistics object (`CREATE STATISTICS`) on such a table: its most-common-value lists and dependencies are computed over every tenant's rows and feed the estimates `EXPLAIN` prints. Fix: `DROP STATISTICS S.N`.",
    },
    Rule {
        code: "TA100",
        name: "CitusMissing",
        short: "Audited for the Citus target, but the database has no citus extension.",
        help: "(`--target citus`, or detected) The audit ran for the Citus target but the database has no `citus` extension (the other Citus checks are skipped). Fix: audit the Citus coordinator's database, or audit with `--target postgres`.",
    },
    Rule {
        code: "TA101",
        name: "CitusNotDistributed",
        short: "Citus: a table the generator distributes by `tenant_id` is local, a reference table, or distributed by another column.",
        help: "A table the Citus target distributes by `tenant_id` (projects, memberships, every scoped table, the audit table) is not hash-distributed by `tenant_id`: a local table keeps its rows on the coordinator (no routing, and its policies are the coordinator's alone), a reference table copies every tenant's rows to every node, another distribution column spreads one tenant over every worker and no query that names its tenant is routed to one shard. Fix: `create_distributed_table('T', 'tenant_id', colocate_with => 'public.projects')` (what the generated migrations do; an incremental migration that creates a table does it too).",
    },
    Rule {
        code: "TA102",
        name: "CitusNotReference",
        short: "Citus: the tenants table or a global table is not a reference table.",
        help: "The tenants table or a `global` table is not a Citus reference table: its unique keys (a global slug) are not enforced across the cluster and the distributed tables' foreign keys to it cannot exist. Fix: `create_reference_table('T')`.",
    },
    Rule {
        code: "TA103",
        name: "CitusNotColocated",
        short: "Citus: a table distributed by `tenant_id` is outside the projects table's colocation group.",
        help: "A table distributed by `tenant_id` is not in the projects table's colocation group: a tenant's rows of it live on other workers than the rest of the tenant, so one tenant's joins and transactions span workers, and `tenancy citus isolate-tenant` leaves them behind. Fix: `update_distributed_table_colocation('T', colocate_with => 'public.projects')`.",
    },
    Rule {
        code: "TA104",
        name: "CitusShardPolicy",
        short: "Citus: a shard's row-level security or policies differ from its table's on the coordinator.",
        help: "On a worker, a shard of a tenant-owned table does not have row-level security enabled and forced, or its policies (name, command, kind, roles, `USING`, `WITH CHECK`) differ from the table's on the coordinator: the workers evaluate the shard's policies. The message shows both. Fix: re-create the policies on the coordinator (Citus propagates them to the shards), or repair the shard on its worker.",
    },
    Rule {
        code: "TA105",
        name: "CitusUnchecked",
        short: "Citus: the shards' policies could not be read on the workers.",
        help: "The audit could not read a shard's policies with `run_command_on_shards` (the auditing role must be able to connect to the workers: audit as a superuser). TA104 is not checked for that table.",
    },
    Rule {
        code: "TA106",
        name: "CitusPolicyNotFolded",
        short: "Citus: a policy of a tenant-owned Citus table is restrictive or has no tenant check.",
        help: "A policy of a tenant-owned Citus table is `RESTRICTIVE`, or a permissive one has no tenant check (`<helper schema>.current_tenant_id()`) in its `USING` or `WITH CHECK`. Citus creates every policy on the shards as PERMISSIVE, so a restrictive tenant boundary is OR-ed with the rules there and every row it matches goes through (citus#7182); the Citus target ANDs the tenant check into every policy instead. Typical cause: a schema generated for PostgreSQL and distributed by hand. Fix: generate with `--target citus`.",
    },
    Rule {
        code: "TA107",
        name: "CitusTransactionNumber",
        short: "Citus: the app role can choose its distributed transaction number on the coordinator.",
        help: "The app role can execute `assign_distributed_transaction_id` on the coordinator (directly, through a role or through PUBLIC, Citus's default). The signed context's seal is bound to the distributed transaction's number (docs/citus.md), so a session that kept a seal of one of its own earlier transactions could re-assign that number and replay it. Fix: as a superuser on the coordinator only, `REVOKE EXECUTE ON FUNCTION pg_catalog.assign_distributed_transaction_id(integer, bigint, timestamptz) FROM PUBLIC` (the generated core migration does; the workers keep it, the coordinator calls it there as the connecting role).",
    },
];
