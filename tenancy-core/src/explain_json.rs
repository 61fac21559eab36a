//! `tenancy explain --format json`: the same facts as the text of [`crate::explain`], as data
//! for tools: every table's kind, scope, keys, references, and for every command the rules and
//! what each role may do (conditions in the DSL's spelling and in words), the writable and
//! stamped columns, and the grant ceilings.

use serde_json::{json, Value};

use crate::access::matrix::{AccessMatrix, RoleAccess, TableAccess};
use crate::condition::{StampValue, StampWhen};
use crate::explain::{existence_oracles, unknown_table, UnknownTable};
use crate::model::{Model, Table};
use crate::sql::all_foreign_keys;

/// The explanation of `model` (or only `table`) as pretty-printed JSON.
pub fn explain_json(model: &Model, table: Option<&str>) -> Result<String, UnknownTable> {
    let matrix = AccessMatrix::of(model);
    let tables: Vec<&Table> = match table {
        Some(name) => vec![model
            .table(name)
            .ok_or_else(|| unknown_table(model, name))?],
        None => model.tables_in_dependency_order(),
    };
    let tables: Vec<Value> = tables
        .into_iter()
        .filter_map(|t| {
            matrix
                .table(&t.name)
                .map(|access| table_json(model, t, access))
        })
        .collect();
    let value = json!({
        "roles": model.roles,
        "app_role": model.settings.app_role,
        "owner_role": model.settings.owner_role,
        "helper_schema": model.settings.helper_schema,
        "tables": tables,
        "grant_ceilings": matrix.grant_ceilings.iter().map(|c| json!({
            "role": c.role,
            "may_grant": c.may_grant,
            "conditional": c.conditional,
        })).collect::<Vec<_>>(),
    });
    Ok(serde_json::to_string_pretty(&value).unwrap_or_default())
}

fn table_json(model: &Model, table: &Table, access: &TableAccess) -> Value {
    let scope = table
        .scope_columns()
        .map(|s| json!({ "tenant": s.tenant, "project": s.project }));
    let commands: Vec<Value> = access
        .commands
        .iter()
        .map(|c| {
            let rules: Vec<Value> = table
                .rules_for(c.command)
                .iter()
                .map(|r| {
                    json!({
                        "min_role": r.min_role,
                        "condition": r.condition.as_ref().map(|c| c.to_dsl()),
                        "condition_words": r.condition.as_ref().map(|c| c.describe()),
                    })
                })
                .collect();
            let roles: Vec<Value> = c
                .roles
                .iter()
                .map(|e| {
                    let (kind, conditions) = match &e.access {
                        RoleAccess::Denied => ("denied", Vec::new()),
                        RoleAccess::AllRows => ("all_rows", Vec::new()),
                        RoleAccess::Rows(cs) => ("rows", cs.iter().map(|c| c.describe()).collect()),
                    };
                    json!({ "role": e.role, "access": kind, "conditions": conditions })
                })
                .collect();
            json!({
                "command": c.command,
                "granted": c.granted,
                "every_caller": c.every_caller,
                "own_memberships": c.own_memberships,
                "unchecked": c.unchecked,
                "rules": rules,
                "roles": roles,
            })
        })
        .collect();
    json!({
        "name": table.name,
        "kind": table.kind,
        "doc": table.doc,
        "scope": scope,
        "primary_key": table.effective_primary_key(),
        "unique_keys": table.effective_unique_keys(),
        "existence_oracles": existence_oracles(table),
        "references": all_foreign_keys(model, table).iter().map(|fk| json!({
            "columns": fk.local,
            "table": fk.parent,
            "target_columns": fk.remote,
        })).collect::<Vec<_>>(),
        "commands": commands,
        "insert_columns": access.insert_columns,
        "update_columns": access.update_columns,
        "stamped": access.stamped.iter().map(|s| json!({
            "column": s.column,
            "value": match s.stamp.value {
                StampValue::CurrentUser => "current_user",
                StampValue::Now => "now",
            },
            "when": match s.stamp.when {
                StampWhen::Insert => "insert",
                StampWhen::Update => "insert_and_update",
            },
        })).collect::<Vec<_>>(),
    })
}
