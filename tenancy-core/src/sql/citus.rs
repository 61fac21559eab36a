//! The Citus target (docs/citus.md): what a distributed schema needs beyond the policies.
//!
//! - [`citus_problems`]: the validator. A model Citus cannot distribute is refused with the
//!   change that fixes it.
//! - [`core_distribution`] / [`tables_distribution`]: the end of `0001`/`0002`. The tenants
//!   table is a reference table (so its unique keys hold cluster-wide), every other
//!   tenant-owned table is distributed by `tenant_id`, all in the projects table's colocation
//!   group; global tables become reference tables. Foreign keys are created only after both
//!   sides are Citus tables (the tables are created without them on this target), so Citus
//!   never converts a table to a local one on the way. `on delete set null` between
//!   tenant-owned tables (which Citus refuses on a key holding the distribution column, even in
//!   PostgreSQL 15's column-list form) is a trigger on the referenced table's shards.
//! - [`signed_context_objects`]: the signed context of docs/context.md, made to hold on the
//!   workers. The key table is a plain table on every node (a Citus table cannot be read from a
//!   function running on a shard); `install_context` starts the distributed transaction, seals
//!   the claims to its global pid and transaction number (both the same on every node taking
//!   part), and sends the seal to the workers with `SET LOCAL` under
//!   `citus.propagate_set_commands = 'local'`. Every node's `context_claims()` checks the seal
//!   against the key and its own view of the distributed transaction.

use std::fmt;

use super::ident::{fit_identifier, ident, literal};
use super::security::{Policy, PolicyKind};
use super::signed::CONTEXT_CONTRACT;
use super::tables::{all_foreign_keys, constraints, on_delete_clause, EffectiveForeignKey};
use super::Target;
use crate::model::{Command, Model, OnDelete, Table, TableKind, TABLE_SCHEMA, TENANT_COLUMN};

/// The reference table `install_context` reads to start the distributed transaction.
pub(super) const ANCHOR_TABLE: &str = "citus_anchor";

/// Why a model cannot be distributed on Citus, and the change that fixes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CitusProblem {
    /// The table the problem is in.
    pub table: String,
    /// What Citus cannot do with it.
    pub message: String,
    /// The change to the policies that makes it distributable.
    pub help: String,
}

impl fmt::Display for CitusProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "table `{}` cannot be distributed on Citus: {}\n  = help: {}",
            self.table, self.message, self.help
        )
    }
}

/// Every reason `model` cannot be distributed on Citus (empty when it can).
pub fn citus_problems(model: &Model) -> Vec<CitusProblem> {
    let mut out = Vec::new();
    if model.adoption.is_some() {
        out.push(CitusProblem {
            table: "(adoption)".to_owned(),
            message: "the Citus target does not adopt legacy tables".to_owned(),
            help: "adopt on PostgreSQL (`--target postgres`) first, then distribute the adopted \
                   schema (docs/citus.md)"
                .to_owned(),
        });
    }
    for table in &model.tables {
        if table.kind == TableKind::Global {
            out.extend(global_references(model, table));
        }
        out.extend(set_null_rights(model, table));
        for column in table.columns.iter().filter(|c| c.per_tenant) {
            out.push(CitusProblem {
                table: table.name.clone(),
                message: format!(
                    "`{} ... per tenant` keeps each tenant's vector model in a settings table \
                     that the dimension trigger reads, which Citus workers cannot reach",
                    column.name
                ),
                help: format!(
                    "give `{}` a fixed dimension (drop `per tenant`) for the Citus target",
                    column.name
                ),
            });
        }
    }
    out
}

/// `on delete set null` between distributed tables is a trigger running with the deleting
/// caller's rights ([`set_null_trigger`]): every role that may delete a referenced row must
/// also read and update the reference column of every referencing row of its projects, or its
/// deletes would be refused whenever a row points at the one it deletes.
fn set_null_rights(model: &Model, table: &Table) -> Vec<CitusProblem> {
    let rank = |role: &str| model.role_rank(role).unwrap_or(usize::MAX);
    let mut out = Vec::new();
    for fk in all_foreign_keys(model, table) {
        let Some(parent) = model.table(&fk.parent) else {
            continue;
        };
        if fk.on_delete != OnDelete::SetNull || !is_distributed(table) || !is_distributed(parent) {
            continue;
        }
        let columns = fk.declared_columns.join(", ");
        for delete in parent.rules.iter().filter(|r| r.command == Command::Delete) {
            let deleter = rank(&delete.min_role);
            let allowed = |command: Command| {
                table.rules.iter().any(|r| {
                    r.command == command
                        && r.condition.is_none()
                        && rank(&r.min_role) <= deleter
                        && r.columns
                            .as_ref()
                            .is_none_or(|cols| fk.declared_columns.iter().all(|c| cols.contains(c)))
                })
            };
            if allowed(Command::Select) && allowed(Command::Update) {
                continue;
            }
            out.push(CitusProblem {
                table: table.name.clone(),
                message: format!(
                    "`{columns} references {}(..) on delete set null`: on Citus the reference is \
                     cleared by a trigger with the deleting caller's rights, and `{}` may delete \
                     `{}` rows but not read and update `{columns}` of every `{}` row of its \
                     projects",
                    fk.parent, delete.min_role, fk.parent, table.name
                ),
                help: format!(
                    "allow `{}` to select and `update ({columns})` on `{}` without a condition, or \
                     use `on delete cascade`",
                    delete.min_role, table.name
                ),
            });
        }
    }
    out
}

/// A global table is a reference table: it may reference only other reference tables (global
/// tables and the tenants table).
fn global_references(model: &Model, table: &Table) -> Vec<CitusProblem> {
    table
        .foreign_keys
        .iter()
        .filter(|fk| {
            model.table(&fk.table).is_some_and(|parent| {
                !matches!(parent.kind, TableKind::Global | TableKind::Tenants)
            })
        })
        .map(|fk| CitusProblem {
            table: table.name.clone(),
            message: format!(
                "it references `{}`, a table distributed by tenant, and a reference table (what a \
                 global table becomes) cannot reference a distributed table",
                fk.table
            ),
            help: format!(
                "make `{}` a scoped table, or remove its reference to `{}`",
                table.name, fk.table
            ),
        })
        .collect()
}

/// The policies of a tenant-owned table on Citus. Citus creates every policy on the workers
/// and the shards as PERMISSIVE: `AS RESTRICTIVE` is lost (checked on Citus 13.2, the cause of
/// citus#7182), so a restrictive tenant boundary would be OR-ed with the permissive rules and
/// let every row of the tenant through. Here each command's permissive policy carries the
/// tenant check (and, on the memberships table, the role ceiling) itself, AND-ed with its
/// rule: the same rows as the PostgreSQL target's restrictive + permissive pair.
pub(super) fn folded_policies(
    model: &Model,
    table: &Table,
    tenant_check: &str,
    rule_expression: impl Fn(Command) -> Option<String>,
) -> Vec<Policy> {
    let name = ident(&table.name);
    let app = ident(&model.settings.app_role);
    // The reader role of a masked view (if any) reads through the select policy too.
    let readers = super::masked::select_policy_roles(model, table);
    let ceiling = super::authority::ceiling_expression(model, table, Target::Citus);
    let mut out = Vec::new();
    for command in Command::ALL {
        let Some(expression) = rule_expression(command) else {
            continue;
        };
        let mut parts = vec![tenant_check.to_owned(), format!("({expression})")];
        if let (Some(ceiling), false) = (&ceiling, command == Command::Select) {
            parts.push(format!("({ceiling})"));
        }
        out.push(Policy::for_command(
            fit_identifier(&format!("{}_{}", table.name, command.keyword())),
            &name,
            PolicyKind::Permissive,
            command,
            if command == Command::Select {
                &readers
            } else {
                &app
            },
            &parts.join(" AND "),
        ));
    }
    out
}

/// `'public.name'`: a table name as a regclass literal.
fn regclass(schema: &str, name: &str) -> String {
    literal(&format!("{}.{}", ident(schema), ident(name)))
}

/// The settings every Citus migration starts with: DDL inside the migration's transaction runs
/// over one connection per worker (so later statements see the shards created before them),
/// and the stamp triggers may exist on distributed tables (they read only the row and the
/// verified context, never another table).
pub(super) fn migration_settings() -> String {
    "\n-- Citus: one connection per worker for the DDL of this transaction, so every statement\n\
     -- sees the shards created before it; triggers on distributed tables (the stamp triggers\n\
     -- read only the row and the verified context, never another table).\n\
     SET LOCAL citus.multi_shard_modify_mode = 'sequential';\n\
     SET LOCAL citus.enable_unsafe_triggers = on;\n"
        .to_owned()
}

/// The table every distributed table is co-located with: the projects table, the first one
/// distributed (`colocate_with => 'none'` starts the group).
fn colocation_anchor(model: &Model) -> Option<String> {
    model
        .core_table(TableKind::Projects)
        .map(|t| regclass(TABLE_SCHEMA, &t.name))
}

/// `create_distributed_table` of one tenant-owned table by `tenant_id`, co-located with the
/// projects table.
fn distribute(model: &Model, schema: &str, table: &str) -> String {
    let colocate = match colocation_anchor(model) {
        Some(anchor) if regclass(schema, table) != anchor => anchor,
        _ => "'none'".to_owned(),
    };
    format!(
        "SELECT pg_catalog.create_distributed_table({}, {}, colocate_with => {colocate});\n",
        regclass(schema, table),
        literal(TENANT_COLUMN)
    )
}

/// Whether `table` is distributed by `tenant_id` on Citus (every tenant-owned table but the
/// tenants table, which is a reference table).
pub(crate) fn is_distributed(table: &Table) -> bool {
    table.kind.is_tenant_owned() && table.kind != TableKind::Tenants
}

/// A constraint of a table as the Citus target creates it.
pub(super) struct CitusConstraint {
    /// The constraint's name.
    pub name: String,
    /// What follows `CONSTRAINT name` (a SET NULL between distributed tables without its
    /// action).
    pub definition: String,
    /// For an emulated `on delete set null`: the statements creating its trigger and the ones
    /// dropping it.
    pub set_null: Option<(String, String)>,
}

/// The primary, unique and foreign keys of `table` as the Citus target creates them (see
/// [`set_null_trigger`] for `on delete set null` between distributed tables).
pub(super) fn citus_constraints(model: &Model, table: &Table) -> Vec<CitusConstraint> {
    let mut effective = all_foreign_keys(model, table).into_iter();
    constraints(model, table)
        .into_iter()
        .map(|constraint| {
            if !constraint.definition.starts_with("FOREIGN KEY") {
                return CitusConstraint {
                    name: constraint.name,
                    definition: constraint.definition,
                    set_null: None,
                };
            }
            let Some(fk) = effective.next() else {
                return CitusConstraint {
                    name: constraint.name,
                    definition: constraint.definition,
                    set_null: None,
                };
            };
            let emulated = fk.on_delete == OnDelete::SetNull
                && is_distributed(table)
                && model.table(&fk.parent).is_some_and(is_distributed);
            if !emulated {
                return CitusConstraint {
                    name: constraint.name,
                    definition: constraint.definition,
                    set_null: None,
                };
            }
            let clause = on_delete_clause(fk.on_delete, &fk.declared_columns);
            CitusConstraint {
                name: constraint.name,
                definition: constraint
                    .definition
                    .strip_suffix(&clause)
                    .unwrap_or(&constraint.definition)
                    .to_owned(),
                set_null: Some(set_null_trigger(model, table, &fk)),
            }
        })
        .collect()
}

/// The foreign keys of `table`, added once both sides are Citus tables. A key with
/// `on delete set null` between distributed tables is created without the action, and a
/// trigger on the referenced table clears the reference instead (see [`set_null_trigger`]).
fn foreign_keys(model: &Model, table: &Table) -> String {
    let mut out = String::new();
    let mut triggers = String::new();
    for constraint in citus_constraints(model, table)
        .into_iter()
        .filter(|c| c.definition.starts_with("FOREIGN KEY"))
    {
        if let Some((create, _)) = &constraint.set_null {
            triggers.push_str(create);
        }
        out.push_str(&format!(
            "ALTER TABLE {} ADD CONSTRAINT {} {};\n",
            ident(&table.name),
            ident(&constraint.name),
            constraint.definition
        ));
    }
    out.push_str(&triggers);
    out
}

/// `on delete set null` of a foreign key between two distributed tables, as a trigger. Citus
/// refuses SET NULL (also PostgreSQL 15's `SET NULL (column)`) on a foreign key that contains
/// the distribution column, and every key between tenant-owned tables does. The key is created
/// without the action (so a row still pointing at a deleted one is refused at the end of the
/// statement) and a BEFORE DELETE trigger on the referenced table clears the declared columns
/// of the referencing rows first. It runs on the referenced row's shard and updates the
/// co-located shard of the same tenant (a local task, which Citus allows in a trigger), with
/// the deleting caller's rights (under a cascade, the owner's, as PostgreSQL's own action): a
/// caller who may delete the row but not clear a reference it cannot see or update is refused
/// by the key, never silently left with a dangling reference.
fn set_null_trigger(model: &Model, table: &Table, fk: &EffectiveForeignKey) -> (String, String) {
    let schema = ident(&model.settings.helper_schema);
    let owner = ident(&model.settings.owner_role);
    let base = fit_identifier(&format!(
        "{}_{}_set_null",
        table.name,
        fk.declared_columns.join("_")
    ));
    let function = format!("{schema}.{}", ident(&base));
    let child = format!("{}.{}", ident(TABLE_SCHEMA), ident(&table.name));
    let parent = format!("{}.{}", ident(TABLE_SCHEMA), ident(&fk.parent));
    let set = fk
        .declared_columns
        .iter()
        .map(|c| format!("{} = NULL", ident(c)))
        .collect::<Vec<_>>()
        .join(", ");
    let matches = fk
        .local
        .iter()
        .zip(&fk.remote)
        .map(|(l, r)| format!("{} = OLD.{}", ident(l), ident(r)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let drop = format!(
        "DROP TRIGGER IF EXISTS {trigger} ON {parent};\nDROP FUNCTION IF EXISTS {function}();\n",
        trigger = ident(&base)
    );
    let create = format!(
        "\n-- on delete set null ({child} -> {parent}), as a trigger: Citus refuses the action on a\n\
         -- key that holds the distribution column (docs/citus.md).\n\
         CREATE OR REPLACE FUNCTION {function}()\n\
         \x20 RETURNS trigger\n\
         \x20 LANGUAGE plpgsql\n\
         \x20 SET search_path = pg_catalog, pg_temp\n\
         AS $$\n\
         BEGIN\n\
         \x20 UPDATE {child} SET {set}\n\
         \x20   WHERE {matches};\n\
         \x20 RETURN OLD;\n\
         END\n\
         $$;\n\
         ALTER FUNCTION {function}() OWNER TO {owner};\n\
         REVOKE ALL ON FUNCTION {function}() FROM PUBLIC;\n\
         CREATE TRIGGER {} BEFORE DELETE ON {parent}\n\
         \x20 FOR EACH ROW EXECUTE FUNCTION {function}();\n",
        ident(&base)
    );
    (create, drop)
}

/// The end of `0001_tenancy_core.sql` on Citus: the tenants table as a reference table (its
/// unique keys hold cluster-wide), the projects, memberships and audit tables distributed by
/// `tenant_id`, co-located; then their foreign keys.
pub(super) fn core_distribution(model: &Model) -> String {
    let mut out = super::section_heading(
        "Citus: the tenant tree, distributed and co-located (see docs/citus.md)",
        Some(
            "The tenants table is a reference table (a copy on every node, its unique keys hold\n\
             cluster-wide); every other tenant-owned table is distributed by tenant_id, all in the\n\
             projects table's colocation group: one tenant's rows of every table live in the same\n\
             shard group, so a query that names its tenant runs on one worker. Foreign keys are\n\
             added after both sides are Citus tables.",
        ),
    );
    let mut keys = String::new();
    if let Some(tenants) = model.core_table(TableKind::Tenants) {
        out.push_str(&format!(
            "SELECT pg_catalog.create_reference_table({});\n",
            regclass(TABLE_SCHEMA, &tenants.name)
        ));
        keys.push_str(&foreign_keys(model, tenants));
    }
    for kind in [
        TableKind::Projects,
        TableKind::Memberships,
        TableKind::TenantMemberships,
    ] {
        if let Some(table) = model.core_table(kind) {
            out.push_str(&distribute(model, TABLE_SCHEMA, &table.name));
            keys.push_str(&foreign_keys(model, table));
        }
    }
    out.push_str(&distribute(
        model,
        &model.settings.helper_schema,
        super::core::AUDIT_TABLE,
    ));
    out.push_str(&keys);
    out.push_str(&transaction_number_section());
    out
}

/// The seal is bound to the distributed transaction's number. Citus lets any role choose the
/// number of its next distributed transaction with `assign_distributed_transaction_id`
/// (executable by PUBLIC): a session could re-assign the number of one of its earlier
/// transactions on the same backend and replay that transaction's seal. On the coordinator
/// only Citus itself assigns numbers (the function is what the coordinator calls on the
/// workers, as the connecting role, so it stays executable there): revoked from PUBLIC on the
/// coordinator, database-wide, by a superuser; otherwise the block warns and `tenancy audit`
/// reports it (TA107).
fn transaction_number_section() -> String {
    let mut out = super::section_heading(
        "Citus: only Citus assigns distributed transaction numbers on the coordinator",
        Some(
            "The seal is bound to the distributed transaction's number; a role that could set\n\
             it (assign_distributed_transaction_id, executable by PUBLIC) could replay a seal of\n\
             its own earlier transaction. Revoked on the coordinator only (the coordinator calls\n\
             it on the workers as the connecting role). Needs a superuser.",
        ),
    );
    out.push_str(
        "DO $$\n\
         BEGIN\n\
         \x20 IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles AS r WHERE r.rolname = CURRENT_USER) THEN\n\
         \x20   RAISE WARNING 'tenancy: assign_distributed_transaction_id stays executable by PUBLIC: migrate as a superuser (tenancy audit reports TA107)';\n\
         \x20   RETURN;\n\
         \x20 END IF;\n\
         \x20 SET LOCAL citus.enable_ddl_propagation = off;\n\
         \x20 REVOKE EXECUTE ON FUNCTION pg_catalog.assign_distributed_transaction_id(integer, bigint, timestamp with time zone) FROM PUBLIC;\n\
         \x20 SET LOCAL citus.enable_ddl_propagation = on;\n\
         END\n\
         $$;\n",
    );
    out
}

/// The end of `0002_tables.sql` on Citus: global tables as reference tables, scoped tables
/// distributed by `tenant_id` in the projects table's colocation group, then their foreign
/// keys.
pub(super) fn tables_distribution(model: &Model) -> String {
    let mut out = super::section_heading(
        "Citus: reference tables and distributed tables (see docs/citus.md)",
        Some(
            "Global tables are reference tables (a copy on every node); scoped tables are\n\
             distributed by tenant_id, co-located with the projects table. Foreign keys are added\n\
             after both sides are Citus tables.",
        ),
    );
    let ordered = model.tables_in_dependency_order();
    for table in ordered.iter().filter(|t| t.kind == TableKind::Global) {
        out.push_str(&format!(
            "SELECT pg_catalog.create_reference_table({});\n",
            regclass(TABLE_SCHEMA, &table.name)
        ));
    }
    for table in ordered.iter().filter(|t| t.kind == TableKind::Scoped) {
        out.push_str(&distribute(model, TABLE_SCHEMA, &table.name));
    }
    for table in ordered
        .iter()
        .filter(|t| matches!(t.kind, TableKind::Global | TableKind::Scoped))
    {
        out.push_str(&foreign_keys(model, table));
    }
    out
}

/// The end of an incremental migration on Citus that creates `created` (global or scoped
/// tables; core tables are never created incrementally): the same distribution as the
/// baseline's, then their foreign keys.
pub(super) fn new_tables_distribution(model: &Model, created: &[&Table]) -> String {
    let mut out = super::section_heading(
        "Citus: the new tables, distributed (see docs/citus.md)",
        Some(
            "New global tables are reference tables, new scoped tables are distributed by\n\
             tenant_id, co-located with the projects table; then their foreign keys.",
        ),
    );
    for table in created.iter().filter(|t| t.kind == TableKind::Global) {
        out.push_str(&format!(
            "SELECT pg_catalog.create_reference_table({});\n",
            regclass(TABLE_SCHEMA, &table.name)
        ));
    }
    for table in created.iter().filter(|t| t.kind == TableKind::Scoped) {
        out.push_str(&distribute(model, TABLE_SCHEMA, &table.name));
    }
    for table in created {
        out.push_str(&foreign_keys(model, table));
    }
    out
}

/// This backend's global pid: on a worker, the pid of the coordinator backend it works for.
const GLOBAL_PID: &str = "pg_catalog.citus_backend_gpid()::pg_catalog.text";

/// The distributed transaction's number: the same on every node taking part.
const TRANSACTION_NUMBER: &str =
    "(pg_catalog.get_current_transaction_id()).transaction_number::pg_catalog.text";

/// The key table's definition, as run on the coordinator and (by `sync_context_keys`) on
/// every worker.
fn key_table_ddl(keys: &str, owner: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {keys} (\n\
         \x20 kid        text NOT NULL,\n\
         \x20 inner_pad  bytea NOT NULL,\n\
         \x20 outer_pad  bytea NOT NULL,\n\
         \x20 created_at timestamptz NOT NULL DEFAULT now(),\n\
         \x20 retired_at timestamptz,\n\
         \x20 CONSTRAINT context_keys_pkey PRIMARY KEY (kid),\n\
         \x20 CONSTRAINT context_keys_kid_check CHECK (kid ~ '^[A-Za-z0-9_-]{{1,64}}$'),\n\
         \x20 CONSTRAINT context_keys_pads_check CHECK (octet_length(inner_pad) = 64 AND octet_length(outer_pad) = 64)\n\
         );\n\
         ALTER TABLE {keys} OWNER TO {owner};\n\
         REVOKE ALL ON TABLE {keys} FROM PUBLIC;\n"
    )
}

/// The Citus variant of the signed context (contract v3): the key table on every node, the
/// anchor reference table, the key installer and `sync_context_keys`, the verifier, the
/// installer and the contract marker, with owners and grants. `or_replace` makes the
/// functions `CREATE OR REPLACE`.
pub(super) fn signed_context_objects(
    helper_schema: &str,
    owner: &str,
    app: &str,
    or_replace: bool,
) -> String {
    let schema = ident(helper_schema);
    let setting_name = format!("{schema}.context");
    let setting = literal(&format!("{helper_schema}.context"));
    let create = if or_replace {
        "CREATE OR REPLACE FUNCTION"
    } else {
        "CREATE FUNCTION"
    };
    let keys = format!("{schema}.context_keys");
    let anchor = format!("{schema}.{}", ident(ANCHOR_TABLE));
    let anchor_lit = literal(&anchor);
    let key_ddl = key_table_ddl(&keys, owner);
    let worker_ddl = literal(&key_ddl);
    let key_pads = super::signed::KEY_PADS;
    let seal_mac = super::signed::hmac_hex("seal", "body");
    let context_claims = super::signed::context_claims_function(
        create,
        &schema,
        &setting,
        &keys,
        helper_schema,
        [GLOBAL_PID, TRANSACTION_NUMBER],
        "in this distributed transaction",
    );
    let token_mac = super::signed::hmac_hex("token", "body");
    let set_local = |value: &str| {
        format!(
            "EXECUTE 'SET LOCAL citus.propagate_set_commands = ''local''';\n\
             \x20   EXECUTE pg_catalog.format('SET LOCAL {setting_name} = %L', {value});"
        )
    };
    let refuse = |reason: &str| {
        format!(
            "{}\n\x20   RETURN;",
            set_local(&format!("'refused;' OPERATOR(pg_catalog.||) {reason}"))
        )
    };
    let mut out = String::new();
    out.push_str(&format!(
        "\n-- The signing keys: a plain table on EVERY node (not a Citus table: a function that runs\n\
         -- on a shard cannot read a Citus table). Only the owner role reads it; the app role has no\n\
         -- grant on it. A key is stored as its two HMAC pads (the key XOR 0x36 and XOR 0x5c, 64\n\
         -- bytes each), which are as secret as the key. Install keys with `tenancy key install`;\n\
         -- `{helper_schema}.sync_context_keys()` copies the table to every worker (after adding a worker).\n\
         {key_ddl}\
         \n\
         -- Reading this reference table starts the distributed transaction, whose number the seal\n\
         -- carries. It holds no rows.\n\
         CREATE TABLE {anchor} (id integer NOT NULL, CONSTRAINT citus_anchor_pkey PRIMARY KEY (id));\n\
         ALTER TABLE {anchor} OWNER TO {owner};\n\
         REVOKE ALL ON TABLE {anchor} FROM PUBLIC;\n\
         SELECT pg_catalog.create_reference_table({anchor_lit});\n\
         \n\
         -- Copies the key table (retired keys too) to every worker, replacing what is there. Run by\n\
         -- a superuser (Citus connects to the workers as the calling user); outside the calling\n\
         -- transaction on the workers, so run it again if that transaction rolls back.\n\
         {create} {schema}.sync_context_keys()\n\
         \x20 RETURNS integer\n\
         \x20 LANGUAGE plpgsql\n\
         \x20 SET search_path = pg_catalog, pg_temp\n\
         AS $$\n\
         DECLARE\n\
         \x20 command text := {worker_ddl} || 'DELETE FROM {keys};';\n\
         \x20 key_rows text;\n\
         \x20 failed text;\n\
         \x20 workers integer;\n\
         BEGIN\n\
         \x20 SELECT string_agg(format('(%L, %L::bytea, %L::bytea, %L::timestamptz, %L::timestamptz)',\n\
         \x20          k.kid, k.inner_pad, k.outer_pad, k.created_at, k.retired_at), ', ')\n\
         \x20   INTO key_rows FROM {keys} AS k;\n\
         \x20 IF key_rows IS NOT NULL THEN\n\
         \x20   command := command || 'INSERT INTO {keys} (kid, inner_pad, outer_pad, created_at, retired_at) VALUES ' || key_rows || ';';\n\
         \x20 END IF;\n\
         \x20 SELECT count(*), string_agg(format('%s:%s: %s', r.nodename, r.nodeport, r.result), '; ')\n\
         \x20        FILTER (WHERE NOT r.success)\n\
         \x20   INTO workers, failed FROM run_command_on_workers(command) AS r;\n\
         \x20 IF failed IS NOT NULL THEN\n\
         \x20   RAISE EXCEPTION 'tenancy: could not copy the context keys to every worker: %', failed;\n\
         \x20 END IF;\n\
         \x20 RETURN workers;\n\
         END\n\
         $$;\n\
         \n\
         -- Adds a key (operator connection: a superuser, see sync_context_keys) on the coordinator\n\
         -- and every worker. At least 32 bytes; longer than 64 bytes is hashed first, as HMAC does.\n\
         {create} {schema}.install_context_key(key_id text, secret bytea)\n\
         \x20 RETURNS void\n\
         \x20 LANGUAGE plpgsql\n\
         \x20 SET search_path = pg_catalog, pg_temp\n\
         AS $$\n\
         {key_pads}\
         \x20 INSERT INTO {keys} (kid, inner_pad, outer_pad) VALUES (key_id, inner_pad, outer_pad);\n\
         \x20 PERFORM {schema}.sync_context_keys();\n\
         END\n\
         $$;\n\
         \n\
         -- The verified claims of this transaction's context, on the coordinator and on every worker:\n\
         -- 'tenant;user;{{..}};{{..}}...' (docs/context.md), or NULL when no context is set ('' or\n\
         -- unset). Anything else must be the seal install_context wrote in this very distributed\n\
         -- transaction: '<hmac>.<kid>;<global pid>;<distributed transaction number>;<claims>', under a\n\
         -- key of this node's key table. Otherwise it raises 42501 (no rows, no write).\n\
         {context_claims}\
         \n\
         -- Verifies a token minted by the runtime (the same token and checks as on PostgreSQL, see\n\
         -- docs/context.md), starts the distributed transaction, and sends the seal, or a refusal\n\
         -- ('refused;<reason>'), to the coordinator and the workers with SET LOCAL under\n\
         -- citus.propagate_set_commands = 'local'. A second context in a transaction that already\n\
         -- carries one raises at once.\n\
         {create} {schema}.install_context(token pg_catalog.text)\n\
         \x20 RETURNS void\n\
         \x20 LANGUAGE plpgsql\n\
         \x20 VOLATILE\n\
         \x20 SECURITY DEFINER\n\
         AS $$\n\
         DECLARE\n\
         \x20 body pg_catalog.text := pg_catalog.substr(token, 66);\n\
         \x20 key_id pg_catalog.text := pg_catalog.split_part(body, ';', 1);\n\
         \x20 expires pg_catalog.text := pg_catalog.split_part(body, ';', 2);\n\
         \x20 binding pg_catalog.text := pg_catalog.split_part(body, ';', 3);\n\
         \x20 current_seal pg_catalog.text := pg_catalog.current_setting({setting}, true);\n\
         \x20 inner_pad pg_catalog.bytea;\n\
         \x20 outer_pad pg_catalog.bytea;\n\
         \x20 transaction_number pg_catalog.text;\n\
         BEGIN\n\
         \x20 SELECT k.inner_pad, k.outer_pad INTO inner_pad, outer_pad\n\
         \x20   FROM {keys} AS k\n\
         \x20   WHERE k.kid OPERATOR(pg_catalog.=) key_id AND k.retired_at IS NULL;\n\
         \x20 IF inner_pad IS NULL THEN\n\
         \x20   {}\n\
         \x20 END IF;\n\
         \x20 IF pg_catalog.substr(token, 65, 1) OPERATOR(pg_catalog.<>) '.'\n\
         \x20    OR pg_catalog.substr(token, 1, 64) OPERATOR(pg_catalog.<>) {token_mac} THEN\n\
         \x20   {}\n\
         \x20 END IF;\n\
         \x20 IF expires OPERATOR(pg_catalog.!~) '^[0-9]{{1,15}}$'\n\
         \x20    OR expires::pg_catalog.int8 OPERATOR(pg_catalog.<) pg_catalog.date_part('epoch', pg_catalog.now()) THEN\n\
         \x20   {}\n\
         \x20 END IF;\n\
         \x20 IF binding OPERATOR(pg_catalog.<>) '*' AND binding OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()::pg_catalog.text THEN\n\
         \x20   {}\n\
         \x20 END IF;\n\
         \x20 -- Start the distributed transaction: its number is assigned on first use of Citus.\n\
         \x20 PERFORM 1 FROM {anchor} LIMIT 1;\n\
         \x20 transaction_number := {TRANSACTION_NUMBER};\n\
         \x20 IF transaction_number OPERATOR(pg_catalog.=) '0' THEN\n\
         \x20   RAISE EXCEPTION 'tenancy: Citus assigned no distributed transaction to this transaction'\n\
         \x20     USING ERRCODE = '42501';\n\
         \x20 END IF;\n\
         \x20 IF current_seal IS NOT NULL AND current_seal OPERATOR(pg_catalog.<>) ''\n\
         \x20    AND pg_catalog.split_part(pg_catalog.substr(current_seal, 66), ';', 2) OPERATOR(pg_catalog.=) {GLOBAL_PID}\n\
         \x20    AND pg_catalog.split_part(pg_catalog.substr(current_seal, 66), ';', 3) OPERATOR(pg_catalog.=) transaction_number THEN\n\
         \x20   RAISE EXCEPTION 'tenancy: this transaction already carries a context; open a new transaction for another one'\n\
         \x20     USING ERRCODE = '42501';\n\
         \x20 END IF;\n\
         \x20 body := key_id OPERATOR(pg_catalog.||) ';' OPERATOR(pg_catalog.||) {GLOBAL_PID}\n\
         \x20   OPERATOR(pg_catalog.||) ';' OPERATOR(pg_catalog.||) transaction_number OPERATOR(pg_catalog.||) ';'\n\
         \x20   OPERATOR(pg_catalog.||) pg_catalog.substr(body, pg_catalog.length(key_id) OPERATOR(pg_catalog.+)\n\
         \x20     pg_catalog.length(expires) OPERATOR(pg_catalog.+) pg_catalog.length(binding) OPERATOR(pg_catalog.+) 4);\n\
         \x20 {}\n\
         END\n\
         $$;\n\
         \n\
         -- The context contract this schema speaks; the runtime refuses to start on another.\n\
         {create} {schema}.context_contract()\n\
         \x20 RETURNS integer\n\
         \x20 LANGUAGE sql\n\
         \x20 IMMUTABLE\n\
         AS $$\n\
         \x20 SELECT {CONTEXT_CONTRACT}\n\
         $$;\n\
         \n\
         ALTER FUNCTION {schema}.sync_context_keys() OWNER TO {owner};\n\
         REVOKE ALL ON FUNCTION {schema}.sync_context_keys() FROM PUBLIC;\n\
         ALTER FUNCTION {schema}.install_context_key(text, bytea) OWNER TO {owner};\n\
         REVOKE ALL ON FUNCTION {schema}.install_context_key(text, bytea) FROM PUBLIC;\n\
         ALTER FUNCTION {schema}.context_claims() OWNER TO {owner};\n\
         REVOKE ALL ON FUNCTION {schema}.context_claims() FROM PUBLIC;\n\
         GRANT EXECUTE ON FUNCTION {schema}.context_claims() TO {app};\n\
         ALTER FUNCTION {schema}.install_context(text) OWNER TO {owner};\n\
         REVOKE ALL ON FUNCTION {schema}.install_context(text) FROM PUBLIC;\n\
         GRANT EXECUTE ON FUNCTION {schema}.install_context(text) TO {app};\n\
         ALTER FUNCTION {schema}.context_contract() OWNER TO {owner};\n\
         REVOKE ALL ON FUNCTION {schema}.context_contract() FROM PUBLIC;\n\
         GRANT EXECUTE ON FUNCTION {schema}.context_contract() TO {app};\n",
        refuse("pg_catalog.format('the context token names key \"%s\", which is not an active key of this database', key_id)"),
        refuse("'the context token''s signature does not verify (forged, edited, or signed with another key)'"),
        refuse("'the context token expired'"),
        refuse("'the context token was minted for another connection'"),
        set_local(&format!("{seal_mac} OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) body")),
    ));
    out
}
