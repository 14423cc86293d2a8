//! One module per pass.

pub mod constant_fold;
pub mod dead_code;
pub mod verify;
