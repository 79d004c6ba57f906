#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests

use super::*;
use alloc::{string::String, vec, vec::Vec};

fn c14n_doc(text: &str, method: &C14n) -> String {
    let doc = parse(text).unwrap();
    String::from_utf8(canonicalize_document(&doc, None, method).unwrap()).unwrap()
}

#[test]
fn inclusive_orders_namespaces_and_attributes_works() {
    let input = "<?xml version=\"1.0\"?>\r\n<a xmlns:p=\"v\" xmlns=\"u\"><p:b  z=\"1\" a=\"2\" p:c=\"3\"/><c xmlns=\"\"/><!-- gone --></a>\n";
    assert_eq!(
        c14n_doc(input, &C14n::Inclusive11),
        "<a xmlns=\"u\" xmlns:p=\"v\"><p:b a=\"2\" z=\"1\" p:c=\"3\"></p:b><c xmlns=\"\"></c></a>"
    );
}

#[test]
fn subtree_namespace_context_works() {
    let doc = parse(
        "<a xmlns=\"u\" xmlns:p=\"v\" xmlns:q=\"w\" xml:lang=\"en\"><p:b a=\"2\" p:c=\"3\"/></a>",
    )
    .unwrap();
    let inc = canonicalize_subtree(&doc, &[0], &C14n::Inclusive10).unwrap();
    assert_eq!(
        String::from_utf8(inc).unwrap(),
        "<p:b xmlns=\"u\" xmlns:p=\"v\" xmlns:q=\"w\" a=\"2\" xml:lang=\"en\" p:c=\"3\"></p:b>"
    );
    let exc = canonicalize_subtree(&doc, &[0], &C14n::Exclusive(Vec::new())).unwrap();
    assert_eq!(
        String::from_utf8(exc).unwrap(),
        "<p:b xmlns:p=\"v\" a=\"2\" p:c=\"3\"></p:b>"
    );
    let exc_q = canonicalize_subtree(&doc, &[0], &C14n::Exclusive(vec!["q".into()])).unwrap();
    assert_eq!(
        String::from_utf8(exc_q).unwrap(),
        "<p:b xmlns:p=\"v\" xmlns:q=\"w\" a=\"2\" p:c=\"3\"></p:b>"
    );
}

#[test]
fn exclusive_renders_only_utilized_namespaces_works() {
    let input = "<r:a xmlns:r=\"x\" xmlns:unused=\"y\"><b><r:c/></b></r:a>";
    assert_eq!(
        c14n_doc(input, &C14n::Exclusive(Vec::new())),
        "<r:a xmlns:r=\"x\"><b><r:c></r:c></b></r:a>"
    );
}

#[test]
fn escaping_and_normalisation_works() {
    let input =
        "<a v=\"1&#10;2\n3&amp;&lt;&quot;\">x &amp; &lt; &gt; \"q\" &#13;<![CDATA[<y>]]></a>";
    assert_eq!(
        c14n_doc(input, &C14n::Inclusive10),
        "<a v=\"1&#xA;2 3&amp;&lt;&quot;\">x &amp; &lt; &gt; \"q\" &#xD;&lt;y&gt;</a>"
    );
}

#[test]
fn omitting_an_element_works() {
    let doc = parse("<a>\n  <b/>\n  <s><t/></s>\n</a>").unwrap();
    let out = canonicalize_document(&doc, Some(&[3]), &C14n::Inclusive11).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), "<a>\n  <b></b>\n  \n</a>");
}

#[test]
fn bad_documents_reject() {
    assert_eq!(
        parse("<!DOCTYPE a [<!ENTITY e \"x\">]><a>&e;</a>"),
        Err(XmlError::Dtd)
    );
    assert!(matches!(parse("<a></b>"), Err(XmlError::Mismatch { .. })));
    assert!(matches!(parse("<p:a/>"), Err(XmlError::UnboundPrefix(_))));
    assert!(parse("<a x=\"1\" x=\"2\"/>").is_err());
    assert!(matches!(
        parse("<a xmlns:p=\"u\" xmlns:q=\"u\" p:x=\"1\" q:x=\"2\"/>"),
        Err(XmlError::DuplicateAttribute(_))
    ));
    assert!(matches!(
        parse("<a>&nope;</a>"),
        Err(XmlError::BadReference(_))
    ));
    assert!(parse("<a/><b/>").is_err());
    let deep = "<a>".repeat(MAX_DEPTH + 1);
    assert_eq!(parse(&deep), Err(XmlError::TooDeep));
}

proptest::proptest! {
    #[test]
    fn parse_never_panics(s in "\\PC{0,200}") {
        if let Ok(doc) = parse(&s) {
            let _ = canonicalize_document(&doc, None, &C14n::Inclusive11);
        }
    }
}

/// Outputs produced by libxml2's canonicaliser for the same inputs (an
/// independent implementation): whole documents and the first child subtree,
/// inclusive (C14N 1.0) and exclusive.
#[test]
fn matches_libxml2_outputs_works() {
    let a = "<?pi x?><r:a xmlns:r=\"http://x\" xmlns:unused=\"http://y\" xmlns=\"http://d\" z=\"1\" \
             b=\"&#10;t\"><b q:w=\"2\" xmlns:q=\"http://qq\"><r:c xmlns=\"\">t &amp; &lt; &gt; &#13;</r:c>\
             <![CDATA[<cd>]]></b><!--c--><d xmlns:r=\"http://x\" r:k=\"v\"/></r:a>";
    let b = "<a xmlns=\"http://u\" xmlns:p=\"http://v\"><p:b a=\"2\" p:c=\"3\"><c xmlns=\"\" \
             xmlns:z=\"http://z\"><z:d/></c></p:b>\n  <e/></a>";
    let exc = C14n::Exclusive(Vec::new());
    let cases: [(&str, &C14n, bool, &str); 8] = [
        (
            a,
            &C14n::Inclusive10,
            true,
            "<?pi x?>\n<r:a xmlns=\"http://d\" xmlns:r=\"http://x\" xmlns:unused=\"http://y\" b=\"&#xA;t\" z=\"1\"><b xmlns:q=\"http://qq\" q:w=\"2\"><r:c xmlns=\"\">t &amp; &lt; &gt; &#xD;</r:c>&lt;cd&gt;</b><d r:k=\"v\"></d></r:a>",
        ),
        (
            a,
            &C14n::Inclusive10,
            false,
            "<b xmlns=\"http://d\" xmlns:q=\"http://qq\" xmlns:r=\"http://x\" xmlns:unused=\"http://y\" q:w=\"2\"><r:c xmlns=\"\">t &amp; &lt; &gt; &#xD;</r:c>&lt;cd&gt;</b>",
        ),
        (
            a,
            &exc,
            true,
            "<?pi x?>\n<r:a xmlns:r=\"http://x\" b=\"&#xA;t\" z=\"1\"><b xmlns=\"http://d\" xmlns:q=\"http://qq\" q:w=\"2\"><r:c>t &amp; &lt; &gt; &#xD;</r:c>&lt;cd&gt;</b><d xmlns=\"http://d\" r:k=\"v\"></d></r:a>",
        ),
        (
            a,
            &exc,
            false,
            "<b xmlns=\"http://d\" xmlns:q=\"http://qq\" q:w=\"2\"><r:c xmlns:r=\"http://x\">t &amp; &lt; &gt; &#xD;</r:c>&lt;cd&gt;</b>",
        ),
        (
            b,
            &C14n::Inclusive10,
            true,
            "<a xmlns=\"http://u\" xmlns:p=\"http://v\"><p:b a=\"2\" p:c=\"3\"><c xmlns=\"\" xmlns:z=\"http://z\"><z:d></z:d></c></p:b>\n  <e></e></a>",
        ),
        (
            b,
            &C14n::Inclusive10,
            false,
            "<p:b xmlns=\"http://u\" xmlns:p=\"http://v\" a=\"2\" p:c=\"3\"><c xmlns=\"\" xmlns:z=\"http://z\"><z:d></z:d></c></p:b>",
        ),
        (
            b,
            &exc,
            true,
            "<a xmlns=\"http://u\"><p:b xmlns:p=\"http://v\" a=\"2\" p:c=\"3\"><c xmlns=\"\"><z:d xmlns:z=\"http://z\"></z:d></c></p:b>\n  <e></e></a>",
        ),
        (
            b,
            &exc,
            false,
            "<p:b xmlns:p=\"http://v\" a=\"2\" p:c=\"3\"><c><z:d xmlns:z=\"http://z\"></z:d></c></p:b>",
        ),
    ];
    for (input, method, whole, want) in cases {
        let doc = parse(input).unwrap();
        let got = if whole {
            canonicalize_document(&doc, None, method).unwrap()
        } else {
            canonicalize_subtree(&doc, &[0], method).unwrap()
        };
        assert_eq!(
            String::from_utf8(got).unwrap(),
            want,
            "{method:?} whole={whole}"
        );
    }
}
