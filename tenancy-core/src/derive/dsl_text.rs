//! Rendering a [`Table`] as `.tenancy` text: the `TENANCY_DSL` export of a derived struct
//! (for moving it into a policy file). Nothing compiles this text: derived tables reach the
//! validator as syntax trees (see [`super::derive_table`] and [`super::compile_with_rust`]).

use std::fmt::Write;

use crate::model::{DefaultValue, IndexMethod, OnDelete, Table, TableKind};

/// A default value in DSL (and SQL) spelling: `'draft'`, `10`, `now()`, ...
fn default_text(default: &DefaultValue) -> String {
    match default {
        DefaultValue::String(text) => format!("'{}'", text.replace('\'', "''")),
        DefaultValue::Integer(value) => value.to_string(),
        DefaultValue::Decimal(value) => value.clone(),
        DefaultValue::Bool(value) => value.to_string(),
        DefaultValue::Now => "now()".to_owned(),
        DefaultValue::GenRandomUuid => "gen_random_uuid()".to_owned(),
    }
}

fn doc_lines(out: &mut String, doc: Option<&str>, indent: &str) {
    if let Some(doc) = doc {
        for line in doc.lines() {
            let _ = writeln!(out, "{indent}/// {line}");
        }
    }
}

/// The table as one `.tenancy` declaration: doc comments, columns, keys, indexes, foreign
/// keys (as table-level `foreign key` clauses, in order) and rules. A global table's rules
/// are written without a role. Compiling the text gives back an equal table.
pub fn table_to_dsl(table: &Table) -> String {
    let mut out = String::new();
    doc_lines(&mut out, table.doc.as_deref(), "");
    let _ = writeln!(out, "{} table {} {{", table.kind.keyword(), table.name);
    for column in &table.columns {
        doc_lines(&mut out, column.doc.as_deref(), "    ");
        let _ = write!(
            out,
            "    {} {}{}",
            column.name,
            column.ty.dsl_name(),
            if column.nullable { "?" } else { "" }
        );
        if let Some(stamp) = column.stamp {
            let _ = write!(out, " {}", stamp.to_dsl());
        }
        if let Some(default) = &column.default {
            let _ = write!(out, " default {}", default_text(default));
        }
        out.push('\n');
    }
    out.push('\n');
    if !table.primary_key.is_empty() {
        let _ = writeln!(out, "    primary key ({})", table.primary_key.join(", "));
    }
    for key in &table.unique_keys {
        let _ = writeln!(out, "    unique ({})", key.join(", "));
    }
    for index in &table.indexes {
        let method = match index.method {
            IndexMethod::BTree => "",
            IndexMethod::Gin => " gin",
        };
        let _ = writeln!(out, "    index{method} ({})", index.columns.join(", "));
    }
    for fk in &table.foreign_keys {
        let _ = write!(
            out,
            "    foreign key ({}) references {}",
            fk.columns.join(", "),
            fk.table
        );
        if !fk.target_columns.is_empty() {
            let _ = write!(out, "({})", fk.target_columns.join(", "));
        }
        let action = match fk.on_delete {
            OnDelete::NoAction => "",
            OnDelete::Restrict => " on delete restrict",
            OnDelete::Cascade => " on delete cascade",
            OnDelete::SetNull => " on delete set null",
        };
        let _ = writeln!(out, "{action}");
    }
    for rule in &table.rules {
        if table.kind == TableKind::Global || rule.min_role.is_empty() {
            let _ = writeln!(out, "    allow {}", rule.command);
        } else {
            let _ = write!(out, "    allow {}", rule.command);
            if let Some(columns) = &rule.columns {
                let _ = write!(out, " ({})", columns.join(", "));
            }
            let _ = write!(out, " to {}", rule.min_role);
            if let Some(condition) = &rule.condition {
                let _ = write!(out, " where {}", condition.to_dsl());
            }
            out.push('\n');
        }
    }
    out.push_str("}\n");
    out
}
