//! Role marker types, their order, and the `roles!` macro that declares them.

/// A role marker type. Generated crates declare one per role with [`roles!`](crate::roles).
///
/// The rank only drives the runtime check in `require`; what the database enforces is the
/// user's actual role, read from the memberships table. A hand-written `Role` impl that lies
/// about its rank therefore gains nothing at the database.
pub trait Role: Send + Sync + 'static {
    /// The role's name as in the database enum, e.g. `"editor"`.
    const NAME: &'static str;
    /// Position in the model's order, 0 = least privileged.
    const RANK: u8;
}

/// `Self` is at least as privileged as `R`. [`roles!`](crate::roles) implements it for every
/// pair with `Self::RANK >= R::RANK`.
pub trait AtLeast<R: Role>: Role {}

/// Whether `name` is a role name the runtime accepts: `[a-z_][a-z0-9_]*`.
///
/// Role names end up inside `SET LOCAL` text, so anything else is refused.
///
/// ```
/// use tenancy_runtime::is_valid_role_name;
/// assert!(is_valid_role_name("editor"));
/// assert!(is_valid_role_name("_ops2"));
/// assert!(!is_valid_role_name("Editor"));
/// assert!(!is_valid_role_name("x',y"));
/// assert!(!is_valid_role_name(""));
/// ```
pub const fn is_valid_role_name(name: &str) -> bool {
    is_valid_identifier(name.as_bytes())
}

/// `[a-z_][a-z0-9_]*` over bytes, usable in `const` context.
pub(crate) const fn is_valid_identifier(bytes: &[u8]) -> bool {
    if bytes.is_empty() || bytes.len() > 63 {
        return false;
    }
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        let allowed =
            byte == b'_' || byte.is_ascii_lowercase() || (index > 0 && byte.is_ascii_digit());
        if !allowed {
            return false;
        }
        index += 1;
    }
    true
}

/// Declares role marker types in rank order (least privileged first), their [`Role`] impls and
/// every [`AtLeast`] impl: each role is at least itself and every role declared before it.
///
/// Each name must match `[a-z_][a-z0-9_]*` (checked at compile time).
///
/// ```
/// use tenancy_runtime::{AtLeast, Role};
///
/// tenancy_runtime::roles! {
///     Viewer = "viewer",
///     Editor = "editor",
///     Admin = "admin",
///     Owner = "owner",
/// }
///
/// assert_eq!(Viewer::RANK, 0);
/// assert_eq!(Owner::RANK, 3);
/// assert_eq!(Editor::NAME, "editor");
///
/// fn needs_editor<R: AtLeast<Editor>>() -> &'static str {
///     R::NAME
/// }
/// assert_eq!(needs_editor::<Editor>(), "editor");
/// assert_eq!(needs_editor::<Owner>(), "owner");
/// ```
///
/// A lower role is not at least a higher one:
///
/// ```compile_fail,E0277
/// use tenancy_runtime::AtLeast;
/// tenancy_runtime::roles! { Viewer = "viewer", Editor = "editor" }
/// fn needs_editor<R: AtLeast<Editor>>() {}
/// needs_editor::<Viewer>();
/// ```
///
/// Names that could not be written into `SET LOCAL` are rejected:
///
/// ```compile_fail,E0080
/// tenancy_runtime::roles! { Viewer = "Viewer'; --" }
/// ```
#[macro_export]
macro_rules! roles {
    ($($(#[$meta:meta])* $name:ident = $text:literal),+ $(,)?) => {
        $crate::roles!(@declare 0u8; $($(#[$meta])* $name = $text),+);
        $crate::roles!(@at_least []; $($name),+);
    };
    (@declare $rank:expr; $(#[$meta:meta])* $name:ident = $text:literal $(, $($rest:tt)*)?) => {
        #[doc = concat!("The `", $text, "` role (declared with `tenancy_runtime::roles!`).")]
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name;

        impl $crate::Role for $name {
            const NAME: &'static str = $text;
            const RANK: u8 = $rank;
        }

        const _: () = assert!(
            $crate::is_valid_role_name($text),
            concat!("role name `", $text, "` must match [a-z_][a-z0-9_]*")
        );

        $($crate::roles!(@declare $rank + 1; $($rest)*);)?
    };
    (@declare $rank:expr;) => {};
    (@at_least [$($below:ident),*]; $name:ident $(, $rest:ident)*) => {
        impl $crate::AtLeast<$name> for $name {}
        $(impl $crate::AtLeast<$below> for $name {})*
        $crate::roles!(@at_least [$($below,)* $name]; $($rest),*);
    };
    (@at_least [$($below:ident),*];) => {};
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::roles! { Low = "low", Mid = "mid", High = "high" }

    fn assert_at_least<A: AtLeast<B>, B: Role>() {}

    #[test]
    fn roles_macro_assigns_ranks_in_order() {
        assert_eq!((Low::RANK, Mid::RANK, High::RANK), (0, 1, 2));
        assert_eq!((Low::NAME, Mid::NAME, High::NAME), ("low", "mid", "high"));
    }

    #[test]
    fn roles_macro_implements_at_least_downwards() {
        assert_at_least::<Low, Low>();
        assert_at_least::<Mid, Low>();
        assert_at_least::<Mid, Mid>();
        assert_at_least::<High, Low>();
        assert_at_least::<High, Mid>();
        assert_at_least::<High, High>();
    }

    #[test]
    fn role_name_validation() {
        for good in ["viewer", "editor", "a", "_", "role_2", "x9"] {
            assert!(is_valid_role_name(good), "{good} should be valid");
        }
        for bad in [
            "",
            "Editor",
            "9lives",
            "ed-itor",
            "ed itor",
            "x'",
            "a,b",
            "a:b",
            "é",
            &"a".repeat(64),
        ] {
            assert!(!is_valid_role_name(bad), "{bad:?} should be invalid");
        }
        assert!(is_valid_role_name(&"a".repeat(63)));
    }
}
