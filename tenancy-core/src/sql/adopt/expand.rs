//! Phase 1, expand: the scope columns added nullable, the tenancy core beside the legacy schema.

use super::backfill::backfill_procedure;
use super::*;

pub(super) fn expand(plan: &Plan<'_>, target: Target) -> String {
    let model = plan.model;
    let schema = &model.settings.helper_schema;
    let mut out = plan.header(
        "Adoption, phase 1 of 4 (expand): the default tenant and project, nullable scope columns.",
        target,
    );
    out.push_str(
        "--\n\
         -- Runs in one transaction. Expects the existing tables in schema public and the tenancy\n\
         -- core (0001). Adds tenant_id/project_id without a default to existing rows (metadata only,\n\
         -- no rewrite); new rows get the default tenant and project from a transition DEFAULT\n\
         -- that the contract phase removes. Creates the backfill procedure that 0003 calls.\n\
         -- Run it as a role that bypasses row-level security (the tenancy core tables force it).\n",
    );
    out.push_str(&lock_timeout());

    // Checks first: nothing changes when the existing schema is not what the model says.
    out.push_str(&section_heading(
        "Checks: the existing tables are what the policies declare",
        Some(
            "Every adopted table exists (under its existing name), has the declared columns with\n\
             the declared types and no scope column yet, and no table outside the adoption\n\
             references it (its key is about to change).",
        ),
    ));
    let mut expected_rows = Vec::new();
    for t in &plan.tables {
        for column in &t.table.columns {
            expected_rows.push(format!(
                "({}, {}, {})",
                literal(t.legacy),
                literal(&column.name),
                literal(&catalog_type_name(column.ty, &ident(schema)))
            ));
        }
    }
    let tables_rows: Vec<String> = plan
        .tables
        .iter()
        .map(|t| format!("({}, {})", literal(t.legacy), literal(t.name())))
        .collect();
    out.push_str(&format!(
        "DO $$\n\
         DECLARE\n\
         \x20 problems text[];\n\
         BEGIN\n\
         \x20 SELECT pg_catalog.array_agg(problem ORDER BY problem) INTO problems\n\
         \x20 FROM (\n\
         \x20   SELECT pg_catalog.format('existing table public.%I not found', t.legacy_table) AS problem\n\
         \x20   FROM (VALUES {tables}) AS t(legacy_table, table_name)\n\
         \x20   WHERE pg_catalog.to_regclass(pg_catalog.format('public.%I', t.legacy_table)) IS NULL\n\
         \x20   UNION ALL\n\
         \x20   SELECT pg_catalog.format('public.%I already exists (the adopted table %I is renamed to it)',\n\
         \x20                            t.table_name, t.legacy_table)\n\
         \x20   FROM (VALUES {tables}) AS t(legacy_table, table_name)\n\
         \x20   WHERE t.table_name <> t.legacy_table\n\
         \x20     AND pg_catalog.to_regclass(pg_catalog.format('public.%I', t.table_name)) IS NOT NULL\n\
         \x20   UNION ALL\n\
         \x20   SELECT pg_catalog.format('%I.%I: expected %s, found %s', e.legacy_table, e.column_name,\n\
         \x20                            e.type_name, COALESCE(pg_catalog.format_type(a.atttypid, a.atttypmod), 'no such column'))\n\
         \x20   FROM (VALUES\n\
         \x20     {expected}\n\
         \x20   ) AS e(legacy_table, column_name, type_name)\n\
         \x20   LEFT JOIN pg_catalog.pg_attribute AS a\n\
         \x20     ON a.attrelid = pg_catalog.to_regclass(pg_catalog.format('public.%I', e.legacy_table))\n\
         \x20    AND a.attname = e.column_name AND a.attnum > 0 AND NOT a.attisdropped\n\
         \x20   WHERE pg_catalog.to_regclass(pg_catalog.format('public.%I', e.legacy_table)) IS NOT NULL\n\
         \x20     AND pg_catalog.format_type(a.atttypid, a.atttypmod) IS DISTINCT FROM e.type_name\n\
         \x20   UNION ALL\n\
         \x20   SELECT pg_catalog.format('%I already has a column %I', t.legacy_table, a.attname)\n\
         \x20   FROM (VALUES {tables}) AS t(legacy_table, table_name)\n\
         \x20   JOIN pg_catalog.pg_attribute AS a\n\
         \x20     ON a.attrelid = pg_catalog.to_regclass(pg_catalog.format('public.%I', t.legacy_table))\n\
         \x20    AND a.attname IN ({tenant}, {project}) AND NOT a.attisdropped\n\
         \x20   UNION ALL\n\
         \x20   SELECT pg_catalog.format('%s references the adopted table %s (foreign key %I): adopt it too or drop that key',\n\
         \x20                            c.conrelid::regclass, c.confrelid::regclass, c.conname)\n\
         \x20   FROM pg_catalog.pg_constraint AS c\n\
         \x20   JOIN (VALUES {tables}) AS t(legacy_table, table_name)\n\
         \x20     ON c.confrelid = pg_catalog.to_regclass(pg_catalog.format('public.%I', t.legacy_table))\n\
         \x20   WHERE c.contype = 'f'\n\
         \x20     AND c.conrelid NOT IN (\n\
         \x20       SELECT pg_catalog.to_regclass(pg_catalog.format('public.%I', o.legacy_table))\n\
         \x20       FROM (VALUES {tables}) AS o(legacy_table, table_name)\n\
         \x20       WHERE pg_catalog.to_regclass(pg_catalog.format('public.%I', o.legacy_table)) IS NOT NULL)\n\
         \x20 ) AS found;\n\
         \x20 IF problems IS NOT NULL THEN\n\
         \x20   RAISE EXCEPTION 'adoption stopped at expand: %', pg_catalog.array_to_string(problems, '; ')\n\
         \x20     USING HINT = 'nothing was changed; make the existing tables match the policies and run this migration again';\n\
         \x20 END IF;\n\
         END\n\
         $$;\n",
        tables = tables_rows.join(", "),
        expected = expected_rows.join(",\n      "),
        tenant = literal(TENANT_COLUMN),
        project = literal(PROJECT_COLUMN),
    ));

    out.push_str(&lock_adopted_tables(plan, |t| t.legacy.to_owned()));

    let renames: Vec<&AdoptedPlan<'_>> = plan
        .tables
        .iter()
        .filter(|t| t.legacy != t.name())
        .collect();
    if !renames.is_empty() {
        out.push_str(&section_heading(
            "Renames: existing tables take the names of the tables that adopt them",
            None,
        ));
        for t in renames {
            out.push_str(&format!(
                "ALTER TABLE public.{} RENAME TO {};\n",
                ident(t.legacy),
                ident(t.name())
            ));
        }
    }

    // The default tenant and project, and the bookkeeping table.
    out.push_str(&section_heading(
        &format!(
            "The default tenant {} and its project {}",
            literal(&plan.adoption.tenant),
            literal(&plan.adoption.project)
        ),
        Some(
            "Every existing row goes there (to be split into real tenants later, see\n\
             docs/runbook.md). The bookkeeping table records, per adopted table, where its rows\n\
             go, how many rows the backfill found without a scope and how many it filled.",
        ),
    ));
    let owner = ident(&model.settings.owner_role);
    out.push_str(&format!(
        "CREATE TABLE {bookkeeping} (\n\
         \x20 table_name      text PRIMARY KEY,\n\
         \x20 legacy_table    text NOT NULL,\n\
         \x20 tenant_id       uuid NOT NULL,\n\
         \x20 project_id      uuid NOT NULL,\n\
         \x20 rows_before     bigint,\n\
         \x20 rows_backfilled bigint NOT NULL DEFAULT 0,\n\
         \x20 expanded_at     timestamptz NOT NULL DEFAULT now(),\n\
         \x20 validated_at    timestamptz,\n\
         \x20 adopted_at      timestamptz\n\
         );\n\
         ALTER TABLE {bookkeeping} OWNER TO {owner};\n\
         REVOKE ALL ON TABLE {bookkeeping} FROM PUBLIC;\n",
        bookkeeping = plan.bookkeeping,
    ));
    let (tenants, projects) = (
        model.core_table(TableKind::Tenants),
        model.core_table(TableKind::Projects),
    );
    if let (Some(tenants), Some(projects)) = (tenants, projects) {
        let required_text = |table: &Table| -> Vec<String> {
            table
                .columns
                .iter()
                .filter(|c| !c.nullable && c.default.is_none() && c.ty == SqlType::Text)
                .map(|c| c.name.clone())
                .collect()
        };
        let tenant_columns = required_text(tenants);
        let project_columns = required_text(projects);
        let tenant_insert = if tenant_columns.is_empty() {
            "DEFAULT VALUES".to_owned()
        } else {
            format!(
                "({}) VALUES ({})",
                ident_list(&tenant_columns),
                vec![literal(&plan.adoption.tenant); tenant_columns.len()].join(", ")
            )
        };
        let mut project_cols = vec![TENANT_COLUMN.to_owned()];
        project_cols.extend(project_columns.iter().cloned());
        let mut project_values = vec!["tenant.id".to_owned()];
        project_values.extend(
            project_columns
                .iter()
                .map(|_| literal(&plan.adoption.project)),
        );
        let adopted_rows: Vec<String> = plan
            .tables
            .iter()
            .map(|t| format!("({}, {})", literal(t.name()), literal(t.legacy)))
            .collect();
        out.push_str(&format!(
            "WITH tenant AS (\n\
             \x20 INSERT INTO public.{tenants} {tenant_insert}\n\
             \x20 RETURNING id\n\
             ), project AS (\n\
             \x20 INSERT INTO public.{projects} ({project_cols})\n\
             \x20 SELECT {project_values} FROM tenant\n\
             \x20 RETURNING tenant_id, id\n\
             )\n\
             INSERT INTO {bookkeeping} (table_name, legacy_table, tenant_id, project_id)\n\
             SELECT adopted.table_name, adopted.legacy_table, project.tenant_id, project.id\n\
             FROM project\n\
             CROSS JOIN (VALUES {adopted}) AS adopted(table_name, legacy_table);\n",
            tenants = ident(&tenants.name),
            projects = ident(&projects.name),
            project_cols = ident_list(&project_cols),
            project_values = project_values.join(", "),
            bookkeeping = plan.bookkeeping,
            adopted = adopted_rows.join(", "),
        ));
    }

    for t in &plan.tables {
        out.push_str(&section_heading(
            &format!("{} (adopts the existing table {})", t.name(), t.legacy),
            None,
        ));
        out.push_str(&format!(
            "ALTER TABLE {q}\n\
             \x20 ADD COLUMN {tenant} uuid,\n\
             \x20 ADD COLUMN {project} uuid;\n",
            q = t.qualified,
            tenant = ident(TENANT_COLUMN),
            project = ident(PROJECT_COLUMN),
        ));
    }

    out.push_str(&section_heading(
        "Transition defaults: rows written during the migration go to the default scope",
        Some(
            "A constant default is metadata only (existing rows stay NULL until the backfill).\n\
             The contract phase drops these defaults: afterwards every row names its scope.",
        ),
    ));
    out.push_str(&format!(
        "DO $$\n\
         DECLARE\n\
         \x20 adopted record;\n\
         BEGIN\n\
         \x20 FOR adopted IN SELECT table_name, tenant_id, project_id FROM {bookkeeping} ORDER BY table_name LOOP\n\
         \x20   EXECUTE pg_catalog.format(\n\
         \x20     'ALTER TABLE public.%I ALTER COLUMN {tenant} SET DEFAULT %L, ALTER COLUMN {project} SET DEFAULT %L',\n\
         \x20     adopted.table_name, adopted.tenant_id, adopted.project_id);\n\
         \x20 END LOOP;\n\
         END\n\
         $$;\n",
        bookkeeping = plan.bookkeeping,
        tenant = ident(TENANT_COLUMN),
        project = ident(PROJECT_COLUMN),
    ));

    out.push_str(&backfill_procedure(plan));
    out
}
