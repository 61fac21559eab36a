//! Phase 3, validate: the data checked before anything is enforced (orphans, NULLs, duplicates).

use super::*;

pub(super) fn validate(plan: &Plan<'_>, target: Target) -> String {
    let mut out = plan.header(
        "Adoption, phase 3 of 4 (validate): nothing is lost, nothing is left without a scope.",
        target,
    );
    out.push_str(
        "--\n\
         -- Runs in one transaction and changes nothing unless every check passes (it then records\n\
         -- the time in the bookkeeping table; the contract phase requires it). Per table: the rows\n\
         -- the backfill found without a scope were all filled, no row lacks tenant_id/project_id, no\n\
         -- required column holds NULL, no foreign key of the policies points nowhere (in the same\n\
         -- tenant and project) and no key of the policies is duplicated. Otherwise it stops with\n\
         -- one message naming each table and count.\n",
    );
    let mut body = String::new();
    for t in &plan.tables {
        let name_lit = literal(t.name());
        let mut null_filters = vec![format!(
            "pg_catalog.count(*) FILTER (WHERE {} IS NULL OR {} IS NULL)",
            ident(TENANT_COLUMN),
            ident(PROJECT_COLUMN)
        )];
        let mut null_labels = vec![format!("NULL {TENANT_COLUMN} or {PROJECT_COLUMN}")];
        for c in &t.required {
            null_filters.push(format!(
                "pg_catalog.count(*) FILTER (WHERE {} IS NULL)",
                ident(&c.name)
            ));
            null_labels.push(format!(
                "NULL {}, which the policies declare NOT NULL",
                c.name
            ));
        }
        body.push_str(&format!(
            "\n\x20 -- {name}\n\
             \x20 SELECT rows_before, rows_backfilled INTO before, backfilled\n\
             \x20 FROM {bookkeeping} WHERE table_name = {name_lit};\n\
             \x20 SELECT pg_catalog.count(*), ARRAY[\n\
             \x20     {filters}\n\
             \x20   ]\n\
             \x20 INTO total, nulls\n\
             \x20 FROM {q};\n\
             \x20 RAISE NOTICE '%: % row(s) before the backfill, % backfilled, % now', {name_lit}, before, backfilled, total;\n\
             \x20 IF before IS NULL THEN\n\
             \x20   problems := problems || pg_catalog.format('%s: the backfill (0003_adopt_backfill.sql) has not run', {name_lit});\n\
             \x20 ELSIF backfilled <> before THEN\n\
             \x20   problems := problems || pg_catalog.format('%s: %s row(s) before the backfill but %s backfilled', {name_lit}, before, backfilled);\n\
             \x20 END IF;\n\
             \x20 labels := ARRAY[{labels}];\n\
             \x20 FOR i IN 1 .. pg_catalog.cardinality(nulls) LOOP\n\
             \x20   IF nulls[i] > 0 THEN\n\
             \x20     problems := problems || pg_catalog.format('%s: %s row(s) with %s', {name_lit}, nulls[i], labels[i]);\n\
             \x20   END IF;\n\
             \x20 END LOOP;\n",
            name = t.name(),
            bookkeeping = plan.bookkeeping,
            filters = null_filters.join(",\n      "),
            q = t.qualified,
            labels = null_labels
                .iter()
                .map(|l| literal(l))
                .collect::<Vec<_>>()
                .join(", "),
        ));
        for (_, _, fk) in &t.foreign_keys {
            body.push_str(&format!(
                "\x20 n := ({});\n\
                 \x20 IF n > 0 THEN\n\
                 \x20   problems := problems || pg_catalog.format('%s: %s row(s) whose %s match no row of %s in the same tenant and project (orphans)', {name_lit}, n, {cols}, {parent});\n\
                 \x20 END IF;\n",
                orphan_count_sql(t, fk),
                cols = literal(&fk.declared_columns.join(", ")),
                parent = literal(&fk.parent),
            ));
        }
        for key in &t.keys {
            let not_null: Vec<String> = key
                .columns
                .iter()
                .map(|c| format!("{} IS NOT NULL", ident(c)))
                .collect();
            body.push_str(&format!(
                "\x20 n := (SELECT pg_catalog.count(*) FROM (\n\
                 \x20   SELECT 1 FROM {q} WHERE {not_null}\n\
                 \x20   GROUP BY {cols} HAVING pg_catalog.count(*) > 1) AS duplicated);\n\
                 \x20 IF n > 0 THEN\n\
                 \x20   problems := problems || pg_catalog.format('%s: %s duplicated value(s) of the key (%s)', {name_lit}, n, {cols_lit});\n\
                 \x20 END IF;\n",
                q = t.qualified,
                not_null = not_null.join(" AND "),
                cols = ident_list(&key.columns),
                cols_lit = literal(&key.columns.join(", ")),
            ));
        }
    }
    out.push_str(&format!(
        "\nDO $$\n\
         DECLARE\n\
         \x20 problems text[] := '{{}}';\n\
         \x20 before bigint;\n\
         \x20 backfilled bigint;\n\
         \x20 total bigint;\n\
         \x20 nulls bigint[];\n\
         \x20 labels text[];\n\
         \x20 n bigint;\n\
         BEGIN\n\
         \x20 IF NOT EXISTS (SELECT 1 FROM {bookkeeping}) THEN\n\
         \x20   RAISE EXCEPTION 'adoption stopped at validate: the expand phase (0002_adopt_expand.sql) has not run';\n\
         \x20 END IF;\n\
         {body}\n\
         \x20 IF pg_catalog.cardinality(problems) > 0 THEN\n\
         \x20   RAISE EXCEPTION 'adoption stopped at validate: %', pg_catalog.array_to_string(problems, '; ')\n\
         \x20     USING HINT = 'nothing was changed; fix these rows, run the backfill again if scope columns are NULL, then this migration';\n\
         \x20 END IF;\n\
         \x20 UPDATE {bookkeeping} SET validated_at = pg_catalog.now();\n\
         END\n\
         $$;\n",
        bookkeeping = plan.bookkeeping,
    ));
    out
}
