//! Builders of the `syn` trees the repository emitter produces in bulk.
//!
//! Struct fields and method bodies are most of every repository file. Building them as
//! syntax trees directly skips the `quote!` -> token stream -> `syn` parse round trip, which
//! was most of the emitter's time. Each builder returns exactly the tree `syn` parses from the
//! equivalent source (the source is in each builder's doc), so prettyplease prints the same
//! text; the snapshot tests and `generate --check` hold the output byte for byte.

use proc_macro2::{Ident, Span, TokenStream};
use syn::punctuated::Punctuated;
use syn::{
    AngleBracketedGenericArguments, AttrStyle, Attribute, Block, Expr, ExprCall, ExprClosure,
    ExprField, ExprLit, ExprMethodCall, ExprPath, ExprReference, Field, FieldMutability,
    GenericArgument, ImplItem, Lit, LitInt, LitStr, Local, LocalInit, Member, Meta, MetaNameValue,
    Pat, PatIdent, PatType, Path, PathArguments, PathSegment, ReturnType, Stmt, Type, TypePath,
    Visibility,
};

/// An identifier with the call-site span.
pub(crate) fn ident(name: &str) -> Ident {
    Ident::new(name, Span::call_site())
}

/// `a::b::c`, or `::a::b::c` when `absolute`.
pub(crate) fn path(absolute: bool, segments: &[&str]) -> Path {
    Path {
        leading_colon: absolute.then(Default::default),
        segments: segments
            .iter()
            .map(|s| PathSegment::from(ident(s)))
            .collect(),
    }
}

/// The type `path` (`::uuid::Uuid`, `i32`).
pub(crate) fn path_type(path: Path) -> Type {
    Type::Path(TypePath { qself: None, path })
}

/// `<args>` after a path segment (`::<args>` in expressions, with `turbofish`).
fn angle_args(args: impl IntoIterator<Item = Type>, turbofish: bool) -> PathArguments {
    PathArguments::AngleBracketed(AngleBracketedGenericArguments {
        colon2_token: turbofish.then(Default::default),
        lt_token: Default::default(),
        args: args.into_iter().map(GenericArgument::Type).collect(),
        gt_token: Default::default(),
    })
}

/// `path` with `<args>` on its last segment (`::<args>` with `turbofish`).
pub(crate) fn with_args(
    mut path: Path,
    args: impl IntoIterator<Item = Type>,
    turbofish: bool,
) -> Path {
    if let Some(last) = path.segments.last_mut() {
        last.arguments = angle_args(args, turbofish);
    }
    path
}

/// `::a::b::C<arg>`.
pub(crate) fn generic_type(segments: &[&str], arg: Type) -> Type {
    path_type(with_args(path(true, segments), [arg], false))
}

/// `::std::option::Option<ty>`.
pub(crate) fn option_type(ty: Type) -> Type {
    generic_type(&["std", "option", "Option"], ty)
}

/// `::std::vec::Vec<ty>`.
pub(crate) fn vec_type(ty: Type) -> Type {
    generic_type(&["std", "vec", "Vec"], ty)
}

/// `#[doc = " line"]` for every line of `text` (trailing blanks trimmed), as `doc` writes
/// them in [`super::repository`].
pub(crate) fn doc_attrs(text: &str) -> Vec<Attribute> {
    text.lines()
        .map(|line| doc_attr(&format!(" {}", line.trim_end()), AttrStyle::Outer))
        .collect()
}

/// `#[doc = "value"]` (or `#![doc = "value"]` for an inner style).
pub(crate) fn doc_attr(value: &str, style: AttrStyle) -> Attribute {
    Attribute {
        pound_token: Default::default(),
        style,
        bracket_token: Default::default(),
        meta: Meta::NameValue(MetaNameValue {
            path: Path::from(ident("doc")),
            eq_token: Default::default(),
            value: Expr::Lit(ExprLit {
                attrs: Vec::new(),
                lit: Lit::Str(LitStr::new(value, Span::call_site())),
            }),
        }),
    }
}

/// `#attrs pub name: ty` (a named struct field).
pub(crate) fn pub_field(attrs: Vec<Attribute>, name: Ident, ty: Type) -> Field {
    Field {
        attrs,
        vis: Visibility::Public(Default::default()),
        mutability: FieldMutability::None,
        ident: Some(name),
        colon_token: Some(Default::default()),
        ty,
    }
}

/// `name`.
pub(crate) fn var(name: Ident) -> Expr {
    path_expr(Path::from(name))
}

/// `path` as an expression (`::std::result::Result::Ok`).
pub(crate) fn path_expr(path: Path) -> Expr {
    Expr::Path(ExprPath {
        attrs: Vec::new(),
        qself: None,
        path,
    })
}

/// `base.member`.
pub(crate) fn field(base: Expr, member: Ident) -> Expr {
    Expr::Field(ExprField {
        attrs: Vec::new(),
        base: Box::new(base),
        dot_token: Default::default(),
        member: Member::Named(member),
    })
}

/// `receiver.name(args)`.
pub(crate) fn method(receiver: Expr, name: &str, args: impl IntoIterator<Item = Expr>) -> Expr {
    Expr::MethodCall(ExprMethodCall {
        attrs: Vec::new(),
        receiver: Box::new(receiver),
        dot_token: Default::default(),
        method: ident(name),
        turbofish: None,
        paren_token: Default::default(),
        args: args.into_iter().collect(),
    })
}

/// `receiver.bind(a).bind(b)...`.
pub(crate) fn binds(receiver: Expr, values: impl IntoIterator<Item = Expr>) -> Expr {
    values
        .into_iter()
        .fold(receiver, |chain, value| method(chain, "bind", [value]))
}

/// `func(args)`.
pub(crate) fn call(func: Expr, args: impl IntoIterator<Item = Expr>) -> Expr {
    Expr::Call(ExprCall {
        attrs: Vec::new(),
        func: Box::new(func),
        paren_token: Default::default(),
        args: args.into_iter().collect(),
    })
}

/// `|param| body`.
pub(crate) fn closure(param: &str, body: Expr) -> Expr {
    Expr::Closure(ExprClosure {
        attrs: Vec::new(),
        lifetimes: None,
        constness: None,
        movability: None,
        asyncness: None,
        capture: None,
        or1_token: Default::default(),
        inputs: std::iter::once(ident_pat(ident(param), false)).collect(),
        or2_token: Default::default(),
        output: ReturnType::Default,
        body: Box::new(body),
    })
}

/// `&expr`.
pub(crate) fn reference(expr: Expr) -> Expr {
    Expr::Reference(ExprReference {
        attrs: Vec::new(),
        and_token: Default::default(),
        mutability: None,
        expr: Box::new(expr),
    })
}

/// An integer literal (`1000`).
pub(crate) fn int(digits: &str) -> Expr {
    Expr::Lit(ExprLit {
        attrs: Vec::new(),
        lit: Lit::Int(LitInt::new(digits, Span::call_site())),
    })
}

/// `expr.await?`.
pub(crate) fn await_try(expr: Expr) -> Expr {
    Expr::Try(syn::ExprTry {
        attrs: Vec::new(),
        expr: Box::new(Expr::Await(syn::ExprAwait {
            attrs: Vec::new(),
            base: Box::new(expr),
            dot_token: Default::default(),
            await_token: Default::default(),
        })),
        question_token: Default::default(),
    })
}

/// `::std::result::Result::Ok(value)` as the block's tail expression.
pub(crate) fn ok_tail(value: Expr) -> Stmt {
    let ok = path_expr(path(true, &["std", "result", "Result", "Ok"]));
    Stmt::Expr(call(ok, [value]), None)
}

/// `expr;`.
pub(crate) fn semi(expr: Expr) -> Stmt {
    Stmt::Expr(expr, Some(Default::default()))
}

fn ident_pat(name: Ident, mutable: bool) -> Pat {
    Pat::Ident(PatIdent {
        attrs: Vec::new(),
        by_ref: None,
        mutability: mutable.then(Default::default),
        ident: name,
        subpat: None,
    })
}

fn local(pat: Pat, init: Expr) -> Stmt {
    Stmt::Local(Local {
        attrs: Vec::new(),
        let_token: Default::default(),
        pat,
        init: Some(LocalInit {
            eq_token: Default::default(),
            expr: Box::new(init),
            diverge: None,
        }),
        semi_token: Default::default(),
    })
}

/// `let name = init;`.
pub(crate) fn let_(name: &str, init: Expr) -> Stmt {
    local(ident_pat(ident(name), false), init)
}

/// `let name: ty = init;` (`let mut` when `mutable`).
pub(crate) fn let_typed(name: Ident, mutable: bool, ty: Type, init: Expr) -> Stmt {
    let pat = Pat::Type(PatType {
        attrs: Vec::new(),
        pat: Box::new(ident_pat(name, mutable)),
        colon_token: Default::default(),
        ty: Box::new(ty),
    });
    local(pat, init)
}

/// `for pat in expr { body }` as a statement.
pub(crate) fn for_loop(pat: &str, expr: Expr, body: Vec<Stmt>) -> Stmt {
    let for_loop = syn::ExprForLoop {
        attrs: Vec::new(),
        label: None,
        for_token: Default::default(),
        pat: Box::new(ident_pat(ident(pat), false)),
        in_token: Default::default(),
        expr: Box::new(expr),
        body: Block {
            brace_token: Default::default(),
            stmts: body,
        },
    };
    Stmt::Expr(Expr::ForLoop(for_loop), None)
}

/// `&'static str`.
pub(crate) fn static_str() -> Type {
    Type::Reference(syn::TypeReference {
        and_token: Default::default(),
        lifetime: Some(syn::Lifetime::new("'static", Span::call_site())),
        mutability: None,
        elem: Box::new(path_type(path(false, &["str"]))),
    })
}

/// `#[doc = "doc"] pub const name: &'static str = "value";` (an associated constant).
pub(crate) fn str_const(doc: &str, name: Ident, value: &str) -> ImplItem {
    ImplItem::Const(syn::ImplItemConst {
        attrs: vec![doc_attr(doc, AttrStyle::Outer)],
        vis: Visibility::Public(Default::default()),
        defaultness: None,
        const_token: Default::default(),
        ident: name,
        generics: Default::default(),
        colon_token: Default::default(),
        ty: static_str(),
        eq_token: Default::default(),
        expr: Expr::Lit(ExprLit {
            attrs: Vec::new(),
            lit: Lit::Str(LitStr::new(value, Span::call_site())),
        }),
        semi_token: Default::default(),
    })
}

/// `impl self_ty { items }`.
pub(crate) fn inherent_impl(self_ty: Ident, items: Vec<ImplItem>) -> syn::ItemImpl {
    syn::ItemImpl {
        attrs: Vec::new(),
        defaultness: None,
        unsafety: None,
        impl_token: Default::default(),
        generics: Default::default(),
        trait_: None,
        self_ty: Box::new(path_type(Path::from(self_ty))),
        brace_token: Default::default(),
        items,
    }
}

/// `<self_ty as trait_path>::rest` as an expression.
pub(crate) fn qualified_path(self_ty: Type, trait_path: Path, rest: &[&str]) -> Expr {
    let position = trait_path.segments.len();
    let mut path = trait_path;
    path.segments
        .extend(rest.iter().map(|s| PathSegment::from(ident(s))));
    Expr::Path(ExprPath {
        attrs: Vec::new(),
        qself: Some(syn::QSelf {
            lt_token: Default::default(),
            ty: Box::new(self_ty),
            position,
            as_token: Some(Default::default()),
            gt_token: Default::default(),
        }),
        path,
    })
}

/// `Self::name`.
pub(crate) fn self_item(name: Ident) -> Expr {
    let segments = [PathSegment::from(ident("Self")), PathSegment::from(name)];
    path_expr(Path {
        leading_colon: None,
        segments: segments.into_iter().collect(),
    })
}

/// `::tenancy_runtime::sqlx::function::<_, ty>(Self::sql)`, or
/// `::tenancy_runtime::sqlx::function(Self::sql)` without `ty`: sqlx through the runtime's
/// re-export, so it is the runtime's sqlx whatever the using crate depends on.
pub(crate) fn sqlx_query(function: &str, ty: Option<Type>, sql: Ident) -> Expr {
    let mut function = path(true, &["tenancy_runtime", "sqlx", function]);
    if let Some(ty) = ty {
        let infer = Type::Infer(syn::TypeInfer {
            underscore_token: Default::default(),
        });
        function = with_args(function, [infer, ty], true);
    }
    call(path_expr(function), [self_item(sql)])
}

/// `&ty`, or `&mut ty` when `mutable`.
pub(crate) fn reference_type(mutable: bool, elem: Type) -> Type {
    Type::Reference(syn::TypeReference {
        and_token: Default::default(),
        lifetime: None,
        mutability: mutable.then(Default::default),
        elem: Box::new(elem),
    })
}

/// `#attrs pub async fn name<T>(inputs) -> output where T: bound { body }` (an associated
/// function with one type parameter `T` bounded by a trait).
pub(crate) fn async_fn(
    attrs: Vec<Attribute>,
    name: &str,
    param: &str,
    bound: Path,
    inputs: Vec<(Ident, Type)>,
    output: Type,
    body: Vec<Stmt>,
) -> syn::ImplItemFn {
    let param = ident(param);
    let bound = syn::WherePredicate::Type(syn::PredicateType {
        lifetimes: None,
        bounded_ty: path_type(Path::from(param.clone())),
        colon_token: Default::default(),
        bounds: std::iter::once(syn::TypeParamBound::Trait(syn::TraitBound {
            paren_token: None,
            modifier: syn::TraitBoundModifier::None,
            lifetimes: None,
            path: bound,
        }))
        .collect(),
    });
    let generics = syn::Generics {
        lt_token: Some(Default::default()),
        params: std::iter::once(syn::GenericParam::Type(syn::TypeParam::from(param))).collect(),
        gt_token: Some(Default::default()),
        where_clause: Some(syn::WhereClause {
            where_token: Default::default(),
            predicates: std::iter::once(bound).collect(),
        }),
    };
    let inputs = inputs
        .into_iter()
        .map(|(name, ty)| {
            syn::FnArg::Typed(PatType {
                attrs: Vec::new(),
                pat: Box::new(ident_pat(name, false)),
                colon_token: Default::default(),
                ty: Box::new(ty),
            })
        })
        .collect();
    syn::ImplItemFn {
        attrs,
        vis: Visibility::Public(Default::default()),
        defaultness: None,
        sig: syn::Signature {
            constness: None,
            asyncness: Some(Default::default()),
            unsafety: None,
            abi: None,
            fn_token: Default::default(),
            ident: ident(name),
            generics,
            paren_token: Default::default(),
            inputs,
            variadic: None,
            output: ReturnType::Type(Default::default(), Box::new(output)),
        },
        block: Block {
            brace_token: Default::default(),
            stmts: body,
        },
    }
}

/// The statements of `tokens` (the inside of a block).
pub(crate) fn parse_stmts(tokens: TokenStream) -> syn::Result<Vec<Stmt>> {
    syn::parse::Parser::parse2(Block::parse_within, tokens)
}

/// The named fields `fields` with a trailing comma, as `syn` parses `{ a: A, b: B, }`.
pub(crate) fn named_fields(
    fields: impl IntoIterator<Item = Field>,
) -> Punctuated<Field, syn::Token![,]> {
    let mut named = Punctuated::new();
    for field in fields {
        named.push_value(field);
        named.push_punct(Default::default());
    }
    named
}

/// `*expr`.
pub(crate) fn deref(expr: Expr) -> Expr {
    Expr::Unary(syn::ExprUnary {
        attrs: Vec::new(),
        op: syn::UnOp::Deref(Default::default()),
        expr: Box::new(expr),
    })
}

/// `[name]` (a slice pattern of one element).
pub(crate) fn slice_pat(name: Ident) -> Pat {
    Pat::Slice(syn::PatSlice {
        attrs: Vec::new(),
        bracket_token: Default::default(),
        elems: std::iter::once(ident_pat(name, false)).collect(),
    })
}

/// `_`.
pub(crate) fn wild_pat() -> Pat {
    Pat::Wild(syn::PatWild {
        attrs: Vec::new(),
        underscore_token: Default::default(),
    })
}

/// `match scrutinee { pat => { stmts } ... }` (block arms, no commas).
pub(crate) fn match_expr(scrutinee: Expr, arms: Vec<(Pat, Vec<Stmt>)>) -> Expr {
    let arms = arms
        .into_iter()
        .map(|(pat, stmts)| syn::Arm {
            attrs: Vec::new(),
            pat,
            guard: None,
            fat_arrow_token: Default::default(),
            body: Box::new(Expr::Block(syn::ExprBlock {
                attrs: Vec::new(),
                label: None,
                block: Block {
                    brace_token: Default::default(),
                    stmts,
                },
            })),
            comma: None,
        })
        .collect();
    Expr::Match(syn::ExprMatch {
        attrs: Vec::new(),
        match_token: Default::default(),
        expr: Box::new(scrutinee),
        brace_token: Default::default(),
        arms,
    })
}

#[cfg(test)]
mod tests {
    //! Every builder against `syn`'s parse of the source it stands for (the trees compare
    //! equal, spans aside), so prettyplease prints them identically.

    use syn::parse::Parser;
    use syn::{Expr, ImplItem, Stmt, Type};

    use super::*;

    fn expr(source: &str) -> Expr {
        syn::parse_str(source).expect(source)
    }

    fn ty(source: &str) -> Type {
        syn::parse_str(source).expect(source)
    }

    fn stmts(source: &str) -> Vec<Stmt> {
        Block::parse_within.parse_str(source).expect(source)
    }

    #[test]
    fn types() {
        let uuid = path_type(path(true, &["uuid", "Uuid"]));
        assert_eq!(uuid, ty("::uuid::Uuid"));
        assert_eq!(path_type(path(false, &["i32"])), ty("i32"));
        assert_eq!(
            option_type(option_type(uuid.clone())),
            ty("::std::option::Option<::std::option::Option<::uuid::Uuid>>")
        );
        assert_eq!(vec_type(uuid.clone()), ty("::std::vec::Vec<::uuid::Uuid>"));
        let result = with_args(
            path(true, &["std", "result", "Result"]),
            [uuid.clone(), ty("E")],
            false,
        );
        assert_eq!(
            path_type(result),
            ty("::std::result::Result<::uuid::Uuid, E>")
        );
        assert_eq!(static_str(), ty("&'static str"));
        assert_eq!(reference_type(true, ty("T")), ty("&mut T"));
        assert_eq!(reference_type(false, ty("T")), ty("&T"));
    }

    #[test]
    fn expressions() {
        let tx = || var(ident("tx"));
        assert_eq!(method(tx(), "scope", []), expr("tx.scope()"));
        assert_eq!(
            method(field(var(ident("filter")), ident("kind")), "as_ref", []),
            expr("filter.kind.as_ref()")
        );
        assert_eq!(
            field(var(ident("new")), Ident::new_raw("type", Span::call_site())),
            expr("new.r#type")
        );
        assert_eq!(
            binds(var(ident("q")), [var(ident("a")), int("1")]),
            expr("q.bind(a).bind(1)")
        );
        let tenant_id = path_expr(path(true, &["tenancy_runtime", "Scope", "tenant_id"]));
        assert_eq!(
            call(tenant_id, [method(tx(), "scope", [])]),
            expr("::tenancy_runtime::Scope::tenant_id(tx.scope())")
        );
        assert_eq!(
            closure("after", reference(field(var(ident("after")), ident("id")))),
            expr("|after| &after.id")
        );
        assert_eq!(await_try(var(ident("f"))), expr("f.await?"));
        assert_eq!(deref(var(ident("p"))), expr("*p"));
        assert_eq!(
            sqlx_query("query_as", Some(ty("Row")), ident("GET_SQL")),
            expr("::tenancy_runtime::sqlx::query_as::<_, Row>(Self::GET_SQL)")
        );
        assert_eq!(
            sqlx_query("query", None, ident("DELETE_SQL")),
            expr("::tenancy_runtime::sqlx::query(Self::DELETE_SQL)")
        );
        let write_scope = with_args(
            path(true, &["tenancy_runtime", "WriteScope"]),
            [ty("crate::roles::Editor")],
            false,
        );
        assert_eq!(
            qualified_path(ty("S"), write_scope, &["project_id"]),
            expr("<S as ::tenancy_runtime::WriteScope<crate::roles::Editor>>::project_id")
        );
        let arms = vec![
            (
                slice_pat(ident("p")),
                vec![
                    let_("p", deref(var(ident("p")))),
                    Stmt::Expr(var(ident("p")), None),
                ],
            ),
            (wild_pat(), vec![Stmt::Expr(int("0"), None)]),
        ];
        assert_eq!(
            match_expr(var(ident("ps")), arms),
            expr("match ps { [p] => { let p = *p; p } _ => { 0 } }")
        );
    }

    #[test]
    fn statements() {
        let body = vec![
            let_("a", int("1")),
            let_typed(ident("v"), true, vec_type(ty("u8")), var(ident("w"))),
            for_loop(
                "x",
                var(ident("xs")),
                vec![semi(method(var(ident("v")), "push", [var(ident("x"))]))],
            ),
            ok_tail(var(ident("a"))),
        ];
        assert_eq!(
            body,
            stmts(
                "let a = 1; let mut v: ::std::vec::Vec<u8> = w; for x in xs { v.push(x); } \
                 ::std::result::Result::Ok(a)"
            )
        );
    }

    #[test]
    fn items() {
        let doc = " The SQL of [`Self::get`] with \"quotes\" and a \\ backslash.";
        let sql = "SELECT 'it''s' FROM \"Odd\"";
        let item: ImplItem = syn::parse_str(&format!(
            "#[doc = {doc:?}] pub const GET_SQL: &'static str = {sql:?};"
        ))
        .expect("const");
        assert_eq!(str_const(doc, ident("GET_SQL"), sql), item);

        let fields = named_fields([
            pub_field(
                doc_attrs("`id` (uuid).\n\nSecond  "),
                ident("id"),
                ty("::uuid::Uuid"),
            ),
            pub_field(Vec::new(), ident("n"), ty("i32")),
        ]);
        let parsed: syn::ItemStruct = syn::parse_str(
            "struct S { #[doc = \" `id` (uuid).\"] #[doc = \" \"] #[doc = \" Second\"] \
             pub id: ::uuid::Uuid, pub n: i32, }",
        )
        .expect("struct");
        let syn::Fields::Named(parsed) = parsed.fields else {
            panic!("named fields")
        };
        assert_eq!(fields, parsed.named);

        let implementation = inherent_impl(ident("Repo"), vec![str_const(doc, ident("A"), "x")]);
        let parsed: syn::ItemImpl = syn::parse_str(&format!(
            "impl Repo {{ #[doc = {doc:?}] pub const A: &'static str = \"x\"; }}"
        ))
        .expect("impl");
        assert_eq!(implementation, parsed);

        let get = async_fn(
            doc_attrs("Reads."),
            "get",
            "S",
            with_args(
                path(true, &["rt", "ReadScope"]),
                [ty("crate::roles::Viewer")],
                false,
            ),
            vec![
                (ident("tx"), reference_type(true, ty("::rt::ScopedTx<S>"))),
                (ident("id"), ty("::uuid::Uuid")),
            ],
            ty("::std::result::Result<::std::option::Option<Row>, ::rt::Error>"),
            stmts("let row = f(); ::std::result::Result::Ok(row)"),
        );
        let parsed: syn::ImplItemFn = syn::parse_str(
            "/// Reads.
            pub async fn get<S>(tx: &mut ::rt::ScopedTx<S>, id: ::uuid::Uuid)
                -> ::std::result::Result<::std::option::Option<Row>, ::rt::Error>
            where S: ::rt::ReadScope<crate::roles::Viewer>
            { let row = f(); ::std::result::Result::Ok(row) }",
        )
        .expect("fn");
        assert_eq!(get, parsed);
    }

    #[test]
    fn inner_doc_attribute() {
        let file: syn::File = syn::parse_str("#![doc = \" Repository.\"]").expect("file");
        assert_eq!(
            file.attrs,
            vec![doc_attr(
                " Repository.",
                AttrStyle::Inner(Default::default())
            )]
        );
    }
}
