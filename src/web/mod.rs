//! Shared HTTP plumbing: templates, cookies, client address. Kept small on purpose; the
//! handlers live with their domain (`auth/`, later `proxy/`, `admin/`, ...).

pub mod client;
pub mod cookies;
pub mod extract;
pub mod h1;
pub mod request;
pub mod server;
pub mod templates;
pub mod tls;

pub use client::ClientInfo;
pub use templates::Templates;
