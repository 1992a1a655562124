//! Real software nobody here wrote, run by the tests as the other side of a protocol.
//!
//! `oidc`: an upstream OpenID provider (the npm package `oidc-provider`, certified by the OpenID
//! Foundation), what Gatehouse's upstream sign-in talks to in its tests as Google or any
//! OpenID Connect provider. The tests install it themselves (once per machine and lockfile) and
//! fail, never skip, when Node.js or npm is missing.

pub mod oidc;
