//! What a person proves themselves with, and the rules on it: password hashing (`password`),
//! the password policy (`policy`), TOTP and recovery codes (`totp`), and where lockout is
//! decided (`lockout`). No pages and no routes: the sign-in flows of `auth` use these.

pub mod lockout;
pub mod password;
pub mod policy;
pub mod totp;
