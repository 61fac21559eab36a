//! `models.py`: one SQLAlchemy 2.0 declarative model per table, as the migrations create it.

use std::collections::BTreeSet;

use super::text::{attr_name, class_names, docstring, py_str};
use super::HEADER;
use crate::condition::StampWhen;
use crate::model::{
    Column, Model, OnDelete, SqlType, Table, TableKind, PROJECT_COLUMN, ROLE_TYPE, TABLE_SCHEMA,
    TENANT_COLUMN,
};

/// True when some table has a `vector(N)` column (the package then needs pgvector and numpy).
pub(crate) fn has_vector(model: &Model) -> bool {
    model
        .tables
        .iter()
        .flat_map(|t| t.columns.iter())
        .any(|c| matches!(c.ty, SqlType::Vector(_)))
}

/// A foreign key as the SQL emitter creates it (`tenancy-core/src/sql/tables.rs`,
/// `all_foreign_keys`): the generated ones tying a table to the core, then the declared ones,
/// made composite with the scope columns when both sides are tenant-owned. The live test
/// `models_match_the_migrated_database` compares the result with the database.
pub(crate) struct ForeignKey {
    /// Referencing columns.
    pub local: Vec<String>,
    /// Referenced table.
    pub parent: String,
    /// Referenced columns.
    pub remote: Vec<String>,
    /// `ON DELETE` clause text, if any.
    pub on_delete: Option<String>,
}

/// Every foreign key of `table`, in creation order.
pub(crate) fn foreign_keys(model: &Model, table: &Table) -> Vec<ForeignKey> {
    let mut out = Vec::new();
    let strings = |names: &[&str]| names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let core = |kind: TableKind, local: &[&str], remote: &[&str]| {
        model.core_table(kind).map(|parent| ForeignKey {
            local: strings(local),
            parent: parent.name.clone(),
            remote: strings(remote),
            on_delete: Some("CASCADE".to_owned()),
        })
    };
    match table.kind {
        TableKind::Projects | TableKind::TenantMemberships => {
            out.extend(core(TableKind::Tenants, &["tenant_id"], &["id"]))
        }
        TableKind::Memberships | TableKind::Scoped => out.extend(core(
            TableKind::Projects,
            &["tenant_id", "project_id"],
            &["tenant_id", "id"],
        )),
        TableKind::Tenants | TableKind::Global => {}
    }
    for fk in &table.foreign_keys {
        let mut local = Vec::new();
        let mut remote = Vec::new();
        let parent_scope = model
            .table(&fk.table)
            .and_then(crate::model::Table::scope_columns);
        if let (Some(child), Some(parent)) = (table.scope_columns(), parent_scope) {
            let mut pair = |child_col: &str, parent_col: &str| {
                let already = fk.columns.iter().any(|c| c == child_col)
                    || fk.target_columns.iter().any(|c| c == parent_col);
                if !already {
                    local.push(child_col.to_owned());
                    remote.push(parent_col.to_owned());
                }
            };
            pair(child.tenant, parent.tenant);
            if let (Some(child_project), Some(parent_project)) = (child.project, parent.project) {
                pair(child_project, parent_project);
            }
        }
        local.extend(fk.columns.iter().cloned());
        remote.extend(fk.target_columns.iter().cloned());
        let on_delete = match fk.on_delete {
            OnDelete::NoAction => None,
            OnDelete::Restrict => Some("RESTRICT".to_owned()),
            OnDelete::Cascade => Some("CASCADE".to_owned()),
            OnDelete::SetNull => Some(format!("SET NULL ({})", fk.columns.join(", "))),
        };
        out.push(ForeignKey {
            local,
            parent: fk.table.clone(),
            remote,
            on_delete,
        });
    }
    out
}

/// The Python type of a column's values (without `| None`) and the SQLAlchemy type expression.
pub(crate) fn column_types(
    model: &Model,
    column: &Column,
    imports: &mut Imports,
) -> (String, String) {
    let simple = |py: &str, sa: &str| (py.to_owned(), format!("sa.{sa}"));
    match column.ty {
        SqlType::Uuid => {
            imports.uuid = true;
            simple("uuid.UUID", "Uuid")
        }
        SqlType::Text => simple("str", "Text"),
        SqlType::SmallInt => simple("int", "SmallInteger"),
        SqlType::Integer => simple("int", "Integer"),
        SqlType::BigInt => simple("int", "BigInteger"),
        SqlType::Real => simple("float", "REAL"),
        SqlType::Double => simple("float", "Double"),
        SqlType::Boolean => simple("bool", "Boolean"),
        SqlType::Date => {
            imports.datetime = true;
            simple("datetime.date", "Date")
        }
        SqlType::Timestamptz => {
            imports.datetime = true;
            (
                "datetime.datetime".to_owned(),
                "sa.DateTime(timezone=True)".to_owned(),
            )
        }
        SqlType::Jsonb => {
            imports.any = true;
            imports.jsonb = true;
            ("Any".to_owned(), "JSONB".to_owned())
        }
        SqlType::Bytea => simple("bytes", "LargeBinary"),
        SqlType::Vector(n) => {
            imports.vector = true;
            ("NDArray[np.float32]".to_owned(), format!("Vector({n})"))
        }
        SqlType::Role => {
            imports.enum_type = true;
            let values = model
                .roles
                .iter()
                .map(|r| py_str(r))
                .collect::<Vec<_>>()
                .join(", ");
            (
                "str".to_owned(),
                format!(
                    "ENUM({values}, name={}, schema={}, create_type=False)",
                    py_str(ROLE_TYPE),
                    py_str(&model.settings.helper_schema)
                ),
            )
        }
    }
}

/// Which optional imports `models.py` needs.
#[derive(Default)]
pub(crate) struct Imports {
    uuid: bool,
    datetime: bool,
    any: bool,
    jsonb: bool,
    vector: bool,
    enum_type: bool,
}

/// A column's `mapped_column(...)` line.
fn column_line(model: &Model, table: &Table, column: &Column, imports: &mut Imports) -> String {
    let (py_type, sa_type) = column_types(model, column, imports);
    let attr = attr_name(&column.name);
    let annotation = if column.nullable && py_type != "Any" {
        format!("{py_type} | None")
    } else {
        py_type
    };
    let mut args = Vec::new();
    if attr != column.name {
        args.push(py_str(&column.name));
    }
    args.push(sa_type);
    args.push(format!(
        "nullable={}",
        if column.nullable { "True" } else { "False" }
    ));
    if let Some(stamp) = &column.stamp {
        // The database writes it (a trigger inside a request context): SQLAlchemy leaves it out
        // of INSERTs and reads the stored value back.
        args.push("server_default=sa.FetchedValue()".to_owned());
        if stamp.when == StampWhen::Update {
            args.push("server_onupdate=sa.FetchedValue()".to_owned());
        }
    } else if let Some(default) = &column.default {
        args.push(format!(
            "server_default=sa.text({})",
            py_str(&default.to_sql())
        ));
    }
    let masked = table.masked_columns().iter().any(|m| m.name == column.name);
    if masked {
        // The app role cannot select it: never loaded with the row, and reading the attribute
        // raises instead of running a query the database refuses.
        args.push("deferred=True".to_owned());
        args.push("deferred_raiseload=True".to_owned());
    }
    let mut line = String::new();
    if masked {
        line.push_str(&format!(
            "    #: Masked: the app role cannot select it (read `{}.{}` instead).\n",
            model.settings.helper_schema,
            crate::sql::masked_view_name(table)
        ));
    }
    if let Some(doc) = &column.doc {
        for doc_line in doc.lines() {
            line.push_str(&format!("    #: {}\n", doc_line.trim()));
        }
    }
    if let Some(stamp) = &column.stamp {
        line.push_str(&format!(
            "    #: Stamped (`{}`): written by the database, never by the repositories.\n",
            stamp.to_dsl()
        ));
    } else if column.doc.is_none()
        && table.kind != TableKind::Tenants
        && (column.name == TENANT_COLUMN || column.name == PROJECT_COLUMN)
    {
        line.push_str("    #: Scope column (the repositories set it from the scope).\n");
    }
    let one_line = format!(
        "    {attr}: Mapped[{annotation}] = mapped_column({})\n",
        args.join(", ")
    );
    if one_line.len() <= 100 {
        line.push_str(&one_line);
    } else {
        line.push_str(&format!(
            "    {attr}: Mapped[{annotation}] = mapped_column(\n        {},\n    )\n",
            args.join(",\n        ")
        ));
    }
    line
}

/// `models.py`.
pub(crate) fn models_module(model: &Model) -> String {
    let mut imports = Imports::default();
    let mut classes = String::new();
    for table in &model.tables {
        classes.push_str(&model_class(model, table, &mut imports));
    }
    let mut out = format!(
        "{HEADER}\n\
         \"\"\"SQLAlchemy 2.0 models of every table, as the generated migrations create them (scope\n\
         columns, composite keys, foreign keys, server defaults). The migrations, not\n\
         `Base.metadata.create_all`, create the tables: row-level security, grants and helper\n\
         functions exist only there.\"\"\"\n\
         \n\
         from __future__ import annotations\n\
         \n"
    );
    if imports.datetime {
        out.push_str("import datetime\n");
    }
    if imports.uuid {
        out.push_str("import uuid\n");
    }
    if imports.any {
        out.push_str("from typing import Any\n");
    }
    out.push('\n');
    if imports.vector {
        out.push_str("import numpy as np\n");
    }
    out.push_str("import sqlalchemy as sa\n");
    if imports.vector {
        out.push_str("from numpy.typing import NDArray\n");
        out.push_str("from pgvector.sqlalchemy import Vector  # type: ignore[import-untyped]\n");
    }
    let mut dialect: BTreeSet<&str> = BTreeSet::new();
    if imports.enum_type {
        dialect.insert("ENUM");
    }
    if imports.jsonb {
        dialect.insert("JSONB");
    }
    if !dialect.is_empty() {
        out.push_str(&format!(
            "from sqlalchemy.dialects.postgresql import {}\n",
            dialect.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    out.push_str("from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column\n");
    let names: Vec<String> = std::iter::once("Base".to_owned())
        .chain(model.tables.iter().map(|t| class_names(&t.name).0))
        .map(|n| py_str(&n))
        .collect();
    out.push_str(&format!(
        "\n__all__ = [\n{}]\n",
        names
            .iter()
            .map(|n| format!("    {n},\n"))
            .collect::<String>()
    ));
    out.push_str(&format!(
        "\n\nclass Base(DeclarativeBase):\n    \"\"\"The declarative base of the generated models (schema {}).\"\"\"\n",
        py_str(TABLE_SCHEMA)
    ));
    out.push_str(&classes);
    out
}

/// One model class.
fn model_class(model: &Model, table: &Table, imports: &mut Imports) -> String {
    let (row, _) = class_names(&table.name);
    let mut doc = match &table.doc {
        Some(doc) => format!("{}\n\n", doc.trim_end()),
        None => String::new(),
    };
    doc.push_str(&format!(
        "A row of `{}` ({} table).",
        table.name,
        table.kind.keyword()
    ));
    let mut out = format!("\n\nclass {row}(Base):\n{}\n", docstring(&doc, 4));
    out.push_str(&format!("    __tablename__ = {}\n", py_str(&table.name)));
    let list = |cols: &[String]| {
        cols.iter()
            .map(|c| py_str(c))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut args = Vec::new();
    let primary_key = table.effective_primary_key();
    if !primary_key.is_empty() {
        args.push(format!("sa.PrimaryKeyConstraint({})", list(&primary_key)));
    }
    for key in table.effective_unique_keys() {
        args.push(format!("sa.UniqueConstraint({})", list(&key)));
    }
    for fk in foreign_keys(model, table) {
        let remote: Vec<String> = fk
            .remote
            .iter()
            .map(|c| format!("{TABLE_SCHEMA}.{}.{c}", fk.parent))
            .collect();
        let on_delete = fk
            .on_delete
            .map(|d| format!("\n            ondelete={},", py_str(&d)))
            .unwrap_or_default();
        args.push(format!(
            "sa.ForeignKeyConstraint(\n            [{}],\n            [{}],{on_delete}\n        )",
            list(&fk.local),
            list(&remote)
        ));
    }
    args.push(format!("{{\"schema\": {}}}", py_str(TABLE_SCHEMA)));
    out.push_str("    __table_args__ = (\n");
    for arg in args {
        out.push_str(&format!("        {arg},\n"));
    }
    out.push_str("    )\n\n");
    for column in table.all_columns() {
        out.push_str(&column_line(model, table, &column, imports));
    }
    out
}
