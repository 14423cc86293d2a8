//! Model zoo (being implemented).
