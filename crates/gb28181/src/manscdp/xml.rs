//! A small element tree over quick-xml, tolerant of what devices write.
//!
//! MANSCDP documents are shallow and small; a tree keeps the typed extraction simple and
//! indifferent to element order. Leniencies: unescaped `&` in text ([`Quirk::UnresolvedXmlEntity`]),
//! bytes after the root element ([`Quirk::TrailingBytesAfterRoot`]). Structure errors (mismatched
//! or unclosed tags) are errors.

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::quirks::{Quirk, QuirkSet};

/// Limits against hostile documents.
const MAX_DEPTH: usize = 32;
const MAX_ELEMENTS: usize = 1_000_000;

/// One element: name, attributes, trimmed text, children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Element name as written.
    pub name: String,
    /// Attributes (name, value).
    pub attrs: Vec<(String, String)>,
    /// Concatenated text content, trimmed.
    pub text: String,
    /// Child elements in order.
    pub children: Vec<Element>,
}

impl Element {
    /// First child with this name, matched case-insensitively (Dahua writes `Alarmstatus`).
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name).or_else(|| {
            self.children
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(name))
        })
    }

    /// Like [`child`](Self::child), recording [`Quirk::ElementNameCase`] when only a
    /// case-insensitive match exists.
    pub fn child_q(&self, name: &str, quirks: &mut QuirkSet) -> Option<&Element> {
        if let Some(c) = self.children.iter().find(|c| c.name == name) {
            return Some(c);
        }
        let c = self
            .children
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name));
        if c.is_some() {
            quirks.insert(Quirk::ElementNameCase);
        }
        c
    }

    /// Children with this name (case-insensitive).
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children
            .iter()
            .filter(move |c| c.name.eq_ignore_ascii_case(name))
    }

    /// Text of the first child with this name, `None` if absent or empty.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(|c| c.text.as_str())
            .filter(|t| !t.is_empty())
    }

    /// An attribute by name (case-insensitive).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a document is not well-formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError {
    /// What went wrong.
    pub reason: String,
    /// Byte offset in the decoded text.
    pub position: u64,
}

/// Escapes bare `&` that do not start a reference, so that `<Name>A&B</Name>` parses.
fn escape_bare_ampersands(text: &str, quirks: &mut QuirkSet) -> Option<String> {
    if !text.contains('&') {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut changed = false;
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let is_ref = after.find(';').is_some_and(|end| {
            let name = &after[..end];
            !name.is_empty()
                && end <= 32
                && (name.bytes().all(|b| b.is_ascii_alphanumeric())
                    || (name.starts_with('#')
                        && name[1..]
                            .bytes()
                            .all(|b| b.is_ascii_hexdigit() || b == b'x')))
        });
        if is_ref {
            out.push('&');
        } else {
            out.push_str("&amp;");
            changed = true;
        }
        rest = after;
    }
    out.push_str(rest);
    if changed {
        quirks.insert(Quirk::UnresolvedXmlEntity);
        Some(out)
    } else {
        None
    }
}

/// Parses `text` into its root element.
pub fn parse_tree(text: &str, quirks: &mut QuirkSet) -> Result<Element, XmlError> {
    let fixed = escape_bare_ampersands(text, quirks);
    let text = fixed.as_deref().unwrap_or(text);
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut count = 0usize;
    let err = |reader: &Reader<&[u8]>, reason: String| XmlError {
        reason,
        position: reader.buffer_position(),
    };
    loop {
        let ev = match reader.read_event() {
            Ok(ev) => ev,
            Err(e) => {
                return Err(XmlError {
                    reason: e.to_string(),
                    position: reader.error_position(),
                })
            }
        };
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                count += 1;
                if stack.len() >= MAX_DEPTH || count > MAX_ELEMENTS {
                    return Err(err(&reader, "document too deep or too large".into()));
                }
                let mut el = Element {
                    name: e.name().as_ref().to_owned(),
                    ..Element::default()
                };
                for a in e.attributes().with_checks(false) {
                    let a = a.map_err(|x| err(&reader, format!("bad attribute: {x}")))?;
                    let v = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map(|v| v.into_owned())
                        .unwrap_or_else(|_| a.value.to_string());
                    el.attrs.push((a.key.as_ref().to_owned(), v));
                }
                if matches!(ev, Event::Empty(_)) {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(el),
                        None => return finish(el, &reader, text, quirks),
                    }
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let Some(mut el) = stack.pop() else {
                    return Err(err(&reader, "end tag without start tag".into()));
                };
                el.text = el.text.trim().to_owned();
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => return finish(el, &reader, text, quirks),
                }
            }
            Event::Text(t) => {
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&t.xml10_content());
                } else if !t.trim().is_empty() {
                    return Err(err(&reader, "text outside the root element".into()));
                }
            }
            Event::CData(t) => {
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let Some(el) = stack.last_mut() else { continue };
                match r.resolve_char_ref() {
                    Ok(Some(c)) => el.text.push(c),
                    Ok(None) => match &*r {
                        "amp" => el.text.push('&'),
                        "lt" => el.text.push('<'),
                        "gt" => el.text.push('>'),
                        "quot" => el.text.push('"'),
                        "apos" => el.text.push('\''),
                        other => {
                            quirks.insert(Quirk::UnresolvedXmlEntity);
                            el.text.push('&');
                            el.text.push_str(other);
                            el.text.push(';');
                        }
                    },
                    Err(_) => {
                        quirks.insert(Quirk::UnresolvedXmlEntity);
                        el.text.push('&');
                        el.text.push_str(&r);
                        el.text.push(';');
                    }
                }
            }
            Event::Eof => {
                return Err(err(
                    &reader,
                    match stack.last() {
                        Some(el) => format!("unexpected end of document inside <{}>", el.name),
                        None => "no root element".into(),
                    },
                ))
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
}

fn finish(
    root: Element,
    reader: &Reader<&[u8]>,
    text: &str,
    quirks: &mut QuirkSet,
) -> Result<Element, XmlError> {
    let pos = usize::try_from(reader.buffer_position())
        .unwrap_or(text.len())
        .min(text.len());
    let rest = text.get(pos..).unwrap_or_default();
    if rest.chars().any(|c| !c.is_whitespace()) {
        quirks.insert(Quirk::TrailingBytesAfterRoot);
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_elements_attributes_and_entities() {
        let mut q = QuirkSet::new();
        let root = parse_tree(
            "<?xml version=\"1.0\"?>\n<Response><DeviceList Num=\"2\"><Item><Name> a&lt;b &#x5927; </Name></Item><Item/></DeviceList></Response>",
            &mut q,
        )
        .unwrap();
        assert!(q.is_empty());
        let list = root.child("devicelist").unwrap();
        assert_eq!(list.attr("num"), Some("2"));
        assert_eq!(list.children_named("Item").count(), 2);
        assert_eq!(list.children[0].child_text("Name"), Some("a<b 大"));
    }

    #[test]
    fn quirk_unresolved_xml_entity() {
        let mut q = QuirkSet::new();
        let root = parse_tree("<a><Name>A&B &nbsp; C</Name></a>", &mut q).unwrap();
        assert!(q.contains(Quirk::UnresolvedXmlEntity));
        assert_eq!(root.child_text("Name"), Some("A&B &nbsp; C"));
    }

    #[test]
    fn quirk_trailing_bytes_after_root() {
        let mut q = QuirkSet::new();
        let root = parse_tree("<a><b>1</b></a>\n\0", &mut q).unwrap();
        assert_eq!(root.child_text("b"), Some("1"));
        assert!(q.contains(Quirk::TrailingBytesAfterRoot));
    }

    #[test]
    fn structure_errors() {
        let mut q = QuirkSet::new();
        assert!(parse_tree("<a><b></a>", &mut q).is_err());
        assert!(parse_tree("<a><b>", &mut q)
            .unwrap_err()
            .reason
            .contains("<b>"));
        assert!(parse_tree("", &mut q)
            .unwrap_err()
            .reason
            .contains("no root"));
        assert!(parse_tree("junk<a/>", &mut q).is_err());
        let deep = "<a>".repeat(100);
        assert!(parse_tree(&deep, &mut q)
            .unwrap_err()
            .reason
            .contains("too deep"));
    }
}
