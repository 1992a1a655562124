//! The arguments of `gatehouse admin …` (clap).

use clap::{ArgGroup, Subcommand, ValueEnum};

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Users: create, list, show, block, unblock, unlock, reset-mfa, set-temp-password, anonymize, delete.
    #[command(subcommand)]
    User(UserCommand),
    /// Organizations: create, list, show, add-member, remove-member, update, delete.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Roles.
    #[command(subcommand)]
    Role(RoleCommand),
    /// Grant a role to a user or to every member of an organization (on one app, or every app).
    Grant(GrantArgs),
    /// Revoke a role from a user or an organization.
    Revoke(GrantArgs),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Sessions.
    #[command(subcommand)]
    Session(SessionCommand),
    /// The audit trail.
    Audit(AuditArgs),
    /// Modify seats (an app's licensed concurrent modify users).
    #[command(subcommand)]
    Seats(SeatsCommand),
    /// Outgoing mail: send a test message, list what waits to be sent.
    #[command(subcommand)]
    Mail(MailCommand),
    /// Invitations: `invite --email E [--role R[@APP]]... [--org S] [--provider ID]` mails one
    /// and prints its link; `invite list`, `invite revoke --email E`.
    Invite(InviteArgs),
}

#[derive(Subcommand)]
pub enum MailCommand {
    /// Queues a test message and tries to deliver it now (checks `[mail]`).
    Test {
        #[arg(long)]
        to: String,
    },
    /// Messages not delivered yet, with their attempts and last error.
    Queue,
}

#[derive(Subcommand)]
pub enum SeatsCommand {
    /// Who holds a seat now.
    List {
        #[arg(long)]
        app: String,
    },
    /// Frees a user's seat at once.
    Release {
        #[arg(long)]
        app: String,
        #[arg(long)]
        email: String,
    },
    /// Per day: peak concurrent modify users, licensed seats, minutes over the licence.
    Report {
        #[arg(long)]
        app: String,
        /// A duration ("30d") or a date ("2026-11-01"); default: 30 days.
        #[arg(long)]
        since: Option<String>,
        #[arg(long, value_enum)]
        format: Option<Format>,
    },
}

#[derive(Subcommand)]
pub enum UserCommand {
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        name: String,
        /// R or R@APP; repeatable.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Read the initial password from the first line of standard input.
        #[arg(long, conflicts_with = "invite")]
        password_stdin: bool,
        /// Create the user as `invited` and mail them an invitation link (they choose their
        /// password).
        #[arg(long)]
        invite: bool,
    },
    List,
    Show(EmailArg),
    Block(EmailArg),
    Unblock(EmailArg),
    Unlock(EmailArg),
    ResetMfa(EmailArg),
    /// Sets a temporary password (generated, or from stdin) that must be changed at next sign-in.
    SetTempPassword {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password_stdin: bool,
    },
    Anonymize(EmailArg),
    Delete(EmailArg),
}

#[derive(clap::Args)]
pub struct EmailArg {
    #[arg(long)]
    pub email: String,
}

#[derive(Subcommand)]
pub enum RoleCommand {
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = ["limited", "modify"])]
        seat: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    List,
}

#[derive(clap::Args)]
#[command(group(ArgGroup::new("who").required(true).args(["user", "org"])))]
pub struct GrantArgs {
    /// The user's email.
    #[arg(long)]
    pub user: Option<String>,
    /// The organization's slug: the grant holds for every member.
    #[arg(long)]
    pub org: Option<String>,
    #[arg(long)]
    pub role: String,
    /// The app id (a configured `[[app]]`); omitted = every app.
    #[arg(long, default_value = "*")]
    pub app: String,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum AccessByArg {
    /// Any verified address of the organization's domain(s).
    Domain,
    /// Only the listed member addresses.
    Email,
}

/// The attributes of an organization (`org create`; `org update` gives the ones it changes).
#[derive(clap::Args)]
pub struct OrgOptions {
    /// The display name (shown in audit views).
    #[arg(long)]
    pub name: Option<String>,
    /// The organization's own address (it can never be used to sign in).
    #[arg(long, value_name = "ORG_EMAIL")]
    pub email: Option<String>,
    #[arg(long, value_enum)]
    pub access_by: Option<AccessByArg>,
    /// A domain whose addresses belong to the organization (access by domain); repeatable.
    #[arg(long = "domain", value_name = "D")]
    pub domains: Vec<String>,
    /// A member's address (access by email); repeatable. An existing account joins; an
    /// address without one gets an `invited` account and an activation mail.
    #[arg(long = "member", value_name = "EMAIL")]
    pub members: Vec<String>,
    /// Members must use a second factor (`--enforce-mfa=false` to turn it off).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub enforce_mfa: Option<bool>,
    /// An identity provider (`[[identity_provider]] id`) the members may use; repeatable.
    #[arg(long = "provider", value_name = "ID")]
    pub providers: Vec<String>,
    /// R or R@APP: a role every member holds; repeatable.
    #[arg(long = "role", value_name = "R[@APP]")]
    pub roles: Vec<String>,
}

#[derive(Subcommand)]
pub enum OrgCommand {
    /// Creates an organization (--name, --email and --access-by are required).
    Create {
        /// 1-64 of a-z, 0-9, '-', '_': what apps receive (X-Gatehouse-Org, the assertion's
        /// `org`) and `allow_organizations` lists.
        #[arg(long)]
        slug: String,
        #[command(flatten)]
        options: OrgOptions,
    },
    List,
    Show {
        #[arg(long)]
        slug: String,
    },
    /// Lists an address as a member (an existing account joins at once).
    AddMember(SlugEmail),
    /// Takes an address out of the organization.
    RemoveMember(SlugEmail),
    /// Changes an organization: each option given replaces that attribute (a list option
    /// given once or more replaces the whole list); the others stay as they are.
    Update {
        #[arg(long)]
        slug: String,
        #[command(flatten)]
        options: OrgOptions,
    },
    /// Deletes an organization; its members stay users, without an organization.
    Delete {
        #[arg(long)]
        slug: String,
    },
}

#[derive(clap::Args)]
pub struct SlugEmail {
    #[arg(long)]
    pub slug: String,
    #[arg(long)]
    pub email: String,
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Creates an API token and prints it once.
    Create {
        #[arg(long)]
        name: String,
    },
    List,
}

#[derive(Subcommand)]
pub enum SessionCommand {
    List {
        #[arg(long)]
        email: Option<String>,
    },
    #[command(group(ArgGroup::new("which").required(true).args(["email", "id"])))]
    Revoke {
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        id: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Csv,
    Json,
}

#[derive(clap::Args)]
pub struct AuditArgs {
    /// A duration ("24h") or a time ("2026-11-01", RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long)]
    pub email: Option<String>,
    /// Show the trail as this person would see it (an organization member's address is shown
    /// to full access administrators only); default: as a full access administrator.
    #[arg(long = "as", value_name = "VIEWER_EMAIL")]
    pub viewer: Option<String>,
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct InviteArgs {
    #[command(subcommand)]
    pub command: Option<InviteCommand>,
    /// The person's email (a user with status `invited` is created when none exists).
    #[arg(long)]
    pub email: Option<String>,
    /// R or R@APP; repeatable.
    #[arg(long = "role")]
    pub roles: Vec<String>,
    /// An identity provider id: the person may link that provider's identity of this address.
    #[arg(long)]
    pub provider: Option<String>,
    /// An email organization's slug: the address is listed as its member first.
    #[arg(long)]
    pub org: Option<String>,
}

#[derive(Subcommand)]
pub enum InviteCommand {
    /// Pending invitations.
    List,
    /// Revokes a person's pending invitation.
    Revoke(EmailArg),
}
