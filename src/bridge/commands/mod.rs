//! The bot's command framework: the table of commands (name, usage, one-line summary,
//! required permission level), parsing, and the replies as notices.
//!
//! Adding a command: a row in [`COMMANDS`] and an arm in `Bridge::run_command`.

mod parse;

pub use parse::{Invocation, parse, suggest};

use crate::config::PermissionLevel;
use ruma::{EventId, RoomId, UserId};

/// One command the bot understands.
#[derive(Clone, Copy, Debug)]
pub struct CommandSpec {
    pub name: &'static str,
    /// Arguments, in usage notation.
    pub args: &'static str,
    pub summary: &'static str,
    pub level: PermissionLevel,
}

/// Where a command was sent and by whom.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub room_id: &'a RoomId,
    pub event_id: &'a EventId,
    pub sender: &'a UserId,
    pub level: PermissionLevel,
}

/// Every command, in the order `help` lists them.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "login",
        args: "<email> [password]",
        summary: "Log in to MSN (without the password, send it in your next message; either way the bridge redacts it).",
        level: PermissionLevel::User,
    },
    CommandSpec {
        name: "logout",
        args: "",
        summary: "Log out of MSN and forget your password.",
        level: PermissionLevel::User,
    },
    CommandSpec {
        name: "status",
        args: "",
        summary: "Show your MSN connection: account, state, protocol version, server.",
        level: PermissionLevel::User,
    },
    CommandSpec {
        name: "reconnect",
        args: "",
        summary: "Reconnect to MSN with your stored login.",
        level: PermissionLevel::User,
    },
    CommandSpec {
        name: "contacts",
        args: "",
        summary: "List your MSN contacts and their status.",
        level: PermissionLevel::User,
    },
    CommandSpec {
        name: "start-chat",
        args: "<email>",
        summary: "Open a chat room with an MSN contact.",
        level: PermissionLevel::User,
    },
    CommandSpec {
        name: "nudge",
        args: "",
        summary: "In a chat room (with the prefix): send the contact a nudge.",
        level: PermissionLevel::User,
    },
    CommandSpec {
        name: "add",
        args: "<email>",
        summary: "Add a contact to your MSN contact list.",
        level: PermissionLevel::User,
    },
    CommandSpec {
        name: "accept",
        args: "<email>",
        summary: "Accept someone who added you: add them back.",
        level: PermissionLevel::User,
    },
    CommandSpec {
        name: "remove",
        args: "<email>",
        summary: "Remove a contact from your MSN contact list.",
        level: PermissionLevel::User,
    },
    CommandSpec {
        name: "block",
        args: "<email>",
        summary: "Block a contact on MSN.",
        level: PermissionLevel::User,
    },
    CommandSpec {
        name: "unblock",
        args: "<email>",
        summary: "Unblock a contact on MSN.",
        level: PermissionLevel::User,
    },
    CommandSpec {
        name: "help",
        args: "",
        summary: "Show this list of commands.",
        level: PermissionLevel::User,
    },
    CommandSpec {
        name: "ping",
        args: "",
        summary: "Check that the bridge is alive.",
        level: PermissionLevel::User,
    },
    CommandSpec {
        name: "version",
        args: "",
        summary: "Show the bridge's version.",
        level: PermissionLevel::User,
    },
];

/// Looks a command up by (lowercase) name.
pub fn find(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// The `help` text, as plain text and HTML, listing what `level` may run.
pub fn help_text(prefix: &str, level: PermissionLevel) -> (String, String) {
    let mut plain = format!(
        "Commands (in this room the prefix {prefix} is optional; elsewhere it is required):\n"
    );
    let mut html = format!(
        "<p>Commands (in this room the prefix <code>{}</code> is optional; elsewhere it is required):</p><ul>",
        escape_html(prefix)
    );
    for c in COMMANDS.iter().filter(|c| c.level <= level) {
        let usage = if c.args.is_empty() {
            c.name.to_owned()
        } else {
            format!("{} {}", c.name, c.args)
        };
        plain.push_str(&format!("• {usage} — {}\n", c.summary));
        html.push_str(&format!(
            "<li><code>{}</code> — {}</li>",
            escape_html(&usage),
            escape_html(c.summary)
        ));
    }
    html.push_str("</ul>");
    (plain.trim_end().to_owned(), html)
}

/// Escapes text for inclusion in Matrix HTML.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_every_user_command_with_usage() {
        let (plain, html) = help_text("!msn", PermissionLevel::User);
        for c in COMMANDS {
            assert!(plain.contains(c.name), "{plain}");
            assert!(html.contains(&escape_html(c.summary)), "{html}");
        }
    }

    #[test]
    fn command_names_are_unique_lowercase() {
        for (i, c) in COMMANDS.iter().enumerate() {
            assert_eq!(c.name, c.name.to_lowercase());
            assert!(COMMANDS.iter().skip(i + 1).all(|d| d.name != c.name));
        }
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(escape_html("<b>&'\""), "&lt;b&gt;&amp;&#39;&quot;");
    }
}
