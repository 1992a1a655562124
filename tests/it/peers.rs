//! Real software nobody here wrote, run by the tests as the other side of a protocol.
//!
//! `oidc`: an upstream OpenID provider (the npm package `oidc-provider`, certified by the OpenID
//! Foundation), what Gatehouse's upstream sign-in talks to in its tests as Google or any
//! OpenID Connect provider. The tests install it themselves (once per machine and lockfile) and
//! fail, never skip, when Node.js or npm is missing.
//!
//! `browser`: Chromium (Debian's package) driven through `playwright-core`, with `axe-core` to
//! check pages, for tests that must see what a person sees. Installed the same way (`npm`);
//! fails, never skips, without Chromium.

pub mod browser;
pub mod npm;
pub mod oidc;
