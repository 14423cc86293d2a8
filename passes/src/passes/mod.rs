//! One module per pass.

pub mod canonicalize;
pub mod constant_fold;
pub mod dead_code;
pub mod eqsat;
pub mod verify;
