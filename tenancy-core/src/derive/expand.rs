//! The expansion of `#[derive(TenantScoped)]`.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, ToTokens};

use crate::model::{Model, Settings};
use crate::rust;

use super::{compile_errors, derive_table, table_to_dsl, DerivedTable};

/// Expands `#[derive(TenantScoped)]` on `input` (the item the derive is attached to).
///
/// On success: `impl Struct { TABLE_NAME, TENANCY_DSL }` and, when the table has a
/// repository (a scoped table with rules), a module named after the table holding exactly
/// what the generated crate's `<table>.rs` holds (the repository `Documents`, the row
/// `Document` with the scope columns, `NewDocument`, `DocumentPatch`, ...) plus
/// `impl From<table::Row> for Struct`. On misuse: only the `compile_error!`s, one per
/// problem, spanned on the offending tokens.
pub fn expand(input: TokenStream) -> TokenStream {
    let input: syn::DeriveInput = match syn::parse2(input) {
        Ok(input) => input,
        Err(error) => return compile_errors(&error),
    };
    match derive_table(&input) {
        Ok(derived) => expand_table(&input, &derived),
        Err(error) => compile_errors(&error),
    }
}

/// An identifier for a module named like the table (raw when it is a Rust keyword).
fn module_ident(name: &str) -> Ident {
    syn::parse_str::<Ident>(name).unwrap_or_else(|_| Ident::new_raw(name, Span::call_site()))
}

/// `path` as seen from inside the generated module: a leading `self` becomes `super`, a
/// leading `super` gets one more `super`; other paths resolve through `use super::*`.
fn from_inside_module(path: &syn::Path) -> syn::Path {
    let mut path = path.clone();
    let first = path
        .segments
        .first()
        .map(|s| (s.ident.to_string(), s.ident.span()));
    match first {
        Some((name, span)) if name == "self" => {
            if let Some(segment) = path.segments.first_mut() {
                segment.ident = Ident::new("super", span);
            }
        }
        Some((name, span)) if name == "super" && path.leading_colon.is_none() => {
            let mut relocated: syn::Path = syn::Path::from(Ident::new("super", span));
            relocated.segments.extend(path.segments);
            path = relocated;
        }
        _ => {}
    }
    path
}

fn expand_table(input: &syn::DeriveInput, derived: &DerivedTable) -> TokenStream {
    let table = &derived.table;
    let ident = &input.ident;
    let table_name = &table.name;
    let dsl = table_to_dsl(table);
    let consts = quote! {
        impl #ident {
            /// The SQL table this struct declares.
            pub const TABLE_NAME: &'static str = #table_name;
            /// The table as a `.tenancy` declaration (an export, e.g. to move it into a policy file).
            pub const TENANCY_DSL: &'static str = #dsl;
        }
    };

    let mut roles: Vec<String> = Vec::new();
    for rule in &table.rules {
        if !rule.min_role.is_empty() && !roles.contains(&rule.min_role) {
            roles.push(rule.min_role.clone());
        }
    }
    let model = Model {
        settings: Settings::default(),
        roles,
        tables: vec![table.clone()],
        adoption: None,
    };
    let markers: Vec<(String, TokenStream)> = derived
        .role_markers
        .iter()
        .map(|(name, path)| (name.clone(), from_inside_module(path).to_token_stream()))
        .collect();
    // Every role a rule names has an explicit marker, so this path is never used.
    let roles_path: syn::Path = syn::parse_quote!(crate::roles);
    let body = model
        .tables
        .first()
        .map(|t| rust::table_repository_tokens_with_markers(&model, t, &roles_path, &markers));
    let Some(body) = body.filter(|b| !b.is_empty()) else {
        return consts;
    };

    let module = module_ident(table_name);
    let vis = &input.vis;
    let full_row = model
        .tables
        .first()
        .and_then(|t| rust::full_row_type(&model, t));
    let module_doc = format!(
        " The repository of `{table_name}`, derived from [`{ident}`]: the same items as the \
         generated crate's `{table_name}` module."
    );
    let fields = derived.fields.iter().map(|(field, _)| field);
    let expanded = quote! {
        #consts

        #[doc = #module_doc]
        #vis mod #module {
            #[allow(unused_imports)]
            use super::*;

            #body
        }

    };
    let Some(row) = full_row else {
        return expanded;
    };
    let row = Ident::new(&row, Span::call_site());
    quote! {
        #expanded

        impl ::std::convert::From<#module::#row> for #ident {
            /// Drops the scope columns of a stored row.
            fn from(row: #module::#row) -> Self {
                #ident { #(#fields: row.#fields,)* }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_expand_to_compile_errors_only() {
        let tokens = expand(quote! {
            #[tenancy(table = "things", scoped, select = Viewer)]
            struct Thing { name: String }
        });
        let text = tokens.to_string();
        assert!(text.contains("compile_error"), "{text}");
        assert!(!text.contains("mod things"), "{text}");
    }

    #[test]
    fn relative_role_paths_are_seen_from_the_module() {
        let path: syn::Path = syn::parse_quote!(self::roles::Editor);
        let inside = from_inside_module(&path).to_token_stream().to_string();
        assert_eq!(inside, "super :: roles :: Editor");
        let path: syn::Path = syn::parse_quote!(super::roles::Editor);
        let inside = from_inside_module(&path).to_token_stream().to_string();
        assert_eq!(inside, "super :: super :: roles :: Editor");
    }
}
