//! Administration: the `gatehouse admin …` command line (and, later, the REST API and web UI),
//! over the operations in [`ops`], which validate, change, audit and revoke.

pub mod cli;
pub mod ops;
