//! Turning a message body into a command invocation. In the management room the prefix is
//! optional; elsewhere a message is a command only when it starts with the prefix.

/// A parsed command: its lowercased name and the rest of the line, split on whitespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    pub name: String,
    pub args: Vec<String>,
}

/// Parses `body` as a command, or `None` when it is not one.
pub fn parse(body: &str, prefix: &str, in_management_room: bool) -> Option<Invocation> {
    let body = body.trim();
    let rest = match strip_prefix(body, prefix) {
        Some(rest) => rest,
        None if in_management_room => body,
        None => return None,
    };
    let mut words = rest.split_whitespace();
    let name = words.next()?.to_lowercase();
    Some(Invocation {
        name,
        args: words.map(str::to_owned).collect(),
    })
}

/// `"!msn help"` -> `Some("help")`; the prefix must stand alone (`"!msnhelp"` is not it).
fn strip_prefix<'a>(body: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = body.strip_prefix(prefix)?;
    if rest.is_empty() || rest.starts_with(char::is_whitespace) {
        Some(rest.trim_start())
    } else {
        None
    }
}

/// The known name closest to `name`, if it is a plausible typo (edit distance at most 2).
pub fn suggest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let sub = prev.get(j).copied().unwrap_or(0) + usize::from(ca != *cb);
            let del = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let ins = cur.get(j).copied().unwrap_or(0) + 1;
            cur.push(sub.min(del).min(ins));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(name: &str, args: &[&str]) -> Option<Invocation> {
        Some(Invocation {
            name: name.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn management_room_prefix_is_optional() {
        assert_eq!(parse("help", "!msn", true), inv("help", &[]));
        assert_eq!(
            parse("  !msn   HELP  login ", "!msn", true),
            inv("help", &["login"])
        );
        assert_eq!(
            parse("login a@b.c  secret", "!msn", true),
            inv("login", &["a@b.c", "secret"])
        );
    }

    #[test]
    fn elsewhere_prefix_is_required() {
        assert_eq!(parse("help", "!msn", false), None);
        assert_eq!(parse("!msn ping", "!msn", false), inv("ping", &[]));
        assert_eq!(parse("!msnping", "!msn", false), None);
        assert_eq!(parse("hello !msn ping", "!msn", false), None);
    }

    #[test]
    fn empty_is_not_a_command() {
        assert_eq!(parse("", "!msn", true), None);
        assert_eq!(parse("   ", "!msn", true), None);
        assert_eq!(parse("!msn", "!msn", true), None);
        assert_eq!(parse("!msn  ", "!msn", false), None);
    }

    #[test]
    fn typos_get_suggestions() {
        let known = ["help", "ping", "version"];
        assert_eq!(suggest("hlep", known), Some("help"));
        assert_eq!(suggest("verison", known), Some("version"));
        assert_eq!(suggest("frobnicate", known), None);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
