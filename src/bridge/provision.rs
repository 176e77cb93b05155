//! The core's side of the provisioning API, for integration managers and scripts: log
//! in, log out, status, contacts, start a chat, on behalf of a Matrix user, with the
//! permissions of the same commands, each answer typed. The Matrix layer serves it over
//! HTTP (`matrix::provisioning`); the core knows no routes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use ruma::{OwnedRoomId, OwnedUserId, UserId};

use super::ids::MsnAddress;
use super::logins::LoginStatus;
use super::remote::{Chat, ContactInfo, LoginFailure, MsnConnector, MsnSessionPort as _};
use super::{Bridge, MatrixPort};
use crate::config::PermissionLevel;

/// A provisioning call in flight.
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = Result<T, ProvisionError>> + Send + 'a>>;

/// What a user's bridge looks like to an integration manager.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Whoami {
    pub login: LoginStatus,
    /// The MSN server the bridge logs in to.
    pub server: String,
    pub management_room: Option<OwnedRoomId>,
    pub space: Option<OwnedRoomId>,
}

/// A contact, with the Matrix user that stands for them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    pub info: ContactInfo,
    /// Their puppet.
    pub puppet: Option<OwnedUserId>,
}

/// Why a provisioning call was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The Matrix user may not use the bridge (the `bridge.permissions` of commands).
    #[error("{0} is not allowed to use this bridge")]
    NotAllowed(String),
    #[error("not logged in to MSN")]
    NotLoggedIn,
    #[error("already logged in to MSN as {0}: log out first")]
    AlreadyLoggedIn(String),
    #[error("{0:?} is not an MSN address (name@domain)")]
    BadAddress(String),
    /// The MSN login failed.
    #[error("the MSN login failed: {0}")]
    Login(#[source] LoginFailure),
    /// MSN or the homeserver failed the request.
    #[error("{0}")]
    Failed(String),
}

/// The provisioning operations, for one bridge.
pub trait Provisioner: Send + Sync {
    /// The user's login and rooms.
    fn whoami<'a>(&'a self, mxid: &'a UserId) -> Pending<'a, Whoami>;
    /// Logs the user in to MSN (the password is kept as a command login keeps it).
    fn login<'a>(
        &'a self,
        mxid: &'a UserId,
        account: &'a str,
        password: &'a str,
    ) -> Pending<'a, Whoami>;
    /// Logs the user out and forgets their password; the account they were logged in as.
    fn logout<'a>(&'a self, mxid: &'a UserId) -> Pending<'a, String>;
    /// The user's MSN contact list.
    fn contacts<'a>(&'a self, mxid: &'a UserId) -> Pending<'a, Vec<Contact>>;
    /// The portal of the user's chat with `contact` (made if needed) and the contact.
    fn start_chat<'a>(
        &'a self,
        mxid: &'a UserId,
        contact: &'a str,
    ) -> Pending<'a, (OwnedRoomId, Contact)>;
}

/// [`Provisioner`] over a running bridge.
struct Provisioning<M: MatrixPort, C: MsnConnector>(Arc<Bridge<M, C>>);

impl<M: MatrixPort, C: MsnConnector> Bridge<M, C> {
    /// The provisioning operations of this bridge.
    pub fn provisioner(self: &Arc<Self>) -> Arc<dyn Provisioner> {
        Arc::new(Provisioning(self.clone()))
    }

    fn may_provision(&self, mxid: &UserId) -> Result<(), ProvisionError> {
        if self.config.permission_of(mxid) < PermissionLevel::User {
            return Err(ProvisionError::NotAllowed(mxid.to_string()));
        }
        Ok(())
    }

    async fn contact_list(&self, mxid: &UserId) -> Result<Vec<ContactInfo>, ProvisionError> {
        let session = self.session_of(mxid).ok_or(ProvisionError::NotLoggedIn)?;
        session
            .contacts()
            .await
            .map_err(|e| ProvisionError::Failed(format!("cannot list the contacts: {e}")))
    }

    fn contact(&self, info: ContactInfo) -> Contact {
        let puppet = self.puppet_id(&info.address);
        Contact { info, puppet }
    }

    async fn whoami(&self, mxid: &UserId) -> Whoami {
        let user = self.store.user(mxid).await.ok().flatten();
        let space = self.store.space(mxid).await.ok().flatten();
        Whoami {
            login: self.login_status(mxid).await,
            server: self.msn.server(),
            management_room: user.and_then(|u| u.management_room),
            space,
        }
    }
}

impl<M: MatrixPort, C: MsnConnector> Provisioner for Provisioning<M, C> {
    fn whoami<'a>(&'a self, mxid: &'a UserId) -> Pending<'a, Whoami> {
        Box::pin(async move {
            self.0.may_provision(mxid)?;
            Ok(self.0.whoami(mxid).await)
        })
    }

    fn login<'a>(
        &'a self,
        mxid: &'a UserId,
        account: &'a str,
        password: &'a str,
    ) -> Pending<'a, Whoami> {
        Box::pin(async move {
            let bridge = &self.0;
            bridge.may_provision(mxid)?;
            let account = MsnAddress::parse(account)
                .ok_or_else(|| ProvisionError::BadAddress(account.to_owned()))?
                .to_string();
            if let Some(current) = bridge.users.get(mxid).and_then(|u| u.account()) {
                return Err(ProvisionError::AlreadyLoggedIn(current));
            }
            let version = bridge
                .log_in(mxid, &account, password)
                .await
                .map_err(ProvisionError::Login)?;
            bridge
                .tell_user(
                    mxid,
                    &format!(
                        "Logged in to MSN as {account} (MSNP{version}), through the provisioning API."
                    ),
                )
                .await;
            Ok(bridge.whoami(mxid).await)
        })
    }

    fn logout<'a>(&'a self, mxid: &'a UserId) -> Pending<'a, String> {
        Box::pin(async move {
            self.0.may_provision(mxid)?;
            let account = self
                .0
                .log_out(mxid)
                .await
                .ok_or(ProvisionError::NotLoggedIn)?;
            let text = format!("Logged out of MSN ({account}) through the provisioning API.");
            self.0.tell_user(mxid, &text).await;
            Ok(account)
        })
    }

    fn contacts<'a>(&'a self, mxid: &'a UserId) -> Pending<'a, Vec<Contact>> {
        Box::pin(async move {
            self.0.may_provision(mxid)?;
            Ok(self
                .0
                .contact_list(mxid)
                .await?
                .into_iter()
                .filter(|c| c.is_friend)
                .map(|info| self.0.contact(info))
                .collect())
        })
    }

    fn start_chat<'a>(
        &'a self,
        mxid: &'a UserId,
        contact: &'a str,
    ) -> Pending<'a, (OwnedRoomId, Contact)> {
        Box::pin(async move {
            let bridge = &self.0;
            bridge.may_provision(mxid)?;
            let address = MsnAddress::parse(contact)
                .ok_or_else(|| ProvisionError::BadAddress(contact.to_owned()))?;
            let known = bridge.contact_list(mxid).await?;
            let room = bridge
                .portal_room(mxid, &Chat::Contact(address.clone()), true)
                .await
                .ok_or_else(|| {
                    ProvisionError::Failed(format!(
                        "cannot open a chat with {address} (the homeserver refused the room)"
                    ))
                })?;
            let info = known
                .into_iter()
                .find(|c| c.address == address)
                .unwrap_or_else(|| ContactInfo::unknown(address));
            Ok((room, bridge.contact(info)))
        })
    }
}
