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
    GenericArgument, Lit, LitInt, LitStr, Local, LocalInit, Member, Meta, MetaNameValue, Pat,
    PatIdent, PatType, Path, PathArguments, PathSegment, ReturnType, Stmt, Type, TypePath,
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

/// `::a::b::C<arg>`.
pub(crate) fn generic_type(segments: &[&str], arg: Type) -> Type {
    let mut path = path(true, segments);
    if let Some(last) = path.segments.last_mut() {
        last.arguments = PathArguments::AngleBracketed(AngleBracketedGenericArguments {
            colon2_token: None,
            lt_token: Default::default(),
            args: std::iter::once(GenericArgument::Type(arg)).collect(),
            gt_token: Default::default(),
        });
    }
    path_type(path)
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
