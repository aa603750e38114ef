//! The interpreter's values are firelight-core's [`Value`]s (any rank up to [`MAX_RANK`], any
//! kind); this module adds what only the interpreter needs.

pub use firelight_core::value::{Kind, MAX_RANK, Value, padded};

/// Applies `$body` to any [`Value`]'s tensor whatever its kind: `$t` is bound to the padded tensor.
macro_rules! any_kind {
    ($value:expr, $shape:expr, |$t:ident| $body:expr) => {
        $value.map_any($shape, |$t| $body, |$t| $body, |$t| $body)
    };
}
pub(crate) use any_kind;
