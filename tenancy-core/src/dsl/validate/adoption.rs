//! The `adopt` block: taking over existing tables, default rows.

use super::*;

impl<'a> Checker<'_, 'a> {
    /// Rule: at most one `adopt` block, naming `tenant` and `project` once each (not empty);
    /// a block is needed as soon as a table `adopts` an existing one, and a block without any
    /// `adopts` is only a warning. See [`Checker::check_adopting_table`] for the tables.
    pub(super) fn check_adoption(
        &mut self,
        files: &[File],
        infos: &[TableInfo<'a>],
    ) -> Option<Adoption> {
        let blocks: Vec<&AdoptBlock> = files.iter().flat_map(|f| f.adopt_blocks.iter()).collect();
        let adopting: Vec<&TableInfo<'a>> =
            infos.iter().filter(|i| i.decl.adopts.is_some()).collect();
        let Some(block) = blocks.first() else {
            if let Some((legacy, keyword)) = adopting.first().and_then(|i| i.decl.adopts.as_ref()) {
                let table = adopting.first().map_or("", |i| i.name());
                self.error(
                    Diagnostic::error(
                        format!(
                            "table `{table}` adopts `{}`, but no `adopt` block says where its rows go",
                            legacy.name
                        ),
                        keyword.to(legacy.span),
                        "adopted here",
                    )
                    .with_note("existing rows belong to no tenant yet: the migration gives them to one tenant and project")
                    .with_help(
                        "add to any policy file:\n\n    adopt {\n        tenant = \"default\"\n        project = \"default\"\n    }",
                    ),
                );
            }
            return None;
        };
        for extra in &blocks[1..] {
            self.error(
                Diagnostic::error(
                    "duplicate `adopt` block",
                    extra.span,
                    "second `adopt` block",
                )
                .with_secondary(block.span, "first declared here")
                .with_help("keep one `adopt` block"),
            );
        }
        let mut values: HashMap<&str, (String, Span)> = HashMap::new();
        for setting in &block.settings {
            let key = setting.key.name.as_str();
            if !ADOPT_SETTING_NAMES.contains(&key) {
                let mut d = Diagnostic::error(
                    format!("unknown `adopt` setting `{key}`"),
                    setting.key.span,
                    "not an `adopt` setting",
                );
                d = match suggest(key, &ADOPT_SETTING_NAMES) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help("the settings are `tenant` and `project`"),
                };
                self.error(d);
                continue;
            }
            if let Some((_, prev)) = values.get(key) {
                let prev = *prev;
                self.error(
                    Diagnostic::error(
                        format!("duplicate `adopt` setting `{key}`"),
                        setting.key.span,
                        "set again here",
                    )
                    .with_secondary(prev, "first set here"),
                );
                continue;
            }
            if setting.value.trim().is_empty() {
                self.error(
                    Diagnostic::error(
                        format!("the `{key}` of the `adopt` block is empty"),
                        setting.value_span,
                        "empty name",
                    )
                    .with_help(format!("name it, e.g. `{key} = \"default\"`")),
                );
            }
            values.insert(key, (setting.value.clone(), setting.key.span));
        }
        for key in ADOPT_SETTING_NAMES {
            if !values.contains_key(key) {
                self.error(
                    Diagnostic::error(
                        format!("the `adopt` block does not name the {key}"),
                        block.span,
                        format!("`{key}` missing in this block"),
                    )
                    .with_help(format!(
                        "add `{key} = \"default\"`: the {key} that receives the existing rows"
                    )),
                );
            }
        }
        if adopting.is_empty() {
            self.diags.push(
                Diagnostic::warning(
                    "`adopt` block, but no table adopts an existing one",
                    block.span,
                    "this block has no effect",
                )
                .with_help("add `adopts <existing table>` to a scoped table, or remove the block"),
            );
            return None;
        }
        self.check_default_rows(block.span, infos);
        let by_name: HashMap<&str, &TableInfo<'a>> = infos.iter().map(|t| (t.name(), t)).collect();
        let mut legacy_names: HashMap<&str, Span> = HashMap::new();
        let mut tables = Vec::new();
        for info in adopting {
            if let Some(adopted) = self.check_adopting_table(info, &by_name, &mut legacy_names) {
                tables.push(adopted);
            }
        }
        let name = |key: &str| values.get(key).map(|(v, _)| v.clone()).unwrap_or_default();
        Some(Adoption {
            tenant: name("tenant"),
            project: name("project"),
            tables,
        })
    }

    /// Rule: only scoped tables adopt; the existing table's name is a valid SQL name, is
    /// adopted by one table only and is not the name of another table of the model; the
    /// table has a single-column primary key (the backfill walks the rows in key order);
    /// its foreign keys point at the core or at other adopted tables (the adopted tables
    /// get their keys together, before any new table is created).
    pub(super) fn check_adopting_table(
        &mut self,
        info: &TableInfo<'a>,
        by_name: &HashMap<&str, &TableInfo<'a>>,
        legacy_names: &mut HashMap<&'a str, Span>,
    ) -> Option<AdoptedTable> {
        let (legacy, keyword) = info.decl.adopts.as_ref()?;
        let table = info.name();
        let mut ok = true;
        if info.kind != TableKind::Scoped {
            self.error(
                Diagnostic::error(
                    format!(
                        "only scoped tables can adopt an existing table; `{table}` is a {} table",
                        info.kind.keyword()
                    ),
                    keyword.to(legacy.span),
                    "not allowed here",
                )
                .with_note("the tenancy core is created from scratch; the default tenant and project rows are inserted by the migration")
                .with_help("remove `adopts` here, or declare the table `scoped`"),
            );
            ok = false;
        }
        ok &= self.check_identifier(&legacy.name, legacy.span, "table");
        if let Some(prev) = legacy_names.insert(legacy.name.as_str(), legacy.span) {
            self.error(
                Diagnostic::error(
                    format!("existing table `{}` is adopted twice", legacy.name),
                    legacy.span,
                    "adopted again here",
                )
                .with_secondary(prev, "first adopted here")
                .with_help("each existing table becomes exactly one table of the model"),
            );
            ok = false;
        }
        if legacy.name != table && by_name.contains_key(legacy.name.as_str()) {
            self.error(
                Diagnostic::error(
                    format!(
                        "`{table}` adopts `{}`, which is the name of another table of the model",
                        legacy.name
                    ),
                    legacy.span,
                    "already a table of the model",
                )
                .with_help("an adopted table is renamed to the table that adopts it; rename one of the two"),
            );
            ok = false;
        }
        if info.kind == TableKind::Scoped && info.primary_key.len() != 1 {
            self.error(
                Diagnostic::error(
                    format!(
                        "adopted table `{table}` needs a single-column primary key, not ({})",
                        info.primary_key.join(", ")
                    ),
                    keyword.to(legacy.span),
                    "adopted here",
                )
                .with_note("the backfill walks the existing rows in batches, in primary key order")
                .with_help(
                    "declare the existing table's single-column key, e.g. `primary key (id)`",
                ),
            );
            ok = false;
        }
        for fk in &info.foreign_keys {
            let target = fk.reference.table.name.as_str();
            let Some(parent) = by_name.get(target) else {
                continue; // unknown table, already reported
            };
            if !parent.kind.is_core() && parent.decl.adopts.is_none() {
                self.error(
                    Diagnostic::error(
                        format!(
                            "adopted table `{table}` references `{target}`, which adopts no existing table"
                        ),
                        fk.span,
                        "this foreign key",
                    )
                    .with_note("adopted tables get their composite keys together, before any new table is created")
                    .with_help(format!(
                        "add `adopts <existing table>` to `{target}`, or remove this reference"
                    )),
                );
                ok = false;
            }
        }
        ok.then(|| AdoptedTable {
            table: table.to_owned(),
            legacy_table: legacy.name.clone(),
        })
    }

    /// Rule: the migration inserts one tenants row and one projects row for the existing
    /// rows, writing the `adopt` names into their required text columns; any other
    /// required column (NOT NULL, no default, not text) cannot be filled.
    pub(super) fn check_default_rows(&mut self, block_span: Span, infos: &[TableInfo<'a>]) {
        for info in infos
            .iter()
            .filter(|i| matches!(i.kind, TableKind::Tenants | TableKind::Projects))
        {
            for (column, ty) in &info.columns {
                let required = !column.nullable && column.default.is_none();
                if required && ty.is_some_and(|t| t != SqlType::Text) {
                    let type_name = ty.map(SqlType::dsl_name).unwrap_or_default();
                    self.error(
                        Diagnostic::error(
                            format!(
                                "the adoption cannot create the default {} row: column `{}` of `{}` needs a value",
                                if info.kind == TableKind::Tenants { "tenant" } else { "project" },
                                column.name.name,
                                info.name()
                            ),
                            column.name.span,
                            format!("required {type_name} column without a default"),
                        )
                        .with_secondary(block_span, "the adoption that needs the row")
                        .with_note("required text columns get the name from the `adopt` block; other columns need a default")
                        .with_help(format!(
                            "give `{}` a default or make it nullable (`{type_name}?`)",
                            column.name.name
                        )),
                    );
                }
            }
        }
    }
}
