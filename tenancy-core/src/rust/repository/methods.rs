//! The repository's methods: get, list, count, insert, update, delete, and the impl block.

use super::*;

impl Emitter<'_, '_> {
    /// `let scope_tenant_id = ::tenancy_runtime::Scope::tenant_id(tx.scope()).as_uuid();`
    pub(super) fn scope_tenant_id() -> Stmt {
        let tenant_id = path_expr(path(true, &["tenancy_runtime", "Scope", "tenant_id"]));
        let_(
            "scope_tenant_id",
            method(call(tenant_id, [tx_scope()]), "as_uuid", []),
        )
    }

    /// Local variables holding the read scope's values, and their binds:
    ///
    /// ```text
    /// let scope_tenant_id = ::tenancy_runtime::Scope::tenant_id(tx.scope()).as_uuid();
    /// let scope_project_ids: ::std::vec::Vec<::uuid::Uuid> =
    ///     ::tenancy_runtime::Scope::project_ids(tx.scope())
    ///         .iter()
    ///         .map(|id| id.as_uuid())
    ///         .collect();
    /// ```
    pub(super) fn read_scope_prelude(&self) -> (Vec<Stmt>, Vec<Expr>) {
        let mut prelude = vec![Self::scope_tenant_id()];
        let mut binds = vec![var(ident("scope_tenant_id"))];
        if self.shape.project_column.is_some() {
            let project_ids = path_expr(path(true, &["tenancy_runtime", "Scope", "project_ids"]));
            let ids = method(call(project_ids, [tx_scope()]), "iter", []);
            let as_uuid = closure("id", method(var(ident("id")), "as_uuid", []));
            let ids = method(method(ids, "map", [as_uuid]), "collect", []);
            let uuid = path_type(path(true, &["uuid", "Uuid"]));
            prelude.push(let_typed(
                ident("scope_project_ids"),
                false,
                vec_type(uuid),
                ids,
            ));
            binds.push(var(ident("scope_project_ids")));
        }
        (prelude, binds)
    }

    /// Local variables holding the write scope's values, and their binds.
    ///
    /// ```text
    /// let scope_tenant_id = ::tenancy_runtime::Scope::tenant_id(tx.scope()).as_uuid();
    /// let scope_project_id =
    ///     <S as ::tenancy_runtime::WriteScope<Role>>::project_id(tx.scope()).as_uuid();
    /// ```
    pub(super) fn write_scope_prelude(&self, role: &Type) -> (Vec<Stmt>, Vec<Expr>) {
        let mut prelude = vec![Self::scope_tenant_id()];
        let mut binds = vec![var(ident("scope_tenant_id"))];
        if self.shape.project_column.is_some() {
            let scope = path_type(path(false, &["S"]));
            let write_scope = with_args(
                path(true, &["tenancy_runtime", "WriteScope"]),
                [role.clone()],
                false,
            );
            let project_id = qualified_path(scope, write_scope, &["project_id"]);
            let project_id = method(call(project_id, [tx_scope()]), "as_uuid", []);
            prelude.push(let_("scope_project_id", project_id));
            binds.push(var(ident("scope_project_id")));
        }
        (prelude, binds)
    }

    /// The scope trait a method of this table requires: `base` (`ReadScope`/`WriteScope`),
    /// or its tenant-wide form (`TenantReadScope`/`TenantWriteScope`) on the tenant
    /// memberships table, whose rules name the caller's tenant-wide role.
    pub(super) fn scope_trait(&self, base: &'static str) -> &'static str {
        match (self.shape.table.kind, base) {
            (crate::model::TableKind::TenantMemberships, "ReadScope") => "TenantReadScope",
            (crate::model::TableKind::TenantMemberships, _) => "TenantWriteScope",
            _ => base,
        }
    }

    /// The key parameters of a method and their bound values.
    pub(super) fn key_params(&self, key: &[Column]) -> (Vec<(Ident, Type)>, Vec<Expr>) {
        match key {
            [] => (Vec::new(), Vec::new()),
            [column] => {
                let name = snake_ident(&column.name);
                let value = self.bind_value(column, var(name.clone()), false);
                (vec![(name, self.input_type(column))], vec![value])
            }
            columns => {
                let key = path_type(path(false, &[&self.shape.names.key()]));
                let binds = columns
                    .iter()
                    .map(|c| {
                        let value = field(var(ident("key")), snake_ident(&c.name));
                        self.bind_value(c, value, false)
                    })
                    .collect();
                (vec![(ident("key"), key)], binds)
            }
        }
    }

    /// `/// The SQL of [`Self::method`].` `pub const NAME: &'static str = "sql";`
    pub(super) fn sql_const(name: &Ident, method: &str, sql: &str) -> ImplItem {
        str_const(
            &format!(" The SQL of [`Self::{method}`]."),
            name.clone(),
            sql,
        )
    }

    /// `pub async fn name<S>(tx: &mut ::tenancy_runtime::ScopedTx<S>, params...)
    /// -> ::std::result::Result<ok, ::tenancy_runtime::Error>
    /// where S: ::tenancy_runtime::<scope><role> { body }` under the doc comment `doc`.
    pub(super) fn scoped_method(
        doc: &str,
        name: &str,
        params: Vec<(Ident, Type)>,
        ok: Type,
        scope: &str,
        role: &Type,
        body: Vec<Stmt>,
    ) -> ImplItemFn {
        let scoped_tx = with_args(
            path(true, &["tenancy_runtime", "ScopedTx"]),
            [path_type(path(false, &["S"]))],
            false,
        );
        let mut inputs = vec![(ident("tx"), reference_type(true, path_type(scoped_tx)))];
        inputs.extend(params);
        let error = path_type(path(true, &["tenancy_runtime", "Error"]));
        let result = with_args(path(true, &["std", "result", "Result"]), [ok, error], false);
        let bound = with_args(
            path(true, &["tenancy_runtime", scope]),
            [role.clone()],
            false,
        );
        async_fn(
            doc_attrs(doc),
            name,
            "S",
            bound,
            inputs,
            path_type(result),
            body,
        )
    }

    pub(super) fn get_method(&self) -> Methods {
        let Some((mut role, mut role_name)) = self.role_type(Command::Select)? else {
            return Ok(None);
        };
        // A read tier: `get_as_<role>`, through the masked view.
        let (name, sql_name, one_sql_name) = match &self.shape.tier {
            Some(tier) => {
                role = self.role_marker(&tier.role)?;
                role_name = tier.role.as_str();
                let upper = tier.role.to_uppercase();
                (
                    format!("get_as_{}", tier.role),
                    format!("GET_AS_{upper}_SQL"),
                    format!("GET_AS_{upper}_IN_PROJECT_SQL"),
                )
            }
            None => (
                "get".to_owned(),
                "GET_SQL".to_owned(),
                "GET_IN_PROJECT_SQL".to_owned(),
            ),
        };
        let row = self.row();
        let (mut body, scope_binds) = self.read_scope_prelude();
        let (params, key_binds) = self.key_params(&self.shape.read_key);
        let what = if self.shape.read_key.is_empty() {
            "Reads the scope's own row.".to_owned()
        } else if self.shape.has_list() && self.shape.cursor.len() > self.shape.read_key.len() {
            "Reads one row by its key (when the scope spans several projects holding that key, \
             the row of the lowest project id)."
                .to_owned()
        } else {
            "Reads one row by its key.".to_owned()
        };
        let mut doc = format!(
            "{what} `None` when no visible row matches.\n\n{}",
            self.rule_doc(Command::Select, role_name)
        );
        if self.shape.tier.is_some() {
            doc.push_str(&format!(
                " Reads the masked view `{}_masked`: the columns `{role_name}` reads, \
                 masked ones included.",
                self.table_name()
            ));
        } else if !self.shape.masked.is_empty() {
            doc.push_str(&format!(
                " Masked columns ({}) are not read; `get_as_<role>` reads them.",
                self.shape
                    .masked
                    .iter()
                    .map(|c| format!("`{}`", c.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let sql = ident(&sql_name);
        let get = |body| {
            let ok = option_type(self.row_type());
            Self::scoped_method(
                &doc,
                &name,
                params.clone(),
                ok,
                self.scope_trait("ReadScope"),
                &role,
                body,
            )
        };
        // ::tenancy_runtime::sqlx::query_as::<_, Row>(Self::GET_SQL) <scope binds> <key binds>
        //     .fetch_optional(tx.connection()).await?
        let fetch = |query: Expr, binds_: Vec<Expr>| {
            let chain = binds(query, binds_.into_iter().chain(key_binds.iter().cloned()));
            await_try(method(chain, "fetch_optional", [tx_connection()]))
        };
        let Some(one_sql_text) = self.shape.get_in_project_sql() else {
            body.push(let_("row", fetch(query_as(&row, &sql), scope_binds)));
            body.push(ok_tail(var(ident("row"))));
            let get = get(body);
            return Ok(Some((
                vec![Self::sql_const(&sql, &name, &self.shape.get_sql())],
                vec![get],
            )));
        };
        let one_sql = ident(&one_sql_name);
        let consts = vec![
            Self::sql_const(&sql, &name, &self.shape.get_sql()),
            str_const(
                &format!(
                    " The SQL of [`Self::{name}`] when the scope holds exactly one project (a \
                     scalar project parameter keeps the cached generic plan usable)."
                ),
                one_sql.clone(),
                &one_sql_text,
            ),
        ];
        // let row = match scope_project_ids.as_slice() {
        //     [scope_project_id] => {
        //         let scope_project_id = *scope_project_id;
        //         <GET_IN_PROJECT_SQL with the tenant, the one project and the key>
        //     }
        //     _ => { <GET_SQL with the scope and the key> }
        // };
        let one_project = [
            var(ident("scope_tenant_id")),
            var(ident("scope_project_id")),
        ];
        let one = vec![
            let_("scope_project_id", deref(var(ident("scope_project_id")))),
            Stmt::Expr(fetch(query_as(&row, &one_sql), one_project.into()), None),
        ];
        let many = vec![Stmt::Expr(fetch(query_as(&row, &sql), scope_binds), None)];
        let scrutinee = method(var(ident("scope_project_ids")), "as_slice", []);
        body.push(let_(
            "row",
            match_expr(
                scrutinee,
                vec![
                    (slice_pat(ident("scope_project_id")), one),
                    (wild_pat(), many),
                ],
            ),
        ));
        body.push(ok_tail(var(ident("row"))));
        let get = get(body);
        Ok(Some((consts, vec![get])))
    }

    /// `filter.<column>.as_ref()` per filter column (the role as `&'static str`).
    pub(super) fn filter_binds(&self) -> Vec<Expr> {
        self.shape
            .filter_columns
            .iter()
            .map(|c| {
                let value = field(var(ident("filter")), snake_ident(&c.name));
                if c.ty == SqlType::Role {
                    self.bind_value(c, value, true)
                } else {
                    method(value, "as_ref", [])
                }
            })
            .collect()
    }

    pub(super) fn list_methods(&self) -> Methods {
        if !self.shape.has_list() {
            return Ok(None);
        }
        let Some((role, role_name)) = self.role_type(Command::Select)? else {
            return Ok(None);
        };
        let row = self.row();
        let filter = ident(&self.shape.names.filter());
        let page = ident(&self.shape.names.page());
        // &after.<column> per cursor column, inside `Some(after) => ...`
        let cursor_binds: Vec<Expr> = self
            .shape
            .cursor
            .iter()
            .map(|c| {
                let value = field(var(ident("after")), snake_ident(&c.name));
                // Copy values by value, the others by reference (`after` is borrowed).
                let owned = matches!(
                    c.ty,
                    SqlType::Text | SqlType::Jsonb | SqlType::Bytea | SqlType::Vector(_)
                );
                if owned {
                    reference(value)
                } else {
                    value
                }
            })
            .collect();
        let rule = self.rule_doc(Command::Select, role_name);
        let seek = if self.shape.has_list_after_in_project() {
            " In a one-project scope a later page starts the index scan at the cursor, so it \
             costs what the first page does."
        } else {
            ""
        };
        let list_doc = format!(
            "Lists rows matching `filter` in key order, one page at a time (keyset pagination: \
             pass the last row's `cursor()` as the next page's `after`).{seek}\n\n{rule}"
        );
        let count_doc = format!("Counts the rows matching `filter`.\n\n{rule}");
        let list_sql = ident("LIST_SQL");
        let list_after_sql = ident("LIST_AFTER_SQL");
        let count_sql = ident("COUNT_SQL");
        let mut consts = vec![
            Self::sql_const(&list_sql, "list", &self.shape.list_sql()),
            Self::sql_const(&list_after_sql, "list", &self.shape.list_after_sql()),
            Self::sql_const(&count_sql, "count", &self.shape.count_sql()),
        ];

        // let limit = i64::from(page.limit.clamp(1, 1000));
        // let rows = match page.after.as_ref() {
        //     Some(after) => query_as(Self::LIST_AFTER_SQL) <scope> <filter> <cursor> <limit>,
        //     None => query_as(Self::LIST_SQL) <scope> <filter> <limit>,
        // }.fetch_all(tx.connection()).await?;
        let (mut list_body, scope_binds) = self.read_scope_prelude();
        let limit = method(
            field(var(ident("page")), ident("limit")),
            "clamp",
            [int("1"), int("1000")],
        );
        let from = path_expr(path(false, &["i64", "from"]));
        list_body.push(let_("limit", call(from, [limit])));
        let first_values = scope_binds
            .clone()
            .into_iter()
            .chain(self.filter_binds())
            .chain([var(ident("limit"))]);
        let after_values = scope_binds
            .into_iter()
            .chain(self.filter_binds())
            .chain(cursor_binds.clone())
            .chain([var(ident("limit"))]);
        let first = await_try(method(
            binds(query_as(&row, &list_sql), first_values),
            "fetch_all",
            [tx_connection()],
        ));
        let after = await_try(method(
            binds(query_as(&row, &list_after_sql), after_values),
            "fetch_all",
            [tx_connection()],
        ));
        let rows: Expr = match self.shape.list_after_in_project_sql() {
            None => syn::parse_quote! {
                match page.after.as_ref() {
                    ::std::option::Option::Some(after) => #after,
                    ::std::option::Option::None => #first,
                }
            },
            Some(in_project_sql) => {
                let in_project_const = ident("LIST_AFTER_IN_PROJECT_SQL");
                consts.push(Self::sql_const(&in_project_const, "list", &in_project_sql));
                let project = snake_ident(&self.shape.cursor[0].name);
                let rest_binds = cursor_binds[1..].to_vec();
                let in_project_values = [
                    var(ident("scope_tenant_id")),
                    var(ident("scope_project_id")),
                ]
                .into_iter()
                .chain(self.filter_binds())
                .chain(rest_binds)
                .chain([var(ident("limit"))]);
                let in_project = await_try(method(
                    binds(query_as(&row, &in_project_const), in_project_values),
                    "fetch_all",
                    [tx_connection()],
                ));
                list_body.push(syn::parse_quote! {
                    // A later page of a one-project scope, its cursor in that project: the
                    // statement that starts the index scan at the cursor.
                    let in_project = match (page.after.as_ref(), scope_project_ids.as_slice()) {
                        (::std::option::Option::Some(after), [scope_project_id])
                            if after.#project == *scope_project_id =>
                        {
                            ::std::option::Option::Some(*scope_project_id)
                        }
                        _ => ::std::option::Option::None,
                    };
                });
                syn::parse_quote! {
                    match (page.after.as_ref(), in_project) {
                        (::std::option::Option::Some(after), ::std::option::Option::Some(scope_project_id)) => #in_project,
                        (::std::option::Option::Some(after), ::std::option::Option::None) => #after,
                        (::std::option::Option::None, _) => #first,
                    }
                }
            }
        };
        list_body.push(let_("rows", rows));
        list_body.push(ok_tail(var(ident("rows"))));
        let filter_param = (
            ident("filter"),
            reference_type(false, path_type(syn::Path::from(filter))),
        );
        let list = Self::scoped_method(
            &list_doc,
            "list",
            vec![
                filter_param.clone(),
                (ident("page"), path_type(syn::Path::from(page))),
            ],
            vec_type(self.row_type()),
            self.scope_trait("ReadScope"),
            &role,
            list_body,
        );

        // let count = ::tenancy_runtime::sqlx::query_scalar::<_, i64>(Self::COUNT_SQL) <scope> <filter>
        //     .fetch_one(tx.connection()).await?;
        let (mut count_body, scope_binds) = self.read_scope_prelude();
        let values = scope_binds.into_iter().chain(self.filter_binds());
        let query = binds(
            sqlx_query(
                "query_scalar",
                Some(path_type(path(false, &["i64"]))),
                count_sql.clone(),
            ),
            values,
        );
        count_body.push(let_(
            "count",
            await_try(method(query, "fetch_one", [tx_connection()])),
        ));
        count_body.push(ok_tail(var(ident("count"))));
        let count = Self::scoped_method(
            &count_doc,
            "count",
            vec![filter_param],
            path_type(path(false, &["i64"])),
            self.scope_trait("ReadScope"),
            &role,
            count_body,
        );
        Ok(Some((consts, vec![list, count])))
    }

    pub(super) fn insert_methods(&self) -> Methods {
        let Some((role, role_name)) = self.role_type(Command::Insert)? else {
            return Ok(None);
        };
        let row = self.row();
        let new = ident(&self.shape.names.new_row());
        let optional = |c: &Column| c.nullable || c.default.is_some();
        let new_field = |c: &Column| field(var(ident("new")), snake_ident(&c.name));
        let rule = self.rule_doc(Command::Insert, role_name);
        let insert_doc = format!(
            "Inserts one row into the write scope's project and returns it as stored.\n\n{rule}"
        );
        let many_doc = format!(
            "Inserts every row into the write scope's project in ONE statement \
             (`INSERT ... SELECT ... FROM unnest(...)`; `COPY` is refused under row-level \
             security) and returns them as stored. `None` in a column with a default applies \
             the default (`COALESCE`). An empty input runs no statement.\n\n{rule}"
        );
        let insert_sql = ident("INSERT_SQL");
        let many_sql = ident("INSERT_MANY_SQL");
        let consts = vec![
            Self::sql_const(&insert_sql, "insert", &self.shape.insert_sql()),
            Self::sql_const(&many_sql, "insert_many", &self.shape.insert_many_sql()),
        ];

        // let row = ::tenancy_runtime::sqlx::query_as::<_, Row>(Self::INSERT_SQL) <scope> <new.<column>...>
        //     .fetch_one(tx.connection()).await?;
        let (mut insert_body, scope_binds) = self.write_scope_prelude(&role);
        let new_binds = self
            .shape
            .new_columns
            .iter()
            .map(|c| self.bind_value(c, new_field(c), optional(c)));
        let query = binds(
            query_as(&row, &insert_sql),
            scope_binds.into_iter().chain(new_binds),
        );
        insert_body.push(let_(
            "row",
            await_try(method(query, "fetch_one", [tx_connection()])),
        ));
        insert_body.push(ok_tail(var(ident("row"))));
        let new_type = path_type(syn::Path::from(new));
        let insert = Self::scoped_method(
            &insert_doc,
            "insert",
            vec![(ident("new"), new_type.clone())],
            self.row_type(),
            self.scope_trait("WriteScope"),
            &role,
            insert_body,
        );

        // if rows.is_empty() { return Ok(Vec::new()); }
        // <prelude>
        // let mut <column>_values: Vec<T> = ::std::vec::Vec::with_capacity(rows.len()); ...
        // for new in rows { <column>_values.push(new.<column>); ... }
        // let inserted = ::tenancy_runtime::sqlx::query_as::<_, Row>(Self::INSERT_MANY_SQL) <scope>
        //     .bind(<column>_values)... .fetch_all(tx.connection()).await?;
        let mut many_body = parse_stmts(quote! {
            if rows.is_empty() {
                return ::std::result::Result::Ok(::std::vec::Vec::new());
            }
        })?;
        let (prelude, scope_binds) = self.write_scope_prelude(&role);
        many_body.extend(prelude);
        let arrays: Vec<Ident> = self
            .shape
            .new_columns
            .iter()
            .map(|c| ident(&format!("{}_values", c.name)))
            .collect();
        let with_capacity = path(true, &["std", "vec", "Vec", "with_capacity"]);
        let rows_len = method(var(ident("rows")), "len", []);
        for (c, array) in self.shape.new_columns.iter().zip(&arrays) {
            let ty = if c.ty == SqlType::Role {
                path_type(path(true, &["std", "string", "String"]))
            } else {
                rust_type(c.ty)
            };
            let ty = if optional(c) { option_type(ty) } else { ty };
            let init = call(path_expr(with_capacity.clone()), [rows_len.clone()]);
            many_body.push(let_typed(array.clone(), true, vec_type(ty), init));
        }
        let pushes = self
            .shape
            .new_columns
            .iter()
            .zip(&arrays)
            .map(|(c, array)| {
                let value = match (c.ty == SqlType::Role, optional(c)) {
                    // new.<column>.map(|role| role.as_str().to_owned())
                    (true, true) => {
                        let owned =
                            method(method(var(ident("role")), "as_str", []), "to_owned", []);
                        method(new_field(c), "map", [closure("role", owned)])
                    }
                    // new.<column>.as_str().to_owned()
                    (true, false) => method(method(new_field(c), "as_str", []), "to_owned", []),
                    (false, _) => new_field(c),
                };
                semi(method(var(array.clone()), "push", [value]))
            })
            .collect();
        many_body.push(for_loop("new", var(ident("rows")), pushes));
        let query = binds(
            query_as(&row, &many_sql),
            scope_binds
                .into_iter()
                .chain(arrays.iter().map(|a| var(a.clone()))),
        );
        many_body.push(let_(
            "inserted",
            await_try(method(query, "fetch_all", [tx_connection()])),
        ));
        many_body.push(ok_tail(var(ident("inserted"))));
        let insert_many = Self::scoped_method(
            &many_doc,
            "insert_many",
            vec![(ident("rows"), vec_type(new_type))],
            vec_type(self.row_type()),
            self.scope_trait("WriteScope"),
            &role,
            many_body,
        );
        Ok(Some((consts, vec![insert, insert_many])))
    }

    pub(super) fn update_method(&self) -> Methods {
        let mut consts = Vec::new();
        let mut methods = Vec::new();
        for tier in &self.shape.update_tiers {
            let (sql_consts, method) = self.update_tier_method(tier)?;
            consts.extend(sql_consts);
            methods.push(method);
        }
        Ok((!methods.is_empty()).then_some((consts, methods)))
    }

    /// One update method (`update` or `update_as_<role>`) and its SQL constant.
    fn update_tier_method(
        &self,
        tier: &crate::rust::shape::UpdateTier,
    ) -> syn::Result<(Vec<ImplItem>, syn::ImplItemFn)> {
        let role = self.role_marker(&tier.role)?;
        let row = self.row();
        let patch = ident(&tier.patch(&self.shape.names));
        let (mut body, scope_binds) = self.write_scope_prelude(&role);
        let (params, key_binds) = self.key_params(&self.shape.write_key);
        let what = if self.shape.write_key.is_empty() {
            "Updates the write scope's own row"
        } else {
            "Updates one row of the write scope's project"
        };
        let mut doc = format!(
            "{what} and returns it as stored; `None` when no visible row matches. An empty \
             patch changes nothing and returns the current row.\n\n{}",
            self.rule_doc(Command::Update, &tier.role)
        );
        if self.shape.table.has_column_rights() {
            doc.push_str(&format!(
                " Column rights apply: this method changes {} (the columns the rules of \
                 `{}` cover); the database refuses a change to a column the caller's rules do \
                 not cover on that row with `Error::Forbidden`.",
                tier.columns
                    .iter()
                    .map(|c| format!("`{}`", c.name))
                    .collect::<Vec<_>>()
                    .join(", "),
                tier.role
            ));
        }
        let sql = ident(&tier.sql_const());
        // A masked column in the patch: its own `SET col = $n` first (see `set_masked_sql`).
        let mut masked_consts = Vec::new();
        for column in tier.columns.iter().filter(|c| self.shape.is_masked(c)) {
            let const_name = ident(&format!(
                "{}_SET_{}_SQL",
                tier.sql_const().trim_end_matches("_SQL"),
                column.name.to_uppercase()
            ));
            masked_consts.push(str_const(
                &format!(
                    " The SQL of [`Self::{}`] that sets the masked column `{}` (the app role \
                     may write it, not read it).",
                    tier.method(),
                    column.name
                ),
                const_name.clone(),
                &self.shape.set_masked_sql(column),
            ));
            let field_name = snake_ident(&column.name);
            let scope = scope_binds.iter();
            let keys = key_binds.iter();
            body.extend(parse_stmts(quote! {
                if let ::std::option::Option::Some(value) = patch.#field_name.as_ref() {
                    ::tenancy_runtime::sqlx::query(Self::#const_name)
                        #(.bind(#scope))*
                        #(.bind(#keys))*
                        .bind(value)
                        .execute(tx.connection())
                        .await?;
                }
            })?);
        }
        // .bind(patch.<column>.is_some()).bind(patch.<column>) per patch column
        // (`.flatten()` for a nullable column)
        let patch_binds: Vec<Expr> = tier
            .columns
            .iter()
            .filter(|c| !self.shape.is_masked(c))
            .flat_map(|c| {
                let value = field(var(ident("patch")), snake_ident(&c.name));
                let flag = method(value.clone(), "is_some", []);
                let value = if c.nullable {
                    method(value, "flatten", [])
                } else {
                    value
                };
                [flag, self.bind_value(c, value, true)]
            })
            .collect();
        let values = scope_binds.into_iter().chain(key_binds).chain(patch_binds);
        let query = binds(query_as(&row, &sql), values);
        body.push(let_(
            "row",
            await_try(method(query, "fetch_optional", [tx_connection()])),
        ));
        body.push(ok_tail(var(ident("row"))));
        let mut params = params;
        params.push((ident("patch"), path_type(syn::Path::from(patch))));
        let ok = option_type(self.row_type());
        let name = tier.method();
        let update = Self::scoped_method(
            &doc,
            &name,
            params,
            ok,
            self.scope_trait("WriteScope"),
            &role,
            body,
        );
        let mut consts = vec![Self::sql_const(
            &sql,
            &name,
            &self.shape.update_sql(&tier.columns),
        )];
        consts.extend(masked_consts);
        Ok((consts, update))
    }

    pub(super) fn delete_method(&self) -> Methods {
        let Some((role, role_name)) = self.role_type(Command::Delete)? else {
            return Ok(None);
        };
        let (mut body, scope_binds) = self.write_scope_prelude(&role);
        let (params, key_binds) = self.key_params(&self.shape.write_key);
        let what = if self.shape.write_key.is_empty() {
            "Deletes the write scope's own row"
        } else {
            "Deletes one row of the write scope's project"
        };
        let doc = format!(
            "{what}; `false` when no visible row matched.\n\n{}",
            self.rule_doc(Command::Delete, role_name)
        );
        let sql = ident("DELETE_SQL");
        // let result = ::tenancy_runtime::sqlx::query(Self::DELETE_SQL) <scope> <key>
        //     .execute(tx.connection()).await?;
        let query = binds(
            sqlx_query("query", None, sql.clone()),
            scope_binds.into_iter().chain(key_binds),
        );
        body.push(let_(
            "result",
            await_try(method(query, "execute", [tx_connection()])),
        ));
        body.extend(parse_stmts(quote! {
            ::std::result::Result::Ok(result.rows_affected() > 0)
        })?);
        let ok = path_type(path(false, &["bool"]));
        let delete = Self::scoped_method(
            &doc,
            "delete",
            params,
            ok,
            self.scope_trait("WriteScope"),
            &role,
            body,
        );
        Ok(Some((
            vec![Self::sql_const(&sql, "delete", &self.shape.delete_sql())],
            vec![delete],
        )))
    }

    /// The repository unit struct and its `impl` (SQL constants first, then the methods).
    pub(super) fn repository(&self) -> syn::Result<Vec<Item>> {
        let repo = ident(&self.shape.names.repository);
        let allowed: Vec<String> = Command::ALL
            .iter()
            .filter_map(|c| {
                self.shape
                    .method_role(*c)
                    .map(|role| format!("{} ({role})", c.keyword()))
            })
            .collect();
        let doc = doc(&format!(
            "The repository of `{}`: only the commands its rules allow ({}). Every query names \
             the scope's tenant and projects explicitly; row-level security remains the final \
             gate.",
            self.table_name(),
            allowed.join(", ")
        ));
        let mut consts = Vec::new();
        let mut methods = Vec::new();
        let mut tier_gets = Vec::new();
        for tier in &self.shape.read_tiers {
            let shape = self.shape.for_read_tier(tier);
            let emitter = Emitter {
                shape: &shape,
                roles_path: self.roles_path,
                markers: self.markers,
            };
            tier_gets.push(emitter.get_method()?);
        }
        for part in [self.get_method()?]
            .into_iter()
            .chain(tier_gets)
            .chain([
                self.list_methods()?,
                self.insert_methods()?,
                self.update_method()?,
                self.delete_method()?,
            ])
            .flatten()
        {
            consts.extend(part.0);
            methods.extend(part.1);
        }
        consts.extend(methods.into_iter().map(ImplItem::Fn));
        let implementation = inherent_impl(repo.clone(), consts);
        let mut items = parse_items(quote! {
            #doc
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
            pub struct #repo;
        })?;
        items.push(Item::Impl(implementation));
        Ok(items)
    }
}
