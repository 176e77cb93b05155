//! The contact commands (add, remove, block, unblock) as each protocol generation does
//! them: up to MSNP12 one `ADC`/`ADD`/`REM` on the notification server (MSNP.md §4.2,
//! §4.3); from MSNP13 the address book's call and then `ADL`/`RML` (§4.5, §15.5), in the
//! order Escargot expects (adding: `ABContactAdd`, `ADL` forward+allow, then
//! `DeleteMember` of a pending membership; blocking: the allow membership out, the block
//! one in, `RML` allow, `ADL` block). The bridge asks for the edit; which way it goes is
//! decided here, by the negotiated version.

use std::time::Instant;

use msnp::abch::Role;
use msnp::{List, NsSession};

use super::address_book::{AddressBook, AddressBookError};
use super::error::NetError;
use super::ns_client::NsClient;

/// A change to the user's contacts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactEdit {
    /// Add to the forward list (and allow); also how someone who added the user is
    /// accepted.
    Add(String),
    /// Remove from the forward list.
    Remove(String),
    /// Block.
    Block(String),
    /// Unblock (allow again).
    Unblock(String),
}

fn book_error(e: AddressBookError) -> NetError {
    NetError::AddressBook(e)
}

impl NsClient {
    /// Makes `edit`, the way the session's protocol version does it.
    pub async fn edit_contact(&self, edit: ContactEdit) -> Result<(), NetError> {
        let Some((book, http)) = self.address_book().await? else {
            return self.edit_on_ns(edit).await;
        };
        let lists = |lists: &'static [List], add: bool, email: String| {
            move |s: &mut NsSession, now: Instant| s.change_lists(now, &email, lists, add, None)
        };
        match edit {
            ContactEdit::Add(email) => {
                let id = book.add_contact(&http, &email).await.map_err(book_error)?;
                let added = email.clone();
                self.command(move |s, now| {
                    s.change_lists(now, &added, &[List::Forward, List::Allow], true, Some(&id))
                })
                .await?;
                // Answers a pending add, if there was one; nothing to answer is fine.
                if let Err(e) = book.member(&http, false, Role::Pending, &email).await {
                    tracing::debug!(error = %e, "no pending membership to answer");
                }
                Ok(())
            }
            ContactEdit::Remove(email) => {
                let id = self
                    .contact_list()
                    .await?
                    .contacts
                    .get(&email.to_ascii_lowercase())
                    .and_then(|c| c.guid.clone());
                if let Some(id) = id {
                    book.delete_contact(&http, &id).await.map_err(book_error)?;
                }
                self.command(lists(&[List::Forward], false, email)).await
            }
            ContactEdit::Block(email) => {
                self.swap_membership(
                    &book,
                    &http,
                    (Role::Allow, List::Allow),
                    (Role::Block, List::Block),
                    email,
                )
                .await
            }
            ContactEdit::Unblock(email) => {
                self.swap_membership(
                    &book,
                    &http,
                    (Role::Block, List::Block),
                    (Role::Allow, List::Allow),
                    email,
                )
                .await
            }
        }
    }

    /// MSNP13+: moves `email` from the membership and list `from` to those of `to`: the
    /// old membership out (absent is fine), the new one in, then `RML` and `ADL`.
    async fn swap_membership(
        &self,
        book: &AddressBook,
        http: &reqwest::Client,
        from: (Role, List),
        to: (Role, List),
        email: String,
    ) -> Result<(), NetError> {
        if let Err(e) = book.member(http, false, from.0, &email).await {
            tracing::debug!(error = %e, "no membership to leave");
        }
        book.member(http, true, to.0, &email)
            .await
            .map_err(book_error)?;
        let leave = email.clone();
        let _ = self
            .command(move |s, now| s.change_lists(now, &leave, &[from.1], false, None))
            .await;
        self.command(move |s, now| s.change_lists(now, &email, &[to.1], true, None))
            .await
    }

    /// MSNP8–12: one list command on the notification server.
    async fn edit_on_ns(&self, edit: ContactEdit) -> Result<(), NetError> {
        match edit {
            ContactEdit::Add(email) => {
                self.command(move |s, now| s.add_contact(now, List::Forward, &email, None, None))
                    .await
            }
            ContactEdit::Remove(email) => {
                self.command(move |s, now| s.remove_contact(now, List::Forward, &email, None))
                    .await
            }
            ContactEdit::Block(email) => self.command(move |s, now| s.block(now, &email)).await,
            ContactEdit::Unblock(email) => self.command(move |s, now| s.unblock(now, &email)).await,
        }
    }
}
