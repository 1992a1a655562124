//! Shared HTTP plumbing: templates, cookies, client address, what every request must be. Kept small on purpose; the
//! handlers live with their domain (`auth/`, later `proxy/`, `admin/`, ...).

pub mod client;
pub mod cookies;
pub mod csrf;
pub mod extract;
pub mod policy;
pub mod request;
pub mod target;
pub mod templates;

pub use client::ClientInfo;
pub use templates::Templates;
