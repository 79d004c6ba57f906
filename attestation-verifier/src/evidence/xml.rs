//! A small namespace-aware XML tree and its canonical serialisations, enough to
//! verify XML-DSig signatures over NVIDIA's reference integrity manifests.
//!
//! Tokenising is `xmlparser` (no_std, zero-copy). The tree, namespace
//! resolution, entity decoding and canonicalisation are written here because no
//! maintained no_std crate provides canonical XML: `roxmltree` (no_std) does not
//! keep the prefix each element was written with (the manifests bind the same
//! URI to both the default namespace and `ns0:`, and the prefix is part of the
//! signed bytes), and the XML-DSig crates are std-only bindings to libxml2.
//!
//! Canonical XML 1.0 and 1.1 (inclusive) and Exclusive XML Canonicalization 1.0
//! are implemented without comments, for documents without a DTD (a DTD is
//! refused: no entity expansion, no attribute defaults). Per the XML spec the
//! input's line ends are normalised to `\n` and literal whitespace in attribute
//! values to spaces before anything else.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// The namespace bound to the `xml` prefix.
pub const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
/// Deepest element nesting accepted (keeps the recursive serialiser's stack bounded).
pub const MAX_DEPTH: usize = 64;

/// Why an XML document was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum XmlError {
    /// The tokenizer refused the text.
    #[error("XML is not well formed: {0}")]
    Syntax(String),
    /// The document has a DTD.
    #[error("XML documents with a DTD are not accepted")]
    Dtd,
    /// An end tag does not match its start tag.
    #[error("end tag </{found}> does not close <{expected}>")]
    Mismatch {
        /// The open element.
        expected: String,
        /// The end tag found.
        found: String,
    },
    /// A prefix is used without a declaration.
    #[error("namespace prefix {0:?} is not declared")]
    UnboundPrefix(String),
    /// An attribute appears twice on one element.
    #[error("attribute {0:?} appears twice")]
    DuplicateAttribute(String),
    /// An entity or character reference is malformed or unknown.
    #[error("bad entity or character reference {0:?}")]
    BadReference(String),
    /// Elements nest deeper than [`MAX_DEPTH`].
    #[error("elements nest deeper than {MAX_DEPTH}")]
    TooDeep,
    /// The document has no root element, or text outside it.
    #[error("document has no single root element")]
    NoRoot,
    /// `xml:base` on an omitted ancestor, which Canonical XML 1.1 would have to fix up.
    #[error("xml:base on an ancestor of a canonicalised subtree is not supported")]
    XmlBase,
}

/// An attribute (namespace declarations are kept apart, in [`Element::ns_decls`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    /// Prefix as written (empty for none).
    pub prefix: String,
    /// Local name.
    pub local: String,
    /// Namespace URI (empty for none).
    pub ns: String,
    /// Value, references decoded and whitespace normalised.
    pub value: String,
}

/// A child of an element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// An element.
    Element(Element),
    /// Character data (text and CDATA, references decoded).
    Text(String),
    /// A processing instruction.
    Pi {
        /// Target.
        target: String,
        /// Data (may be empty).
        data: String,
    },
    /// A comment (never part of canonical output).
    Comment,
}

/// An element with its namespace context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    /// Prefix as written (empty for none).
    pub prefix: String,
    /// Local name.
    pub local: String,
    /// Namespace URI (empty for none).
    pub ns: String,
    /// Namespace declarations written on this element: (prefix or "" for default, URI).
    pub ns_decls: Vec<(String, String)>,
    /// Every namespace binding in scope here, sorted by prefix ("" = default;
    /// a default undeclared with `xmlns=""` is absent).
    pub in_scope: Vec<(String, String)>,
    /// Attributes, in document order.
    pub attributes: Vec<Attribute>,
    /// Children, in document order.
    pub children: Vec<Node>,
}

impl Element {
    /// Whether the element has namespace `ns` and local name `local`.
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.ns == ns && self.local == local
    }

    /// The value of the un-namespaced attribute `local`.
    pub fn attr(&self, local: &str) -> Option<&str> {
        self.attr_ns("", local)
    }

    /// The value of attribute `{ns}local`.
    pub(crate) fn attr_ns(&self, ns: &str, local: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.ns == ns && a.local == local)
            .map(|a| a.value.as_str())
    }

    /// Child elements with their index among all children.
    pub fn child_elements(&self) -> impl Iterator<Item = (usize, &Element)> {
        self.children
            .iter()
            .enumerate()
            .filter_map(|(i, n)| match n {
                Node::Element(e) => Some((i, e)),
                _ => None,
            })
    }

    /// The child elements named `{ns}local`, with their child indices.
    pub(crate) fn children_named<'s>(
        &'s self,
        ns: &'s str,
        local: &'s str,
    ) -> impl Iterator<Item = (usize, &'s Element)> + 's {
        self.child_elements().filter(move |(_, e)| e.is(ns, local))
    }

    /// The text content of the element's direct text children.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for c in &self.children {
            if let Node::Text(t) = c {
                s.push_str(t);
            }
        }
        s
    }

    fn qname(&self) -> String {
        qname(&self.prefix, &self.local)
    }

    fn binding(&self, prefix: &str) -> Option<&str> {
        lookup(&self.in_scope, prefix)
    }
}

fn qname(prefix: &str, local: &str) -> String {
    if prefix.is_empty() {
        local.to_string()
    } else {
        alloc::format!("{prefix}:{local}")
    }
}

fn lookup<'m>(map: &'m [(String, String)], prefix: &str) -> Option<&'m str> {
    map.iter()
        .find(|(p, _)| p == prefix)
        .map(|(_, u)| u.as_str())
}

fn set(map: &mut Vec<(String, String)>, prefix: &str, uri: &str) {
    map.retain(|(p, _)| p != prefix);
    if !(prefix.is_empty() && uri.is_empty()) {
        map.push((prefix.to_string(), uri.to_string()));
    }
    map.sort();
}

/// A parsed document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// Processing instructions before the root element.
    pub prolog: Vec<(String, String)>,
    /// The root element.
    pub root: Element,
    /// Processing instructions after the root element.
    pub epilog: Vec<(String, String)>,
}

impl Document {
    /// The element reached from the root by child indices.
    pub(crate) fn element_at(&self, path: &[usize]) -> Option<&Element> {
        let mut e = &self.root;
        for i in path {
            match e.children.get(*i)? {
                Node::Element(c) => e = c,
                _ => return None,
            }
        }
        Some(e)
    }
}

/// Normalises line ends (`\r\n` and lone `\r` to `\n`) as an XML processor must.
fn normalise_line_ends(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' {
            if chars.peek() == Some(&'\n') {
                chars.next();
            }
            out.push('\n');
        } else {
            out.push(c);
        }
    }
    out
}

/// Decodes entity and character references; in attribute values literal
/// whitespace becomes a space (attribute-value normalisation without a DTD).
fn unescape(raw: &str, attribute: bool) -> Result<String, XmlError> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(pos) = rest.find(|c| c == '&' || (attribute && matches!(c, '\t' | '\n' | '\r')))
    {
        let (head, tail) = rest.split_at(pos);
        out.push_str(head);
        let mut tail_chars = tail.chars();
        match tail_chars.next() {
            Some('&') => {
                let end = tail
                    .find(';')
                    .ok_or_else(|| XmlError::BadReference(tail.chars().take(12).collect()))?;
                let name = tail.get(1..end).unwrap_or_default();
                let c = match name {
                    "lt" => '<',
                    "gt" => '>',
                    "amp" => '&',
                    "apos" => '\'',
                    "quot" => '"',
                    _ => {
                        let code = if let Some(hex) = name.strip_prefix("#x") {
                            u32::from_str_radix(hex, 16).ok()
                        } else if let Some(dec) = name.strip_prefix('#') {
                            dec.parse::<u32>().ok()
                        } else {
                            None
                        };
                        code.and_then(char::from_u32)
                            .filter(|c| *c != '\0')
                            .ok_or_else(|| XmlError::BadReference(name.to_string()))?
                    }
                };
                out.push(c);
                rest = tail.get(end.saturating_add(1)..).unwrap_or_default();
            }
            Some(_) => {
                out.push(' ');
                rest = tail_chars.as_str();
            }
            None => break,
        }
    }
    out.push_str(rest);
    Ok(out)
}

struct Open {
    el: Element,
}

/// An attribute as written: prefix, local name, decoded value.
type RawAttribute = (String, String, String);

/// Parses a document (UTF-8 text).
pub fn parse(text: &str) -> Result<Document, XmlError> {
    let text = normalise_line_ends(text);
    let mut prolog = Vec::new();
    let mut epilog = Vec::new();
    let mut root: Option<Element> = None;
    let mut stack: Vec<Open> = Vec::new();
    // The element whose start tag is being read (attributes pending).
    let mut pending: Option<(Element, Vec<RawAttribute>)> = None;
    for token in xmlparser::Tokenizer::from(text.as_str()) {
        let token = token.map_err(|e| XmlError::Syntax(e.to_string()))?;
        use xmlparser::Token as T;
        match token {
            T::Declaration { .. } => {}
            T::Comment { .. } => {
                if let Some(top) = stack.last_mut() {
                    top.el.children.push(Node::Comment);
                }
            }
            T::DtdStart { .. }
            | T::EmptyDtd { .. }
            | T::EntityDeclaration { .. }
            | T::DtdEnd { .. } => {
                return Err(XmlError::Dtd);
            }
            T::ProcessingInstruction {
                target, content, ..
            } => {
                let pi = (
                    target.as_str().to_string(),
                    content.map(|c| c.as_str().to_string()).unwrap_or_default(),
                );
                match stack.last_mut() {
                    Some(top) => top.el.children.push(Node::Pi {
                        target: pi.0,
                        data: pi.1,
                    }),
                    None if root.is_none() => prolog.push(pi),
                    None => epilog.push(pi),
                }
            }
            T::ElementStart { prefix, local, .. } => {
                if root.is_some() {
                    return Err(XmlError::NoRoot);
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                let el = Element {
                    prefix: prefix.as_str().to_string(),
                    local: local.as_str().to_string(),
                    ns: String::new(),
                    ns_decls: Vec::new(),
                    in_scope: stack
                        .last()
                        .map(|o| o.el.in_scope.clone())
                        .unwrap_or_default(),
                    attributes: Vec::new(),
                    children: Vec::new(),
                };
                pending = Some((el, Vec::new()));
            }
            T::Attribute {
                prefix,
                local,
                value,
                ..
            } => {
                let Some((el, attrs)) = pending.as_mut() else {
                    return Err(XmlError::Syntax("attribute outside a start tag".into()));
                };
                let value = unescape(value.as_str(), true)?;
                let (p, l) = (prefix.as_str(), local.as_str());
                if p == "xmlns" || (p.is_empty() && l == "xmlns") {
                    let decl_prefix = if p.is_empty() { "" } else { l };
                    if el.ns_decls.iter().any(|(dp, _)| dp == decl_prefix) {
                        return Err(XmlError::DuplicateAttribute(qname(p, l)));
                    }
                    el.ns_decls.push((decl_prefix.to_string(), value));
                } else {
                    if attrs.iter().any(|(ap, al, _)| ap == p && al == l) {
                        return Err(XmlError::DuplicateAttribute(qname(p, l)));
                    }
                    attrs.push((p.to_string(), l.to_string(), value));
                }
            }
            T::ElementEnd { end, .. } => match end {
                xmlparser::ElementEnd::Open | xmlparser::ElementEnd::Empty => {
                    let Some((mut el, attrs)) = pending.take() else {
                        return Err(XmlError::Syntax(
                            "end of a start tag without a start".into(),
                        ));
                    };
                    let decls = el.ns_decls.clone();
                    for (p, u) in &decls {
                        set(&mut el.in_scope, p, u);
                    }
                    el.ns = resolve(&el.in_scope, &el.prefix, true)?;
                    for (p, l, v) in attrs {
                        let ns = resolve(&el.in_scope, &p, false)?;
                        if el.attributes.iter().any(|a| a.ns == ns && a.local == l) {
                            return Err(XmlError::DuplicateAttribute(qname(&p, &l)));
                        }
                        el.attributes.push(Attribute {
                            prefix: p,
                            local: l,
                            ns,
                            value: v,
                        });
                    }
                    if matches!(end, xmlparser::ElementEnd::Open) {
                        stack.push(Open { el });
                    } else {
                        close(el, &mut stack, &mut root);
                    }
                }
                xmlparser::ElementEnd::Close(prefix, local) => {
                    let Some(open) = stack.pop() else {
                        return Err(XmlError::NoRoot);
                    };
                    if open.el.prefix != prefix.as_str() || open.el.local != local.as_str() {
                        return Err(XmlError::Mismatch {
                            expected: open.el.qname(),
                            found: qname(prefix.as_str(), local.as_str()),
                        });
                    }
                    close(open.el, &mut stack, &mut root);
                }
            },
            T::Text { text } => {
                let t = unescape(text.as_str(), false)?;
                match stack.last_mut() {
                    Some(top) => push_text(&mut top.el, t),
                    None if t.chars().all(|c| matches!(c, ' ' | '\t' | '\n')) => {}
                    None => return Err(XmlError::NoRoot),
                }
            }
            T::Cdata { text, .. } => match stack.last_mut() {
                Some(top) => push_text(&mut top.el, text.as_str().to_string()),
                None => return Err(XmlError::NoRoot),
            },
        }
    }
    if !stack.is_empty() || pending.is_some() {
        return Err(XmlError::Syntax("unexpected end of document".into()));
    }
    let root = root.ok_or(XmlError::NoRoot)?;
    Ok(Document {
        prolog,
        root,
        epilog,
    })
}

fn push_text(el: &mut Element, t: String) {
    if let Some(Node::Text(prev)) = el.children.last_mut() {
        prev.push_str(&t);
    } else {
        el.children.push(Node::Text(t));
    }
}

fn close(el: Element, stack: &mut [Open], root: &mut Option<Element>) {
    match stack.last_mut() {
        Some(parent) => parent.el.children.push(Node::Element(el)),
        None => *root = Some(el),
    }
}

fn resolve(in_scope: &[(String, String)], prefix: &str, element: bool) -> Result<String, XmlError> {
    if prefix == "xml" {
        return Ok(XML_NS.to_string());
    }
    if prefix.is_empty() {
        // Unprefixed attributes are in no namespace; elements take the default.
        return Ok(if element {
            lookup(in_scope, "").unwrap_or_default().to_string()
        } else {
            String::new()
        });
    }
    lookup(in_scope, prefix)
        .map(ToString::to_string)
        .ok_or_else(|| XmlError::UnboundPrefix(prefix.to_string()))
}

/// A canonicalisation algorithm (all without comments).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum C14n {
    /// Canonical XML 1.0 (`http://www.w3.org/TR/2001/REC-xml-c14n-20010315`).
    Inclusive10,
    /// Canonical XML 1.1 (`http://www.w3.org/2006/12/xml-c14n11`).
    Inclusive11,
    /// Exclusive XML Canonicalization 1.0 (`http://www.w3.org/2001/10/xml-exc-c14n#`),
    /// with its InclusiveNamespaces prefix list.
    Exclusive(Vec<String>),
}

impl C14n {
    /// The algorithm named by an XML-DSig `Algorithm` URI (exclusive: empty prefix list).
    pub fn from_uri(uri: &str) -> Option<Self> {
        match uri {
            "http://www.w3.org/TR/2001/REC-xml-c14n-20010315" => Some(Self::Inclusive10),
            "http://www.w3.org/2006/12/xml-c14n11" => Some(Self::Inclusive11),
            "http://www.w3.org/2001/10/xml-exc-c14n#" => Some(Self::Exclusive(Vec::new())),
            _ => None,
        }
    }

    /// The algorithm's URI.
    pub fn uri(&self) -> &'static str {
        match self {
            Self::Inclusive10 => "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
            Self::Inclusive11 => "http://www.w3.org/2006/12/xml-c14n11",
            Self::Exclusive(_) => "http://www.w3.org/2001/10/xml-exc-c14n#",
        }
    }
}

/// Canonicalises the whole document, leaving out the element at `omit`
/// (a path of child indices from the root; used for enveloped signatures).
pub fn canonicalize_document(
    doc: &Document,
    omit: Option<&[usize]>,
    method: &C14n,
) -> Result<Vec<u8>, XmlError> {
    let mut out = String::new();
    for (t, d) in &doc.prolog {
        write_pi(&mut out, t, d);
        out.push('\n');
    }
    let mut w = Writer {
        out: &mut out,
        method,
        omit,
    };
    w.element(&doc.root, &[], &mut Vec::new(), &[], 0)?;
    for (t, d) in &doc.epilog {
        out.push('\n');
        write_pi(&mut out, t, d);
    }
    Ok(out.into_bytes())
}

/// Canonicalises the subtree rooted at the element at `path` (a document subset
/// whose apex inherits its ancestors' namespace context and, for inclusive
/// canonicalisation, their `xml:` attributes).
pub fn canonicalize_subtree(
    doc: &Document,
    path: &[usize],
    method: &C14n,
) -> Result<Vec<u8>, XmlError> {
    let el = doc.element_at(path).ok_or(XmlError::NoRoot)?;
    // xml:* attributes of omitted ancestors, nearest last wins.
    let mut inherited: Vec<Attribute> = Vec::new();
    if !matches!(method, C14n::Exclusive(_)) {
        let mut e = &doc.root;
        let mut ancestors = Vec::new();
        for i in path {
            ancestors.push(e);
            match e.children.get(*i) {
                Some(Node::Element(c)) => e = c,
                _ => return Err(XmlError::NoRoot),
            }
        }
        for a in ancestors {
            for at in a.attributes.iter().filter(|at| at.ns == XML_NS) {
                let inheritable = match method {
                    C14n::Inclusive10 => true,
                    _ => at.local == "lang" || at.local == "space",
                };
                if matches!(method, C14n::Inclusive11) && at.local == "base" {
                    return Err(XmlError::XmlBase);
                }
                if inheritable {
                    inherited.retain(|x| x.local != at.local);
                    inherited.push(at.clone());
                }
            }
        }
    }
    let mut out = String::new();
    let mut w = Writer {
        out: &mut out,
        method,
        omit: None,
    };
    w.element(el, &[], &mut Vec::new(), &inherited, 0)?;
    Ok(out.into_bytes())
}

struct Writer<'a> {
    out: &'a mut String,
    method: &'a C14n,
    omit: Option<&'a [usize]>,
}

impl Writer<'_> {
    /// Writes `el`; `rendered` holds the bindings in effect in the output of
    /// its output ancestors; `path` is `el`'s path (for `omit`).
    fn element(
        &mut self,
        el: &Element,
        rendered: &[(String, String)],
        path: &mut Vec<usize>,
        inherited: &[Attribute],
        depth: usize,
    ) -> Result<(), XmlError> {
        if depth > MAX_DEPTH {
            return Err(XmlError::TooDeep);
        }
        let mut decls: Vec<(String, String)> = Vec::new();
        let mut consider = |prefix: &str| {
            let uri = el.binding(prefix).unwrap_or_default();
            let have = lookup(rendered, prefix).unwrap_or_default();
            if uri != have && !decls.iter().any(|(p, _)| p == prefix) {
                decls.push((prefix.to_string(), uri.to_string()));
            }
        };
        match self.method {
            C14n::Exclusive(inclusive_prefixes) => {
                consider(&el.prefix);
                for a in &el.attributes {
                    if !a.prefix.is_empty() && a.prefix != "xml" {
                        consider(&a.prefix);
                    }
                }
                for p in inclusive_prefixes {
                    let p = if p == "#default" { "" } else { p.as_str() };
                    if el.binding(p).is_some() || p.is_empty() {
                        consider(p);
                    }
                }
            }
            _ => {
                for (p, _) in &el.in_scope {
                    consider(p);
                }
                // An undeclared default where the output has one.
                consider("");
            }
        }
        decls.sort();
        let mut now_rendered = rendered.to_vec();
        for (p, u) in &decls {
            set(&mut now_rendered, p, u);
        }
        let mut attrs: Vec<&Attribute> = el.attributes.iter().collect();
        for a in inherited {
            if !attrs.iter().any(|x| x.ns == a.ns && x.local == a.local) {
                attrs.push(a);
            }
        }
        attrs.sort_by(|a, b| {
            (a.ns.as_str(), a.local.as_str()).cmp(&(b.ns.as_str(), b.local.as_str()))
        });

        let name = el.qname();
        self.out.push('<');
        self.out.push_str(&name);
        for (p, u) in &decls {
            self.out
                .push_str(if p.is_empty() { " xmlns" } else { " xmlns:" });
            self.out.push_str(p);
            self.out.push_str("=\"");
            escape_attr(self.out, u);
            self.out.push('"');
        }
        for a in attrs {
            self.out.push(' ');
            self.out.push_str(&qname(&a.prefix, &a.local));
            self.out.push_str("=\"");
            escape_attr(self.out, &a.value);
            self.out.push('"');
        }
        self.out.push('>');
        for (i, child) in el.children.iter().enumerate() {
            match child {
                Node::Element(c) => {
                    path.push(i);
                    if self.omit != Some(path.as_slice()) {
                        self.element(c, &now_rendered, path, &[], depth.saturating_add(1))?;
                    }
                    path.pop();
                }
                Node::Text(t) => escape_text(self.out, t),
                Node::Pi { target, data } => write_pi(self.out, target, data),
                Node::Comment => {}
            }
        }
        self.out.push_str("</");
        self.out.push_str(&name);
        self.out.push('>');
        Ok(())
    }
}

fn write_pi(out: &mut String, target: &str, data: &str) {
    out.push_str("<?");
    out.push_str(target);
    if !data.is_empty() {
        out.push(' ');
        out.push_str(data);
    }
    out.push_str("?>");
}

fn escape_text(out: &mut String, t: &str) {
    for c in t.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            _ => out.push(c),
        }
    }
}

fn escape_attr(out: &mut String, t: &str) {
    for c in t.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests;
