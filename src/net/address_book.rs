//! The address book of MSNP13+ over HTTP(S) (MSNP.md §4.5, §15.5): the login's
//! `FindMembership` and `ABFindAll`, merged into the lists the notification-server
//! machine takes, and the calls behind the contact commands. Requests and answers are
//! built and read by `msnp::abch`; this module only performs them. Tickets never reach a
//! log line.

use msnp::abch::circles::Circles;
use msnp::abch::{self, AbchError, Role};
use msnp::{ContactList, Secret};

use super::soap_post::{self, PostError};

/// Largest answer read: an address book of thousands of contacts is a few MB.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Why an address-book call failed.
#[derive(Debug, thiserror::Error)]
pub enum AddressBookError {
    #[error("the address book is not reachable: {0}")]
    Post(#[from] PostError),
    #[error("the address book refused the request: {0}")]
    Soap(#[from] AbchError),
}

/// Where the address book is and the ticket that opens it.
#[derive(Debug, Clone)]
pub struct AddressBook {
    /// The service's base URL (scheme and authority).
    pub base: String,
    /// The `contacts.msn.com` ticket (or, on MSNP13–14, the session's TWN ticket, which
    /// Escargot accepts too).
    pub ticket: Secret,
}

impl AddressBook {
    async fn call(
        &self,
        http: &reqwest::Client,
        request: Result<msnp::PostRequest, AbchError>,
    ) -> Result<(u16, String), AddressBookError> {
        Ok(soap_post::post(http, &request?, MAX_BODY).await?)
    }

    /// The lists at login: memberships and the address book, merged; `with_circles`
    /// (MSNP18), read with `ABFindContactsPaged`, which also lists the circles.
    pub async fn contact_list(
        &self,
        http: &reqwest::Client,
        with_circles: bool,
    ) -> Result<(ContactList, Circles), AddressBookError> {
        let (status, body) = self
            .call(http, abch::find_membership(&self.base, &self.ticket))
            .await?;
        let memberships = abch::parse_memberships(status, &body)?;
        if with_circles {
            match self.paged(http).await {
                Ok((book, circles)) => {
                    return Ok((abch::contact_list(&book, &memberships), circles));
                }
                // A server without it (or refusing it) still has ABFindAll: the login
                // goes on without circles.
                Err(e) => {
                    tracing::warn!(error = %e, "no ABFindContactsPaged; reading the address book without circles")
                }
            }
        }
        let (status, body) = self
            .call(http, abch::find_all(&self.base, &self.ticket))
            .await?;
        let book = abch::parse_address_book(status, &body)?;
        Ok((abch::contact_list(&book, &memberships), Circles::default()))
    }

    /// `ABFindContactsPaged`: the address book and the circles.
    async fn paged(
        &self,
        http: &reqwest::Client,
    ) -> Result<(abch::AddressBook, Circles), AddressBookError> {
        let (status, body) = self
            .call(
                http,
                abch::circles::find_contacts_paged(&self.base, &self.ticket),
            )
            .await?;
        let book = abch::parse_address_book(status, &body)?;
        Ok((book, abch::circles::parse_circles(status, &body)?))
    }

    /// Adds `address` as a messenger contact; returns its contact id.
    pub async fn add_contact(
        &self,
        http: &reqwest::Client,
        address: &str,
    ) -> Result<String, AddressBookError> {
        let (status, body) = self
            .call(http, abch::contact_add(&self.base, &self.ticket, address))
            .await?;
        Ok(abch::parse_contact_added(status, &body)?)
    }

    /// Deletes the contact with id `contact_id`.
    pub async fn delete_contact(
        &self,
        http: &reqwest::Client,
        contact_id: &str,
    ) -> Result<(), AddressBookError> {
        let (status, body) = self
            .call(
                http,
                abch::contact_delete(&self.base, &self.ticket, contact_id),
            )
            .await?;
        Ok(abch::parse_ack(status, &body)?)
    }

    /// Adds `address` to (`add`) or takes it from the membership `role`.
    pub async fn member(
        &self,
        http: &reqwest::Client,
        add: bool,
        role: Role,
        address: &str,
    ) -> Result<(), AddressBookError> {
        let (status, body) = self
            .call(
                http,
                abch::member(&self.base, &self.ticket, add, role, address),
            )
            .await?;
        Ok(abch::parse_ack(status, &body)?)
    }
}
