//! `repositories.py`: per scoped table, the commands its rules allow, typed with the scope and
//! the least role each needs (the Python counterpart of the Rust repositories).

use super::models::{column_types, Imports};
use super::role_class;
use super::text::{attr_name, class_names, docstring, py_str};
use super::HEADER;
use crate::model::{Column, Command, Model, SqlType, Table, TableKind, PROJECT_COLUMN};

/// `repositories.py`.
pub(crate) fn repositories_module(model: &Model) -> String {
    let tables: Vec<&Table> = model
        .tables
        .iter()
        .filter(|t| t.kind == TableKind::Scoped)
        .collect();
    let vector = tables
        .iter()
        .any(|t| t.columns.iter().any(|c| matches!(c.ty, SqlType::Vector(_))));
    let mut out = format!(
        "{HEADER}\n\
         \"\"\"Repositories of the scoped tables: only the commands each table's rules allow, each\n\
         typed with the scope it needs. Reads take a `ScopedSession[ReadScope[R]]`, writes a\n\
         `ScopedSession[ProjectScope[R]]`, where `R` is the least role of the rule: mypy --strict\n\
         rejects a call without a scoped session, a write through a several-project scope and\n\
         one through a scope of a lower role. Every statement names the scope's tenant and\n\
         projects explicitly; row-level security remains the final gate. `Async<Repository>`\n\
         has the same methods, awaited, on an `AsyncScopedSession` with the same typing.\"\"\"\n\
         \n\
         from __future__ import annotations\n\
         \n\
         import builtins\n\
         import datetime\n\
         import uuid\n\
         from collections.abc import Sequence\n\
         from typing import Any, NamedTuple, Required, TypedDict\n\
         \n"
    );
    if vector {
        out.push_str("import numpy as np\n");
    }
    out.push_str("import sqlalchemy as sa\n");
    if vector {
        out.push_str("from numpy.typing import NDArray\n");
    }
    // A later page of several projects selects from a union of two seeking branches.
    let union = tables
        .iter()
        .any(|t| t.rule(Command::Select).is_some() && list_seeks(&list_order(t)));
    if union {
        out.push_str("from sqlalchemy.orm import aliased\n");
    }
    let rows: Vec<String> = tables.iter().map(|t| class_names(&t.name).0).collect();
    if !rows.is_empty() {
        out.push_str(&format!("\nfrom .models import {}\n", rows.join(", ")));
    }
    let mut roles: Vec<String> = Vec::new();
    for table in &tables {
        for command in Command::ALL {
            if let Some(role) = table.rule(command) {
                let class = role_class(role);
                if !roles.contains(&class) {
                    roles.push(class);
                }
            }
        }
    }
    roles.sort();
    if !roles.is_empty() {
        out.push_str(&format!("from .roles import {}\n", roles.join(", ")));
    }
    out.push_str(
        "from .runtime import AsyncScopedSession, ProjectScope, ReadScope, ScopedSession\n",
    );
    let mut names = Vec::new();
    for table in &tables {
        let (row, repository) = class_names(&table.name);
        names.push(format!("Async{repository}"));
        names.push(repository);
        if table.rule(Command::Select).is_some() {
            names.push(format!("{row}Cursor"));
        }
        if table.rule(Command::Insert).is_some() {
            names.push(format!("New{row}"));
        }
        if table.rule(Command::Update).is_some() {
            names.push(format!("{row}Changes"));
        }
    }
    names.sort();
    out.push_str(&format!(
        "\n__all__ = [\n{}]\n",
        names
            .iter()
            .map(|n| format!("    {},\n", py_str(n)))
            .collect::<String>()
    ));
    if union {
        out.push_str(
            "\n\n\
             def _read_columns(entity: type[Any]) -> list[Any]:\n\
             \x20   \"\"\"The columns `sa.select(entity)` reads: every mapped column but the deferred (masked)\n\
             \x20   ones, which the app role cannot select. A union's branches name their columns\n\
             \x20   themselves (the ORM leaves deferred columns out of the outermost select only).\"\"\"\n\
             \x20   return [c.expression for c in sa.inspect(entity).column_attrs if not c.deferred]\n",
        );
    }
    for table in tables {
        out.push_str(&table_section(model, table));
    }
    out
}

/// `    def name(params) -> ret:` (or `async def`) on one line when it fits in 100 columns, else
/// one parameter per line.
fn signature(def: &str, name: &str, params: &[String], ret: &str) -> String {
    let one = format!("    {def} {name}({}) -> {ret}:\n", params.join(", "));
    if one.len() <= 101 {
        return one;
    }
    let mut out = format!("    {def} {name}(\n");
    for param in params {
        out.push_str(&format!("        {param},\n"));
    }
    out.push_str(&format!("    ) -> {ret}:\n"));
    out
}

/// The docstring paragraph of a method running `command`: the least role and the policy, and,
/// when some rule for `command` has a row condition, every rule with its condition and what a
/// refused row does (as the Rust repositories document it).
fn rule_doc(table: &Table, command: Command, role: &str) -> String {
    let scope = match command {
        Command::Select => "in every project it reads",
        _ => "in the write scope's project",
    };
    let mut doc = format!(
        "Requires `{role}` or above {scope} (RLS policy `{}_{}`).",
        table.name,
        command.keyword()
    );
    let rules = table.rules_for(command);
    if rules.iter().any(|r| r.condition.is_some()) {
        let allowed: Vec<String> = rules
            .iter()
            .map(|r| match &r.condition {
                Some(c) => format!("`{}` where `{}`", r.min_role, c.to_dsl()),
                None => format!("`{}`", r.min_role),
            })
            .collect();
        let refused = match command {
            Command::Select => "a row they refuse is invisible",
            Command::Insert => {
                "a row they refuse raises `sqlalchemy.exc.DBAPIError` (SQLSTATE 42501)"
            }
            Command::Update => {
                "a row they refuse is treated as absent (None), and a change that would \
                 leave a refused row raises `sqlalchemy.exc.DBAPIError` (SQLSTATE 42501)"
            }
            Command::Delete => "a row they refuse is treated as absent (False)",
        };
        doc = wrap(&doc, 92);
        doc.push('\n');
        doc.push_str(&wrap(
            &format!(
                "Row conditions apply: allowed to {}; {refused}.",
                allowed.join(", or ")
            ),
            92,
        ));
        return doc;
    }
    wrap(&doc, 92)
}

/// `text` with its spaces turned into line breaks so that no line exceeds `width` (a word
/// longer than `width` stays on its own line).
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line_len = 0;
    for word in text.split(' ') {
        if line_len > 0 && line_len + 1 + word.len() > width {
            out.push('\n');
            line_len = 0;
        } else if line_len > 0 {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += word.len();
    }
    out
}

/// The Python type of a column's values, `| None` when nullable.
fn value_type(model: &Model, column: &Column) -> String {
    let (py, _) = column_types(model, column, &mut Imports::default());
    if column.nullable && py != "Any" {
        format!("{py} | None")
    } else {
        py
    }
}

/// The input types, cursor and repository class of one scoped table.
fn table_section(model: &Model, table: &Table) -> String {
    let (row, repository) = class_names(&table.name);
    let order = list_order(table);
    let prefix = table.key_prefix();
    let mut out = String::new();
    let select = table.rule(Command::Select);

    if select.is_some() {
        out.push_str(&format!(
            "\n\nclass {row}Cursor(NamedTuple):\n{}",
            docstring(
                &format!(
                    "A position in `{}` in list order; `{repository}.cursor(row)` of a page's last row.",
                    table.name
                ),
                4
            )
        ));
        out.push('\n');
        for column in &order {
            out.push_str(&format!(
                "    {}: {}\n",
                attr_name(&column.name),
                value_type(model, column)
            ));
        }
    }
    if table.rule(Command::Insert).is_some() {
        out.push_str(&format!(
            "\n\nclass New{row}(TypedDict, total=False):\n{}\n",
            docstring(
                &format!(
                    "A new `{}` row. The write scope supplies {}; leave out\n\
                     a column with a default to get the default, a nullable one to get NULL.{}",
                    table.name,
                    prefix
                        .iter()
                        .map(|c| format!("`{c}`"))
                        .collect::<Vec<_>>()
                        .join(" and "),
                    if table.columns.iter().any(|c| c.stamp.is_some()) {
                        "\nStamped columns are not here: the database writes them."
                    } else {
                        ""
                    }
                ),
                4
            )
        ));
        for column in table.columns.iter().filter(|c| c.stamp.is_none()) {
            let ty = value_type(model, column);
            let ty = if column.nullable || column.default.is_some() {
                ty
            } else {
                format!("Required[{ty}]")
            };
            out.push_str(&format!("    {}: {ty}\n", attr_name(&column.name)));
        }
    }
    let primary_key = table.effective_primary_key();
    let changeable: Vec<&Column> = table
        .columns
        .iter()
        .filter(|c| {
            !primary_key.contains(&c.name) && !prefix.contains(&c.name) && c.stamp.is_none()
        })
        .collect();
    if table.rule(Command::Update).is_some() {
        out.push_str(&format!(
            "\n\nclass {row}Changes(TypedDict, total=False):\n{}\n",
            docstring(
                &format!(
                    "Columns to change in a `{}` row (key, scope and stamped columns never change).",
                    table.name
                ),
                4
            )
        ));
        if changeable.is_empty() {
            out.push_str("    pass\n");
        }
        for column in &changeable {
            out.push_str(&format!(
                "    {}: {}\n",
                attr_name(&column.name),
                value_type(model, column)
            ));
        }
    }

    out.push_str(&repository_class(model, table, &Flavor::SYNC));
    out.push_str(&repository_class(model, table, &Flavor::ASYNC));
    out
}

/// How a repository class runs its statements: the sync one on a `ScopedSession`, the async
/// one (`Async<Repository>`) on an `AsyncScopedSession`, with the same statements.
pub(crate) struct Flavor {
    /// Prefix of the class name (`""` or `"Async"`).
    prefix: &'static str,
    /// `def` or `async def`.
    def: &'static str,
    /// The session type wrapping the scope.
    session: &'static str,
    /// `await ` or nothing.
    wait: &'static str,
}

impl Flavor {
    const SYNC: Flavor = Flavor {
        prefix: "",
        def: "def",
        session: "ScopedSession",
        wait: "",
    };
    const ASYNC: Flavor = Flavor {
        prefix: "Async",
        def: "async def",
        session: "AsyncScopedSession",
        wait: "await ",
    };

    /// `expr` awaited when async, parenthesised for a following attribute access.
    fn run(&self, expr: &str) -> String {
        if self.wait.is_empty() {
            expr.to_owned()
        } else {
            format!("(await {expr})")
        }
    }
}

/// The repository class of one scoped table in `flavor`.
fn repository_class(model: &Model, table: &Table, flavor: &Flavor) -> String {
    let (row, repository) = class_names(&table.name);
    let lookup: Vec<Column> = table
        .lookup_key()
        .iter()
        .filter_map(|c| table.column(c))
        .collect();
    let order = list_order(table);
    let mut out = String::new();
    let select = table.rule(Command::Select);
    let def = flavor.def;
    let wait = flavor.wait;
    let session = flavor.session;
    let prefix = flavor.prefix;
    let allowed: Vec<String> = Command::ALL
        .iter()
        .filter_map(|c| table.rule(*c).map(|r| format!("{} ({r})", c.keyword())))
        .collect();
    out.push_str(&format!(
        "\n\nclass {prefix}{repository}:\n{}",
        docstring(
            &format!(
                "{} of `{}`{}.\n\nRules: {}.",
                if prefix.is_empty() {
                    "Repository"
                } else {
                    "Async repository"
                },
                table.name,
                if prefix.is_empty() {
                    String::new()
                } else {
                    format!(": the methods of `{repository}`, awaited,\non an `AsyncScopedSession`")
                },
                if allowed.is_empty() {
                    "no command is allowed".to_owned()
                } else {
                    allowed.join(", ")
                }
            ),
            4
        )
    ));

    let key_params: Vec<String> = lookup
        .iter()
        .map(|c| format!("{}: {}", attr_name(&c.name), value_type(model, c)))
        .collect();
    let params = |first: String, rest: &[String]| {
        let mut all = vec![first];
        all.extend(rest.iter().cloned());
        all
    };
    let col = |name: &str| format!("{row}.{}", attr_name(name));
    let key_match: Vec<String> = lookup
        .iter()
        .map(|c| format!("{} == {}", col(&c.name), attr_name(&c.name)))
        .collect();
    let read_scope = |role: &str| format!("{session}[ReadScope[{}]]", role_class(role));
    let write_scope = |role: &str| format!("{session}[ProjectScope[{}]]", role_class(role));
    let read_where = vec![
        format!("{} == _scope.tenant_id", col("tenant_id")),
        format!("{}.in_(_scope.project_ids)", col(PROJECT_COLUMN)),
    ];
    let write_where = vec![
        format!("{} == _scope.tenant_id", col("tenant_id")),
        format!("{} == _scope.project_id", col(PROJECT_COLUMN)),
    ];
    // `.where(\n a,\n b,\n)` at `indent` spaces.
    let where_call = |indent: usize, parts: &[&[String]]| {
        let pad = " ".repeat(indent);
        let mut out = ".where(\n".to_owned();
        for part in parts.iter().flat_map(|p| p.iter()) {
            out.push_str(&format!("{pad}    {part},\n"));
        }
        out.push_str(&format!("{pad})"));
        out
    };
    let order_by = order
        .iter()
        .map(|c| col(&c.name))
        .collect::<Vec<_>>()
        .join(", ");

    if let Some(role) = select {
        let policy = rule_doc(table, Command::Select, role);
        out.push_str(&format!(
            "\n    @staticmethod\n{sig}{doc}        _scope = tx.scope\n        _statement = (\n            sa.select({row})\n            {where}\n            .order_by({order_by})\n            .limit(1)\n        )\n        return {run}.first()\n",
            run = flavor.run("tx.session.scalars(_statement)"),
            sig = signature(def, "get", &params(format!("tx: {}", read_scope(role)), &key_params), &format!("{row} | None")),
            where = where_call(12, &[&read_where, &key_match]),
            doc = docstring(&format!("Reads one row by its key (of the lowest project id when several projects of the\nscope hold that key); None when no visible row matches.\n\n{policy}"), 8),
        ));
        out.push_str(&list_method(
            table,
            &order,
            flavor,
            &read_scope(role),
            &policy,
        ));
        out.push_str(&format!(
            "\n    @staticmethod\n    def cursor(row: {row}) -> {row}Cursor:\n{}        return {row}Cursor({})\n",
            docstring("This row's position in list order, for the next page's `after`.", 8),
            order
                .iter()
                .map(|c| format!("row.{}", attr_name(&c.name)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        for column in &table.columns {
            let Some(distance) = column.vector_distance() else {
                continue;
            };
            let operator = match distance {
                crate::model::VectorDistance::Cosine => "<=>",
                crate::model::VectorDistance::L2 => "<->",
                crate::model::VectorDistance::InnerProduct => "<#>",
            };
            let attr = attr_name(&column.name);
            out.push_str(&format!(
                "\n    @staticmethod\n    {def} nearest_by_{attr}(\n        tx: {scope},\n        query: Sequence[float] | NDArray[np.float32],\n        *,\n        limit: int = 10,\n    ) -> builtins.list[tuple[{row}, float]]:\n{doc}        _scope = tx.scope\n        _distance = {row}.{attr}.op({op}, return_type=sa.Float())(query)\n        _statement = (\n            sa.select({row}, _distance)\n            {where}\n            .order_by(_distance, {order_by})\n            .limit(max(1, min(limit, 1000)))\n        )\n        return [(r[0], float(r[1])) for r in {wait}tx.session.execute(_statement)]\n",
                scope = read_scope(role),
                op = py_str(operator),
                where = where_call(12, &[&read_where, &[format!("{row}.{attr}.is_not(None)")]]),
                doc = docstring(&format!("The rows nearest to `query` by `{}` ({} distance, `{operator}`), nearest first,\nwith their distance; rows without one are skipped. `limit` is clamped to 1..1000.\n\n{policy}", column.name, distance.dsl_name()), 8),
            ));
        }
    }
    let returning = select.is_some();
    if let Some(role) = table.rule(Command::Insert) {
        let policy = rule_doc(table, Command::Insert, role);
        let (ret, body) = if returning {
            (
                row.clone(),
                format!(
                    "        return {}.one()\n",
                    flavor.run(&format!(
                        "tx.session.scalars(sa.insert({row}).values(**_values).returning({row}))"
                    ))
                ),
            )
        } else {
            (
                "None".to_owned(),
                format!("        {wait}tx.session.execute(sa.insert({row}).values(**_values))\n"),
            )
        };
        out.push_str(&format!(
            "\n    @staticmethod\n{sig}{doc}        _scope = tx.scope\n        _values: dict[str, Any] = dict(new)\n        _values[{tenant}] = _scope.tenant_id\n        _values[{project}] = _scope.project_id\n{body}",
            sig = signature(def, "insert", &[format!("tx: {}", write_scope(role)), format!("new: New{row}")], &ret),
            tenant = py_str(&attr_name("tenant_id")),
            project = py_str(&attr_name(PROJECT_COLUMN)),
            doc = docstring(&format!("Inserts one row into the write scope's project{}.\n\n{policy}", if returning { " and returns it as stored" } else { "" }), 8),
        ));
    }
    if let Some(role) = table.rule(Command::Update) {
        let policy = rule_doc(table, Command::Update, role);
        let (ret, body) = if returning {
            (
                format!("{row} | None"),
                format!(
                    "        return {}.first()\n",
                    flavor
                        .run("tx.session.scalars(_statement.returning(ROW))")
                        .replace("ROW", &row)
                ),
            )
        } else {
            (
                "bool".to_owned(),
                format!(
                    "        return {}.rowcount > 0\n",
                    flavor.run("tx.session.execute(_statement)")
                ),
            )
        };
        out.push_str(&format!(
            "\n    @staticmethod\n{sig}{doc}        if not changes:\n            raise ValueError(\"no column to change\")\n        _scope = tx.scope\n        _statement = (\n            sa.update({row})\n            {where}\n            .values(**changes)\n            .execution_options(synchronize_session=False, populate_existing=True)\n        )\n{body}",
            sig = signature(def, "update", &[params(format!("tx: {}", write_scope(role)), &key_params), vec![format!("changes: {row}Changes")]].concat(), &ret),
            where = where_call(12, &[&write_where, &key_match]),
            doc = docstring(&format!("Changes one row of the write scope's project by its key; {}.\n\n{policy}", if returning { "returns it as stored,\nNone when no visible row matches" } else { "False when no row matches" }), 8),
        ));
    }
    if let Some(role) = table.rule(Command::Delete) {
        let policy = rule_doc(table, Command::Delete, role);
        out.push_str(&format!(
            "\n    @staticmethod\n{sig}{doc}        _scope = tx.scope\n        _statement = (\n            sa.delete({row})\n            {where}\n            .execution_options(synchronize_session=False)\n        )\n        return {run}.rowcount > 0\n",
            run = flavor.run("tx.session.execute(_statement)"),
            sig = signature(def, "delete", &params(format!("tx: {}", write_scope(role)), &key_params), "bool"),
            where = where_call(12, &[&write_where, &key_match]),
            doc = docstring(&format!("Deletes one row of the write scope's project by its key; False when none matched.\n\n{policy}"), 8),
        ));
    }
    out
}

/// The list order of a scoped table: the project, then the lookup key (the Rust repositories'
/// cursor, `Shape::cursor`).
fn list_order(table: &Table) -> Vec<Column> {
    table
        .column(PROJECT_COLUMN)
        .into_iter()
        .chain(table.lookup_key().iter().filter_map(|c| table.column(c)))
        .collect()
}

/// True when a later page can seek (`Shape::has_list_after_in_project` on the Rust side): the
/// order is the project, then at least one key column.
fn list_seeks(order: &[Column]) -> bool {
    order.len() > 1 && order[0].name == PROJECT_COLUMN
}

/// The `list` method: the statements the Rust repositories' `list` sends
/// (`LIST_SQL`, `LIST_AFTER_IN_PROJECT_SQL`, `LIST_AFTER_SQL` in `rust/statements.rs`), built
/// with SQLAlchemy:
///
/// * no cursor: the scope's rows in key order;
/// * a one-project scope with the cursor in that project: the project an equality and the key
///   a range (`project_id = .. AND id > ..`), where a btree scan starts;
/// * otherwise the union of two branches, each limited to a page: the rest of the cursor's
///   project (as above) and the scope's later projects (`project_id > ..`), then the page of
///   their union.
///
/// PostgreSQL positions a scan on a row comparison `(project_id, id) > (..)` by its first
/// column only, so that form read the cursor's project from its start; it remains for a key
/// order that is not the project then key columns.
fn list_method(
    table: &Table,
    order: &[Column],
    flavor: &Flavor,
    scope: &str,
    policy: &str,
) -> String {
    let (row, _) = class_names(&table.name);
    let def = flavor.def;
    let wait = flavor.wait;
    let col = |name: &str| format!("{row}.{}", attr_name(name));
    let order_by = order
        .iter()
        .map(|c| col(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let seeks = list_seeks(order);
    let seek_doc = if seeks {
        " A later page starts its index scans at the cursor, so it costs what the first page does."
    } else {
        ""
    };
    let mut out = format!(
        "\n    @staticmethod\n    {def} list(\n        tx: {scope},\n        *,\n        after: {row}Cursor | None = None,\n        limit: int = 100,\n    ) -> builtins.list[{row}]:\n{doc}        _scope = tx.scope\n        _limit = max(1, min(limit, 1000))\n        _statement = sa.select({row}).where(\n            {tenant} == _scope.tenant_id,\n            {project}.in_(_scope.project_ids),\n        )\n",
        doc = docstring(
            &format!(
                "{}\n\n{policy}",
                wrap(
                    &format!(
                        "Rows in key order, one page at a time (keyset pagination: pass the last \
                         row's `cursor(row)` as the next page's `after`); `limit` is clamped to \
                         1..1000.{seek_doc}"
                    ),
                    88
                )
            ),
            8
        ),
        tenant = col("tenant_id"),
        project = col(PROJECT_COLUMN),
    );
    if !seeks {
        out.push_str(&format!(
            "        if after is not None:\n            _after = sa.tuple_(*[sa.literal(v) for v in after])\n            _statement = _statement.where(sa.tuple_({order_by}) > _after)\n        _statement = _statement.order_by({order_by})\n"
        ));
    } else {
        let project = col(&order[0].name);
        let project_value = format!("after.{}", attr_name(&order[0].name));
        let rest = &order[1..];
        let range = match rest {
            [one] => format!("{} > after.{}", col(&one.name), attr_name(&one.name)),
            _ => format!(
                "sa.tuple_({}) > ({})",
                rest.iter()
                    .map(|c| col(&c.name))
                    .collect::<Vec<_>>()
                    .join(", "),
                rest.iter()
                    .map(|c| format!("after.{}", attr_name(&c.name)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let row_comparison = format!(
            "({})",
            order
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let page_order = order
            .iter()
            .map(|c| format!("_page.{}", attr_name(&c.name)))
            .collect::<Vec<_>>()
            .join(", ");
        // The comment above the union, wrapped at 92 columns.
        let several = wrap(
            &format!(
                "Several projects: the rest of the cursor's project and the scope's later \
                 projects, two branches that each start an index scan at their first row and \
                 read at most a page, then the page of the two. (A row comparison {} \
                 positions a scan by its first column only.)",
                // One word for `wrap`: the row comparison stays on one line.
                format!("`{row_comparison} > (..)`").replace(' ', "\u{a0}")
            ),
            78,
        )
        .replace('\u{a0}', " ")
        .lines()
        .map(|line| format!("            # {line}\n"))
        .collect::<String>();
        out.push_str(&format!(
            "        if after is None:\n\
             \x20           _statement = _statement.order_by({order_by})\n\
             \x20       elif _scope.project_ids == [{project_value}]:\n\
             \x20           # One project, the cursor in it: the project is an equality and the key a range\n\
             \x20           # after the cursor, where the index scan starts.\n\
             \x20           _statement = _statement.where(\n\
             \x20               {project} == {project_value},\n\
             \x20               {range},\n\
             \x20           ).order_by({order_by})\n\
             \x20       else:\n\
             {several}\
             \x20           _branch = _statement.with_only_columns(*_read_columns({row}))\n\
             \x20           _union = sa.union_all(\n\
             \x20               _branch.where(\n\
             \x20                   {project} == {project_value},\n\
             \x20                   {range},\n\
             \x20               )\n\
             \x20               .order_by({order_by})\n\
             \x20               .limit(_limit),\n\
             \x20               _branch.where({project} > {project_value})\n\
             \x20               .order_by({order_by})\n\
             \x20               .limit(_limit),\n\
             \x20           ).subquery(\"page\")\n\
             \x20           _page = aliased({row}, _union)\n\
             \x20           _statement = sa.select(_page).order_by({page_order})\n"
        ));
    }
    out.push_str(&format!(
        "        return builtins.list({wait}tx.session.scalars(_statement.limit(_limit)))\n"
    ));
    out
}
