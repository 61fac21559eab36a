//! Phase 2, backfill: the scope columns filled in batches, outside one long transaction.

use super::*;

/// `CREATE PROCEDURE <schema>.adoption_backfill(batch_size)`: one loop per table, walking
/// the existing key in order and committing every batch.
pub(super) fn backfill_procedure(plan: &Plan<'_>) -> String {
    let schema = &plan.model.settings.helper_schema;
    let mut out = section_heading(
        &format!("The backfill procedure {}", plan.procedure),
        Some(
            "Called by 0003_adopt_backfill.sql. Per table, the first run counts the rows without a\n\
             scope (rows_before: the rows that existed at expand, since rows written later get the\n\
             transition default; counted without blocking writes). It then walks the table in\n\
             primary key order, BATCH_SIZE rows per transaction (it commits after every batch, so\n\
             no lock outlives a batch), and fills tenant_id/project_id where both are still NULL:\n\
             a run that fails half-way is simply run again. Counts the rows it fills in the\n\
             bookkeeping table, in the same transaction as each batch. No SET clause: a procedure\n\
             with one cannot COMMIT, so every name is schema-qualified instead. Dropped by the\n\
             contract phase.",
        ),
    );
    let mut declarations = String::new();
    let mut body = String::new();
    for (n, t) in plan.tables.iter().enumerate() {
        let key = ident(&t.key.name);
        let key_type = t.key.ty.sql_name(&ident(schema));
        declarations.push_str(&format!(
            "\x20 keys_{n} {key_type}[];\n\x20 last_key_{n} {key_type};\n"
        ));
        body.push_str(&format!(
            "\n\x20 -- {name}\n\
             \x20 UPDATE {bookkeeping}\n\
             \x20 SET rows_before = (SELECT pg_catalog.count(*) FROM {q} WHERE {tenant} IS NULL AND {project} IS NULL)\n\
             \x20 WHERE table_name = {name_lit} AND rows_before IS NULL;\n\
             \x20 COMMIT;\n\
             \x20 SELECT tenant_id, project_id INTO scope_tenant, scope_project\n\
             \x20 FROM {bookkeeping} WHERE table_name = {name_lit};\n\
             \x20 LOOP\n\
             \x20   IF last_key_{n} IS NULL THEN\n\
             \x20     keys_{n} := ARRAY(SELECT {key} FROM {q} ORDER BY {key} LIMIT batch_size);\n\
             \x20   ELSE\n\
             \x20     keys_{n} := ARRAY(SELECT {key} FROM {q} WHERE {key} > last_key_{n} ORDER BY {key} LIMIT batch_size);\n\
             \x20   END IF;\n\
             \x20   EXIT WHEN pg_catalog.cardinality(keys_{n}) = 0;\n\
             \x20   UPDATE {q}\n\
             \x20   SET {tenant} = scope_tenant, {project} = scope_project\n\
             \x20   WHERE {key} = ANY (keys_{n}) AND {tenant} IS NULL AND {project} IS NULL;\n\
             \x20   GET DIAGNOSTICS filled = ROW_COUNT;\n\
             \x20   UPDATE {bookkeeping} SET rows_backfilled = rows_backfilled + filled\n\
             \x20   WHERE table_name = {name_lit};\n\
             \x20   last_key_{n} := keys_{n}[pg_catalog.cardinality(keys_{n})];\n\
             \x20   COMMIT;\n\
             \x20 END LOOP;\n",
            name = t.name(),
            name_lit = literal(t.name()),
            q = t.qualified,
            bookkeeping = plan.bookkeeping,
            tenant = ident(TENANT_COLUMN),
            project = ident(PROJECT_COLUMN),
        ));
    }
    out.push_str(&format!(
        "CREATE PROCEDURE {procedure}(batch_size integer)\n\
         \x20 LANGUAGE plpgsql\n\
         AS $$\n\
         DECLARE\n\
         \x20 scope_tenant uuid;\n\
         \x20 scope_project uuid;\n\
         \x20 filled bigint;\n\
         {declarations}\
         BEGIN\n\
         \x20 IF batch_size IS NULL OR batch_size < 1 THEN\n\
         \x20   RAISE EXCEPTION 'batch_size must be at least 1';\n\
         \x20 END IF;\n\
         {body}\
         END\n\
         $$;\n\
         REVOKE ALL ON PROCEDURE {procedure}(integer) FROM PUBLIC;\n",
        procedure = plan.procedure,
    ));
    out
}

pub(super) fn backfill(plan: &Plan<'_>, target: Target) -> String {
    let mut out = plan.header(
        "Adoption, phase 2 of 4 (backfill): existing rows get the default tenant and project.",
        target,
    );
    out.push_str(&format!(
        "{NO_TRANSACTION_MARKER}\n\
         --\n\
         -- Runs OUTSIDE a transaction block, one statement at a time: the procedure commits\n\
         -- after every batch of {BACKFILL_BATCH_ROWS} rows, so no statement holds locks on a big table for\n\
         -- long. Re-runnable: only rows whose scope is still NULL are touched, and each batch\n\
         -- counts what it filled in the same transaction.\n\
         CALL {}({BACKFILL_BATCH_ROWS});\n\
         \n\
         -- The backfill left one dead row version per row. VACUUM (which reads and writes go on\n\
         -- through) reclaims them and ANALYZE gives the planner statistics on the new columns;\n\
         -- otherwise autovacuum starts on the big tables now, and the next DDL's lock request\n\
         -- would queue the application's statements behind it until PostgreSQL cancels it\n\
         -- (deadlock_timeout, 1 s by default).\n",
        plan.procedure
    ));
    for t in &plan.tables {
        out.push_str(&format!("VACUUM (ANALYZE) {};\n", t.qualified));
    }
    out
}
