//! Phase 4, contract: checks, indexes, keys and row-level security enforced, step by step.

use super::*;

pub(super) fn contract_checks(plan: &Plan<'_>, target: Target) -> String {
    let mut out = plan.header(
        "Adoption, phase 4 of 4 (contract), step 1: NOT NULL as CHECK constraints, not yet validated.",
        target,
    );
    out.push_str(
        "--\n\
         -- Runs in one transaction. Adding a CHECK ... NOT VALID is metadata only: it applies to\n\
         -- new rows at once, and the next file validates it without blocking reads or writes.\n\
         -- SET NOT NULL then uses the validated check instead of scanning under an exclusive lock.\n",
    );
    out.push_str(&lock_timeout());
    out.push_str(&require_validated(plan));
    out.push_str(&lock_adopted_tables(plan, |t| t.name().to_owned()));
    for t in &plan.tables {
        let conditions: Vec<String> = t
            .not_null_columns()
            .iter()
            .map(|c| format!("{} IS NOT NULL", ident(c)))
            .collect();
        out.push_str(&format!(
            "\nALTER TABLE {q} ADD CONSTRAINT {check}\n\
             \x20 CHECK ({conditions}) NOT VALID;\n",
            q = t.qualified,
            check = ident(&t.check_name),
            conditions = conditions.join(" AND "),
        ));
    }
    out
}

pub(super) fn contract_validate_checks(plan: &Plan<'_>, target: Target) -> String {
    let mut out = plan.header(
        "Adoption, phase 4 of 4 (contract), step 2: validate the NOT NULL checks.",
        target,
    );
    out.push_str(
        "--\n\
         -- Runs in one transaction. VALIDATE CONSTRAINT scans the table under SHARE UPDATE\n\
         -- EXCLUSIVE: reads and writes go on. A violation (a row written since the validate phase)\n\
         -- stops the migration with the table and the count.\n",
    );
    out.push_str(&lock_timeout());
    for t in &plan.tables {
        let conditions: Vec<String> = t
            .not_null_columns()
            .iter()
            .map(|c| format!("{} IS NULL", ident(c)))
            .collect();
        out.push_str(&format!(
            "\nDO $$\n\
             BEGIN\n\
             \x20 ALTER TABLE {q} VALIDATE CONSTRAINT {check};\n\
             EXCEPTION WHEN check_violation THEN\n\
             \x20 RAISE EXCEPTION 'adoption stopped at contract: %: % row(s) with NULL in a column that must be NOT NULL ({columns})',\n\
             \x20   {name}, (SELECT pg_catalog.count(*) FROM {q} WHERE {conditions});\n\
             END\n\
             $$;\n",
            q = t.qualified,
            check = ident(&t.check_name),
            name = literal(t.name()),
            columns = t.not_null_columns().join(", ").replace('\'', "''"),
            conditions = conditions.join(" OR "),
        ));
    }
    out
}

pub(super) fn contract_indexes(plan: &Plan<'_>, target: Target) -> String {
    let mut out = plan.header(
        "Adoption, phase 4 of 4 (contract), step 3: build the composite keys and the indexes.",
        target,
    );
    out.push_str(&format!(
        "{NO_TRANSACTION_MARKER}\n\
         --\n\
         -- Runs OUTSIDE a transaction block, one statement at a time: CREATE INDEX CONCURRENTLY\n\
         -- builds without blocking reads or writes but cannot run in a transaction. Each index is\n\
         -- built under a temporary name (the existing keys may hold the final name); the next\n\
         -- file turns them into the keys and gives them their names. Re-runnable: an index that a\n\
         -- failed run left behind (possibly INVALID) is dropped, concurrently, and built again.\n"
    ));
    for t in &plan.tables {
        out.push_str(&format!("\n-- {}\n", t.name()));
        for key in &t.keys {
            out.push_str(&format!(
                "DROP INDEX CONCURRENTLY IF EXISTS public.{build};\n\
                 CREATE UNIQUE INDEX CONCURRENTLY {build} ON {q} ({cols});\n",
                build = ident(&key.build_name),
                q = t.qualified,
                cols = ident_list(&key.columns),
            ));
        }
        for index in &t.indexes {
            let using = match index.method {
                IndexMethod::BTree => "",
                IndexMethod::Gin => " USING gin",
            };
            if let Some(note) = index.note {
                out.push_str(&format!("-- {note}\n"));
            }
            out.push_str(&format!(
                "DROP INDEX CONCURRENTLY IF EXISTS public.{build};\n\
                 CREATE INDEX CONCURRENTLY {build} ON {q}{using} ({cols});\n",
                build = ident(&index.build_name),
                q = t.qualified,
                cols = ident_list(&index.columns),
            ));
        }
    }
    out
}

pub(super) fn contract_keys(plan: &Plan<'_>, target: Target) -> String {
    let mut out = plan.header(
        "Adoption, phase 4 of 4 (contract), step 4: NOT NULL, composite keys, foreign keys NOT VALID.",
        target,
    );
    out.push_str(
        "--\n\
         -- Runs in one transaction, metadata only: SET NOT NULL is proven by the validated checks\n\
         -- (no scan), the keys take the indexes built by the previous file, the foreign keys are\n\
         -- added NOT VALID (the next file validates them). The existing keys, foreign keys and\n\
         -- indexes are dropped first (foreign keys before the keys they use); the adopted tables\n\
         -- end with exactly the keys and indexes of the policies. The transition defaults go.\n",
    );
    out.push_str(&lock_timeout());
    out.push_str(&require_validated(plan));
    let build_names: Vec<String> = plan
        .tables
        .iter()
        .flat_map(|t| {
            t.keys
                .iter()
                .map(|k| k.build_name.clone())
                .chain(t.indexes.iter().map(|i| i.build_name.clone()))
        })
        .collect();
    let build_literals: Vec<String> = build_names.iter().map(|n| literal(n)).collect();
    out.push_str(&format!(
        "\nDO $$\n\
         DECLARE\n\
         \x20 missing text;\n\
         BEGIN\n\
         \x20 SELECT pg_catalog.string_agg(wanted.name, ', ' ORDER BY wanted.name) INTO missing\n\
         \x20 FROM pg_catalog.unnest(ARRAY[{names}]) AS wanted(name)\n\
         \x20 LEFT JOIN pg_catalog.pg_class AS c\n\
         \x20   ON c.relname = wanted.name AND c.relnamespace = 'public'::regnamespace\n\
         \x20 LEFT JOIN pg_catalog.pg_index AS i ON i.indexrelid = c.oid\n\
         \x20 WHERE i.indisvalid IS NOT TRUE;\n\
         \x20 IF missing IS NOT NULL THEN\n\
         \x20   RAISE EXCEPTION 'adoption stopped at contract: indexes missing or invalid: % (run 0007_adopt_contract_indexes.sql again)', missing;\n\
         \x20 END IF;\n\
         END\n\
         $$;\n",
        names = build_literals.join(", "),
    ));

    out.push_str(&lock_adopted_tables(plan, |t| t.name().to_owned()));
    out.push_str(&section_heading(
        "NOT NULL (proven by the validated checks), the policies' defaults, no transition default",
        None,
    ));
    for t in &plan.tables {
        let mut actions: Vec<String> = t
            .not_null_columns()
            .iter()
            .map(|c| format!("ALTER COLUMN {} SET NOT NULL", ident(c)))
            .collect();
        for c in &t.table.columns {
            if c.nullable {
                actions.push(format!("ALTER COLUMN {} DROP NOT NULL", ident(&c.name)));
            }
        }
        out.push_str(&format!(
            "ALTER TABLE {}\n  {};\n",
            t.qualified,
            actions.join(",\n  ")
        ));
        let mut defaults = vec![
            format!("ALTER COLUMN {} DROP DEFAULT", ident(TENANT_COLUMN)),
            format!("ALTER COLUMN {} DROP DEFAULT", ident(PROJECT_COLUMN)),
        ];
        for c in &t.table.columns {
            defaults.push(match &c.default {
                Some(d) => format!("ALTER COLUMN {} SET DEFAULT {}", ident(&c.name), d.to_sql()),
                None => format!("ALTER COLUMN {} DROP DEFAULT", ident(&c.name)),
            });
        }
        defaults.push(format!("DROP CONSTRAINT {}", ident(&t.check_name)));
        out.push_str(&format!(
            "ALTER TABLE {}\n  {};\n",
            t.qualified,
            defaults.join(",\n  ")
        ));
    }

    out.push_str(&section_heading(
        "The existing foreign keys, keys and indexes go",
        Some(
            "Every foreign key of the adopted tables first (the expand phase checked that no other\n\
             table references them), then their primary and unique keys, then every other index\n\
             except the ones the previous file built.",
        ),
    ));
    out.push_str(&format!(
        "DO $$\n\
         DECLARE\n\
         \x20 adopted regclass[] := {tables};\n\
         \x20 item record;\n\
         BEGIN\n\
         \x20 FOR item IN\n\
         \x20   SELECT conrelid::regclass AS rel, conname FROM pg_catalog.pg_constraint\n\
         \x20   WHERE contype = 'f' AND conrelid = ANY (adopted)\n\
         \x20   ORDER BY conrelid::regclass::text, conname\n\
         \x20 LOOP\n\
         \x20   EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', item.rel, item.conname);\n\
         \x20 END LOOP;\n\
         \x20 FOR item IN\n\
         \x20   SELECT conrelid::regclass AS rel, conname FROM pg_catalog.pg_constraint\n\
         \x20   WHERE contype IN ('p', 'u') AND conrelid = ANY (adopted)\n\
         \x20   ORDER BY conrelid::regclass::text, conname\n\
         \x20 LOOP\n\
         \x20   EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', item.rel, item.conname);\n\
         \x20 END LOOP;\n\
         \x20 FOR item IN\n\
         \x20   SELECT i.indexrelid::regclass AS idx FROM pg_catalog.pg_index AS i\n\
         \x20   JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid\n\
         \x20   WHERE i.indrelid = ANY (adopted) AND c.relname <> ALL (ARRAY[{names}])\n\
         \x20   ORDER BY 1\n\
         \x20 LOOP\n\
         \x20   EXECUTE pg_catalog.format('DROP INDEX %s', item.idx);\n\
         \x20 END LOOP;\n\
         END\n\
         $$;\n",
        tables = plan.regclass_array(),
        names = build_literals.join(", "),
    ));

    out.push_str(&section_heading(
        "The policies' keys and indexes, from the indexes built concurrently",
        None,
    ));
    for t in &plan.tables {
        for key in &t.keys {
            out.push_str(&format!(
                "ALTER TABLE {q} ADD CONSTRAINT {name} {kind} USING INDEX {build};\n",
                q = t.qualified,
                name = ident(&key.constraint),
                kind = if key.primary { "PRIMARY KEY" } else { "UNIQUE" },
                build = ident(&key.build_name),
            ));
        }
        for index in &t.indexes {
            out.push_str(&format!(
                "ALTER INDEX public.{} RENAME TO {};\n",
                ident(&index.build_name),
                ident(&index.name)
            ));
        }
    }

    out.push_str(&section_heading(
        "Foreign keys, composite with the scope columns, NOT VALID",
        Some("Checked for new rows at once; the next file validates the existing ones."),
    ));
    for t in &plan.tables {
        for (name, definition, _) in &t.foreign_keys {
            out.push_str(&format!(
                "ALTER TABLE {q} ADD CONSTRAINT {name} {definition} NOT VALID;\n",
                q = t.qualified,
                name = ident(name),
            ));
        }
    }
    out
}

pub(super) fn contract_validate_keys(plan: &Plan<'_>, target: Target) -> String {
    let mut out = plan.header(
        "Adoption, phase 4 of 4 (contract), step 5: validate the foreign keys.",
        target,
    );
    out.push_str(
        "--\n\
         -- Runs in one transaction. VALIDATE CONSTRAINT takes SHARE UPDATE EXCLUSIVE on the table\n\
         -- and ROW SHARE on the referenced one: reads and writes go on. An orphan (written since\n\
         -- the validate phase) stops the migration with the table and the count.\n",
    );
    out.push_str(&lock_timeout());
    for t in &plan.tables {
        for (name, _, fk) in &t.foreign_keys {
            out.push_str(&format!(
                "\nDO $$\n\
                 BEGIN\n\
                 \x20 ALTER TABLE {q} VALIDATE CONSTRAINT {name};\n\
                 EXCEPTION WHEN foreign_key_violation THEN\n\
                 \x20 RAISE EXCEPTION 'adoption stopped at contract: %: % row(s) whose % match no row of % (orphans)',\n\
                 \x20   {table}, ({count}), {cols}, {parent};\n\
                 END\n\
                 $$;\n",
                q = t.qualified,
                name = ident(name),
                table = literal(t.name()),
                count = orphan_count_sql(t, fk),
                cols = literal(&fk.declared_columns.join(", ")),
                parent = literal(&fk.parent),
            ));
        }
    }
    out
}

pub(super) fn contract_security(plan: &Plan<'_>, target: Target) -> String {
    let model = plan.model;
    let mut out = plan.header(
        "Adoption, phase 4 of 4 (contract), step 6: owner, row-level security enabled and forced, grants.",
        target,
    );
    out.push_str(
        "--\n\
         -- Runs in one transaction. From here on the adopted tables are exactly what\n\
         -- 0002_tables.sql would have created: owned by the owner role, row-level security\n\
         -- enabled and forced, the app role granted what the rules allow. The backfill\n\
         -- procedure is dropped; the bookkeeping table stays as the record of the adoption.\n",
    );
    out.push_str(&lock_timeout());
    out.push_str(&require_validated(plan));
    out.push_str(&lock_adopted_tables(plan, |t| t.name().to_owned()));
    for t in &plan.tables {
        out.push_str(&section_heading(
            &format!(
                "{} ({}, adopted from {})",
                t.name(),
                tables::kind_description(t.table.kind),
                t.legacy
            ),
            t.table.doc.as_deref(),
        ));
        out.push_str(&format!(
            "ALTER TABLE {} OWNER TO {};\n",
            t.qualified,
            ident(&model.settings.owner_role)
        ));
        out.push_str(&security::security_section(model, t.table, target));
        // An adopted table was ANALYZEd before: set the targets and remove what is stored.
        out.push_str(&super::super::statistics::clear_statistics(
            std::slice::from_ref(&t.qualified),
        ));
        out.push_str(&super::super::statistics::statistics_section(
            t.table,
            &t.qualified,
        ));
    }
    out.push_str(&format!(
        "\nDROP PROCEDURE {procedure}(integer);\n\
         UPDATE {bookkeeping} SET adopted_at = pg_catalog.now();\n",
        procedure = plan.procedure,
        bookkeeping = plan.bookkeeping,
    ));
    out
}
