//! Keys, indexes, foreign keys and reference cycles.

use super::*;

impl<'a> Checker<'_, 'a> {
    /// Rule: key, index and foreign key columns exist; core tables declare no primary key;
    /// scoped and global tables declare exactly one; GIN indexes cover jsonb columns.
    pub(super) fn check_keys(&mut self, info: &mut TableInfo<'a>) {
        let decl = info.decl;
        let mut pk_spans: Vec<Span> = Vec::new();
        for column in &decl.columns {
            if let Some(span) = column.primary_key {
                pk_spans.push(span);
                if info.primary_key.is_empty() {
                    info.primary_key = vec![column.name.name.clone()];
                }
            }
            if column.unique.is_some() {
                info.unique_keys.push(vec![column.name.name.clone()]);
            }
            if let Some(reference) = &column.references {
                info.foreign_keys.push(FkDecl {
                    columns: vec![&column.name],
                    reference,
                    span: column.name.span,
                });
            }
        }
        for constraint in &decl.constraints {
            match constraint {
                Constraint::PrimaryKey { span, columns } => {
                    pk_spans.push(*span);
                    if self.check_column_list(info, columns, "the primary key")
                        && info.primary_key.is_empty()
                    {
                        info.primary_key = names(columns);
                    }
                }
                Constraint::Unique { columns, .. } => {
                    if self.check_column_list(info, columns, "a unique key") {
                        let key = names(columns);
                        if !info.unique_keys.contains(&key) {
                            info.unique_keys.push(key);
                        }
                    }
                }
                Constraint::Index {
                    method, columns, ..
                } => {
                    if self.check_column_list(info, columns, "an index") {
                        if *method == IndexMethod::Gin {
                            self.check_gin_columns(info, columns);
                        }
                        info.indexes.push(Index {
                            columns: names(columns),
                            method: *method,
                        });
                    }
                }
                Constraint::ForeignKey {
                    span,
                    columns,
                    reference,
                } => {
                    if self.check_column_list(info, columns, "a foreign key") {
                        info.foreign_keys.push(FkDecl {
                            columns: columns.iter().collect(),
                            reference,
                            span: *span,
                        });
                    }
                }
            }
        }
        if info.kind.is_core() {
            for span in &pk_spans {
                self.error(
                    Diagnostic::error(
                        format!(
                            "the {} table `{}` cannot declare a primary key",
                            info.kind.keyword(),
                            info.name()
                        ),
                        *span,
                        "the generator fixes this table's key",
                    )
                    .with_note(format!("its key is `({})`", core_key(info.kind).join(", ")))
                    .with_help("remove it; declare `unique (...)` for other keys"),
                );
            }
            info.primary_key.clear();
            return;
        }
        if let Some((first, rest)) = pk_spans.split_first() {
            for extra in rest {
                self.error(
                    Diagnostic::error(
                        format!("table `{}` has more than one primary key", info.name()),
                        *extra,
                        "second primary key",
                    )
                    .with_secondary(*first, "first primary key")
                    .with_help("keep one; use `unique (...)` for the others"),
                );
            }
        } else {
            self.error(
                Diagnostic::error(
                    format!(
                        "{} table `{}` has no primary key",
                        info.kind.keyword(),
                        info.name()
                    ),
                    decl.name.span,
                    "no `primary key` in this table",
                )
                .with_help("add `id uuid default gen_random_uuid()` and `primary key (id)`"),
            );
        }
    }

    /// Rule: GIN indexes are only for jsonb columns (the default operator classes).
    pub(super) fn check_gin_columns(&mut self, info: &TableInfo<'a>, columns: &[Ident]) {
        for column in columns {
            if let Some((Some(ty), _)) = info.column(&column.name) {
                if ty != SqlType::Jsonb {
                    self.error(
                        Diagnostic::error(
                            format!("GIN index on `{}` column `{}`", ty.dsl_name(), column.name),
                            column.span,
                            "GIN indexes need a jsonb column here",
                        )
                        .with_help("use a plain `index (...)` for this column"),
                    );
                }
            }
        }
    }

    /// Rule: a foreign key targets an existing table and existing columns, of the same
    /// types, that form a declared key of the target; global tables reference only global
    /// tables; tenant-owned tables never reference the core tables (the generator links
    /// them); `on delete set null` needs nullable columns.
    pub(super) fn check_foreign_key(
        &mut self,
        info: &TableInfo<'a>,
        fk: &FkDecl<'a>,
        by_name: &HashMap<&str, &TableInfo<'a>>,
    ) {
        let reference = fk.reference;
        let target_name = reference.table.name.as_str();
        let Some(target) = by_name.get(target_name).copied() else {
            if !self.tables.contains_key(target_name) {
                let names: Vec<&str> = self.tables.keys().copied().collect();
                let mut d = Diagnostic::error(
                    format!("unknown table `{target_name}`"),
                    reference.table.span,
                    "no table of this name",
                );
                if let Some(s) = suggest(target_name, &names) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                self.error(d);
            }
            return;
        };
        if info.kind == TableKind::Global && target.kind.is_tenant_owned() {
            self.error(
                Diagnostic::error(
                    format!(
                        "global table `{}` references tenant-owned table `{target_name}`",
                        info.name()
                    ),
                    reference.table.span,
                    format!("`{target_name}` is a {} table", target.kind.keyword()),
                )
                .with_note(
                    "a global row is visible to every tenant and cannot point at one tenant's rows",
                )
                .with_help(format!(
                    "make `{}` a scoped table, or move the reference to the tenant-owned side",
                    info.name()
                )),
            );
            return;
        }
        if target.kind.is_core() {
            let (message, help) = if info.kind == TableKind::Scoped
                && target.kind == TableKind::Projects
            {
                (
                    format!("scoped table `{}` references the projects table", info.name()),
                    "remove the reference: the generator adds `project_id` and its foreign key to `projects`".to_owned(),
                )
            } else {
                (
                    format!("table `{}` references the {} table `{target_name}`", info.name(), target.kind.keyword()),
                    "remove the reference: the generator links every tenant-owned row to its tenant and project".to_owned(),
                )
            };
            self.error(
                Diagnostic::error(
                    message,
                    reference.table.span,
                    "core tables are linked by the generator",
                )
                .with_help(help),
            );
            return;
        }
        if info.kind.is_core() && target.kind.is_tenant_owned() {
            self.error(
                Diagnostic::error(
                    format!(
                        "the {} table `{}` references scoped table `{target_name}`",
                        info.kind.keyword(),
                        info.name()
                    ),
                    reference.table.span,
                    "core tables may only reference global tables",
                )
                .with_help(format!(
                    "reference the core table from `{target_name}` instead"
                )),
            );
            return;
        }
        // Target columns: as written, or the target's declared primary key.
        let target_columns: Vec<(String, Span)> = match &reference.columns {
            Some(cols) => cols.iter().map(|c| (c.name.clone(), c.span)).collect(),
            None => {
                if target.primary_key.is_empty() {
                    return; // the target's missing key is reported on the target
                }
                target
                    .primary_key
                    .iter()
                    .map(|c| (c.clone(), reference.table.span))
                    .collect()
            }
        };
        let target_names = target.column_names();
        let mut resolved = true;
        for (name, span) in &target_columns {
            if target.column(name).is_none() {
                self.unknown_column(name, *span, target_name, &target_names);
                resolved = false;
            }
        }
        if !resolved {
            return;
        }
        if fk.columns.len() != target_columns.len() {
            self.error(
                Diagnostic::error(
                    format!(
                        "foreign key has {} column(s) but its target has {}",
                        fk.columns.len(),
                        target_columns.len()
                    ),
                    reference.span,
                    format!(
                        "targets `{target_name}({})`",
                        target_columns
                            .iter()
                            .map(|(n, _)| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .with_secondary(fk.span, "referencing columns"),
            );
            return;
        }
        for (column, (target_column, target_span)) in fk.columns.iter().zip(&target_columns) {
            let own = info.column(&column.name);
            let other = target.column(target_column);
            if let (Some((Some(own_ty), _)), Some((Some(other_ty), _))) = (own, other) {
                if own_ty != other_ty {
                    self.error(
                        Diagnostic::error(
                            format!(
                                "foreign key column `{}` has type `{}` but `{target_name}.{target_column}` has type `{}`",
                                column.name,
                                own_ty.dsl_name(),
                                other_ty.dsl_name()
                            ),
                            column.span,
                            format!("`{}`", own_ty.dsl_name()),
                        )
                        .with_secondary(*target_span, format!("`{}`", other_ty.dsl_name()))
                        .with_help(format!("declare `{}` as `{}`", column.name, other_ty.dsl_name())),
                    );
                }
            }
        }
        let mut target_set: Vec<&str> = target_columns.iter().map(|(n, _)| n.as_str()).collect();
        target_set.sort_unstable();
        let is_key = target.keys().iter().any(|key| {
            let mut k: Vec<&str> = key.iter().map(String::as_str).collect();
            k.sort_unstable();
            k == target_set
        });
        if !is_key {
            let cols = target_columns
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let mut d = Diagnostic::error(
                format!(
                    "foreign key target `{target_name}({cols})` is not a key of `{target_name}`"
                ),
                reference.span,
                "neither the primary key nor a unique key",
            );
            if target.kind == TableKind::Scoped {
                d = d.with_note(format!(
                    "the generator builds the composite foreign key `(tenant_id, project_id, {cols})`, which needs `({cols})` to be unique in `{target_name}`"
                ));
            }
            d = d.with_help(format!(
                "reference `{target_name}({})` or declare `unique ({cols})` in `{target_name}`",
                target.primary_key.join(", ")
            ));
            self.error(d);
        }
        if let Some((OnDelete::SetNull, span)) = reference.on_delete {
            for column in &fk.columns {
                if let Some((ty, false)) = info.column(&column.name) {
                    let ty = ty.map_or_else(|| "uuid".to_owned(), SqlType::dsl_name);
                    self.error(
                        Diagnostic::error(
                            format!("`on delete set null` on NOT NULL column `{}`", column.name),
                            span,
                            "would set a NOT NULL column to NULL",
                        )
                        .with_secondary(column.span, "this column is NOT NULL")
                        .with_help(format!(
                            "make the column nullable (`{} {ty}?`) or use `on delete cascade`",
                            column.name
                        )),
                    );
                }
            }
        }
    }

    // ---- adoption -------------------------------------------------------------------

    /// Rule: references between tables form no cycle; a table may reference itself.
    pub(super) fn check_reference_cycles(&mut self, infos: &[TableInfo<'a>]) {
        let index: HashMap<&str, usize> = infos
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name(), i))
            .collect();
        let edges: Vec<Vec<(usize, Span)>> = infos
            .iter()
            .map(|t| {
                t.foreign_keys
                    .iter()
                    .filter_map(|fk| {
                        let target = index.get(fk.reference.table.name.as_str()).copied()?;
                        (target != index[t.name()]).then_some((target, fk.reference.table.span))
                    })
                    .collect()
            })
            .collect();
        // 0 = unvisited, 1 = on the stack, 2 = done.
        let mut state = vec![0u8; infos.len()];
        let mut stack: Vec<usize> = Vec::new();
        let mut reported: HashSet<Vec<usize>> = HashSet::new();
        for start in 0..infos.len() {
            self.cycle_dfs(start, infos, &edges, &mut state, &mut stack, &mut reported);
        }
    }

    pub(super) fn cycle_dfs(
        &mut self,
        node: usize,
        infos: &[TableInfo<'a>],
        edges: &[Vec<(usize, Span)>],
        state: &mut [u8],
        stack: &mut Vec<usize>,
        reported: &mut HashSet<Vec<usize>>,
    ) {
        if state[node] != 0 {
            return;
        }
        state[node] = 1;
        stack.push(node);
        for &(next, span) in &edges[node] {
            if state[next] == 1 {
                let from = stack.iter().position(|&n| n == next).unwrap_or(0);
                let cycle: Vec<usize> = stack[from..].to_vec();
                let mut key = cycle.clone();
                key.sort_unstable();
                if reported.insert(key) {
                    let path: Vec<&str> = cycle
                        .iter()
                        .chain(std::iter::once(&next))
                        .map(|&i| infos[i].name())
                        .collect();
                    let mut d = Diagnostic::error(
                        format!("reference cycle: {}", path.join(" -> ")),
                        span,
                        "this reference closes the cycle",
                    );
                    for pair in cycle.windows(2) {
                        if let Some((_, other)) = edges[pair[0]].iter().find(|(t, _)| *t == pair[1])
                        {
                            d = d.with_secondary(*other, "part of the cycle");
                        }
                    }
                    self.error(
                        d.with_note("only a table referencing itself may form a cycle")
                            .with_help("remove one of the references"),
                    );
                }
            } else {
                self.cycle_dfs(next, infos, edges, state, stack, reported);
            }
        }
        stack.pop();
        state[node] = 2;
    }
}
