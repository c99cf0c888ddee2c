//! Text keys (grid codes, site IDs): short ASCII strings that stay usable as index keys and as
//! `;`-separated list items in CSV cells, so they are checked the same way everywhere.

/// What a kind of key allows besides ASCII letters and digits.
pub(crate) struct KeyRules {
    /// Allowed punctuation bytes.
    pub punctuation: &'static [u8],
    /// The whole character set in words, for the error message.
    pub described: &'static str,
}

/// Longest key accepted.
pub(crate) const MAX_KEY_LEN: usize = 64;

/// Why `text` is not a valid key under `rules`, if it is not.
pub(crate) fn key_problem(text: &str, rules: &KeyRules) -> Option<&'static str> {
    if text.is_empty() {
        Some("empty")
    } else if text.len() > MAX_KEY_LEN {
        Some("longer than 64 characters")
    } else if !text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || rules.punctuation.contains(&b))
    {
        Some(rules.described)
    } else {
        None
    }
}

/// The conversions every text key newtype `$ty(String)` has: from a `String` through its
/// `parse` (so serde validates), into a `String`, `Display` as the text and `Debug` naming the
/// type.
macro_rules! text_key_impls {
    ($ty:ident, $err:ty) => {
        impl TryFrom<String> for $ty {
            type Error = $err;
            fn try_from(s: String) -> Result<Self, $err> {
                $ty::parse(&s)
            }
        }

        impl From<$ty> for String {
            fn from(key: $ty) -> String {
                key.0
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($ty), "({})"), self.0)
            }
        }
    };
}
pub(crate) use text_key_impls;
