//! People and their rights: email rules (`email`), statuses (`status`), the access rules
//! (`access`: effective roles, seat kinds, admission, per-path rules, who must use MFA),
//! organizations (`org`: what a member holds, the apps' organization checks, an
//! organization's shape), which way an address signs in (`realm`: home-realm discovery), and
//! who may manage the directory (`authority`: the full access administrator's proof).
//! No HTTP and no SQL here: the rules only.

mod access;
mod authority;
mod email;
mod org;
mod realm;
mod status;

pub use access::{
    AppRights, DenyReason, Grants, Readings, SeatKind, admits, glob_match, mfa_required,
    parse_role_spec, path_refusal, rights, roles_for_app, seat_kind,
};
pub use authority::{ADMIN_ROLE, FullAdmin, is_full_admin};
pub use email::{normalize_email, valid_email};
pub use org::{AccessBy, Holdings, Organization, org_refusal, shape_problem, valid_domain};
pub use realm::{Concern, Realm, invitation_providers, realm};
pub use status::{UserStatus, display_status, is_locked};
