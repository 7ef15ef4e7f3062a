//! Object ids as the state holds them: parsed once, where the state is
//! read, so a short, empty or non-hex id in a hand-edited record is an
//! error naming the record, never a panic later; and shortened one way.

use std::fmt;

use git2::Oid;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How many hex digits a short id shows (what `git log --oneline` shows).
pub const SHORT: usize = 10;

macro_rules! object_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Oid);

        impl $name {
            /// A full 40-digit hex id; anything else is refused.
            pub fn parse(text: &str) -> Result<$name, String> {
                if text.len() != 40 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!(
                        "`{}` is not a {} id (40 hex digits)",
                        text.chars().take(48).collect::<String>(),
                        $what
                    ));
                }
                Oid::from_str(text)
                    .map($name)
                    .map_err(|e| format!("`{text}` is not a {} id: {}", $what, e.message()))
            }

            pub fn oid(self) -> Oid {
                self.0
            }

            /// The first [`SHORT`] hex digits.
            pub fn short(&self) -> String {
                let mut s = self.0.to_string();
                s.truncate(SHORT);
                s
            }
        }

        impl From<Oid> for $name {
            fn from(oid: Oid) -> $name {
                $name(oid)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                let text = String::deserialize(d)?;
                $name::parse(&text).map_err(serde::de::Error::custom)
            }
        }

        impl PartialEq<Oid> for $name {
            fn eq(&self, other: &Oid) -> bool {
                self.0 == *other
            }
        }
    };
}

object_id!(
    /// A commit's id: a work-branch commit, a task's head, a state commit.
    CommitId,
    "commit"
);
object_id!(
    /// An annotated tag object's id.
    TagId,
    "tag"
);

/// The short form of any hex id held as text (git's output, a record of
/// another kind): at most [`SHORT`] characters, never a panic.
pub fn short_text(id: &str) -> &str {
    id.get(..SHORT).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn only_full_hex_ids_parse() {
        let full = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            CommitId::parse(full).map(|c| c.short()),
            Ok("0123456789".to_string())
        );
        for bad in [
            "",
            "0123",
            "zz23456789abcdef0123456789abcdef01234567",
            &format!("{full}0"),
            "é",
        ] {
            assert!(CommitId::parse(bad).is_err(), "{bad:?} parsed");
        }
        let json = format!("\"{full}\"");
        let id: CommitId = serde_json::from_str(&json).expect("parses");
        assert_eq!(serde_json::to_string(&id).expect("prints"), json);
        assert!(serde_json::from_str::<CommitId>("\"abc\"").is_err());
        assert!(serde_json::from_str::<CommitId>("7").is_err());
    }

    proptest! {
        #[test]
        fn any_text_is_parsed_or_refused_and_short_ids_never_panic(text in ".{0,60}") {
            let _ = CommitId::parse(&text);
            let _ = TagId::parse(&text);
            prop_assert!(short_text(&text).len() <= text.len());
        }
    }
}
